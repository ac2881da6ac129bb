"""Read queries for the report: aggregates computed in SQL, detail rows only for failures.

Counts come from `check_daily` for the whole days inside a window, `check_hourly` for the
whole hours around them, and the raw rows only for the partial hours at the two edges, so
a 30-day report reads about ten thousand small summary rows instead of millions of check
rows. Evidence is read only for the latest result that makes each endpoint a finding.

The queries count stored statuses and never judge: `egress.report.build` applies the one
compliance rule (`egress.compliance`) to the counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.probe_plan import Expectation
from egress.results import Attempt
from egress.store._compact import join
from egress.store._dialect import Connection
from egress.store._schema import (
    SUMMARY_COLUMNS,
    SUMMARY_GROUP,
    SUMMARY_TABLES,
    summary_select,
)
from egress.store._store import format_ts, parse_ts

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
) -> tuple[str, list[str]]:
    """SQL (and parameters) yielding summary-shaped rows for exactly [since, until)."""
    parts, params = [], []
    for table, start, end in _pieces(since, until, use_days=use_days):
        raw = table == "raw"
        in_clusters, cluster_params = _only(clusters, "r.cluster" if raw else "cluster")
        if raw:
            only = " AND r.cluster = ? AND r.node_pool = ? AND c.check_id = ?" if key else ""
            parts.append(
                f"{summary_select(13)} WHERE r.started_at >= ? AND r.started_at < ?{only}"
                f"{in_clusters} {SUMMARY_GROUP}"
            )
            params += [format_ts(start), format_ts(end)]
        else:
            only = " AND cluster = ? AND node_pool = ? AND check_id = ?" if key else ""
            width = SUMMARY_TABLES[table]
            parts.append(
                f"SELECT {SUMMARY_COLUMNS} FROM {table} WHERE period >= ? AND period < ?{only}"
                f"{in_clusters}"
            )
            params += [format_ts(start)[:width], format_ts(end)[:width]]
        params += list(key or ()) + cluster_params
    if not parts:  # an empty window: keep the query valid
        parts.append(f"SELECT {SUMMARY_COLUMNS} FROM check_hourly WHERE 1 = 0")
    return " UNION ALL ".join(parts), params


def _maybe_ts(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


_COUNT_COLUMNS = "cluster, node_pool, check_id, expectation, required, verdict, status, assurance"


def _count(row: tuple[Any, ...]) -> StatusCount:
    return StatusCount(
        cluster=row[0],
        node_pool=row[1],
        check_id=row[2],
        expectation=Expectation(row[3]),
        required=bool(row[4]),
        verdict=Verdict(row[5]),
        status=CheckStatus(row[6]),
        assurance=Assurance(row[7]) if row[7] else None,
        results=int(row[8]),
        first_at=parse_ts(row[9]),
        last_at=parse_ts(row[10]),
    )


def status_counts(
    conn: Connection, since: datetime, until: datetime, clusters: Clusters = None
) -> list[StatusCount]:
    """Every (endpoint, expectation, required, verdict, status, assurance) in the window with
    its count, sorted by endpoint. The report judges these in Python; SQL only sums."""
    source, params = _source(since, until, use_days=True, clusters=clusters)
    rows = conn.execute(
        f"""WITH h AS ({source})
        SELECT {_COUNT_COLUMNS}, sum(results), min(first_at), max(last_at)
        FROM h GROUP BY {_COUNT_COLUMNS} ORDER BY {_COUNT_COLUMNS}""",
        params,
    )
    return [_count(row) for row in rows]


def hourly_counts(
    conn: Connection, since: datetime, until: datetime, keys: list[EndpointKey]
) -> dict[EndpointKey, list[HourCount]]:
    """The hour-by-hour counts of the given endpoints (for their timeline charts)."""
    result: dict[EndpointKey, list[HourCount]] = {}
    hours: dict[str, datetime] = {}
    for key in keys:  # one indexed lookup per endpoint with a finding
        source, params = _source(since, until, use_days=False, key=key)
        rows = conn.execute(
            f"""WITH h AS ({source})
            SELECT period, verdict, status, assurance, sum(results)
            FROM h GROUP BY period, verdict, status, assurance ORDER BY 1, 2, 3, 4""",
            params,
        )
        result[key] = [
            HourCount(
                hours.get(period) or hours.setdefault(period, parse_ts(f"{period}:00:00Z")),
                Verdict(verdict),
                CheckStatus(status),
                Assurance(assurance) if assurance else None,
                int(results),
            )
            for period, verdict, status, assurance, results in rows
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
