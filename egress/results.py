"""Probe results as values: the records `probe run` emits and the store and report read.

One :class:`CheckRecord` per check is what a JSON-lines line holds; it repeats the
run's identity (run id, plan hash, where it ran) so lines gathered with
``kubectl logs`` from many pods can be ingested and grouped back into runs. A
:class:`RunReport` is the whole run as one JSON document (``--report FILE``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from egress.probe_plan import CheckKind, Expectation

RESULT_SCHEMA_VERSION: Literal[1] = 1


class Verdict(StrEnum):
    """What the probe observed, judged only on evidence."""

    REACHABLE = "reachable"  # the real destination answered through the path
    BLOCKED = "blocked"  # positive evidence that a firewall stopped it
    UNHEALTHY = "unhealthy"  # the path worked but the destination itself failed
    INCONCLUSIVE = "inconclusive"  # nothing proves either way (NXDOMAIN, TCP-only on 80/443)
    UNVERIFIABLE = "unverifiable"  # cannot be checked from a pod at all (e.g. UDP 1194)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Phase(_Frozen):
    """One rung of the ladder (dns, tcp, tls, http, ntp, dns-query) and its raw outcome."""

    name: str
    ok: bool
    duration_ms: float
    detail: dict[str, Any] = Field(default_factory=dict)  # errno, rcode, ede, alert, status...


class Attempt(_Frozen):
    """One try at a check; retries are kept, never overwritten."""

    started_at: datetime
    verdict: Verdict
    reason: str
    phases: tuple[Phase, ...]


class Location(_Frozen):
    """Where the check was measured (Downward API env when present)."""

    cluster: str | None = None
    node_pool: str | None = None
    node: str | None = None
    pod: str | None = None
    namespace: str | None = None


class CheckRecord(_Frozen):
    """The final result of one check in one run: one JSON-lines line."""

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    record: Literal["check"] = "check"
    run_id: str
    plan_hash: str
    tool_version: str
    cloud: str
    region: str
    location: Location
    check_id: str
    host: str
    port: int
    transport: Literal["tcp", "udp"]
    kind: CheckKind
    expectation: Expectation
    destination: str
    rule: str
    feature: str
    required: bool
    verdict: Verdict
    compliant: bool | None  # None: cannot be judged (inconclusive or unverifiable)
    reason: str  # one sentence a person can read
    evidence: dict[str, Any]  # resolver, answers, certificate, status, body excerpt...
    attempts: tuple[Attempt, ...]
    started_at: datetime
    finished_at: datetime

    @property
    def is_leak(self) -> bool:
        """Traffic that must be blocked got through: the most severe finding."""
        return self.expectation is Expectation.DENY and self.verdict is Verdict.REACHABLE

    @property
    def is_failed_required(self) -> bool:
        return self.required and self.expectation is Expectation.ALLOW and self.compliant is False


class RunReport(_Frozen):
    """One probe run as a single JSON document."""

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    run_id: str
    plan_hash: str
    tool_version: str
    cloud: str
    region: str
    location: Location
    started_at: datetime
    finished_at: datetime
    checks: tuple[CheckRecord, ...]

    @property
    def compliant(self) -> bool:
        return all(c.compliant is not False for c in self.checks)
