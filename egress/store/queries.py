"""Read queries for the report: aggregates computed in SQL, detail rows only for failures.

Counts come from `check_daily` for the whole days inside a window, `check_hourly` for the
whole hours around them, and the raw rows only for the partial hours at the two edges, so
a 30-day report reads about ten thousand small summary rows instead of millions of check
rows. Evidence is read only for the latest result that makes each endpoint a finding.

The queries count stored statuses and never judge: `egress.report.build` applies the one
compliance rule (`egress.compliance`) to the counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.probe_plan import Expectation
from egress.results import Attempt
from egress.store._compact import join
from egress.store._dialect import Connection
from egress.store._schema import SUMMARY_GROUP, summary_select
from egress.store._store import format_ts, parse_ts
from egress.store._summary import (
    HOUR_US,
    SUMMARY_COLUMNS,
    SUMMARY_TABLES,
    absolute_sql,
    from_micros,
    micros,
)

Scope = tuple[str, str]  # (cluster, node pool); "" when the probe did not know it
EndpointKey = tuple[str, str, str]  # (cluster, node pool, check id)
Clusters = tuple[str, ...] | None  # the clusters a report covers; None: every cluster


def _only(clusters: Clusters, column: str) -> tuple[str, list[str]]:
    """An `AND column IN (...)` clause (and its parameters) limiting rows to `clusters`."""
    if clusters is None:
        return "", []
    marks = ", ".join("?" for _ in clusters) or "NULL"  # an empty selection matches nothing
    return f" AND {column} IN ({marks})", list(clusters)


@dataclass(frozen=True)
class StoredScope:
    """A (cluster, node pool) the store holds runs of, and a region its runs named."""

    cluster: str
    node_pool: str
    region: str


@dataclass(frozen=True)
class StatusCount:
    """How many stored results of one endpoint share one (expectation, required, verdict,
    status, assurance), and when the first and last of them ran."""

    cluster: str
    node_pool: str
    check_id: str
    expectation: Expectation
    required: bool
    verdict: Verdict
    status: CheckStatus
    assurance: Assurance | None
    results: int
    first_at: datetime
    last_at: datetime

    @property
    def key(self) -> EndpointKey:
        return (self.cluster, self.node_pool, self.check_id)


@dataclass(frozen=True, slots=True)
class HourCount:
    """How many results of one endpoint in one clock hour share a verdict, status and
    assurance (for its timeline)."""

    hour: datetime
    verdict: Verdict
    status: CheckStatus
    assurance: Assurance | None
    results: int


@dataclass(frozen=True)
class PoolCoverage:
    """How often one node pool was probed in the window."""

    cluster: str
    node_pool: str
    runs: int
    nodes: int
    first_run: datetime | None  # None: not probed in the window at all
    last_run: datetime


@dataclass(frozen=True)
class StoredCheck:
    """One stored check result with where and when its run happened."""

    run_id: str
    node: str | None
    pod: str | None
    run_started_at: datetime
    check_id: str
    host: str
    port: int
    transport: str
    kind: str
    expectation: str
    destination: str
    rule: str
    feature: str
    required: bool
    verdict: str
    status: CheckStatus
    assurance: Assurance | None
    assumption: str | None
    reason: str
    evidence: dict[str, Any]
    attempts: list[dict[str, Any]]
    duration_ms: float


@dataclass(frozen=True)
class RunVerdicts:
    """One run's verdict per check id, for drift between consecutive runs of a pool."""

    run_id: str
    started_at: datetime
    # check id -> (verdict, stored status, assurance)
    verdicts: dict[str, tuple[Verdict, CheckStatus, Assurance | None]]


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _day_floor(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _inner(
    since: datetime, until: datetime, floor: Callable[[datetime], datetime], step: timedelta
) -> tuple[datetime, datetime] | None:
    """The whole periods inside [since, until), if there is at least one."""
    start = floor(since)
    if start < since:
        start += step
    end = floor(until)
    return (start, end) if start < end else None


def _pieces(
    since: datetime, until: datetime, *, use_days: bool
) -> list[tuple[str, datetime, datetime]]:
    """Cover [since, until) exactly: whole days, then whole hours, then raw rows at the edges."""
    pieces: list[tuple[str, datetime, datetime]] = []
    days = _inner(since, until, _day_floor, timedelta(days=1)) if use_days else None
    edges = [(since, days[0]), (days[1], until)] if days else [(since, until)]
    if days:
        pieces.append(("check_daily", *days))
    for start, end in edges:
        hours = _inner(start, end, _hour_floor, timedelta(hours=1)) if start < end else None
        if hours:
            pieces.append(("check_hourly", *hours))
        raw = [(start, hours[0]), (hours[1], end)] if hours else [(start, end)]
        pieces += [("raw", a, b) for a, b in raw if a < b]
    return pieces


def _source(
    since: datetime,
    until: datetime,
    *,
    use_days: bool,
    key: EndpointKey | None = None,
    clusters: Clusters = None,
) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """Two SQL sources (with parameters) that together cover exactly [since, until).

    The first yields summary rows, (period, scope, def, class, results, first_at, last_at)
    in integers, times in microseconds since the epoch (`egress.store._summary`); the
    second the raw rows of the partial hours at the window's edges, summary-shaped with
    text columns (`summary_select`).
    """
    summary: list[str] = []
    raw: list[str] = []
    summary_params: list[Any] = []
    raw_params: list[Any] = []
    for table, start, end in _pieces(since, until, use_days=use_days):
        if table == "raw":
            in_clusters, cluster_params = _only(clusters, "r.cluster")
            only = " AND r.cluster = ? AND r.node_pool = ? AND c.check_id = ?" if key else ""
            raw.append(
                f"{summary_select(13)} WHERE r.started_at >= ? AND r.started_at < ?{only}"
                f"{in_clusters} {SUMMARY_GROUP}"
            )
            raw_params += [format_ts(start), format_ts(end), *(key or ()), *cluster_params]
            continue
        where, where_params = "", []
        if key:
            where = (
                " AND scope IN (SELECT id FROM scopes WHERE cluster = ? AND node_pool = ?)"
                " AND def IN (SELECT id FROM check_defs WHERE check_id = ?)"
            )
            where_params = list(key)
        elif clusters is not None:
            in_clusters, where_params = _only(clusters, "cluster")
            where = f" AND scope IN (SELECT id FROM scopes WHERE 1 = 1{in_clusters})"
        unit = SUMMARY_TABLES[table][0]
        first, last = absolute_sql("first_at", unit), absolute_sql("last_at", unit)
        summary.append(
            f"SELECT period, scope, def, class, results, {first} AS first_at, {last} AS last_at "
            f"FROM {table} WHERE period >= ? AND period < ?{where}"
        )
        summary_params += [micros(start) // unit, micros(end) // unit, *where_params]
    nothing = " WHERE 1 = 0"  # an empty part: keep the query valid
    empty = f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM check_hourly"
    return (
        (" UNION ALL ".join(summary or [f"{empty}{nothing}"]), summary_params),
        (" UNION ALL ".join(raw or [f"{summary_select(13)}{nothing} {SUMMARY_GROUP}"]), raw_params),
    )


# The text columns of a summary row, from its scope, definition and class.
_NAMED = """JOIN scopes AS s ON s.id = g.scope JOIN check_defs AS d ON d.id = g.def
JOIN result_classes AS x ON x.id = g.class"""
_COUNT_COLUMNS = "cluster, node_pool, check_id, expectation, required, verdict, status, assurance"
_NAMED_COLUMNS = (
    "s.cluster, s.node_pool, d.check_id, d.expectation, d.required, x.verdict, x.status, "
    "x.assurance"
)

# (cluster, node pool, check id, expectation, required, verdict, status, assurance)
_CountKey = tuple[str, str, str, str, int, str, str, str]


def status_counts(
    conn: Connection, since: datetime, until: datetime, clusters: Clusters = None
) -> list[StatusCount]:
    """Every (endpoint, expectation, required, verdict, status, assurance) in the window with
    its count, sorted by endpoint. The report judges these in Python; SQL only sums."""
    (summary, summary_params), (raw, raw_params) = _source(
        since, until, use_days=True, clusters=clusters
    )
    totals: dict[_CountKey, list[Any]] = {}

    def add(key: _CountKey, results: int, first: datetime, last: datetime) -> None:
        total = totals.get(key)
        if total is None:
            totals[key] = [results, first, last]
        else:
            total[0] += results
            total[1] = min(total[1], first)
            total[2] = max(total[2], last)

    rows = conn.execute(
        f"""WITH h AS ({summary})
        SELECT {_NAMED_COLUMNS}, g.results, g.first_at, g.last_at
        FROM (SELECT scope, def, class, sum(results) AS results, min(first_at) AS first_at,
                     max(last_at) AS last_at
              FROM h GROUP BY scope, def, class) AS g {_NAMED}""",
        summary_params,
    )
    for row in rows:
        add(_count_key(row), int(row[8]), from_micros(row[9]), from_micros(row[10]))
    rows = conn.execute(
        f"""WITH h AS ({raw})
        SELECT {_COUNT_COLUMNS}, sum(results), min(first_at), max(last_at)
        FROM h GROUP BY {_COUNT_COLUMNS}""",
        raw_params,
    )
    for row in rows:
        add(_count_key(row), int(row[8]), parse_ts(row[9]), parse_ts(row[10]))
    return [_count(key, *totals[key]) for key in sorted(totals)]


def _count_key(row: tuple[Any, ...]) -> _CountKey:
    return (row[0], row[1], row[2], row[3], int(row[4]), row[5], row[6], row[7] or "")


def _count(key: _CountKey, results: int, first_at: datetime, last_at: datetime) -> StatusCount:
    return StatusCount(
        cluster=key[0],
        node_pool=key[1],
        check_id=key[2],
        expectation=Expectation(key[3]),
        required=bool(key[4]),
        verdict=Verdict(key[5]),
        status=CheckStatus(key[6]),
        assurance=Assurance(key[7]) if key[7] else None,
        results=results,
        first_at=first_at,
        last_at=last_at,
    )


def hourly_counts(
    conn: Connection, since: datetime, until: datetime, keys: list[EndpointKey]
) -> dict[EndpointKey, list[HourCount]]:
    """The hour-by-hour counts of the given endpoints (for their timeline charts)."""
    result: dict[EndpointKey, list[HourCount]] = {}
    hours: dict[int, datetime] = {}
    for key in keys:  # one indexed lookup per endpoint with a finding
        (summary, summary_params), (raw, raw_params) = _source(
            since, until, use_days=False, key=key
        )
        counts: Counter[tuple[int, str, str, str]] = Counter()
        rows = conn.execute(
            f"""WITH h AS ({summary})
            SELECT g.period, x.verdict, x.status, x.assurance, g.results
            FROM (SELECT period, class, sum(results) AS results FROM h
                  GROUP BY period, class) AS g
            JOIN result_classes AS x ON x.id = g.class""",
            summary_params,
        )
        for period, verdict, status, assurance, results in rows:
            counts[(int(period), verdict, status, assurance or "")] += int(results)
        rows = conn.execute(
            f"""WITH h AS ({raw})
            SELECT period, verdict, status, assurance, sum(results)
            FROM h GROUP BY period, verdict, status, assurance""",
            raw_params,
        )
        for period, verdict, status, assurance, results in rows:
            hour = micros(parse_ts(f"{period}:00:00Z")) // HOUR_US
            counts[(hour, verdict, status, assurance or "")] += int(results)
        result[key] = [
            HourCount(
                hours.get(hour) or hours.setdefault(hour, from_micros(hour * HOUR_US)),
                Verdict(verdict),
                CheckStatus(status),
                Assurance(assurance) if assurance else None,
                results,
            )
            for (hour, verdict, status, assurance), results in sorted(counts.items())
        ]
    return result


# Statements that read the newest runs of many pools or the runs behind many findings are one
# UNION ALL of small indexed branches each (portable where LATERAL is not): a report makes a
# few round trips however many pools the fleet has. At most this many branches per statement
# keeps every statement within both backends' parameter limits.
_BRANCHES = 200
_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _BRANCHES):
        yield items[start : start + _BRANCHES]


def scopes(conn: Connection) -> list[StoredScope]:
    """Every (cluster, node pool, region) the store holds a run of, sorted.

    A skip scan through the `runs_by_region` index: one index probe per distinct scope, so
    the cost follows the fleet's size, not how many runs it has stored."""
    rows = conn.execute(
        """WITH RECURSIVE s(id) AS (
            SELECT id FROM (
                SELECT id FROM runs ORDER BY cluster, node_pool, region LIMIT 1
            ) AS first_scope
            UNION ALL
            SELECT (
                SELECT n.id FROM runs AS n
                WHERE (n.cluster, n.node_pool, n.region) > (r.cluster, r.node_pool, r.region)
                ORDER BY n.cluster, n.node_pool, n.region LIMIT 1
            )
            FROM s JOIN runs AS r ON r.id = s.id
        )
        SELECT r.cluster, r.node_pool, r.region FROM s JOIN runs AS r ON r.id = s.id
        ORDER BY r.cluster, r.node_pool, r.region"""
    )
    return [StoredScope(cluster, pool, region) for cluster, pool, region in rows]


def coverage(
    conn: Connection,
    since: datetime,
    until: datetime,
    stored: Iterable[Scope],
    clusters: Clusters = None,
) -> list[PoolCoverage]:
    """Runs per node pool in the window, and pools last seen before it (with zero runs).

    `stored` is every pool the store holds (from `scopes`): only those without a run in the
    window are looked up before it, one index probe each."""
    window = (format_ts(since), format_ts(until))
    in_clusters, cluster_params = _only(clusters, "cluster")
    # Grouped by node first: a hash aggregate of a few rows per node, where a count of
    # distinct nodes per pool would sort every run of the window.
    rows = conn.execute(
        f"""SELECT cluster, node_pool, sum(runs), count(node), min(first_run), max(last_run)
        FROM (
            SELECT cluster, node_pool, node, count(*) AS runs, min(started_at) AS first_run,
                   max(started_at) AS last_run
            FROM runs WHERE started_at >= ? AND started_at < ?{in_clusters}
            GROUP BY cluster, node_pool, node
        ) AS by_node
        GROUP BY cluster, node_pool""",
        [*window, *cluster_params],
    )
    pools = {
        (cluster, pool): PoolCoverage(
            cluster, pool, int(runs), int(nodes), parse_ts(first), parse_ts(last)
        )
        for cluster, pool, runs, nodes, first, last in rows
    }
    silent = sorted(
        {
            scope
            for scope in stored
            if scope not in pools and (clusters is None or scope[0] in clusters)
        }
    )
    for chunk in _chunks(silent):
        branch = (
            "SELECT * FROM (SELECT cluster, node_pool, started_at FROM runs "
            "WHERE cluster = ? AND node_pool = ? AND started_at < ? "
            "ORDER BY started_at DESC LIMIT 1) AS last_before"
        )
        earlier = conn.execute(
            " UNION ALL ".join(branch for _ in chunk),
            [value for cluster, pool in chunk for value in (cluster, pool, window[0])],
        )
        for cluster, pool, last in earlier:
            pools[(cluster, pool)] = PoolCoverage(cluster, pool, 0, 0, None, parse_ts(last))
    return [pools[key] for key in sorted(pools)]


_RESULT_COLUMNS = """run, check_id, host, port, transport, kind, expectation, destination, rule,
    feature, required, verdict, status, assurance, body, timing"""


def _stored_check(row: tuple[Any, ...]) -> StoredCheck:
    joined = join(row[17], row[18], parse_ts(row[3]))
    return StoredCheck(
        run_id=row[0],
        node=row[1],
        pod=row[2],
        run_started_at=parse_ts(row[3]),
        check_id=row[4],
        host=row[5],
        port=int(row[6]),
        transport=row[7],
        kind=row[8],
        expectation=row[9],
        destination=row[10],
        rule=row[11],
        feature=row[12],
        required=bool(row[13]),
        verdict=row[14],
        status=CheckStatus(row[15]),
        assurance=Assurance(row[16]) if row[16] else None,
        assumption=joined.assumption,
        reason=joined.reason,
        evidence=joined.evidence,
        attempts=[Attempt.model_validate(a).model_dump(mode="json") for a in joined.attempts],
        duration_ms=(joined.finished_at - joined.started_at).total_seconds() * 1000,
    )


def checks_at(
    conn: Connection, wanted: Sequence[tuple[StatusCount, datetime]]
) -> list[StoredCheck | None]:
    """For each (group, moment): the stored result of `group`'s endpoint, with `group`'s
    verdict, status and assurance, in the run of its node pool that started at that moment
    (the first such run by run id); None where there is none. Two statements per chunk: the
    runs at those moments, then those runs' results of those endpoints."""
    found: list[StoredCheck | None] = []
    for chunk in _chunks(wanted):
        at = sorted({(g.cluster, g.node_pool, format_ts(moment)) for g, moment in chunk})
        runs: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
        for pk, cluster, pool, *run in conn.execute(
            "SELECT id, cluster, node_pool, run_id, node, pod, started_at FROM runs WHERE "
            + " OR ".join("(cluster = ? AND node_pool = ? AND started_at = ?)" for _ in at),
            [value for key in at for value in key],
        ):
            runs[(cluster, pool, run[3])].append((int(pk), *run))
        ids = sorted({run[0] for candidates in runs.values() for run in candidates})
        check_ids = sorted({g.check_id for g, _ in chunk})
        results: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
        if ids:
            marks, check_marks = ", ".join("?" for _ in ids), ", ".join("?" for _ in check_ids)
            for run_pk, *row in conn.execute(
                f"SELECT {_RESULT_COLUMNS} FROM check_results "
                f"WHERE run IN ({marks}) AND check_id IN ({check_marks})",
                [*ids, *check_ids],
            ):
                results[(int(run_pk), row[0])].append(tuple(row))
        for group, moment in chunk:
            outcome = (
                group.verdict.value,
                group.status.value,
                "" if group.assurance is None else group.assurance.value,
            )
            candidates = sorted(
                runs[(group.cluster, group.node_pool, format_ts(moment))], key=lambda r: r[1]
            )
            match = next(
                (
                    (*run[1:], *row)
                    for run in candidates
                    for row in results[(run[0], group.check_id)]
                    if (row[10], row[11], row[12] or "") == outcome
                ),
                None,
            )
            found.append(None if match is None else _stored_check(match))
    return found


def last_two_runs(
    conn: Connection, pools: Sequence[Scope], since: datetime, until: datetime
) -> dict[Scope, list[RunVerdicts]]:
    """The newest two runs of each node pool in the window, newest first (a pool without
    runs in the window maps to an empty list)."""
    window = (format_ts(since), format_ts(until))
    newest: dict[Scope, list[tuple[int, str, str]]] = {pool: [] for pool in pools}
    for scopes_chunk in _chunks(list(pools)):
        branch = (
            "SELECT * FROM (SELECT cluster, node_pool, id, run_id, started_at FROM runs "
            "WHERE cluster = ? AND node_pool = ? AND started_at >= ? AND started_at < ? "
            "ORDER BY started_at DESC, run_id DESC LIMIT 2) AS newest"
        )
        rows = conn.execute(
            " UNION ALL ".join(branch for _ in scopes_chunk),
            [value for cluster, pool in scopes_chunk for value in (cluster, pool, *window)],
        )
        for cluster, pool, pk, run_id, started_at in rows:
            newest[(cluster, pool)].append((int(pk), run_id, started_at))
    for runs in newest.values():  # UNION ALL keeps no order: newest first again
        runs.sort(key=lambda run: (run[2], run[1]), reverse=True)
    ids = [pk for runs in newest.values() for pk, _, _ in runs]
    verdicts: dict[int, dict[str, tuple[Verdict, CheckStatus, Assurance | None]]] = {
        pk: {} for pk in ids
    }
    for chunk in _chunks(ids):
        rows = conn.execute(
            "SELECT run, check_id, verdict, status, assurance FROM check_results "
            f"WHERE run IN ({', '.join('?' for _ in chunk)})",
            list(chunk),
        )
        for run, check_id, verdict, status, a in rows:
            verdicts[int(run)][check_id] = (
                Verdict(verdict),
                CheckStatus(status),
                Assurance(a) if a else None,
            )
    return {
        pool: [
            RunVerdicts(run_id, parse_ts(started_at), verdicts[pk])
            for pk, run_id, started_at in runs
        ]
        for pool, runs in newest.items()
    }
