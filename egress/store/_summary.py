"""The summary tables of schema version 6: per-period result counts in small integers.

`check_hourly` and `check_daily` hold one row per (period, scope, def, class):

- ``period``: hours (hourly) or days (daily) since 1970-01-01 UTC;
- ``scope``: the `scopes` row of the run's (cluster, node pool);
- ``def``: the result's check definition (`check_defs` names its check id, expectation and
  whether it is required);
- ``class``: the `result_classes` row of its (verdict, status, assurance; '' for none);

with ``results`` (how many check rows) and ``first_at``/``last_at``: the first and last run
start among them, in microseconds from the middle of the period (so an hour's fit a 32-bit
integer: 8 bytes less per hourly row in PostgreSQL; `absolute_sql` reads them back).

Each append adds its runs' counts, computed here in Python from the staged runs: bulk-loaded
into a staging table and merged by one upsert per table (exact under concurrent writers:
the database adds to the row it holds). `rebuild_summaries` recomputes every row from the
stored results in SQL, to the same rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.store._dialect import Connection, Dialect

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

# Summary table -> (microseconds per period, characters of a stored timestamp that name it).
SUMMARY_TABLES = {"check_hourly": (HOUR_US, 13), "check_daily": (DAY_US, 10)}
SUMMARY_KEY = ("period", "scope", "def", "class")
SUMMARY_COLUMNS = (*SUMMARY_KEY, "results", "first_at", "last_at")
SCOPE_COLUMNS = ("cluster", "node_pool")
CLASS_COLUMNS = ("verdict", "status", "assurance")

# (period, scope, def, class) -> [results, first_at, last_at]
Counts = dict[tuple[int, int, int, int], list[int]]


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware moment."""
    return (moment - EPOCH) // _MICROSECOND


def from_micros(us: int) -> datetime:
    """Inverse of :func:`micros`."""
    return EPOCH + int(us) * _MICROSECOND


def middle(period: int, unit: int) -> int:
    """Microseconds since the epoch of the middle of a period (what offsets count from)."""
    return period * unit + unit // 2


def offset_type(unit: int) -> str:
    """The narrowest SQL integer that holds every offset from the middle of a period."""
    return "INTEGER" if unit // 2 < 2**31 else "BIGINT"


def absolute_sql(column: str, unit: int) -> str:
    """SQL turning a stored offset back into microseconds since the epoch."""
    return f"(period * {unit} + {unit // 2} + {column})"


def micros_sql(text: str) -> str:
    """Portable SQL for :func:`micros` of a stored timestamp (`format_ts` text, after 1970).

    Plain integer arithmetic on its digits (days from the civil date), so SQLite and
    PostgreSQL compute it alike without a date function.
    """

    def part(start: int, length: int) -> str:
        return f"CAST(substr({text}, {start}, {length}) AS BIGINT)"

    year, month, day = part(1, 4), part(6, 2), part(9, 2)
    shifted = f"({year} - CASE WHEN {month} <= 2 THEN 1 ELSE 0 END)"  # years from March
    era_year = f"({shifted} % 400)"
    day_of_year = f"((153 * (({month} + 9) % 12) + 2) / 5 + {day} - 1)"
    day_of_era = f"({era_year} * 365 + {era_year} / 4 - {era_year} / 100 + {day_of_year})"
    days = f"(({shifted} / 400) * 146097 + {day_of_era} - 719468)"
    seconds = f"((({days} * 24 + {part(12, 2)}) * 60 + {part(15, 2)}) * 60 + {part(18, 2)})"
    return f"({seconds} * 1000000 + {part(21, 6)})"


def class_key(verdict: str, status: str, assurance: str | None) -> tuple[str, str, str]:
    return (verdict, status, assurance or "")


def every_class() -> list[tuple[str, str, str]]:
    """Every (verdict, status, assurance) the models allow, to fill `result_classes` once."""
    assurances = [None, *(a.value for a in Assurance)]
    return [
        class_key(v.value, s.value, a)
        for v, s, a in itertools.product(Verdict, CheckStatus, assurances)
    ]


def intern_keys(
    conn: Connection, table: str, columns: Sequence[str], keys: Iterable[tuple[Any, ...]]
) -> dict[tuple[Any, ...], int]:
    """The row id of each key in a small dimension table, inserting missing ones.

    Keys are inserted in sorted order, so concurrent writers wait on each other's new rows
    in one order (no deadlock); a concurrent writer's row wins (ON CONFLICT DO NOTHING).
    """
    wanted = sorted(set(keys))
    ids: dict[tuple[Any, ...], int] = {}
    match = "(" + " AND ".join(f"{c} = ?" for c in columns) + ")"
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    for attempt in range(2):  # the second pass reads rows this (or another) writer inserted
        missing = [k for k in wanted if k not in ids]
        for chunk in _chunks(missing, 200):
            found = conn.execute(
                f"SELECT id, {', '.join(columns)} FROM {table} WHERE "
                + " OR ".join([match] * len(chunk)),
                [value for key in chunk for value in key],
            )
            ids.update((tuple(row[1:]), int(row[0])) for row in found)
        missing = [k for k in wanted if k not in ids]
        if not missing or attempt == 1:
            break
        for chunk in _chunks(missing, 200):
            conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                f"{', '.join([marks] * len(chunk))} ON CONFLICT ({', '.join(columns)}) DO NOTHING",
                [value for key in chunk for value in key],
            )
    return ids


def add_run(
    counts: dict[str, Counts], at: int, scope: int, results: Iterable[tuple[int, int]]
) -> None:
    """Count one run that started at `at` (microseconds) in `scope`: its (def, class) pairs."""
    for table, (unit, _) in SUMMARY_TABLES.items():
        table_counts = counts.setdefault(table, {})
        period = at // unit
        for def_id, class_id in results:
            key = (period, scope, def_id, class_id)
            row = table_counts.get(key)
            if row is None:
                table_counts[key] = [1, at, at]
            else:
                row[0] += 1
                row[1] = min(row[1], at)
                row[2] = max(row[2], at)


def merge_sql(table: str, staging: str) -> str:
    """Add the rows of `staging` to `table`, in key order (concurrent writers then lock
    summary rows in one order, so they wait for each other instead of deadlocking)."""
    columns = ", ".join(SUMMARY_COLUMNS)
    return f"""
INSERT INTO {table} ({columns})
SELECT {columns} FROM {staging} WHERE 1 = 1 ORDER BY {", ".join(SUMMARY_KEY)}
ON CONFLICT ({", ".join(SUMMARY_KEY)}) DO UPDATE SET
    results = {table}.results + excluded.results,
    first_at = CASE WHEN excluded.first_at < {table}.first_at
                    THEN excluded.first_at ELSE {table}.first_at END,
    last_at = CASE WHEN excluded.last_at > {table}.last_at
                   THEN excluded.last_at ELSE {table}.last_at END
"""


# A session's staging table for one summary table's increments (bulk-loaded, then merged).
_STAGING_DDL = """
CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (
    period INTEGER NOT NULL,
    scope INTEGER NOT NULL,
    def INTEGER NOT NULL,
    class SMALLINT NOT NULL,
    results INTEGER NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL
) {temporary}
"""


class BulkInsert(Protocol):
    def __call__(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...


def write_counts(
    conn: Connection, dialect: Dialect, insert_many: BulkInsert, counts: dict[str, Counts]
) -> None:
    """Add `counts` to the summary tables: each table's rows bulk-loaded into a staging
    table (COPY in PostgreSQL), then merged by one upsert."""
    for table, table_counts in counts.items():
        unit = SUMMARY_TABLES[table][0]
        staging = f"{table}_increments"
        ddl = dialect.ddl(_STAGING_DDL, staging=staging, temporary=dialect.temporary)
        for statement in ddl:
            conn.execute(statement)
        rows = []
        for key, (results, first, last) in table_counts.items():
            base = middle(key[0], unit)
            rows.append((*key, results, first - base, last - base))
        insert_many(conn, staging, SUMMARY_COLUMNS, rows)
        conn.execute(merge_sql(table, staging))
        conn.execute(f"DELETE FROM {staging}")


def rebuild_summaries(conn: Connection) -> None:
    """Recompute the summary tables from every stored result (migrations, bulk loaders)."""
    scopes = ", ".join(SCOPE_COLUMNS)
    conn.execute(
        f"INSERT INTO scopes ({scopes}) SELECT DISTINCT {scopes} FROM runs WHERE 1 = 1 "
        f"ON CONFLICT ({scopes}) DO NOTHING"
    )
    classes = ", ".join(CLASS_COLUMNS)
    conn.execute(
        f"INSERT INTO result_classes ({classes}) SELECT DISTINCT verdict, status, "
        f"coalesce(assurance, '') FROM outcomes WHERE 1 = 1 ON CONFLICT ({classes}) DO NOTHING"
    )
    first, last = micros_sql("min(r.started_at)"), micros_sql("max(r.started_at)")
    for table, (unit, width) in SUMMARY_TABLES.items():
        base = f"(({first} / {unit}) * {unit} + {unit // 2})"
        conn.execute(f"DELETE FROM {table}")
        conn.execute(
            f"""INSERT INTO {table} ({", ".join(SUMMARY_COLUMNS)})
SELECT {first} / {unit}, s.id, k.def, x.id, count(*), {first} - {base}, {last} - {base}
FROM runs AS r JOIN checks AS k ON k.run = r.id JOIN outcomes AS o ON o.id = k.outcome
JOIN scopes AS s ON s.cluster = r.cluster AND s.node_pool = r.node_pool
JOIN result_classes AS x ON x.verdict = o.verdict AND x.status = o.status
                        AND x.assurance = coalesce(o.assurance, '')
GROUP BY substr(r.started_at, 1, {width}), s.id, k.def, x.id"""
        )


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    return (items[start : start + size] for start in range(0, len(items), size))
