"""The store's SQLite schema as ordered migrations, tracked in `PRAGMA user_version`.

Version 1 holds the raw facts: one row per run and one per check result. Version 2 adds
what the report needs to stay fast on months of five-minute runs: time and scope indexes
on runs, a partial index over failing check rows only, and two summary tables kept up to
date by each append. A migration is a plain function run inside the opening transaction,
so a store is either fully at the new version or untouched. Migrations are shared by the
SQLite and PostgreSQL backends: a plain function of (connection, dialect), with the few DDL
differences as `Dialect` fragments; the backend keeps the version (SQLite: `PRAGMA
user_version`; PostgreSQL: the `egress_meta` table).

Version 3 stores what the one compliance rule (`egress.compliance`) decided instead of
re-deciding it in SQL. ``checks`` gains:

- ``status`` TEXT NOT NULL: the check status (pass, fail, leak, unproven, unverifiable) the
  probe computed with `egress.compliance.check_status`; the v3 backfill computes it for older
  rows with that same Python function from (expectation, verdict);
- ``assurance`` TEXT, NULL when the verdict has none: how a ``blocked`` verdict is known
  (signature, stated, confirmed); older rows have none;
- ``assumption`` TEXT, NULL unless a ``signature`` verdict names what it assumes;

and loses the legacy ``compliant`` column. The summary tables ``check_hourly`` and
``check_daily`` hold one row per (period, cluster, node pool, check id, expectation, required,
verdict, status, assurance) with ``results`` (how many check rows), ``first_at`` and
``last_at`` (the first and last run start among them); ``assurance`` is '' where the verdict
has none, so every key column is NOT NULL. Every number the report shows is a sum over these
rows grouped in Python (`egress.report.build`), so no SQL restates the rule: SQL only filters
on stored statuses, by the sets `egress.compliance` names (e.g. its failing statuses).

Version 6 replaces those summary tables with narrow ones keyed by small integers (period,
scope, check definition, result class; `egress.store._summary` describes them): PostgreSQL
189.3 bytes per check row for a day of the fleet as written with autovacuum off (274 with
version 5), SQLite 103.2 (164.5), measured by pg-size with `bench/store_bench.py` at a
load average of 2 to 5 on the shared 2-core machine.

New DDL and queries stay portable (PostgreSQL as well as SQLite): no WITHOUT ROWID, no
two-argument min/max, qualified columns in ON CONFLICT updates.
"""

from __future__ import annotations

from collections.abc import Callable

from egress.compliance import FAILING_STATUSES, Verdict, check_status
from egress.probe_plan import Expectation
from egress.store._dialect import Connection, Dialect
from egress.store._summary import (
    CLASS_COLUMNS,
    SUMMARY_TABLES,
    every_class,
    intern_keys,
    offset_type,
    rebuild_summaries,
)

# Stored statuses that are findings against the policy, as an SQL list: the set is the
# compliance module's, never restated here.
FAILING_STATUS_LIST = ", ".join(f"'{status.value}'" for status in sorted(FAILING_STATUSES))
FAILING_SQL = f"(c.status IN ({FAILING_STATUS_LIST}))"

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


_V2_SUMMARY_DDL = """
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

# Version 2 as it shipped; its tables are replaced by version 3 (and its backfill with them).
SCHEMA_V2 = (
    """
CREATE INDEX runs_by_time ON runs (started_at, cluster, node_pool, node);
CREATE INDEX runs_by_scope ON runs (cluster, node_pool, started_at);
CREATE INDEX checks_failing ON checks (run, check_id)
    WHERE compliant = 0 OR (expectation = 'deny' AND verdict = 'reachable');
"""
    + _V2_SUMMARY_DDL.replace("{{table}}", "check_hourly")
    + _V2_SUMMARY_DDL.replace("{{table}}", "check_daily")
)

# The key of a version-3 summary row: everything the report groups or re-judges by.
_V3_SUMMARY_KEY = (
    "period, cluster, node_pool, check_id, expectation, required, verdict, status, assurance"
)
_V3_SUMMARY_COLUMNS = f"{_V3_SUMMARY_KEY}, results, first_at, last_at"
SUMMARY_GROUP = "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
# Version-3 summary table -> how many characters of a timestamp make its period.
_V3_SUMMARY_TABLES = {"check_hourly": 13, "check_daily": 10}


# Per-period counts from runs joined with checks (period = the first `width` characters of
# the run's start: 13 gives the hour, 10 the day), with text first_at/last_at; the
# version-3 backfill, and the partial hours at a window's edges (`egress.store.queries`).
def summary_select(width: int) -> str:
    return f"""
SELECT substr(r.started_at, 1, {width}) AS period, r.cluster, r.node_pool, c.check_id,
       c.expectation, c.required, c.verdict, c.status, coalesce(c.assurance, '') AS assurance,
       count(*) AS results, min(r.started_at) AS first_at, max(r.started_at) AS last_at
FROM runs AS r JOIN check_results AS c ON c.run = r.id
"""


_SUMMARY_DDL = (
    """
CREATE TABLE {{table}} (
    period {text} NOT NULL,
    cluster {text} NOT NULL,
    node_pool {text} NOT NULL,
    check_id {text} NOT NULL,
    expectation {text} NOT NULL,
    required INTEGER NOT NULL,
    verdict {text} NOT NULL,
    status {text} NOT NULL,
    assurance {text} NOT NULL,
    results INTEGER NOT NULL,
    first_at {text} NOT NULL,
    last_at {text} NOT NULL,
    PRIMARY KEY ("""
    + _V3_SUMMARY_KEY
    + """)
);
CREATE INDEX {{table}}_by_endpoint ON {{table}} (cluster, node_pool, check_id, period)
"""
)

SCHEMA_V3_CHECKS = f"""
DROP INDEX checks_failing;
ALTER TABLE checks ADD COLUMN status {{text}} NOT NULL DEFAULT 'unproven';
ALTER TABLE checks ADD COLUMN assurance {{text}};
ALTER TABLE checks ADD COLUMN assumption {{text}};
ALTER TABLE checks DROP COLUMN compliant;
CREATE INDEX checks_failing ON checks (run, check_id) WHERE status IN ({FAILING_STATUS_LIST});
DROP TABLE check_hourly;
DROP TABLE check_daily
"""


# Version 4: a result row holds only what changes run to run. What a check is (host, port,
# rule...) is stored once per distinct definition in `check_defs`; what it found (verdict,
# status, assurance, reason, evidence and attempts without their numbers) once per distinct
# outcome in `outcomes`; the row keeps its run, position, the two references and a short
# JSON array of its numbers (`egress.store._compact`). Both references are content digests,
# so equal content is stored once however many runs and writers produce it. The view
# `check_results` gives the columns queries filter and group by. Runs also keep the node and
# pod IP the probe ran from (the source a firewall log shows).
SCHEMA_V4 = """
ALTER TABLE runs ADD COLUMN node_ip {text};
ALTER TABLE runs ADD COLUMN pod_ip {text};
CREATE TABLE check_defs (
    id {id},
    digest {text} NOT NULL UNIQUE,
    check_id {text} NOT NULL,
    host {text} NOT NULL,
    port INTEGER NOT NULL,
    transport {text} NOT NULL,
    kind {text} NOT NULL,
    expectation {text} NOT NULL,
    destination {text} NOT NULL,
    rule {text} NOT NULL,
    feature {text} NOT NULL,
    required INTEGER NOT NULL
);
CREATE TABLE outcomes (
    id {id},
    digest {text} NOT NULL UNIQUE,
    verdict {text} NOT NULL,
    status {text} NOT NULL,
    assurance {text},
    body {text} NOT NULL
);
CREATE TABLE results (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    def INTEGER NOT NULL REFERENCES check_defs(id),
    outcome INTEGER NOT NULL REFERENCES outcomes(id),
    timing {text} NOT NULL,
    PRIMARY KEY (run, position)
) {without_rowid}
"""

SCHEMA_V4_SWAP = """
DROP INDEX checks_failing;
DROP TABLE checks;
ALTER TABLE results RENAME TO checks;
CREATE VIEW check_results AS
SELECT k.run, k.position, d.check_id, d.host, d.port, d.transport, d.kind, d.expectation,
       d.destination, d.rule, d.feature, d.required, o.verdict, o.status, o.assurance,
       o.body, k.timing
FROM checks AS k JOIN check_defs AS d ON d.id = k.def JOIN outcomes AS o ON o.id = k.outcome
"""


# Version 5: leaner writes. The hourly summary loses its second index (every read of it
# names a period range, which its primary key leads with), and each backend applies its
# `Dialect.write_tuning` (PostgreSQL: half-full summary pages for in-place upserts, no RI
# triggers on the result rows' definition and outcome references). Nothing a report can
# answer changes.
SCHEMA_V5 = """
DROP INDEX check_hourly_by_endpoint
"""


# Version 6: narrow summaries. The version-3 summary rows were keyed by nine text columns
# and held text times (about 180 bytes a row, a row per four results); version 6 keys them
# by small integers (`egress.store._summary`): the period, a scope (cluster, node pool) from
# `scopes`, the check definition, and a class (verdict, status, assurance) from
# `result_classes`; first and last run start as microseconds since the epoch.
SCHEMA_V6 = """
DROP TABLE check_hourly;
DROP TABLE check_daily;
CREATE TABLE scopes (
    id {id},
    cluster {text} NOT NULL,
    node_pool {text} NOT NULL,
    UNIQUE (cluster, node_pool)
);
CREATE TABLE result_classes (
    id {id},
    verdict {text} NOT NULL,
    status {text} NOT NULL,
    assurance {text} NOT NULL,
    UNIQUE (verdict, status, assurance)
)
"""

# The key first (SQLite 3.40's quick_check misreads WITHOUT ROWID tables otherwise), in an
# order PostgreSQL packs without gaps: 32 bytes of columns in an hourly row.
_V6_SUMMARY_DDL = """
CREATE TABLE {{table}} (
    period INTEGER NOT NULL,
    scope INTEGER NOT NULL,
    def INTEGER NOT NULL,
    class SMALLINT NOT NULL,
    results INTEGER NOT NULL,
    first_at {{offset}} NOT NULL,
    last_at {{offset}} NOT NULL,
    PRIMARY KEY (period, scope, def, class)
) {summary_storage}
"""


def _rebuild_v3_summaries(conn: Connection) -> None:
    """Version 4's backfill of the version-3 summary tables (replaced by version 6)."""
    for table, width in _V3_SUMMARY_TABLES.items():
        conn.execute(f"DELETE FROM {table}")
        conn.execute(
            f"INSERT INTO {table} ({_V3_SUMMARY_COLUMNS}) {summary_select(width)} {SUMMARY_GROUP}"
        )


def _to_v1(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.ddl(SCHEMA_V1):
        conn.execute(statement)


def _to_v2(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.ddl(SCHEMA_V2):
        conn.execute(statement)
    # no backfill: version 3 replaces these tables and fills its own


def _to_v3(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.ddl(SCHEMA_V3_CHECKS):
        conn.execute(statement)
    backfill_status(conn)
    for table in _V3_SUMMARY_TABLES:
        for statement in dialect.ddl(_SUMMARY_DDL.replace("{{table}}", table)):
            conn.execute(statement)
    # the summaries are built from the version-3 rows by version 4 (the view it creates)


def _to_v4(conn: Connection, dialect: Dialect) -> None:
    from egress.store._compact import compact_v3_checks  # needs the store's row codecs

    for statement in dialect.ddl(SCHEMA_V4):
        conn.execute(statement)
    compact_v3_checks(conn, dialect)
    for statement in dialect.ddl(SCHEMA_V4_SWAP):
        conn.execute(statement)
    _rebuild_v3_summaries(conn)


def _to_v5(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.ddl(SCHEMA_V5) + dialect.ddl(dialect.write_tuning):
        conn.execute(statement)


def _to_v6(conn: Connection, dialect: Dialect) -> None:
    statements = dialect.ddl(SCHEMA_V6)
    for table, (unit, _) in SUMMARY_TABLES.items():
        ddl = _V6_SUMMARY_DDL.replace("{{table}}", table).replace("{{offset}}", offset_type(unit))
        statements += dialect.ddl(ddl, summary_storage=dialect.summary_storage)
    statements += dialect.ddl(SCHEMA_V6_REPORT_INDEXES)
    for statement in statements:
        conn.execute(statement)
    intern_keys(conn, "result_classes", CLASS_COLUMNS, every_class())
    rebuild_summaries(conn)


def backfill_status(conn: Connection) -> None:
    """Give rows stored before version 3 the status the one rule gives them (by Python).

    Those rows know no assurance and no inspection policy, so the status follows from the
    expectation and the verdict alone: one UPDATE per combination found.
    """
    pairs = conn.execute("SELECT DISTINCT expectation, verdict FROM checks").fetchall()
    for expectation, verdict in pairs:
        status = check_status(
            expectation=Expectation(expectation), verdict=Verdict(verdict), assurance=None
        )
        conn.execute(
            "UPDATE checks SET status = ? WHERE expectation = ? AND verdict = ?",
            (status.value, expectation, verdict),
        )


# MIGRATIONS[n] upgrades a store at version n to version n + 1; append, never reorder.
Migration = Callable[[Connection, Dialect], None]
MIGRATIONS: tuple[Migration, ...] = (_to_v1, _to_v2, _to_v3, _to_v4, _to_v5, _to_v6)
LATEST_VERSION = len(MIGRATIONS)


# Indexes the fleet report reads (created by the version-6 migration):
# - runs_by_region: the report lists every (cluster, node pool, region) by skipping through
#   it, one probe per distinct scope, instead of reading every stored run (`queries.scopes`);
# - check_hourly_by_endpoint: an endpoint's timeline (`queries.hourly_counts`) reads its own
#   hours, not every endpoint's hours of the window (the primary key leads with the period).
#   Without it a 30-day report of a 200-pool fleet took 72 s in PostgreSQL; it costs ~8 bytes
#   per stored check row there.
SCHEMA_V6_REPORT_INDEXES = """
CREATE INDEX runs_by_region ON runs (cluster, node_pool, region);
CREATE INDEX check_hourly_by_endpoint ON check_hourly (scope, def, period)
"""
