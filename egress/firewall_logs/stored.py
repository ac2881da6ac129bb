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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.firewall_logs.corroborate import FlowIndex, Observed, RunInfo
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
_NONE: _Slot = (False, None)


class _UnexpectedShapeError(ValueError):
    """The outcome has a shape the template does not cover: decode its rows one by one."""


@dataclass(frozen=True, slots=True)
class _Phase:
    duration: _Slot
    detail: tuple[_Slot, _Slot, _Slot] | None  # local_address, local_port, address


@dataclass(frozen=True, slots=True)
class _AttemptShape:
    start: int  # index of the start offset in the row's numbers
    local_port: _Slot
    phases: tuple[_Phase, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    """Where one outcome's attempts take their per-row numbers from."""

    numbers: int  # how many numbers a row of this outcome holds (check start, duration, holes)
    attempts: tuple[_AttemptShape, ...]
    reason: str
    inspected: _Slot  # constant bool, or the hole whose truth it is

    def fill(
        self, numbers: list[Any], addresses: list[Any], started: datetime
    ) -> list[dict[str, Any]]:
        """The attempts as the codec gives them back, with only what the index reads."""
        attempts = []
        for shape, address in zip(self.attempts, addresses, strict=True):
            phases = [
                {
                    "duration_ms": _get(p.duration, numbers),
                    "detail": None
                    if p.detail is None
                    else {
                        "local_address": _get(p.detail[0], numbers),
                        "local_port": _get(p.detail[1], numbers),
                        "address": _get(p.detail[2], numbers),
                    },
                }
                for p in shape.phases
            ]
            attempts.append(
                {
                    "started_at": started + int(numbers[shape.start]) * _MICROSECOND,
                    "local_address": address,
                    "local_port": _get(shape.local_port, numbers),
                    "phases": phases,
                }
            )
        return attempts


def _get(slot: _Slot, numbers: list[Any]) -> Any:
    return numbers[slot[1]] if slot[0] else slot[1]


def _slot(value: Any, holes: int) -> _Slot:
    """Where a decoded sample value comes from; only scalars are expected where it is read."""
    if value is None or isinstance(value, (str, bool)):
        return (False, value)
    if type(value) is int and _MARK <= value < _MARK + holes:
        return (True, 2 + value - _MARK)
    raise _UnexpectedShapeError(repr(value))


def _template(body: str, numbers: int, attempts: int) -> _Template | None:
    """The template of an outcome whose rows hold `numbers` numbers and `attempts` addresses
    (None: decode its rows one by one)."""
    holes = numbers - 2
    if holes < 0:
        return None
    marks = [str(_MARK + k) for k in range(holes)]
    timing = "[" + ",".join(["0", "0", *marks, json.dumps([None] * attempts)]) + "]"
    try:
        sample = join(body, timing, _EPOCH)
        shapes = []
        for attempt in sample.attempts:
            start = (attempt["started_at"] - _EPOCH) // _MICROSECOND - _MARK
            if not 0 <= start < holes:
                raise _UnexpectedShapeError("attempt start")
            phases = []
            for phase in attempt.get("phases") or ():
                detail = phase.get("detail")
                phases.append(
                    _Phase(
                        _slot(phase.get("duration_ms"), holes),
                        None
                        if not detail
                        else (
                            _slot(detail.get("local_address"), holes),
                            _slot(detail.get("local_port"), holes),
                            _slot(detail.get("address"), holes),
                        ),
                    )
                )
            shapes.append(
                _AttemptShape(2 + start, _slot(attempt.get("local_port"), holes), tuple(phases))
            )
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
        return _Template(numbers, tuple(shapes), sys.intern(sample.reason), inspected)
    except (_UnexpectedShapeError, AttributeError, TypeError, ValueError, KeyError):
        return None


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
    defs = {
        int(row[0]): row[1:]
        for row in conn.execute(
            "SELECT id, check_id, host, port, expectation, required FROM check_defs "
            f"WHERE id IN ({chosen.format('def')})",
            params,
        )
    }
    outcomes = {
        int(row[0]): row[1:]
        for row in conn.execute(
            "SELECT id, verdict, status, assurance, body FROM outcomes "
            f"WHERE id IN ({chosen.format('outcome')})",
            params,
        )
    }
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
    loads = json.loads
    for pk, run_id, started, finished, node_ip, pod_ip, def_id, outcome_id, timing in rows:
        definition, outcome = defs.get(def_id), outcomes.get(outcome_id)
        if definition is None or outcome is None:
            continue  # as the check_results view's inner joins leave it out
        if pk != last_pk:
            run_started = datetime.fromisoformat(started)
            infos.append(RunInfo(run_id, run_started, datetime.fromisoformat(finished)))
            last_pk = pk
            run += 1
        *numbers, addresses = loads(timing)
        shape = (outcome_id, len(numbers), len(addresses))
        template = templates.get(shape, _NO_TEMPLATE)
        if template is _NO_TEMPLATE:
            template = templates[shape] = _template(outcome[3], len(numbers), len(addresses))
        if template is None:
            joined = join(outcome[3], timing, run_started)
            evidence = joined.evidence
            inspected = bool((evidence.get("tls") or {}).get("inspection"))
            attempts: list[dict[str, Any]] = joined.attempts
            finished_at = joined.finished_at
            reason, attempted = joined.reason, bool(joined.attempts)
        else:
            check_started = run_started.astimezone(UTC) + int(numbers[0]) * _MICROSECOND
            finished_at = check_started + int(numbers[1]) * _MICROSECOND
            attempts = template.fill(numbers, addresses, check_started)
            inspected = bool(_get(template.inspected, numbers))
            reason, attempted = template.reason, bool(template.attempts)
        key = (def_id, outcome_id, inspected)
        observed = shared.get(key)
        if observed is None or observed.reason != reason or observed.attempted != attempted:
            observed = _observed(definition, outcome, inspected, reason, attempted)
            shared[key] = observed
        index.add(observed, attempts, finished_at, node_ip, pod_ip, run=run)
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
