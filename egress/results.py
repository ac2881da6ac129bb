"""Probe results as values: the records `probe run` emits and the store and report read.

One :class:`CheckRecord` per check is what a JSON-lines line holds; it repeats the
run's identity (run id, plan hash, where it ran) so lines gathered with
``kubectl logs`` from many pods can be ingested and grouped back into runs. A
:class:`RunReport` is the whole run as one JSON document (``--report FILE``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from egress.compliance import (
    Assurance,
    CheckStatus,
    RunStatus,
    StatusedCheck,
    Verdict,
    check_status,
    run_status,
)
from egress.probe_plan import CheckKind, Expectation

__all__ = [
    "Assurance",
    "Attempt",
    "CheckRecord",
    "CheckStatus",
    "Location",
    "Phase",
    "RunReport",
    "RunStatus",
    "Verdict",
]

RESULT_SCHEMA_VERSION: Literal[1] = 1


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
    status: CheckStatus  # from egress.compliance.check_status: the one compliance rule
    assurance: Assurance | None = None  # every blocked verdict has one
    assumption: str | None = None  # what a `signature` verdict assumes, in one sentence
    compliant: bool | None  # legacy: pass -> True, fail/leak -> False, else None
    reason: str  # one sentence a person can read
    evidence: dict[str, Any]  # resolver, answers, certificate, status, body excerpt...
    attempts: tuple[Attempt, ...]
    started_at: datetime
    finished_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _derive_missing_status(cls, data: Any) -> Any:
        """Lines written before statuses existed get theirs from the one rule."""
        if isinstance(data, dict) and "status" not in data and "verdict" in data:
            try:
                status = check_status(
                    expectation=Expectation(str(data.get("expectation"))),
                    verdict=Verdict(data["verdict"]),
                    assurance=None,
                )
            except ValueError:
                return data  # field validation names the bad value
            data = {**data, "status": status}
        return data

    @property
    def is_leak(self) -> bool:
        """Traffic that must be blocked got through: the most severe finding."""
        return self.status is CheckStatus.LEAK

    @property
    def is_failed_required(self) -> bool:
        return self.required and self.status is CheckStatus.FAIL

    @property
    def statused(self) -> StatusedCheck:
        return StatusedCheck(self.status, self.expectation, self.required)


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

    def status(self, *, strict: bool = False) -> RunStatus:
        return run_status((c.statused for c in self.checks), strict=strict)
