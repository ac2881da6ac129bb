"""append_runs in chunks: staged in a worker thread, written chunk by chunk, retried whole.

The threaded path must store exactly the rows of the serial one (same ids, byte for byte),
each run must be encoded once even when its transaction is retried, and the chunked write
must read back as the runs that were appended, with the summaries of one-run-at-a-time
appends.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from egress.results import RunReport, Verdict
from egress.store import ResultStore
from egress.store import _store as store_internals
from egress.store._summary import SUMMARY_TABLES

from store.pg_server import PgServer
from store.sample_runs import BASE, ENDPOINTS, make_run
from store.summaries import named_rows

_TABLES = (
    "runs",
    "checks",
    "check_defs",
    "outcomes",
    "scopes",
    "result_classes",
    *SUMMARY_TABLES,
)


def _another_location(request: pytest.FixtureRequest, store_location: str, name: str) -> str:
    if store_location.startswith("postgresql://"):
        server: PgServer = request.getfixturevalue("pg_server")
        return server.dsn(server.create_database())
    return str(Path(store_location).with_name(f"{name}.sqlite"))


def _history() -> list[RunReport]:
    """Runs whose chunks meet new definitions and outcomes late, and repeat earlier ones."""
    runs = []
    for n in range(23):
        overrides = {ENDPOINTS[n % len(ENDPOINTS)].check_id: Verdict.INCONCLUSIVE} if n % 4 else {}
        endpoints = ENDPOINTS if n < 15 else ENDPOINTS[: 2 + n % 3]  # fewer checks, later
        runs.append(
            make_run(
                f"run-{n:02d}",
                BASE + timedelta(minutes=37 * n),
                node_pool=("system", "gpu")[n % 2],
                cluster=("aks-a", "aks-b", "aks-c")[n % 3],
                overrides=overrides,
                endpoints=endpoints,
            )
        )
    return runs


def _every_row(store: ResultStore) -> dict[str, list[tuple[Any, ...]]]:
    rows = {}
    for table in _TABLES:
        fetched = store.connection.execute(f"SELECT * FROM {table}").fetchall()
        rows[table] = sorted(tuple(row) for row in fetched)
    return rows


def _counting_stage(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, bool]]:
    """Count each `_stage` call by run id and whether it ran outside the calling thread."""
    stage = store_internals._stage
    caller = threading.get_ident()
    calls: Counter[tuple[str, bool]] = Counter()

    def counted(run: RunReport) -> Any:
        calls[(run.run_id, threading.get_ident() != caller)] += 1
        return stage(run)

    monkeypatch.setattr(store_internals, "_stage", counted)
    return calls


def _append(location: str, batches: Sequence[Sequence[RunReport]]) -> list[tuple[str, ...]]:
    with ResultStore(location) as store:
        return [store.append_runs(batch) for batch in batches]


def test_threaded_staging_stores_the_serial_paths_rows_byte_for_byte(
    request: pytest.FixtureRequest, store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _history()
    # run-03 is stored before; run-08 appears twice in one chunk, run-07 in two chunks
    batches = [runs[3:4], [*runs[:9], runs[8], *runs[9:], runs[7]]]
    monkeypatch.setattr(store_internals, "_STAGE_CHUNK", 4)
    calls = _counting_stage(monkeypatch)
    threaded = _append(store_location, batches)
    assert any(elsewhere for _, elsewhere in calls), "no chunk was staged in the worker"

    serial_location = _another_location(request, store_location, "serial")
    monkeypatch.setattr(store_internals, "_STAGE_IN_THREAD", False)
    serial = _append(serial_location, batches)

    expected_new = tuple(run.run_id for run in runs if run.run_id != "run-03")
    assert threaded == serial == [("run-03",), expected_new]
    with ResultStore(store_location) as one, ResultStore(serial_location) as other:
        assert _every_row(one) == _every_row(other)


def test_chunked_append_reads_back_the_runs_and_one_at_a_time_summaries(
    request: pytest.FixtureRequest, store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _history()
    monkeypatch.setattr(store_internals, "_STAGE_CHUNK", 5)
    _append(store_location, [runs])
    single_location = _another_location(request, store_location, "single")
    _append(single_location, [[run] for run in runs])
    with ResultStore(store_location) as chunked, ResultStore(single_location) as single:
        for run in runs:
            stored = chunked.read_run(run.run_id)
            assert stored is not None
            assert stored.checks == single.read_run(run.run_id).checks  # type: ignore[union-attr]
            assert [c.check_id for c in stored.checks] == [c.check_id for c in run.checks]
        for table in SUMMARY_TABLES:
            assert named_rows(chunked.connection, table) == named_rows(single.connection, table)
        count = "SELECT count(*) FROM checks"
        assert chunked.connection.execute(count).fetchone()[0] == sum(len(r.checks) for r in runs)


def _fail_once_at_second_chunk(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch, fail: Callable[[], None]
) -> list[int]:
    """Break the first attempt just before it writes the second chunk's checks."""
    db = store._db
    insert_many = db.insert_many
    seen: list[int] = []

    def breaking(conn: Any, table: str, columns: Any, rows: Any) -> None:
        if table == "checks":
            seen.append(len(rows))
            if len(seen) == 2:
                fail()
        insert_many(conn, table, columns, rows)

    monkeypatch.setattr(db, "insert_many", breaking)
    return seen


def test_a_retry_after_a_failed_chunk_writes_every_run_once_from_the_same_staging(
    request: pytest.FixtureRequest, store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _history()
    monkeypatch.setattr(store_internals, "_STAGE_CHUNK", 6)
    calls = _counting_stage(monkeypatch)
    with ResultStore(store_location) as store:
        if store.dialect.name == "postgresql":
            pid = store.connection.execute("SELECT pg_backend_pid()").fetchone()[0]

            def fail() -> None:  # the server drops the writer's connection mid-transaction
                with psycopg.connect(store_location, autocommit=True) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))

        else:

            def fail() -> None:
                raise sqlite3.OperationalError("database is locked")

        seen = _fail_once_at_second_chunk(store, monkeypatch, fail)
        assert store.append_runs(runs) == tuple(run.run_id for run in runs)
        assert len(seen) > 5  # the first attempt reached chunk 2, the retry wrote all chunks
        assert {run_id for run_id, _ in calls} == {run.run_id for run in runs}
        assert sum(calls.values()) == len(runs)  # staged once, reused by the retry
        assert store.append_runs(runs) == ()  # idempotent by run id
        count = "SELECT count(*) FROM checks"
        assert store.connection.execute(count).fetchone()[0] == sum(len(r.checks) for r in runs)
        summaries = {t: named_rows(store.connection, t) for t in SUMMARY_TABLES}
        stored = {run.run_id: store.read_run(run.run_id) for run in runs}
    single_location = _another_location(request, store_location, "single")
    _append(single_location, [[run] for run in runs])
    with ResultStore(single_location) as single:
        assert summaries == {t: named_rows(single.connection, t) for t in SUMMARY_TABLES}
        assert stored == {run.run_id: single.read_run(run.run_id) for run in runs}
