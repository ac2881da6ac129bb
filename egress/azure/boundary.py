"""The one place azure-core and azure-identity exceptions become egress Azure*Error messages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from azure.core import exceptions as core
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import HttpResponse
from azure.core.rest import HttpResponse as RestHttpResponse
from azure.identity import AuthenticationRequiredError, CredentialUnavailableError

from egress.errors import (
    AzureApplyError,
    AzureAuthError,
    AzureConflictError,
    AzureError,
    AzureNotFoundError,
    AzurePermissionError,
)

T = TypeVar("T")

# Every exception class of azure.core.exceptions and where it goes; a test walks the module
# and fails when a new class appears that is neither here nor in IGNORED_EXCEPTIONS.
EXCEPTION_MAP: dict[type[BaseException], type[AzureError]] = {
    CredentialUnavailableError: AzureAuthError,
    AuthenticationRequiredError: AzureAuthError,
    core.ClientAuthenticationError: AzureAuthError,
    core.ResourceNotFoundError: AzureNotFoundError,
    core.ResourceExistsError: AzureApplyError,
    core.ResourceModifiedError: AzureConflictError,
    core.ResourceNotModifiedError: AzureApplyError,
    core.TooManyRedirectsError: AzureApplyError,
    core.ODataV4Error: AzureApplyError,
    core.IncompleteReadError: AzureApplyError,
    core.DecodeError: AzureApplyError,
    core.HttpResponseError: AzureApplyError,
    core.ServiceRequestTimeoutError: AzureApplyError,
    core.ServiceResponseTimeoutError: AzureApplyError,
    core.ServiceRequestError: AzureApplyError,
    core.ServiceResponseError: AzureApplyError,
    core.StreamConsumedError: AzureApplyError,
    core.StreamClosedError: AzureApplyError,
    core.ResponseNotReadError: AzureApplyError,
    core.AzureError: AzureApplyError,
}
# Programming errors (we built a bad body or misused the SDK): they must surface as bugs.
IGNORED_EXCEPTIONS: frozenset[type[BaseException]] = frozenset(
    {core.SerializationError, core.DeserializationError}
)
_ACTION_IN_MESSAGE = re.compile(r"perform action '([^']+)'")


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Bounds for retrying throttling, server errors, dropped connections and conflicts."""

    attempts: int = 6  # per request, for 429/5xx/connection errors (the SDK pipeline)
    backoff_seconds: float = 2.0  # first back-off; doubles each time
    max_wait_seconds: float = 120.0  # cap on any one wait, even when Retry-After says more
    conflict_attempts: int = 20  # 409 / policy Updating: how often to try one write again


class BoundedRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """azure-core's retry (429, 5xx, dropped connections; honours Retry-After) with a cap."""

    def __init__(self, settings: RetrySettings) -> None:
        super().__init__(
            retry_total=settings.attempts,
            retry_connect=settings.attempts,
            retry_read=settings.attempts,
            retry_status=settings.attempts,
            retry_backoff_factor=settings.backoff_seconds / 2,
            retry_backoff_max=settings.max_wait_seconds,
        )
        self._max_wait = settings.max_wait_seconds

    def get_retry_after(self, response: object) -> float | None:
        delay = super().get_retry_after(response)  # type: ignore[arg-type]
        return None if delay is None else min(delay, self._max_wait)


def _arm_error(error: core.HttpResponseError) -> tuple[str, str]:
    """ARM's `error.code` and `error.message` (empty strings when the body has none)."""
    code = getattr(error, "error", None)
    if code is not None and getattr(code, "code", None):
        return str(code.code), str(getattr(code, "message", "") or "")
    return "", str(getattr(error, "message", "") or "")


def _message(
    error: BaseException, resource: str, needs: tuple[str, ...], *, operation: bool = False
) -> AzureError:
    target = EXCEPTION_MAP.get(type(error))
    if target is None:
        target = next(
            (mapped for cls, mapped in EXCEPTION_MAP.items() if isinstance(error, cls)),
            AzureApplyError,
        )
    if isinstance(error, CredentialUnavailableError | AuthenticationRequiredError):
        return AzureAuthError(
            "no Azure credential is available: sign in with `az login`, or set AZURE_CLIENT_ID, "
            "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or run with a managed or workload identity."
        )
    if isinstance(error, core.ClientAuthenticationError) and error.response is None:
        return _sign_in_error(error, resource)
    if isinstance(error, core.HttpResponseError):
        status = error.status_code or 0
        code, text = _arm_error(error)
        if operation and status < 400:
            return AzureApplyError(
                f"Azure reported that {resource} failed ({code or 'Failed'}: {text.rstrip('.')}); "
                "fix the cause and re-run egress apply, which rewrites what did not succeed."
            )
        if code == "InvalidAuthenticationTokenTenant":
            return AzureAuthError(
                f"subscription {_subscription_of(resource + ' ' + text)} belongs to another "
                "Entra tenant than the credential; sign in to that tenant (az login --tenant, "
                "AZURE_TENANT_ID) or check --subscription."
            )
        if status == 401 or isinstance(error, core.ClientAuthenticationError):
            return AzureAuthError(
                f"Azure rejected the credential while accessing {resource} ({code or status}); "
                "sign in again (`az login`) or check the service principal's secret."
            )
        if status == 403:
            denied = _ACTION_IN_MESSAGE.search(text)
            actions = ([denied.group(1)] if denied else []) + [
                a for a in needs if not denied or a != denied.group(1)
            ]
            return AzurePermissionError(
                f"the signed-in identity may not access {resource} ({code or 'Forbidden'}); "
                f"grant it these actions: {', '.join(actions) or 'see the Azure message'}.",
                hint=text or None,
            )
        if code in ("SubscriptionNotFound", "InvalidSubscriptionId"):
            return AzureNotFoundError(
                f"subscription {_subscription_of(resource + ' ' + text)} was not found or is not "
                "visible to the signed-in identity; check --subscription (`az account list`)."
            )
        if code == "ResourceGroupNotFound":
            return AzureNotFoundError(
                f"{text.rstrip('.')} (needed for {resource}); check --resource-group."
            )
        if status == 404:
            return AzureNotFoundError(f"{resource} was not found ({code or 'NotFound'}).")
        if status == 412:
            return AzureConflictError(
                f"{resource} was changed by someone else since the plan (412 Precondition "
                "Failed); nothing was overwritten, run egress plan again to review it."
            )
        if status == 409:
            return AzureApplyError(
                f"Azure refused to change {resource} because of a conflict ({code}: {text}); "
                "wait for the other operation to finish and re-run."
            )
        return AzureApplyError(
            f"Azure answered {status} {code} for {resource}: {text or _first(error)}; re-run later "
            "(apply converges) or check the resource in the portal."
        )
    if isinstance(error, core.ServiceRequestError | core.ServiceResponseError):
        return AzureApplyError(
            f"could not reach Azure Resource Manager for {resource} ({_first(error)}); "
            "check the network and re-run (apply converges)."
        )
    return target(f"Azure SDK error for {resource}: {_first(error)}.")


def _sign_in_error(error: core.ClientAuthenticationError, resource: str) -> AzureError:
    """A credential failed before any ARM call: nothing configured, or a rejected sign-in."""
    text = str(error.message or error)
    failures = [
        line.strip()
        for line in text.splitlines()
        if "Authentication failed" in line or "AADSTS" in line
    ]
    if failures:
        detail = failures[0].split("Authentication failed:", 1)[-1].strip().rstrip(".")
        return AzureAuthError(
            f"Azure sign-in failed while reading {resource}: {detail}; check the credential "
            "(client id, tenant, secret or certificate) or sign in again with `az login`."
        )
    return AzureAuthError(
        "no Azure credential is available: sign in with `az login`, or set AZURE_CLIENT_ID, "
        "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or run with a managed or workload identity."
    )


def _first(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__


def _subscription_of(resource: str) -> str:
    found = re.search(r"/subscriptions/([^/]+)|subscription '([^']+)'", resource)
    return f"'{found.group(1) or found.group(2)}'" if found else "(unknown)"


@contextmanager
def map_azure_errors(
    resource: str, *, needs: tuple[str, ...] = (), operation: bool = False
) -> Iterator[None]:
    """Translate any Azure SDK exception raised inside into an AzureError naming `resource`.

    `needs` lists the RBAC actions the call requires, printed when Azure answers 403;
    `operation` marks waiting on a long-running operation (a Failed status is not an HTTP error).
    """
    try:
        yield
    except tuple(IGNORED_EXCEPTIONS):
        raise
    except (core.AzureError, CredentialUnavailableError, AuthenticationRequiredError) as error:
        raise _message(error, resource, needs, operation=operation) from None
    except OSError as error:  # requests reads the CA bundle per request: it may have vanished
        raise AzureApplyError(
            f"could not send the request for {resource} ({error}); nothing more was written: "
            "check REQUESTS_CA_BUNDLE / the CA file and re-run (apply converges)."
        ) from None


NOT_FOUND_PARENT_CODES = frozenset(
    {"SubscriptionNotFound", "InvalidSubscriptionId", "ResourceGroupNotFound"}
)


def get_or_none(call: Callable[[], T], *, resource: str, needs: tuple[str, ...]) -> T | None:
    """Run a GET; None when the resource itself is missing (not its subscription or group)."""
    with map_azure_errors(resource, needs=needs):
        try:
            return call()
        except core.ResourceNotFoundError as error:
            if _arm_error(error)[0] in NOT_FOUND_PARENT_CODES:
                raise
            return None


def is_retryable_conflict(error: BaseException) -> bool:
    """409 Conflict / AnotherOperationInProgress / policy Updating: worth trying again."""
    return isinstance(error, core.HttpResponseError) and error.status_code == 409


def retry_after_seconds(error: core.HttpResponseError, default: float) -> float:
    response = error.response
    if isinstance(response, HttpResponse | RestHttpResponse):
        value = response.headers.get("Retry-After")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return default
    return default


def call_with_conflict_retry(
    call: Callable[[], T],
    *,
    resource: str,
    needs: tuple[str, ...],
    settings: RetrySettings,
    deadline: float,
    on_wait: Callable[[str, float], None] | None = None,
) -> T:
    """Run `call`, retrying a 409 (another write on the policy in flight) with bounded back-off."""
    delay = settings.backoff_seconds
    for attempt in range(1, settings.conflict_attempts + 1):
        with map_azure_errors(resource, needs=needs):
            try:
                return call()
            except core.HttpResponseError as error:
                if not is_retryable_conflict(error) or attempt == settings.conflict_attempts:
                    raise
                wait = min(retry_after_seconds(error, delay), settings.max_wait_seconds)
        if time.monotonic() + wait > deadline:
            raise AzureApplyError(
                f"{resource} stayed busy (409 Conflict: another operation in progress) past the "
                "--timeout; re-run egress apply when the firewall policy is no longer Updating."
            )
        if on_wait is not None:
            on_wait(f"{resource} is busy (409), retrying in {wait:g}s", wait)
        time.sleep(wait)
        delay = min(delay * 2, settings.max_wait_seconds)
    raise AzureApplyError(f"{resource} stayed busy after {settings.conflict_attempts} attempts.")
