"""Join probe attempts with the firewall's own decisions: confirmed, contradicted, unmatched.

An attempt matches a decision when the firewall saw the same source (the attempt's local
address or the node IP it was translated to) and source port, the same destination (the
probed name, or an address it resolved to) and port, inside the attempt's time window widened
by the allowed clock skew. The outcome changes the record's verdict or assurance only; its
status is then computed again by egress.compliance, the one rule (a canary the firewall
allowed becomes a leak there, not here).

=============  ==========================  ===========================================
expectation    firewall logged             outcome, new verdict (assurance confirmed)
=============  ==========================  ===========================================
deny           Allow                       contradicted unless probe saw it reachable:
                                           reachable (leak), naming the allowing rule
deny           Deny only                   confirmed: blocked (or contradicted when the
                                           probe reached it anyway: another path)
allow          Allow                       confirmed when reachable; else contradicted:
                                           unhealthy (the firewall let it through)
allow          Deny only                   confirmed when blocked; else contradicted:
                                           blocked, naming the denying rule or default
any            nothing                     unmatched: record unchanged
=============  ==========================  ===========================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from egress.compliance import (
    Assurance,
    CheckStatus,
    RunStatus,
    Verdict,
    check_status,
    run_status,
)
from egress.firewall_logs.model import Action, FirewallDecision, LogTable
from egress.firewall_logs.source import DecisionSource, LogQuery
from egress.probe_plan import Expectation
from egress.results import Attempt, CheckRecord, RunReport

DEFAULT_SKEW = timedelta(seconds=5)
# Tables whose rows are decisions about a pod's outbound flow (DNS proxy and DNAT rows are not).
FLOW_TABLES = (LogTable.APPLICATION_RULE, LogTable.NETWORK_RULE)


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    CONTRADICTED = "contradicted"
    UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class Flow:
    """What the firewall would have seen of one attempt."""

    check: int  # index into the checks being corroborated
    sources: tuple[str, ...]
    source_port: int
    host: str
    addresses: frozenset[str]
    port: int
    start: datetime
    end: datetime


def _detail_value(attempt: Attempt, *keys: str) -> Any:
    for phase in attempt.phases:
        for key in keys:
            value = phase.detail.get(key)
            if value not in (None, ""):
                return value
    return None


def attempt_source(record: CheckRecord, attempt: Attempt) -> tuple[tuple[str, ...], int | None]:
    """The attempt's local address(es) and port as the probe recorded them, plus the node IP.

    The probe records them on the attempt (``local_address``/``local_port``), or on the phase
    that opened the socket; the node IP (``node_ip``) is where SNAT puts pod traffic.
    """
    local = getattr(attempt, "local_address", None) or _detail_value(
        attempt, "local_address", "source_address"
    )
    port = getattr(attempt, "local_port", None) or _detail_value(
        attempt, "local_port", "source_port"
    )
    node_ip = getattr(record.location, "node_ip", None) or record.evidence.get("node_ip")
    sources = tuple(dict.fromkeys(str(a) for a in (local, node_ip) if a))
    return sources, int(port) if port is not None else None


def attempt_flows(index: int, record: CheckRecord, skew: timedelta) -> Iterator[Flow]:
    for number, attempt in enumerate(record.attempts):
        sources, port = attempt_source(record, attempt)
        if not sources or port is None:
            continue
        if number + 1 < len(record.attempts):
            end = record.attempts[number + 1].started_at
        else:
            spent = sum(p.duration_ms for p in attempt.phases)
            end = max(attempt.started_at + timedelta(milliseconds=spent), record.finished_at)
        addresses = frozenset(
            str(p.detail["address"]) for p in attempt.phases if p.detail.get("address")
        )
        yield Flow(
            check=index,
            sources=sources,
            source_port=port,
            host=record.host.lower().rstrip("."),
            addresses=addresses,
            port=record.port,
            start=attempt.started_at - skew,
            end=end + skew,
        )


@dataclass(frozen=True, slots=True)
class Corroborated:
    """One check after the join: the record as it now stands, and why."""

    original: CheckRecord
    record: CheckRecord
    outcome: Outcome
    explanation: str
    decision: FirewallDecision | None = None

    @property
    def rule(self) -> str | None:
        return self.decision.rule_path if self.decision is not None else None


@dataclass
class _Matches:
    allows: list[FirewallDecision] = field(default_factory=list)
    denies: list[FirewallDecision] = field(default_factory=list)


class FlowIndex:
    """Attempts keyed by (source address, source port, destination port) for a streaming join."""

    def __init__(self, records: list[CheckRecord], skew: timedelta) -> None:
        self.records = records
        self.matches: dict[int, _Matches] = {}
        self._by_key: dict[tuple[str, int, int], list[Flow]] = {}
        self.recorded_ports = [False] * len(records)
        self.earliest: datetime | None = None
        self.latest: datetime | None = None
        for index, record in enumerate(records):
            for flow in attempt_flows(index, record, skew):
                self.recorded_ports[index] = True
                for source in flow.sources:
                    self._by_key.setdefault((source, flow.source_port, flow.port), []).append(flow)
                if self.earliest is None or flow.start < self.earliest:
                    self.earliest = flow.start
                if self.latest is None or flow.end > self.latest:
                    self.latest = flow.end

    @property
    def source_addresses(self) -> tuple[str, ...]:
        return tuple(sorted({key[0] for key in self._by_key}))

    def offer(self, decision: FirewallDecision) -> None:
        if decision.action not in (Action.ALLOW, Action.DENY) or decision.source_port is None:
            return
        if decision.destination_port is None:
            return
        flows = self._by_key.get(
            (decision.source_ip, decision.source_port, decision.destination_port)
        )
        if not flows:
            return
        for flow in flows:
            if not flow.start <= decision.time <= flow.end:
                continue
            if not (
                decision.destination_fqdn == flow.host
                or (
                    decision.destination_ip is not None
                    and (
                        decision.destination_ip in flow.addresses
                        or decision.destination_ip == flow.host
                    )
                )
            ):
                continue
            found = self.matches.setdefault(flow.check, _Matches())
            target = found.allows if decision.action is Action.ALLOW else found.denies
            target.append(decision)


def _legacy_compliant(status: CheckStatus) -> bool | None:
    if status is CheckStatus.PASS:
        return True
    if status in (CheckStatus.FAIL, CheckStatus.LEAK):
        return False
    return None


def _restated(record: CheckRecord, verdict: Verdict, reason: str) -> CheckRecord:
    """The record with the firewall's word: new verdict, assurance confirmed, status recomputed."""
    status = check_status(
        expectation=record.expectation,
        verdict=verdict,
        assurance=Assurance.CONFIRMED,
        inspected=bool((record.evidence.get("tls") or {}).get("inspection")),
    )
    return record.model_copy(
        update={
            "verdict": verdict,
            "assurance": Assurance.CONFIRMED,
            "status": status,
            "compliant": _legacy_compliant(status),
            "reason": reason,
        }
    )


def _describe(decision: FirewallDecision) -> str:
    verb = "allowed" if decision.action is Action.ALLOW else "denied"
    return (
        f"the firewall {verb} it ({decision.table.value} {decision.time.isoformat()}, "
        f"{decision.rule_path})"
    )


def judge_check(
    record: CheckRecord, found: _Matches | None
) -> tuple[Outcome, str, FirewallDecision | None, CheckRecord]:
    """The corroboration rule (module table) for one check that matched decisions."""
    assert found is not None
    worked = record.verdict in (Verdict.REACHABLE, Verdict.UNHEALTHY)
    allow = found.allows[0] if found.allows else None
    deny = found.denies[0] if found.denies else None
    if record.expectation is Expectation.DENY:
        if allow is not None:
            why = f"{_describe(allow)}: a leak"
            if worked:
                return (
                    Outcome.CONFIRMED,
                    why,
                    allow,
                    _restated(record, record.verdict, record.reason + f"; {why}"),
                )
            return (
                Outcome.CONTRADICTED,
                f"the probe called it {record.verdict.value}, but {why}",
                allow,
                _restated(record, Verdict.REACHABLE, f"probe: {record.verdict.value}; {why}"),
            )
        assert deny is not None
        if worked:
            why = f"{_describe(deny)}, yet the probe reached it: another path bypasses the firewall"
            return Outcome.CONTRADICTED, why, deny, _restated(record, record.verdict, why)
        why = _describe(deny)
        return (
            Outcome.CONFIRMED,
            why,
            deny,
            _restated(record, Verdict.BLOCKED, f"{record.reason}; {why}"),
        )
    if allow is not None:
        why = _describe(allow)
        if worked:
            return (
                Outcome.CONFIRMED,
                why,
                allow,
                _restated(record, record.verdict, f"{record.reason}; {why}"),
            )
        return (
            Outcome.CONTRADICTED,
            f"the probe called it {record.verdict.value}, but {why}: the destination failed",
            allow,
            _restated(record, Verdict.UNHEALTHY, f"probe: {record.verdict.value}; {why}"),
        )
    assert deny is not None
    why = _describe(deny)
    if record.verdict is Verdict.BLOCKED:
        return (
            Outcome.CONFIRMED,
            why,
            deny,
            _restated(record, Verdict.BLOCKED, f"{record.reason}; {why}"),
        )
    return (
        Outcome.CONTRADICTED,
        f"the probe called it {record.verdict.value}, but {why}",
        deny,
        _restated(record, Verdict.BLOCKED, f"probe: {record.verdict.value}; {why}"),
    )


@dataclass(frozen=True, slots=True)
class RunCorroboration:
    run_id: str
    started_at: datetime
    finished_at: datetime
    logs_arrived: bool
    checks: tuple[Corroborated, ...]

    def status(self, *, strict: bool = False) -> RunStatus:
        """The run's status from its corroborated records, by the one compliance rule."""
        return run_status((c.record.statused for c in self.checks), strict=strict)


@dataclass(frozen=True, slots=True)
class CorroborationResult:
    source: str
    watermark: datetime | None  # logs are in up to here
    runs: tuple[RunCorroboration, ...]
    notes: tuple[str, ...]
    records_read: int

    @property
    def checks(self) -> Iterator[Corroborated]:
        for run in self.runs:
            yield from run.checks


def corroborate(
    runs: Iterable[RunReport],
    source: DecisionSource,
    *,
    skew: timedelta = DEFAULT_SKEW,
    watermark: datetime | None = None,
    extra_sources: tuple[str, ...] = (),
) -> CorroborationResult:
    """Join every check of `runs` with the decisions `source` holds for their attempts."""
    run_list = list(runs)
    records = [check for run in run_list for check in run.checks]
    index = FlowIndex(records, skew)
    if index.earliest is not None and index.latest is not None:
        query = LogQuery(
            since=index.earliest,
            until=index.latest,
            sources=tuple(sorted({*index.source_addresses, *extra_sources})),
            tables=FLOW_TABLES,
        )
        for decision in source.decisions(query):
            index.offer(decision)
    results: list[RunCorroboration] = []
    position = 0
    for run in run_list:
        first = position
        position += len(run.checks)
        # Arrived: the source holds later decisions, or every attempt it could match did.
        arrived = (watermark is not None and watermark >= run.finished_at + skew) or all(
            n in index.matches for n in range(first, position) if index.recorded_ports[n]
        )
        checks = [
            _outcome(
                record,
                first + n,
                index=index,
                arrived=arrived,
                watermark=watermark,
                incomplete=source.notes.incomplete,
            )
            for n, record in enumerate(run.checks)
        ]
        results.append(
            RunCorroboration(run.run_id, run.started_at, run.finished_at, arrived, tuple(checks))
        )
    return CorroborationResult(
        source=source.name,
        watermark=watermark,
        runs=tuple(results),
        notes=tuple(source.notes.messages),
        records_read=source.notes.records,
    )


def _outcome(
    record: CheckRecord,
    position: int,
    *,
    index: FlowIndex,
    arrived: bool,
    watermark: datetime | None,
    incomplete: bool,
) -> Corroborated:
    found = index.matches.get(position)
    if found is not None:
        outcome, why, decision, updated = judge_check(record, found)
        return Corroborated(record, updated, outcome, why, decision)
    if not index.recorded_ports[position]:
        why = (
            "not probed (no attempt)"
            if not record.attempts
            else "the run did not record the attempt's source address and port"
        )
    elif not arrived:
        seen = watermark.isoformat() if watermark else "none yet"
        why = f"the firewall's logs for this run have not arrived (latest: {seen})"
    elif incomplete:
        why = "no firewall decision found, but the source's answer was incomplete (see notes)"
    else:
        why = "no firewall decision for this flow (logging off, or it never reached the firewall)"
    return Corroborated(record, record, Outcome.UNMATCHED, why)
