"""The result history: probe runs in SQLite or PostgreSQL, and ingest of gathered logs."""

from __future__ import annotations

from egress.store._dialect import Connection, Dialect
from egress.store._ingest import IngestResult, RejectedLine, ingest_files, read_runs
from egress.store._postgres import PostgresAuth, is_dsn
from egress.store._schema import LATEST_VERSION, MIGRATIONS, SCHEMA_V1
from egress.store._store import ResultStore, format_ts, parse_ts
from egress.store._summary import rebuild_summaries

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "SCHEMA_V1",
    "Connection",
    "Dialect",
    "IngestResult",
    "PostgresAuth",
    "RejectedLine",
    "ResultStore",
    "format_ts",
    "ingest_files",
    "is_dsn",
    "parse_ts",
    "read_runs",
    "rebuild_summaries",
]
