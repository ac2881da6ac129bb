"""The one exception tree of egress, and the exit codes the CLI maps it to.

Every exception a user can cause derives from :class:`EgressError` and carries a
message written as one sentence for a person: it names the file, entry or Azure
resource at fault and says how to fix it. Programming errors stay plain Python
exceptions (``TypeError``, ``RuntimeError``) and are never caught by the CLI.

    EgressError
    ├── InputError            bad user input: exit 2
    │   ├── CatalogError      a file under fqdn_lists/ is malformed
    │   ├── PolicyError       the user policy file is malformed
    │   ├── PlanFileError     a probe plan or report file is malformed
    │   ├── UsageError        unknown region, feature, target, conflicting flags
    │   └── FirewallLogError  a firewall log export is malformed (file and line)
    ├── CompileError          the input is well formed but cannot be compiled: exit 2
    │   └── UnsupportedFeatureError   a target cannot express some entries
    ├── OutputError           cannot write the output folder or file: exit 5
    ├── StoreError            the result store cannot be read or written: exit 5
    ├── ProbeError            the probe could not run at all (not a verdict): exit 5
    ├── MetricsError          a run's metrics could not be pushed or written: exit 5
    └── AzureError            Azure refused or failed: exit 4
        ├── AzureAuthError        no usable credential
        ├── AzurePermissionError  403: lists the actions needed
        ├── AzureNotFoundError    a resource or subscription is missing
        ├── AzureConflictError    changed by someone else since the plan (etag)
        └── AzureApplyError       any other failed request or timed-out operation

Probe verdicts are values, never exceptions: a blocked endpoint is a result.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in README.md."""

    OK = 0
    NON_COMPLIANT = 1  # a probe or report is NON-COMPLIANT or NOT PROVEN
    USAGE = 2  # bad input: flags, catalog, policy file, plan file
    CHANGES_PENDING = 3  # `egress plan` found drift between desired and live state
    AZURE = 4  # Azure refused or failed a request
    ENVIRONMENT = 5  # cannot write output, open the store, or run the probe at all


class EgressError(Exception):
    """Root of every error a user can cause; its message is shown as is."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(EgressError):
    """Malformed user input."""


class CatalogError(InputError):
    """A file under fqdn_lists/ is malformed."""


class PolicyError(InputError):
    """The user policy file is malformed."""


class PlanFileError(InputError):
    """A probe plan, report or JSON-lines file is malformed."""


class UsageError(InputError):
    """Unknown region, feature, target or format, or conflicting options."""


class CompileError(EgressError):
    """Well-formed input that cannot be compiled (limits, clashes, lint errors)."""


class UnsupportedFeatureError(CompileError):
    """A target cannot express some entries; the message lists every one."""


class OutputError(EgressError):
    """Output could not be written."""

    exit_code = ExitCode.ENVIRONMENT


class StoreError(EgressError):
    """The result store could not be opened, migrated or written."""

    exit_code = ExitCode.ENVIRONMENT


class ProbeError(EgressError):
    """The probe could not run at all (as opposed to a check's verdict)."""

    exit_code = ExitCode.ENVIRONMENT


class MetricsError(EgressError):
    """A run's metrics could not be delivered to the Pushgateway or the textfile."""

    exit_code = ExitCode.ENVIRONMENT


class AzureError(EgressError):
    """Azure refused or failed a request."""

    exit_code = ExitCode.AZURE


class AzureAuthError(AzureError):
    """No usable credential."""


class AzurePermissionError(AzureError):
    """The identity lacks permissions (HTTP 403)."""


class AzureNotFoundError(AzureError):
    """A subscription, resource group or resource does not exist."""


class AzureConflictError(AzureError):
    """A resource changed since it was read; nothing was overwritten."""


class AzureApplyError(AzureError):
    """Any other failed request, or an operation that did not finish in time."""


class FirewallLogError(InputError):
    """A firewall log export or diagnostic file is malformed (names file and line)."""
