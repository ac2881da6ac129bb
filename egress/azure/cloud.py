"""Azure cloud endpoints, the credential and the NetworkManagementClient built from them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from egress.azure.boundary import BoundedRetryPolicy, RetrySettings
from egress.errors import UsageError
from egress.model import Cloud

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.network import NetworkManagementClient


class _Closable(Protocol):
    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)


@dataclass(frozen=True, slots=True)
class CloudEndpoints:
    """Where ARM lives for one cloud, who issues its tokens, and the token scope it needs."""

    name: str
    arm_endpoint: str
    authority_host: str
    credential_scope: str


KNOWN_CLOUDS: dict[Cloud, CloudEndpoints] = {
    Cloud.AZURE_CLOUD: CloudEndpoints(
        "AzureCloud",
        "https://management.azure.com",
        "https://login.microsoftonline.com",
        "https://management.azure.com/.default",
    ),
    Cloud.AZURE_CHINA_CLOUD: CloudEndpoints(
        "AzureChinaCloud",
        "https://management.chinacloudapi.cn",
        "https://login.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/.default",
    ),
    Cloud.AZURE_US_GOVERNMENT: CloudEndpoints(
        "AzureUSGovernment",
        "https://management.usgovcloudapi.net",
        "https://login.microsoftonline.us",
        "https://management.core.usgovcloudapi.net/.default",
    ),
}


def endpoints_for(
    cloud: str, *, arm_endpoint: str | None = None, authority_host: str | None = None
) -> CloudEndpoints:
    """The cloud's endpoints, optionally overridden (Azure Stack, private clouds, tests)."""
    try:
        known = KNOWN_CLOUDS[Cloud(cloud)]
    except ValueError:
        names = ", ".join(c.value for c in Cloud)
        raise UsageError(f"unknown cloud '{cloud}'; use one of {names}.") from None
    if arm_endpoint is None and authority_host is None:
        return known
    arm = (arm_endpoint or known.arm_endpoint).rstrip("/")
    for url, flag in ((arm, "--arm-endpoint"), (authority_host or "https://", "--authority-host")):
        if not url.startswith("https://"):
            raise UsageError(f"{flag} must be an https:// URL, got '{url}'.")
    return CloudEndpoints(
        name=known.name,
        arm_endpoint=arm,
        authority_host=(authority_host or known.authority_host).rstrip("/"),
        credential_scope=f"{arm}/.default" if arm_endpoint else known.credential_scope,
    )


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything needed to talk to one subscription's ARM."""

    subscription_id: str
    endpoints: CloudEndpoints
    credential: TokenCredential | None = None  # None: DefaultAzureCredential for the cloud
    connection_verify: str | bool = True  # a CA bundle path for private endpoints / tests
    polling_interval: float | None = None  # seconds between LRO polls without Retry-After
    retry: RetrySettings = field(default_factory=RetrySettings)


def default_credential(endpoints: CloudEndpoints, **kwargs: Any) -> TokenCredential:
    """DefaultAzureCredential against the cloud's authority (env, workload/managed id, az)."""
    from azure.identity import DefaultAzureCredential

    known_hosts = {c.authority_host for c in KNOWN_CLOUDS.values()}
    if endpoints.authority_host not in known_hosts:
        # A private authority cannot be validated against the public instance list.
        kwargs.setdefault("disable_instance_discovery", True)
    try:
        return DefaultAzureCredential(authority=endpoints.authority_host, **kwargs)
    except ValueError as error:  # azure-identity validates AZURE_TOKEN_CREDENTIALS here
        if "AZURE_TOKEN_CREDENTIALS" not in str(error):
            raise
        valid = str(error).partition("Valid values are:")[2].strip().rstrip(".")
        raise UsageError(
            f"AZURE_TOKEN_CREDENTIALS '{os.environ.get('AZURE_TOKEN_CREDENTIALS', '')}' is not a "
            f"credential azure-identity knows; unset it or use one of: {valid or 'dev, prod'}."
        ) from None


@contextmanager
def arm_client(
    connection: Connection, client_type: Callable[..., ClientT], **extra: Any
) -> Iterator[ClientT]:
    """An ARM SDK client wired to the connection's cloud, credential, TLS and retry policy.

    It closes the client, and the DefaultAzureCredential it made when none was given.
    """
    owned: TokenCredential | None = None
    if connection.credential is None:
        verify = connection.connection_verify
        owned = default_credential(
            connection.endpoints, **({} if verify is True else {"connection_verify": verify})
        )
    credential = connection.credential or owned
    assert credential is not None
    client = client_type(
        credential,
        connection.subscription_id,
        base_url=connection.endpoints.arm_endpoint,
        credential_scopes=[connection.endpoints.credential_scope],
        connection_verify=connection.connection_verify,
        retry_policy=BoundedRetryPolicy(connection.retry),
        **extra,
    )
    try:
        yield client
    finally:
        client.close()
        if owned is not None:
            owned.close()  # type: ignore[attr-defined]


@contextmanager
def network_client(connection: Connection) -> Iterator[NetworkManagementClient]:
    """A NetworkManagementClient (api-version 2026-03-01); closes it (and a credential it made)."""
    from azure.mgmt.network import NetworkManagementClient

    extra: dict[str, Any] = {}
    if connection.polling_interval is not None:
        extra["polling_interval"] = connection.polling_interval
    with arm_client(connection, NetworkManagementClient, **extra) as client:
        yield client
