"""The probe plan: the versioned list of checks that `compile` writes and `probe` reads.

This module is the one contract between the compiler and the probe agent. A plan is
plain JSON (``probe-plan.json``); :func:`load_plan` validates it and names the file
and the offending check on error, so a hand-edited or truncated plan gives a clear
message instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from egress.errors import PlanFileError

PLAN_SCHEMA_VERSION: Literal[1] = 1


class Expectation(StrEnum):
    """What the policy says must happen to this traffic."""

    ALLOW = "allow"
    DENY = "deny"


class CheckKind(StrEnum):
    """The deepest protocol exchange that can prove the verdict for this endpoint."""

    HTTPS = "https"  # DNS, TCP, TLS with SNI, then an HTTP request over TLS
    HTTP = "http"  # DNS, TCP, then a plain HTTP request (470 deny detection)
    TLS = "tls"  # DNS, TCP, TLS handshake with SNI only (non-HTTP TLS services)
    TCP = "tcp"  # DNS, TCP connect (never conclusive on 80/443 behind Azure Firewall)
    NTP = "ntp"  # a real NTP mode-3 request over UDP
    DNS = "dns"  # a real DNS query to the host as a resolver (exfiltration canary)
    UNVERIFIABLE = "unverifiable"  # cannot be proven from a pod; reported as such


class Enforcement(StrEnum):
    """How the firewall enforces a check's traffic; the judge reads failures against it."""

    APPLICATION_RULE = "application-rule"  # the transparent proxy (app-rule ports, 80/443)
    NETWORK_RULE = "network-rule"  # L4 rules on every other port; default action: silent drop
    DNS_PROXY = "dns-proxy"  # name resolution through the firewall's DNS proxy


# Ports Azure Firewall's transparent proxy serves when no application rule names others:
# HTTP and HTTPS, plus MSSQL, whose handshakes the proxy also completes itself (firewall FAQ).
DEFAULT_APPLICATION_PORTS = frozenset({80, 443, 1433})


def derive_enforcement(
    kind: CheckKind,
    transport: str,
    port: int,
    application_ports: frozenset[int] = DEFAULT_APPLICATION_PORTS,
) -> Enforcement:
    """The one rule from a check's kind and port to how the firewall enforces it."""
    if kind is CheckKind.DNS:
        return Enforcement.DNS_PROXY
    if transport == "tcp" and port in application_ports:
        return Enforcement.APPLICATION_RULE
    return Enforcement.NETWORK_RULE


class TlsInspection(StrEnum):
    """Whether a TLS-inspecting proxy may re-sign this endpoint's traffic."""

    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # e.g. the API server: konnectivity's ALPN must not be rewritten


class FirewallProfile(StrEnum):
    """Which firewall's behaviour the judge may rely on."""

    AZURE_FIREWALL = "azure-firewall"  # proxy on app-rule ports, silent drop elsewhere
    GENERIC = "generic"  # only evidence the firewall states itself counts


class HostSource(StrEnum):
    """Where the probe takes the concrete host from."""

    LITERAL = "literal"  # `host` as written in the plan
    API_SERVER = "api-server"  # KUBERNETES_SERVICE_HOST when it is an FQDN, else --api-server


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Check(_Frozen):
    """One probe: a concrete host and port, with what must happen and why."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._:/-]*$", max_length=200)
    host: str = Field(min_length=1, max_length=253)  # FQDN or IP literal
    host_source: HostSource = HostSource.LITERAL
    port: int = Field(ge=1, le=65535)
    transport: Literal["tcp", "udp"]
    kind: CheckKind
    expectation: Expectation
    destination: str  # the rule destination it stands for, e.g. "*.hcp.eastus.azmk8s.io"
    rule: str  # "<group>/<collection>/<rule>" it comes from, or "canary/<name>"
    feature: str  # catalog feature group ("required", "gpu", ...), "policy" or "canary"
    required: bool  # a failed allow check on a required endpoint fails compliance
    purpose: str = ""
    unverifiable_reason: str | None = None
    dns_query_name: str | None = None  # for kind=dns: the name asked of the outside resolver
    # None only in plans written before enforcement was recorded (the judge then derives it).
    enforcement: Enforcement | None = None
    tls_inspection: TlsInspection = TlsInspection.ALLOWED
    # A deny destination the user operates and keeps up, answering on every port: a timeout
    # on a network-rule port to it can then count as blocked.
    canary_server: bool = False

    @property
    def enforced_by(self) -> Enforcement:
        """The plan's enforcement, or (plans written before it was recorded) the port's."""
        if self.enforcement is not None:
            return self.enforcement
        return derive_enforcement(self.kind, self.transport, self.port)

    @model_validator(mode="after")
    def _unverifiable_has_reason(self) -> Check:
        if (self.kind is CheckKind.UNVERIFIABLE) != (self.unverifiable_reason is not None):
            raise ValueError("kind 'unverifiable' and unverifiable_reason go together")
        return self


class ProbePlan(_Frozen):
    """All checks for one cluster, in a stable order."""

    schema_version: Literal[1] = PLAN_SCHEMA_VERSION
    cloud: str
    region: str
    generated_by: str  # "egress <version>"
    firewall_profile: FirewallProfile = FirewallProfile.AZURE_FIREWALL
    checks: tuple[Check, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> ProbePlan:
        counts = Counter(c.id for c in self.checks)
        dupes = sorted(check_id for check_id, n in counts.items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate check ids: {', '.join(dupes)}")
        return self

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys, two-space indent, trailing newline)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @property
    def plan_hash(self) -> str:
        """SHA-256 of the canonical JSON, so results can name the exact plan they ran."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def parse_plan(text: str, *, origin: str) -> ProbePlan:
    """Parse plan JSON text; `origin` names the file in error messages."""
    try:
        return ProbePlan.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PlanFileError(
            f"{origin}: probe plan field '{where}' is invalid: {first['msg']}; "
            "regenerate it with `egress compile` or fix that field."
        ) from exc


def load_plan(path: Path) -> ProbePlan:
    """Read and validate a probe plan file."""
    from egress.inputs import read_text

    return parse_plan(read_text(path, what="probe plan", error=PlanFileError), origin=str(path))
