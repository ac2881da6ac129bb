"""The result history: an embedded SQLite store of probe runs, and ingest of gathered logs."""

from __future__ import annotations

from egress.store._ingest import IngestResult, RejectedLine, ingest_files, read_runs
from egress.store._schema import LATEST_VERSION, MIGRATIONS, SCHEMA_V1, rebuild_summaries
from egress.store._store import ResultStore, format_ts, parse_ts

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "SCHEMA_V1",
    "IngestResult",
    "RejectedLine",
    "ResultStore",
    "format_ts",
    "ingest_files",
    "parse_ts",
    "read_runs",
    "rebuild_summaries",
]
