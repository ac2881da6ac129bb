"""Probe results as values: the records `probe run` emits and the store and report read.

One :class:`CheckRecord` per check is what a JSON-lines line holds; it repeats the
run's identity (run id, plan hash, where it ran) so lines gathered with
``kubectl logs`` from many pods can be ingested and grouped back into runs. A
:class:`RunReport` is the whole run as one JSON document (``--report FILE``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    computed_field,
    model_validator,
)

from egress.compliance import (
    Assurance,
    CheckStatus,
    RunJudgement,
    RunStatus,
    StatusedCheck,
    Tally,
    Verdict,
    check_status,
    judge_run,
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
    "RunSummary",
    "Verdict",
    "parse_result_line",
    "split_lines",
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

    started_at: AwareDatetime
    verdict: Verdict
    reason: str
    phases: tuple[Phase, ...]
    # The source of the attempt's connection (or UDP socket), to join it with firewall logs.
    local_address: str | None = None
    local_port: int | None = None


class Location(_Frozen):
    """Where the check was measured (Downward API env when present)."""

    cluster: str | None = None
    node_pool: str | None = None
    node: str | None = None
    pod: str | None = None
    namespace: str | None = None
    node_ip: str | None = None  # status.hostIP: the source the firewall sees once SNATed
    pod_ip: str | None = None  # status.podIP: the source it sees with routable pod IPs


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
    reason: str  # one sentence a person can read
    evidence: dict[str, Any]  # resolver, answers, certificate, status, body excerpt...
    attempts: tuple[Attempt, ...]
    started_at: AwareDatetime
    finished_at: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _derive_missing_status(cls, data: Any) -> Any:
        """Lines written before statuses existed get theirs from the one rule; their legacy
        ``compliant`` field said less than ``status`` and is dropped."""
        if isinstance(data, dict) and "compliant" in data:
            data = {k: v for k, v in data.items() if k != "compliant"}
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
    def compliant(self) -> bool | None:
        """Legacy tri-state view of ``status``: pass -> True, fail/leak -> False, else None."""
        if self.status.failing:
            return False
        return True if self.status is CheckStatus.PASS else None

    @property
    def is_failed_required(self) -> bool:
        """A required endpoint shown blocked (or inspected where that is forbidden)."""
        return self.required and self.status is CheckStatus.FAIL

    @property
    def is_leak(self) -> bool:
        """Traffic that must be blocked got through: the most severe finding."""
        return self.status is CheckStatus.LEAK

    @property
    def statused(self) -> StatusedCheck:
        return StatusedCheck(self.status, self.expectation, self.required)


class RunReport(_Frozen):
    """One probe run as a single JSON document.

    ``run_status`` is written out for readers and checked on the way in: a document whose
    stated run status disagrees with its own checks is refused.
    """

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    run_id: str
    plan_hash: str
    tool_version: str
    cloud: str
    region: str
    location: Location
    started_at: AwareDatetime
    finished_at: AwareDatetime
    checks: tuple[CheckRecord, ...]
    strict: bool = False  # --strict: unproven deny checks leave the run NOT PROVEN too
    require_assurance: Assurance | None = None  # the minimum the check statuses were judged at

    @model_validator(mode="wrap")
    @classmethod
    def _stated_status_agrees(
        cls, data: Any, handler: ModelWrapValidatorHandler[RunReport]
    ) -> RunReport:
        stated = None
        if isinstance(data, dict) and "run_status" in data:
            stated = data["run_status"]
            data = {k: v for k, v in data.items() if k != "run_status"}
        report = handler(data)
        if stated is not None and stated != report.run_status.value:
            raise ValueError(
                f"run_status {stated!r} disagrees with its checks, which make the run "
                f"{report.run_status.value!r}"
            )
        return report

    def judgement(self, *, strict: bool | None = None) -> RunJudgement:
        """The run status and its reasons (strict: default the run's own --strict)."""
        chosen = self.strict if strict is None else strict
        return judge_run((c.statused for c in self.checks), strict=chosen)

    def status(self, *, strict: bool | None = None) -> RunStatus:
        return self.judgement(strict=strict).status

    @computed_field  # type: ignore[prop-decorator]
    @property
    def run_status(self) -> RunStatus:
        """The run's status under its own --strict: what every output of the run says."""
        return self.status()

    def tally(self) -> Tally:
        return Tally.of((c.verdict, c.status, c.assurance, 1) for c in self.checks)


class RunSummary(_Frozen):
    """The last JSON-lines record of a run: its status and counts, so a reader of the lines
    (and `egress report ingest`) need not re-derive them, and can tell lines went missing."""

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    record: Literal["summary"] = "summary"
    run_id: str
    plan_hash: str
    tool_version: str
    cloud: str
    region: str
    location: Location
    started_at: AwareDatetime
    finished_at: AwareDatetime
    run_status: RunStatus
    words: str  # "COMPLIANT" / "NON-COMPLIANT" / "NOT PROVEN", as the table ends
    reasons: tuple[str, ...]
    strict: bool
    require_assurance: Assurance | None
    checks: int
    by_verdict: dict[Verdict, int]
    by_status: dict[CheckStatus, int]
    blocked_by_assurance: dict[str, int]  # signature, stated, confirmed, none
    leaks: tuple[str, ...]  # check ids
    failures: tuple[str, ...]
    unproven: tuple[str, ...]

    @model_validator(mode="after")
    def _adds_up(self) -> RunSummary:
        """A summary that does not add up in itself was not written by the probe."""
        problems = []
        if self.words != self.run_status.words:
            problems.append(f"words {self.words!r} do not name run_status {self.run_status}")
        for name, counts in (("by_verdict", self.by_verdict), ("by_status", self.by_status)):
            if sum(counts.values()) != self.checks:
                problems.append(f"{name} adds up to {sum(counts.values())}, not {self.checks}")
        blocked = self.by_verdict.get(Verdict.BLOCKED, 0)
        if sum(self.blocked_by_assurance.values()) != blocked:
            problems.append(f"blocked_by_assurance does not add up to {blocked} blocked")
        for name, ids, status in (
            ("leaks", self.leaks, CheckStatus.LEAK),
            ("failures", self.failures, CheckStatus.FAIL),
            ("unproven", self.unproven, CheckStatus.UNPROVEN),
        ):
            if len(ids) != self.by_status.get(status, 0):
                problems.append(f"{name} lists {len(ids)} ids for {self.by_status.get(status, 0)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def of(cls, run: RunReport) -> RunSummary:
        judged = run.judgement()
        tally = run.tally()
        ids = {
            status: tuple(c.check_id for c in run.checks if c.status is status)
            for status in (CheckStatus.LEAK, CheckStatus.FAIL, CheckStatus.UNPROVEN)
        }
        return cls(
            run_id=run.run_id,
            plan_hash=run.plan_hash,
            tool_version=run.tool_version,
            cloud=run.cloud,
            region=run.region,
            location=run.location,
            started_at=run.started_at,
            finished_at=run.finished_at,
            run_status=judged.status,
            words=judged.status.words,
            reasons=judged.reasons,
            strict=run.strict,
            require_assurance=run.require_assurance,
            checks=len(run.checks),
            by_verdict=tally.by_verdict,
            by_status=tally.by_status,
            blocked_by_assurance=tally.blocked_by_assurance,
            leaks=ids[CheckStatus.LEAK],
            failures=ids[CheckStatus.FAIL],
            unproven=ids[CheckStatus.UNPROVEN],
        )


_LINE: TypeAdapter[CheckRecord | RunSummary] = TypeAdapter(
    Annotated[CheckRecord | RunSummary, Field(discriminator="record")]
)


def parse_result_line(text: str) -> CheckRecord | RunSummary:
    """One JSON-lines line of `probe run`: a check record or the run's closing summary."""
    return _LINE.validate_json(text)


def split_lines(lines: Iterable[str]) -> tuple[list[CheckRecord], list[RunSummary]]:
    """The check records and the summaries among `probe run` JSON lines, in order."""
    records: list[CheckRecord] = []
    summaries: list[RunSummary] = []
    for line in lines:
        parsed = parse_result_line(line)
        if isinstance(parsed, CheckRecord):
            records.append(parsed)
        else:
            summaries.append(parsed)
    return records, summaries
