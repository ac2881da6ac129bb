"""The store's SQLite schema as ordered migrations, tracked in `PRAGMA user_version`.

Version 1 holds the raw facts: one row per run and one per check result. Version 2 adds
what the report needs to stay fast on months of five-minute runs: time and scope indexes
on runs, a partial index over failing check rows only, and two summary tables with the
counts of every (hour or day, cluster, node pool, check), kept up to date by each append.
A migration is a plain function run inside the opening transaction, so a store is either
fully at the new version or untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# A check row is failing when it is non-compliant, or a deny canary got through (a leak).
LEAK_SQL = "(c.expectation = 'deny' AND c.verdict = 'reachable')"
FAILING_SQL = f"(c.compliant = 0 OR {LEAK_SQL})"
FAILED_REQUIRED_SQL = "(c.required = 1 AND c.expectation = 'allow' AND c.compliant = 0)"

SCHEMA_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    cluster TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL,
    cloud TEXT NOT NULL,
    node_pool TEXT NOT NULL DEFAULT '',
    node TEXT,
    pod TEXT,
    namespace TEXT,
    plan_hash TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    transport TEXT NOT NULL,
    kind TEXT NOT NULL,
    expectation TEXT NOT NULL,
    destination TEXT NOT NULL,
    rule TEXT NOT NULL,
    feature TEXT NOT NULL,
    required INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    compliant INTEGER,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    attempts TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    UNIQUE (run, check_id)
);
"""


# Per-period counts from runs joined with checks (period = the first `width` characters of
# the run's start: 13 gives the hour, 10 the day); reused for the version-2 backfill, for
# each append, and for the partial hours at a window's edges.
def summary_select(width: int) -> str:
    return f"""
SELECT substr(r.started_at, 1, {width}) AS period, r.cluster, r.node_pool, c.check_id,
       count(*) AS total,
       sum(CASE WHEN c.compliant = 1 AND NOT {LEAK_SQL} THEN 1 ELSE 0 END) AS passed,
       sum(CASE WHEN {FAILING_SQL} THEN 1 ELSE 0 END) AS failed,
       sum(CASE WHEN c.compliant IS NULL AND NOT {LEAK_SQL} THEN 1 ELSE 0 END) AS unjudged,
       sum(CASE WHEN {LEAK_SQL} THEN 1 ELSE 0 END) AS leaks,
       sum(CASE WHEN {FAILED_REQUIRED_SQL} THEN 1 ELSE 0 END) AS failed_required,
       min(CASE WHEN {FAILING_SQL} THEN r.started_at END) AS first_failure,
       max(CASE WHEN {FAILING_SQL} THEN r.started_at END) AS last_failure
FROM runs AS r JOIN checks AS c ON c.run = r.id
"""


SUMMARY_GROUP = "GROUP BY 1, 2, 3, 4"
SUMMARY_COLUMNS = (
    "period, cluster, node_pool, check_id, total, passed, failed, unjudged, leaks, "
    "failed_required, first_failure, last_failure"
)
# Summary table -> how many characters of a timestamp make its period.
SUMMARY_TABLES = {"check_hourly": 13, "check_daily": 10}

_SUMMARY_DDL = """
CREATE TABLE {table} (
    period TEXT NOT NULL,
    cluster TEXT NOT NULL,
    node_pool TEXT NOT NULL,
    check_id TEXT NOT NULL,
    total INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    unjudged INTEGER NOT NULL,
    leaks INTEGER NOT NULL,
    failed_required INTEGER NOT NULL,
    first_failure TEXT,
    last_failure TEXT,
    PRIMARY KEY (period, cluster, node_pool, check_id)
) WITHOUT ROWID;
CREATE INDEX {table}_by_endpoint ON {table} (cluster, node_pool, check_id, period);
"""

SCHEMA_V2 = (
    """
CREATE INDEX runs_by_time ON runs (started_at, cluster, node_pool, node);
CREATE INDEX runs_by_scope ON runs (cluster, node_pool, started_at);
CREATE INDEX checks_failing ON checks (run, check_id)
    WHERE compliant = 0 OR (expectation = 'deny' AND verdict = 'reachable');
"""
    + _SUMMARY_DDL.format(table="check_hourly")
    + _SUMMARY_DDL.format(table="check_daily")
)


def upsert_summary_for_run(table: str) -> str:
    """SQL adding one run's counts (parameter: the run's row id) to a summary table."""
    return f"""
INSERT INTO {table} ({SUMMARY_COLUMNS})
{summary_select(SUMMARY_TABLES[table])} WHERE r.id = ? {SUMMARY_GROUP}
ON CONFLICT (period, cluster, node_pool, check_id) DO UPDATE SET
    total = total + excluded.total,
    passed = passed + excluded.passed,
    failed = failed + excluded.failed,
    unjudged = unjudged + excluded.unjudged,
    leaks = leaks + excluded.leaks,
    failed_required = failed_required + excluded.failed_required,
    first_failure = coalesce(min(first_failure, excluded.first_failure),
                             first_failure, excluded.first_failure),
    last_failure = coalesce(max(last_failure, excluded.last_failure),
                            last_failure, excluded.last_failure)
"""


def rebuild_summaries(conn: sqlite3.Connection) -> None:
    """Recompute the summary tables from every stored check (v2 backfill; bulk loaders)."""
    for table, width in SUMMARY_TABLES.items():
        conn.execute(f"DELETE FROM {table}")
        conn.execute(
            f"INSERT INTO {table} ({SUMMARY_COLUMNS}) {summary_select(width)} {SUMMARY_GROUP}"
        )


def _to_v1(conn: sqlite3.Connection) -> None:
    for statement in _statements(SCHEMA_V1):
        conn.execute(statement)


def _to_v2(conn: sqlite3.Connection) -> None:
    for statement in _statements(SCHEMA_V2):
        conn.execute(statement)
    rebuild_summaries(conn)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# MIGRATIONS[n] upgrades a store at version n to version n + 1; append, never reorder.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_to_v1, _to_v2)
LATEST_VERSION = len(MIGRATIONS)
