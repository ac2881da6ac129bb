"""The store's schema as ordered migrations, shared by the SQLite and PostgreSQL backends.

Version 1 holds the raw facts: one row per run and one per check result. Version 2 adds
what the report needs to stay fast on months of five-minute runs: time and scope indexes
on runs, a partial index over failing check rows only, and two summary tables with the
counts of every (hour or day, cluster, node pool, check), kept up to date by each append.
A migration is a plain function of (connection, dialect) run inside the opening
transaction, so a store is either fully at the new version or untouched. The backend keeps
the version (SQLite: `PRAGMA user_version`; PostgreSQL: the `egress_meta` table).
"""

from __future__ import annotations

from collections.abc import Callable

from egress.store._dialect import Connection, Dialect

# A check row is failing when it is non-compliant, or a deny canary got through (a leak).
LEAK_SQL = "(c.expectation = 'deny' AND c.verdict = 'reachable')"
FAILING_SQL = f"(c.compliant = 0 OR {LEAK_SQL})"
FAILED_REQUIRED_SQL = "(c.required = 1 AND c.expectation = 'allow' AND c.compliant = 0)"

SCHEMA_V1 = """
CREATE TABLE runs (
    id {id},
    run_id {text} NOT NULL UNIQUE,
    cluster {text} NOT NULL DEFAULT '',
    region {text} NOT NULL,
    cloud {text} NOT NULL,
    node_pool {text} NOT NULL DEFAULT '',
    node {text},
    pod {text},
    namespace {text},
    plan_hash {text} NOT NULL,
    tool_version {text} NOT NULL,
    started_at {text} NOT NULL,
    finished_at {text} NOT NULL
);
CREATE TABLE checks (
    id {id},
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    check_id {text} NOT NULL,
    host {text} NOT NULL,
    port INTEGER NOT NULL,
    transport {text} NOT NULL,
    kind {text} NOT NULL,
    expectation {text} NOT NULL,
    destination {text} NOT NULL,
    rule {text} NOT NULL,
    feature {text} NOT NULL,
    required INTEGER NOT NULL,
    verdict {text} NOT NULL,
    compliant INTEGER,
    reason {text} NOT NULL,
    evidence {text} NOT NULL,
    attempts {text} NOT NULL,
    started_at {text} NOT NULL,
    finished_at {text} NOT NULL,
    duration_ms {real} NOT NULL,
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
CREATE TABLE {{table}} (
    period {text} NOT NULL,
    cluster {text} NOT NULL,
    node_pool {text} NOT NULL,
    check_id {text} NOT NULL,
    total INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    unjudged INTEGER NOT NULL,
    leaks INTEGER NOT NULL,
    failed_required INTEGER NOT NULL,
    first_failure {text},
    last_failure {text},
    PRIMARY KEY (period, cluster, node_pool, check_id)
) {without_rowid};
CREATE INDEX {{table}}_by_endpoint ON {{table}} (cluster, node_pool, check_id, period);
"""

SCHEMA_V2 = (
    """
CREATE INDEX runs_by_time ON runs (started_at, cluster, node_pool, node);
CREATE INDEX runs_by_scope ON runs (cluster, node_pool, started_at);
CREATE INDEX checks_failing ON checks (run, check_id)
    WHERE compliant = 0 OR (expectation = 'deny' AND verdict = 'reachable');
"""
    + _SUMMARY_DDL.replace("{{table}}", "check_hourly")
    + _SUMMARY_DDL.replace("{{table}}", "check_daily")
)


def upsert_summary_for_run(table: str, dialect: Dialect) -> str:
    """SQL adding one run's counts (parameter: the run's row id) to a summary table."""
    least, greatest = dialect.least, dialect.greatest
    return f"""
INSERT INTO {table} ({SUMMARY_COLUMNS})
{summary_select(SUMMARY_TABLES[table])} WHERE r.id = ? {SUMMARY_GROUP}
ON CONFLICT (period, cluster, node_pool, check_id) DO UPDATE SET
    total = {table}.total + excluded.total,
    passed = {table}.passed + excluded.passed,
    failed = {table}.failed + excluded.failed,
    unjudged = {table}.unjudged + excluded.unjudged,
    leaks = {table}.leaks + excluded.leaks,
    failed_required = {table}.failed_required + excluded.failed_required,
    first_failure = coalesce({least}({table}.first_failure, excluded.first_failure),
                             {table}.first_failure, excluded.first_failure),
    last_failure = coalesce({greatest}({table}.last_failure, excluded.last_failure),
                            {table}.last_failure, excluded.last_failure)
"""


def rebuild_summaries(conn: Connection) -> None:
    """Recompute the summary tables from every stored check (v2 backfill; bulk loaders)."""
    for table, width in SUMMARY_TABLES.items():
        conn.execute(f"DELETE FROM {table}")
        conn.execute(
            f"INSERT INTO {table} ({SUMMARY_COLUMNS}) {summary_select(width)} {SUMMARY_GROUP}"
        )


def _to_v1(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.ddl(SCHEMA_V1):
        conn.execute(statement)


def _to_v2(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.ddl(SCHEMA_V2):
        conn.execute(statement)
    rebuild_summaries(conn)


Migration = Callable[[Connection, Dialect], None]

# MIGRATIONS[n] upgrades a store at version n to version n + 1; append, never reorder.
MIGRATIONS: tuple[Migration, ...] = (_to_v1, _to_v2)
LATEST_VERSION = len(MIGRATIONS)
