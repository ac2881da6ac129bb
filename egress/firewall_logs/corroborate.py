"""Join probe attempts with the firewall's own decisions: confirmed, contradicted, unmatched.

An attempt matches a decision when the firewall saw the same source (the attempt's local
address or the node IP it was translated to) and source port, the same destination (the
probed name, or an address it resolved to) and port, inside the attempt's time window widened
by the allowed clock skew. The outcome changes the check's verdict or assurance only; its
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
any            nothing                     unmatched: check unchanged
=============  ==========================  ===========================================

Checks are held as compact :class:`Observed` values (a month of runs is ~260,000 of them);
full records are only rebuilt for ``--records`` output.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from egress.compliance import (
    Assurance,
    CheckStatus,
    RunStatus,
    StatusedCheck,
    Verdict,
    check_status,
    run_status,
)
from egress.firewall_logs.model import Action, FirewallDecision, LogTable
from egress.firewall_logs.source import DecisionSource, LogQuery
from egress.probe_plan import Expectation
from egress.results import CheckRecord, RunReport

DEFAULT_SKEW = timedelta(seconds=5)
# Tables whose rows are decisions about a pod's outbound flow (DNS proxy and DNAT rows are not).
FLOW_TABLES = (LogTable.APPLICATION_RULE, LogTable.NETWORK_RULE)


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    CONTRADICTED = "contradicted"
    UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class Observed:
    """What corroboration needs of one stored check result (equal checks of many runs may
    share one value: the run each belongs to is kept by the index)."""

    check_id: str
    host: str  # lowercased
    port: int
    expectation: Expectation
    required: bool
    verdict: Verdict
    status: CheckStatus
    assurance: Assurance | None
    inspected: bool  # the probe saw TLS inspection (input to the status rule)
    reason: str
    attempted: bool


def attempt_source(
    attempt: Mapping[str, Any], node_ip: str | None, pod_ip: str | None = None
) -> tuple[tuple[str, ...], int | None, tuple[str, ...]]:
    """The attempt's local address(es) and port as the probe recorded them, plus the node IP,
    and the destination addresses it connected to.

    The probe records them on the attempt (``local_address``/``local_port``, the pod's own
    address: what the firewall sees with routable pod IPs), and on the phase that opened the
    socket; the node IP (``Location.node_ip``) is where SNAT puts pod traffic otherwise, and
    the pod IP (``Location.pod_ip``) stands in when the attempt did not record its address.
    """
    local = attempt.get("local_address")
    port = attempt.get("local_port")
    addresses: list[str] = []
    for phase in attempt.get("phases") or ():
        detail = phase.get("detail")
        if not detail:
            continue
        if local is None:
            local = detail.get("local_address")
        if port is None:
            port = detail.get("local_port")
        address = detail.get("address")
        if address and address not in addresses:
            addresses.append(sys.intern(str(address)))
    if local is None:
        local = pod_ip
    if local and node_ip and node_ip != local:
        sources: tuple[str, ...] = (str(local), str(node_ip))
    else:
        sources = tuple(str(a) for a in (local or node_ip,) if a)
    return sources, int(port) if port is not None else None, tuple(addresses)


def last_attempt_end(begun: datetime, durations: Iterable[Any], finished_at: datetime) -> datetime:
    """When a check's last attempt ended: its phases' time after its start, or the check's
    end if later (an earlier attempt ends where the next one starts)."""
    spent = 0.0
    for duration in durations:
        spent += float(duration or 0)
    return max(begun + timedelta(milliseconds=spent), finished_at)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    """An aware time as microseconds since the epoch (flows are held as plain integers)."""
    return (moment - _EPOCH) // _MICROSECOND


class FlowIndex:
    """Attempts keyed by (source address, source port, destination port) for a streaming join.

    A month of one pool is ~260,000 flows, so a flow is a number (its position in parallel
    arrays of check, window start and end in microseconds, and destination addresses), and
    the first Allow and Deny matched per check sit in two lists.
    """

    def __init__(self, skew: timedelta) -> None:
        self.skew = skew
        self.observed: list[Observed] = []
        self.runs = array("q")  # the run (index into the runs) of each observed check
        self.keys: dict[tuple[str, int, int], list[int]] = {}  # -> flow numbers
        self.recorded_ports: list[bool] = []
        self.earliest: datetime | None = None
        self.latest: datetime | None = None
        self._check = array("q")
        self._start = array("q")
        self._end = array("q")
        self._addresses: list[tuple[str, ...]] = []
        self._shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one copy of each tuple
        self._allow: list[FirewallDecision | None] = []
        self._deny: list[FirewallDecision | None] = []
        self._longest = 0  # the longest flow window, microseconds
        self._sorted = True
        self._starts: dict[tuple[str, int, int], list[int]] = {}  # of each key's flows, sorted

    def add(
        self,
        observed: Observed,
        attempts: Sequence[Mapping[str, Any]],
        finished_at: datetime,
        node_ip: str | None,
        pod_ip: str | None = None,
        *,
        run: int,
    ) -> None:
        """A check of run number `run` and its attempts (as the store's codec gives them)."""
        flows = []
        last = len(attempts) - 1
        for number, attempt in enumerate(attempts):
            sources, port, addresses = attempt_source(attempt, node_ip, pod_ip)
            if not sources or port is None:
                continue
            begun = _time(attempt["started_at"])
            if number < last:
                ended = _time(attempts[number + 1]["started_at"])
            else:
                durations = (p.get("duration_ms") for p in attempt.get("phases") or ())
                ended = last_attempt_end(begun, durations, finished_at)
            flows.append((sources, port, addresses, begun, ended))
        self.add_flows(observed, flows, run=run)

    def add_flows(
        self,
        observed: Observed,
        flows: Sequence[tuple[tuple[str, ...], int, tuple[str, ...], datetime, datetime]],
        *,
        run: int,
    ) -> None:
        """A check and its attempts' flows, each (source addresses, source port, destination
        addresses, start, end) by :func:`attempt_source` and the window rule of :meth:`add`."""
        position = len(self.observed)
        self.observed.append(observed)
        self.runs.append(run)
        self._allow.append(None)
        self._deny.append(None)
        self.recorded_ports.append(bool(flows))
        keys = self.keys
        for sources, port, addresses, begun, ended in flows:
            start, end = begun - self.skew, ended + self.skew
            flow = len(self._check)
            first, final = (start - _EPOCH) // _MICROSECOND, (end - _EPOCH) // _MICROSECOND
            self._check.append(position)
            self._start.append(first)
            self._end.append(final)
            self._addresses.append(self._shared.setdefault(addresses, addresses))
            self._longest = max(self._longest, final - first)
            self._sorted = False
            for source in sources:
                key = (source, port, observed.port)
                same = keys.get(key)
                if same is None:
                    keys[key] = [flow]
                else:
                    same.append(flow)
            if self.earliest is None or start < self.earliest:
                self.earliest = start
            if self.latest is None or end > self.latest:
                self.latest = end

    def _sort(self) -> None:
        """Each key's flows by window start, and their starts (for bisecting), once all are
        added."""
        starts = self._start
        for key, flows in self.keys.items():
            flows.sort(key=starts.__getitem__)
            self._starts[key] = [starts[flow] for flow in flows]
        self._sorted = True

    def could_match(self, columns: Mapping[str, Any]) -> bool:
        """Whether a raw row's source, ports and time fit any attempt (before parsing it)."""
        return self.row_filter()(columns)

    def row_filter(self) -> Callable[[Mapping[str, Any]], bool]:
        """:meth:`could_match` as one closure over the finished index (a million rows call
        it: no attribute lookups per row). Adding flows afterwards needs a new one."""
        if not self._sorted:
            self._sort()
        keys, all_starts, ends, longest = self.keys, self._starts, self._end, self._longest

        def could_match(columns: Mapping[str, Any]) -> bool:
            get = columns.get
            address, source_port, port = get("SourceIp"), get("SourcePort"), get("DestinationPort")
            if type(address) is str and type(source_port) is int and type(port) is int:
                key = (address, source_port, port)  # JSON's usual types: no conversions
            else:
                try:
                    key = (
                        str(address),
                        source_port if type(source_port) is int else int(source_port or -1),
                        port if type(port) is int else int(port or -1),
                    )
                except (TypeError, ValueError):
                    return True  # the parser names the bad value
            flows = keys.get(key)
            if not flows:
                return False
            value = get("TimeGenerated")
            try:
                moment = (
                    value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
                )
            except ValueError:
                return True
            if moment.tzinfo is None:
                return True  # the source knows the zone; let it decide
            # Flows of a key sorted by start: look back from the last one starting by then.
            at = (moment - _EPOCH) // _MICROSECOND
            starts = all_starts[key]
            position = bisect_right(starts, at) - 1
            earliest = at - longest
            while position >= 0 and starts[position] >= earliest:
                if ends[flows[position]] >= at:
                    return True
                position -= 1
            return False

        return could_match

    @property
    def source_addresses(self) -> tuple[str, ...]:
        return tuple(sorted({key[0] for key in self.keys}))

    def offer(self, decision: FirewallDecision) -> None:
        action = decision.action
        if action is not Action.ALLOW and action is not Action.DENY:
            return
        if decision.source_port is None or decision.destination_port is None:
            return
        flows = self.keys.get((decision.source_ip, decision.source_port, decision.destination_port))
        if not flows:
            return
        at = _micros(decision.time)
        fqdn, ip = decision.destination_fqdn, decision.destination_ip
        found = self._allow if action is Action.ALLOW else self._deny
        for flow in flows:
            if not self._start[flow] <= at <= self._end[flow]:
                continue
            check = self._check[flow]
            host = self.observed[check].host
            addressed = ip is not None and (ip in self._addresses[flow] or ip == host)
            if not (fqdn == host or addressed):
                continue
            first = found[check]
            if first is None or decision.time < first.time:
                found[check] = decision

    def found(self, position: int) -> _Matches | None:
        """The first Allow and Deny matched for the check at `position`, if any."""
        allow, deny = self._allow[position], self._deny[position]
        return None if allow is None and deny is None else _Matches(allow, deny)


@dataclass(slots=True)
class _Matches:
    """The first Allow and the first Deny the firewall logged for a check's attempts."""

    allow: FirewallDecision | None = None
    deny: FirewallDecision | None = None


# Why a check came out as it did; the sentence is built only when shown (month-scale runs).
_SENTENCES = {
    "leak-seen": "{fw}: a leak",
    "leak": "the probe called it {probe}, but {fw}: a leak",
    "bypass": "{fw}, yet the probe reached it: another path bypasses the firewall",
    "agrees": "{fw}",
    "destination-failed": "the probe called it {probe}, but {fw}: the destination failed",
    "denied": "the probe called it {probe}, but {fw}",
}


class Corroborated(NamedTuple):
    """One check after the join: its verdict, assurance and status now, and why.

    A named tuple (immutable, and quick to build: a month of runs is ~260,000 of them).
    """

    observed: Observed
    outcome: Outcome
    why: str  # a key of _SENTENCES, or an unmatched check's reason
    verdict: Verdict
    assurance: Assurance | None
    status: CheckStatus
    decision: FirewallDecision | None = None

    @property
    def explanation(self) -> str:
        d = self.decision
        if d is None:
            return self.why
        # The sentence around the decision's time is the same for every check that matched
        # the same rule the same way: built once (a month of runs is ~260,000 sentences).
        rule = (d.action_reason, d.policy, d.rule_collection_group, d.rule_collection, d.rule)
        key = (self.why, self.observed.verdict, d.table, d.action, rule)
        parts = _PHRASES.get(key)
        if parts is None:
            parts = _phrase(self.why, self.observed.verdict, d)
            if parts is None:
                return _sentence(self.why, self.observed.verdict, d)
            if len(_PHRASES) < 10_000:
                _PHRASES[key] = parts
        return parts[0] + d.time.isoformat() + parts[1]

    @property
    def rule(self) -> str | None:
        return self.decision.rule_path if self.decision is not None else None

    @property
    def statused(self) -> StatusedCheck:
        o = self.observed
        key = (self.status, o.expectation, o.required)
        found = _STATUSED.get(key)
        if found is None:
            found = _STATUSED[key] = StatusedCheck(*key)
        return found

    def applied_to(self, record: CheckRecord) -> CheckRecord:
        """The stored record with the firewall's word (for JSON-lines output and ingest)."""
        if self.outcome is Outcome.UNMATCHED:
            return record
        return record.model_copy(
            update={
                "verdict": self.verdict,
                "assurance": self.assurance,
                "status": self.status,
                "assumption": None if self.assurance is Assurance.CONFIRMED else record.assumption,
                "reason": f"{record.reason}; firewall log: {self.explanation}",
            }
        )


# The few distinct (status, expectation, required) a run rule reads: one value each.
_STATUSED: dict[tuple[CheckStatus, Expectation, bool], StatusedCheck] = {}


# (why, probe verdict, table, action, reason, policy, group, collection, rule) -> the
# explanation before and after the decision's time.
_PHRASES: dict[tuple[Any, ...], tuple[str, str]] = {}
_TIME_MARK = "\x00"


def _sentence(why: str, probe: Verdict, decision: FirewallDecision, when: str = "") -> str:
    return _SENTENCES[why].format(fw=_describe(decision, when), probe=probe)


def _phrase(why: str, probe: Verdict, decision: FirewallDecision) -> tuple[str, str] | None:
    """The sentence split at the decision's time (None: the mark is in the text itself)."""
    marked = _sentence(why, probe, decision, _TIME_MARK)
    if marked.count(_TIME_MARK) != 1:
        return None
    before, _, after = marked.partition(_TIME_MARK)
    return before, after


def _describe(decision: FirewallDecision, when: str = "") -> str:
    """The firewall's decision in words; `when` stands for its time (default: the time)."""
    verb = "allowed" if decision.action is Action.ALLOW else "denied"
    # A StrEnum formats as its value (the member itself: no property lookup per check).
    when = when or decision.time.isoformat()
    return f"the firewall {verb} it ({decision.table} {when}, {decision.rule_path})"


def _with(
    observed: Observed, outcome: Outcome, why: str, verdict: Verdict, decision: FirewallDecision
) -> Corroborated:
    """The firewall's word: the new verdict, assurance confirmed, status by the one rule."""
    status = check_status(
        expectation=observed.expectation,
        verdict=verdict,
        assurance=Assurance.CONFIRMED,
        inspected=observed.inspected,
    )
    return Corroborated(observed, outcome, why, verdict, Assurance.CONFIRMED, status, decision)


def judge(observed: Observed, found: _Matches) -> Corroborated:
    """The corroboration rule (module table) for one check that matched decisions."""
    probe = observed.verdict
    worked = probe in (Verdict.REACHABLE, Verdict.UNHEALTHY)
    allow, deny = found.allow, found.deny
    if observed.expectation is Expectation.DENY:
        if allow is not None:
            if worked:
                return _with(observed, Outcome.CONFIRMED, "leak-seen", probe, allow)
            return _with(observed, Outcome.CONTRADICTED, "leak", Verdict.REACHABLE, allow)
        assert deny is not None
        if worked:
            return _with(observed, Outcome.CONTRADICTED, "bypass", probe, deny)
        return _with(observed, Outcome.CONFIRMED, "agrees", Verdict.BLOCKED, deny)
    if allow is not None:
        if worked:
            return _with(observed, Outcome.CONFIRMED, "agrees", probe, allow)
        return _with(observed, Outcome.CONTRADICTED, "destination-failed", Verdict.UNHEALTHY, allow)
    assert deny is not None
    if probe is Verdict.BLOCKED:
        return _with(observed, Outcome.CONFIRMED, "agrees", Verdict.BLOCKED, deny)
    return _with(observed, Outcome.CONTRADICTED, "denied", Verdict.BLOCKED, deny)


@dataclass(frozen=True, slots=True)
class RunCorroboration:
    run_id: str
    started_at: datetime
    finished_at: datetime
    logs_arrived: bool
    checks: tuple[Corroborated, ...]

    def status(self, *, strict: bool = False) -> RunStatus:
        """The run's status from its corroborated checks, by the one compliance rule."""
        return run_status((c.statused for c in self.checks), strict=strict)


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


def observe(record: CheckRecord) -> Observed:
    return Observed(
        check_id=record.check_id,
        host=record.host.lower().rstrip("."),
        port=record.port,
        expectation=record.expectation,
        required=record.required,
        verdict=record.verdict,
        status=record.status,
        assurance=record.assurance,
        inspected=bool((record.evidence.get("tls") or {}).get("inspection")),
        reason=record.reason,
        attempted=bool(record.attempts),
    )


def index_runs(runs: Iterable[RunReport], skew: timedelta) -> tuple[list[RunInfo], FlowIndex]:
    """Index in-memory runs (tests, --results files); the store has a faster path."""
    infos: list[RunInfo] = []
    index = FlowIndex(skew)
    for number, run in enumerate(runs):
        infos.append(RunInfo(run.run_id, run.started_at, run.finished_at))
        for record in run.checks:
            attempts = [a.model_dump() for a in record.attempts]
            where = record.location
            index.add(
                observe(record),
                attempts,
                record.finished_at,
                where.node_ip,
                where.pod_ip,
                run=number,
            )
    return infos, index


def corroborate(
    runs: Iterable[RunReport],
    source: DecisionSource,
    *,
    skew: timedelta = DEFAULT_SKEW,
    watermark: datetime | None = None,
) -> CorroborationResult:
    """Join every check of `runs` with the decisions `source` holds for their attempts."""
    infos, index = index_runs(runs, skew)
    return join(infos, index, source, watermark=watermark)


def join(
    infos: list[RunInfo],
    index: FlowIndex,
    source: DecisionSource,
    *,
    watermark: datetime | None = None,
) -> CorroborationResult:
    if index.earliest is not None and index.latest is not None:
        query = LogQuery(
            since=index.earliest,
            until=index.latest,
            sources=index.source_addresses,
            tables=FLOW_TABLES,
            row_filter=index.row_filter(),
        )
        for decision in source.decisions(query):
            index.offer(decision)
    if watermark is None and source.complete:
        watermark = source.notes.newest  # a file reaches as far as its newest decision
    per_run: list[list[Corroborated]] = [[] for _ in infos]
    incomplete = source.notes.incomplete
    for position, (run, observed) in enumerate(zip(index.runs, index.observed, strict=True)):
        per_run[run].append(_placeholder(observed, position, index))
    results = []
    for info, checks in zip(infos, per_run, strict=True):
        # Arrived: the source holds later decisions, or every attempt it could match did.
        arrived = (watermark is not None and watermark >= info.finished_at + index.skew) or all(
            c.why != _UNMATCHED for c in checks
        )
        final = tuple(_explained(c, arrived, watermark, incomplete) for c in checks)
        results.append(
            RunCorroboration(info.run_id, info.started_at, info.finished_at, arrived, final)
        )
    return CorroborationResult(
        source=source.name,
        watermark=watermark,
        runs=tuple(results),
        notes=tuple(source.notes.messages),
        records_read=source.notes.records,
    )


_NO_PORTS = "the run did not record the attempt's source address and port"
_NOT_PROBED = "not probed (no attempt)"
_UNMATCHED = "(unmatched)"


def _placeholder(observed: Observed, position: int, index: FlowIndex) -> Corroborated:
    found = index.found(position)
    if found is not None:
        return judge(observed, found)
    if not index.recorded_ports[position]:
        why = _NOT_PROBED if not observed.attempted else _NO_PORTS
    else:
        why = _UNMATCHED
    return Corroborated(
        observed, Outcome.UNMATCHED, why, observed.verdict, observed.assurance, observed.status
    )


def _explained(
    check: Corroborated, arrived: bool, watermark: datetime | None, incomplete: bool
) -> Corroborated:
    if check.why != _UNMATCHED:
        return check
    if not arrived:
        seen = watermark.isoformat() if watermark else "none yet"
        why = f"the firewall's logs for this run have not arrived (latest: {seen})"
    elif incomplete:
        why = "no firewall decision found, but the source's answer was incomplete (see notes)"
    else:
        why = "no firewall decision for this flow (logging off, or it never reached the firewall)"
    return Corroborated(
        check.observed, check.outcome, why, check.verdict, check.assurance, check.status
    )
