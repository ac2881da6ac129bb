"""Summary rows read back in words: version 6 keys them by integers (egress.store._summary)."""

from __future__ import annotations

from typing import Any

from egress.store import Connection
from egress.store._store import format_ts
from egress.store._summary import SUMMARY_TABLES, from_micros, middle

# One row: (period, cluster, node pool, check id, expectation, required, verdict, status,
# assurance, results, first_at, last_at), the period as the stored timestamps' prefix.
NamedRow = tuple[Any, ...]


def named_rows(conn: Connection, table: str) -> list[NamedRow]:
    """Every row of a summary table with its scope, definition and class named, sorted."""
    unit, width = SUMMARY_TABLES[table]
    rows = conn.execute(
        f"""SELECT h.period, s.cluster, s.node_pool, d.check_id, d.expectation, d.required,
                   x.verdict, x.status, x.assurance, h.results, h.first_at, h.last_at
        FROM {table} AS h JOIN scopes AS s ON s.id = h.scope
        JOIN check_defs AS d ON d.id = h.def JOIN result_classes AS x ON x.id = h.class"""
    ).fetchall()
    named = [
        (
            format_ts(from_micros(int(row[0]) * unit))[:width],
            *row[1:5],
            int(row[5]),
            *row[6:9],
            int(row[9]),
            format_ts(from_micros(middle(int(row[0]), unit) + int(row[10]))),
            format_ts(from_micros(middle(int(row[0]), unit) + int(row[11]))),
        )
        for row in rows
    ]
    return sorted(named)
