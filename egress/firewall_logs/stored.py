"""Stored runs, read straight into the flow index (a month of one pool is ~260,000 checks).

Reads only what corroboration needs from the result store's `runs`, `checks`, `check_defs`
and `outcomes` (schema v4), so no full record is built; the stored status is the one
compliance rule's (the store computes it on write).

A stored result is a shared outcome body with its numbers cut out plus the row's own numbers
(egress.store._compact). Passing checks share a handful of outcomes across a month, so each
distinct outcome is decoded once, by the store's own codec, into a :class:`_Template` saying
which of a row's numbers are its attempts' starts, local ports and phase durations; a row
then costs one parse of its short number array. An outcome whose shape the template does not
cover is decoded row by row through the codec, as before.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.firewall_logs.corroborate import (
    FlowIndex,
    Observed,
    RunInfo,
    attempt_source,
    last_attempt_end,
)
from egress.probe_plan import Expectation
from egress.store import ResultStore, format_ts
from egress.store._compact import join

# Stored values are the enums' own (the store writes them): plain lookups in the hot loop.
_EXPECTATIONS = {e.value: e for e in Expectation}
_VERDICTS = {v.value: v for v in Verdict}
_ASSURANCES = {a.value: a for a in Assurance}
_STATUSES = {s.value: s for s in CheckStatus}
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A template is found by decoding the body with hole k filled with _MARK + k: every number
# in a stored body is a hole, so every number decoded is a marker naming its hole.
_MARK = 1 << 40

# A value of a row: ("hole", index into the row's numbers) or ("value", constant).
_Slot = tuple[bool, Any]
_SCANNER: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


class _UnexpectedShapeError(ValueError):
    """The outcome has a shape the template does not cover: decode its rows one by one."""


@dataclass(frozen=True, slots=True)
class _AttemptShape:
    """One attempt of an outcome: where its start and local port are among a row's numbers,
    its phases' durations, and its destination addresses (text: never a row's number)."""

    sample: dict[str, Any]  # the attempt decoded with markers for numbers
    start: int  # index of the start offset in the row's numbers
    port: _Slot | None  # the local port as attempt_source finds it; None: not recorded
    durations: tuple[_Slot, ...]
    addresses: tuple[str, ...]
    # The source addresses by (attempt's own address, node IP, pod IP): attempt_source's
    # answer, computed once per distinct combination.
    sources: dict[tuple[Any, Any, Any], tuple[str, ...]] = field(default_factory=dict)

    def sources_for(self, address: Any, node_ip: str | None, pod_ip: str | None) -> tuple[str, ...]:
        key = (address, node_ip, pod_ip)
        found = self.sources.get(key)
        if found is None:
            attempt = {**self.sample, "local_address": address}
            found = self.sources[key] = attempt_source(attempt, node_ip, pod_ip)[0]
        return found


@dataclass(frozen=True, slots=True)
class _Template:
    """Where one outcome's attempts take their per-row numbers from."""

    attempts: tuple[_AttemptShape, ...]
    reason: str
    inspected: _Slot  # constant bool, or the hole whose truth it is

    def flows(
        self,
        numbers: list[Any],
        addresses: list[Any] | None,
        where: tuple[datetime, datetime, str | None, str | None],
    ) -> list[tuple[tuple[str, ...], int, tuple[str, ...], datetime, datetime]]:
        """The attempts' flows as FlowIndex.add derives them from the decoded attempts;
        `where` is the check's start and end, and the run's node and pod IP (`addresses`
        None: the row recorded no attempt's source address)."""
        started, finished_at, node_ip, pod_ip = where
        if addresses is None:
            addresses = [None] * len(self.attempts)
        flows = []
        last = len(self.attempts) - 1
        for number, (shape, address) in enumerate(zip(self.attempts, addresses, strict=True)):
            if shape.port is None:
                continue
            sources = shape.sources_for(address, node_ip, pod_ip)
            port = int(_get(shape.port, numbers))
            if not sources:
                continue
            begun = started + int(numbers[shape.start]) * _MICROSECOND
            if number < last:
                after = numbers[self.attempts[number + 1].start]
                ended = started + int(after) * _MICROSECOND
            else:
                durations = (_get(slot, numbers) for slot in shape.durations)
                ended = last_attempt_end(begun, durations, finished_at)
            flows.append((sources, port, shape.addresses, begun, ended))
        return flows


def _get(slot: _Slot, numbers: list[Any]) -> Any:
    return numbers[slot[1]] if slot[0] else slot[1]


def _slot(value: Any, holes: int) -> _Slot:
    """Where a decoded sample value comes from; only scalars are expected where it is read."""
    if value is None or isinstance(value, (str, bool)):
        return (False, value)
    if type(value) is int and _MARK <= value < _MARK + holes:
        return (True, 2 + value - _MARK)
    raise _UnexpectedShapeError(repr(value))


def _template(body: str, numbers: int, attempts: int | None) -> _Template | None:
    """The template of an outcome whose rows hold `numbers` numbers and `attempts` addresses
    (None: no address list; the result is None when its rows are decoded one by one)."""
    holes = numbers - 2
    if holes < 0:
        return None
    marks = [str(_MARK + k) for k in range(holes)]
    listed = [] if attempts is None else [json.dumps([None] * attempts)]
    timing = "[" + ",".join(["0", "0", *marks, *listed]) + "]"
    try:
        sample = join(body, timing, _EPOCH)
        shapes = [_shape(attempt, holes) for attempt in sample.attempts]
        tls = sample.evidence.get("tls")
        if not tls:
            inspected: _Slot = (False, False)
        elif isinstance(tls, dict):
            inspection = tls.get("inspection")
            inspected = (
                (False, bool(inspection))
                if isinstance(inspection, (dict, list))
                else _slot(inspection, holes)
            )
        else:
            return None
        if not isinstance(sample.reason, str):
            return None
        return _Template(tuple(shapes), sys.intern(sample.reason), inspected)
    except (_UnexpectedShapeError, AttributeError, TypeError, ValueError, KeyError):
        return None


def _shape(attempt: dict[str, Any], holes: int) -> _AttemptShape:
    """An attempt's shape from its sample; _UnexpectedShapeError when a value attempt_source
    reads is not text where text is expected."""
    start = (attempt["started_at"] - _EPOCH) // _MICROSECOND - _MARK
    if not 0 <= start < holes:
        raise _UnexpectedShapeError("attempt start")
    phases = attempt.get("phases") or ()
    details = [detail for phase in phases if (detail := phase.get("detail"))]
    chain = [_slot(attempt.get("local_port"), holes)]
    for detail in details:
        chain.append(_slot(detail.get("local_port"), holes))
        for text in (detail.get("local_address"), detail.get("address")):
            if _slot(text, holes)[0]:
                raise _UnexpectedShapeError("a number where an address is")
    # attempt_source's port: the first one given, on the attempt or else on its phases.
    port = next((slot for slot in chain if slot[0] or slot[1] is not None), None)
    return _AttemptShape(
        sample=attempt,
        start=2 + start,
        port=port,
        durations=tuple(_slot(phase.get("duration_ms"), holes) for phase in phases),
        addresses=attempt_source(attempt, None)[2],
    )


def _window_filter(clusters: tuple[str, ...], regions: tuple[str, ...]) -> str:
    return "".join(
        f" AND r.{column} IN ({', '.join('?' * len(values))})"
        for column, values in (("cluster", clusters), ("region", regions))
        if values
    )


def index_store(
    store: ResultStore,
    since: datetime,
    until: datetime,
    skew: timedelta,
    *,
    clusters: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
) -> tuple[list[RunInfo], FlowIndex]:
    """Runs starting in [since, until) (of `clusters`, in `regions`: empty is any) and their
    checks' flows.

    Attempts come back through the store's own codec (egress.store._compact.join), once per
    distinct outcome; each run's node and pod IP are the sources a firewall sees behind SNAT
    or with routable pod IPs.
    """
    where = "r.started_at >= ? AND r.started_at < ?" + _window_filter(clusters, regions)
    params = (format_ts(since), format_ts(until), *clusters, *regions)
    chosen = f"SELECT k.{{}} FROM runs AS r JOIN checks AS k ON k.run = r.id WHERE {where}"
    conn = store.connection

    def by_id(columns: str, table: str, reference: str) -> dict[int, Any]:
        """The rows of `table` the window's results reference, by id."""
        query = f"SELECT id, {columns} FROM {table} WHERE id IN ({chosen.format(reference)})"
        return {int(row[0]): row[1:] for row in conn.execute(query, params)}

    defs = by_id("check_id, host, port, expectation, required", "check_defs", "def")
    outcomes = by_id("verdict, status, assurance, body", "outcomes", "outcome")
    rows = conn.execute(
        "SELECT r.id, r.run_id, r.started_at, r.finished_at, r.node_ip, r.pod_ip, k.def, "
        f"k.outcome, k.timing FROM runs AS r JOIN checks AS k ON k.run = r.id WHERE {where} "
        "ORDER BY r.started_at, r.run_id, k.position",
        params,
    )
    return _index(rows, defs, outcomes, since, skew)


def _index(
    rows: Iterable[tuple[Any, ...]],
    defs: Mapping[int, tuple[Any, ...]],
    outcomes: Mapping[int, tuple[Any, ...]],
    since: datetime,
    skew: timedelta,
) -> tuple[list[RunInfo], FlowIndex]:
    infos: list[RunInfo] = []
    index = FlowIndex(skew)
    templates: dict[tuple[int, int, int], _Template | None] = {}
    shared: dict[tuple[int, int, bool], Observed] = {}  # equal checks of many runs: one value
    last_pk = None
    run_started = since
    run = -1
    scan = _SCANNER
    for pk, run_id, started, finished, node_ip, pod_ip, def_id, outcome_id, timing in rows:
        definition, outcome = defs.get(def_id), outcomes.get(outcome_id)
        if definition is None or outcome is None:
            continue  # as the check_results view's inner joins leave it out
        if pk != last_pk:
            run_started = datetime.fromisoformat(started)
            infos.append(RunInfo(run_id, run_started, datetime.fromisoformat(finished)))
            last_pk = pk
            run += 1
        try:  # json's C scanner straight away (json.loads adds Python calls per row)
            parsed, end = scan(timing, 0)
        except (StopIteration, ValueError):
            parsed, end = None, -1
        template = None
        if end == len(timing) and type(parsed) is list and parsed:
            # the addresses' list closes the timing when any was recorded (egress.store._compact)
            listed = type(parsed[-1]) is list
            numbers = parsed[:-1] if listed else parsed
            addresses = parsed[-1] if listed else None
            shape = (outcome_id, len(numbers), -1 if addresses is None else len(addresses))
            template = templates.get(shape, _NO_TEMPLATE)
            if template is _NO_TEMPLATE:
                count = None if addresses is None else len(addresses)
                template = templates[shape] = _template(outcome[3], len(numbers), count)
        if template is None:  # the codec's own way (and its own word on a bad row)
            joined = join(outcome[3], timing, run_started)
            evidence = joined.evidence
            inspected = bool((evidence.get("tls") or {}).get("inspection"))
            attempts: list[dict[str, Any]] = joined.attempts
            finished_at = joined.finished_at
            reason, attempted = joined.reason, bool(joined.attempts)
        else:
            check_started = run_started.astimezone(UTC) + int(numbers[0]) * _MICROSECOND
            finished_at = check_started + int(numbers[1]) * _MICROSECOND
            where = (check_started, finished_at, node_ip, pod_ip)
            flows = template.flows(numbers, addresses, where)
            inspected = bool(_get(template.inspected, numbers))
            reason, attempted = template.reason, bool(template.attempts)
        key = (def_id, outcome_id, inspected)
        observed = shared.get(key)
        if observed is None or observed.reason != reason or observed.attempted != attempted:
            observed = _observed(definition, outcome, inspected, reason, attempted)
            shared[key] = observed
        if template is None:
            index.add(observed, attempts, finished_at, node_ip, pod_ip, run=run)
        else:
            index.add_flows(observed, flows, run=run)
    return infos, index


_NO_TEMPLATE: Any = object()


def _observed(
    definition: tuple[Any, ...],
    outcome: tuple[Any, ...],
    inspected: bool,
    reason: str,
    attempted: bool,
) -> Observed:
    check_id, host, port, expectation, required = definition
    verdict, status, assurance = outcome[:3]
    return Observed(
        check_id=sys.intern(check_id),
        host=sys.intern(host.lower().rstrip(".")),
        port=int(port),
        expectation=_EXPECTATIONS[expectation],
        required=bool(required),
        verdict=_VERDICTS[verdict],
        status=_STATUSES[status],
        assurance=_ASSURANCES[assurance] if assurance else None,
        inspected=inspected,
        reason=sys.intern(reason),
        attempted=attempted,
    )
