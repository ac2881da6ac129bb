"""The SDK boundary: every azure-core exception is mapped, and clouds have the right endpoints."""

from __future__ import annotations

import inspect

import azure.core.exceptions as core
import azure.identity
import pytest

from egress.azure.boundary import EXCEPTION_MAP, IGNORED_EXCEPTIONS, map_azure_errors
from egress.azure.cloud import endpoints_for
from egress.errors import AzureAuthError, AzureError, AzureNotFoundError, UsageError


def _exception_classes(module: object) -> set[type[BaseException]]:
    return {
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    }


def test_every_azure_core_exception_is_mapped_or_explicitly_ignored() -> None:
    classes = _exception_classes(core) | _exception_classes(azure.identity)
    classes = {c for c in classes if c.__module__.startswith("azure.")}
    unhandled = sorted(
        c.__name__ for c in classes if c not in EXCEPTION_MAP and c not in IGNORED_EXCEPTIONS
    )
    assert unhandled == []
    assert all(issubclass(target, AzureError) for target in EXCEPTION_MAP.values())


def test_mapped_errors_become_one_sentence_azure_errors_and_ignored_ones_pass() -> None:
    expected = pytest.raises(AzureAuthError, match="no Azure credential is available")
    with expected, map_azure_errors("firewall policy 'fp'"):
        raise azure.identity.CredentialUnavailableError("nothing configured")
    with pytest.raises(AzureError) as caught, map_azure_errors("route table 'rt'"):
        raise core.ServiceRequestError("connection refused")
    assert "route table 'rt'" in str(caught.value)
    with pytest.raises(core.SerializationError), map_azure_errors("x"):
        raise core.SerializationError("bug in our body")
    assert not isinstance(AzureNotFoundError("x"), UsageError)


@pytest.mark.parametrize(
    ("cloud", "arm", "authority", "scope"),
    [
        (
            "AzureCloud",
            "https://management.azure.com",  # data: never contacted
            "https://login.microsoftonline.com",
            "https://management.azure.com/.default",  # data: never contacted
        ),
        (
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn",
            "https://login.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/.default",
        ),
        (
            "AzureUSGovernment",
            "https://management.usgovcloudapi.net",
            "https://login.microsoftonline.us",
            "https://management.core.usgovcloudapi.net/.default",
        ),
    ],
)
def test_sovereign_clouds_use_their_own_endpoints(
    cloud: str, arm: str, authority: str, scope: str
) -> None:
    # Data only: these hosts are never contacted by the tests.
    endpoints = endpoints_for(cloud)
    assert (endpoints.arm_endpoint, endpoints.authority_host, endpoints.credential_scope) == (
        arm,
        authority,
        scope,
    )


def test_endpoint_overrides_set_the_token_scope_and_refuse_plain_http() -> None:
    endpoints = endpoints_for(
        "AzureCloud", arm_endpoint="https://127.0.0.1:8443/", authority_host="https://127.0.0.1:9"
    )
    assert endpoints.credential_scope == "https://127.0.0.1:8443/.default"
    with pytest.raises(UsageError, match="--arm-endpoint must be an https"):
        endpoints_for("AzureCloud", arm_endpoint="http://127.0.0.1:8080")
    with pytest.raises(UsageError, match="unknown cloud 'Mars'"):
        endpoints_for("Mars")


def test_client_for_a_sovereign_cloud_targets_its_endpoint_and_scope() -> None:
    from azure.core.credentials import AccessToken

    from egress.azure.cloud import Connection, network_client

    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            raise AssertionError("no request is made by this test")

    endpoints = endpoints_for("AzureUSGovernment")
    connection = Connection("sub-1", endpoints, credential=NoCredential())  # type: ignore[arg-type]
    with network_client(connection) as client:
        config = client._config
        assert config.base_url == "https://management.usgovcloudapi.net"
        assert config.credential_scopes == ["https://management.core.usgovcloudapi.net/.default"]


@pytest.mark.parametrize(
    ("cloud", "authority"),
    [
        ("AzureChinaCloud", "https://login.chinacloudapi.cn"),
        ("AzureUSGovernment", "https://login.microsoftonline.us"),
    ],
)
def test_default_credential_signs_in_at_the_clouds_authority(
    monkeypatch: pytest.MonkeyPatch, cloud: str, authority: str
) -> None:
    from egress.azure.cloud import default_credential

    seen: dict[str, object] = {}
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda **kw: seen.update(kw))
    default_credential(endpoints_for(cloud))
    assert seen == {"authority": authority}  # public authority: instance discovery stays on
    default_credential(endpoints_for(cloud, authority_host="https://127.0.0.1:9"))
    assert seen == {"authority": "https://127.0.0.1:9", "disable_instance_discovery": True}
