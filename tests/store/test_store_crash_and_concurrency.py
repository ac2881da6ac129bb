"""Several writer processes at once, and a writer killed inside its transaction."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from pathlib import Path

from egress.store import ResultStore

from store.sample_runs import BASE, append_runs_worker, make_run, stalled_writer_worker

SPAWN = multiprocessing.get_context("spawn")


def test_concurrent_writer_processes_all_land(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    workers = [
        SPAWN.Process(target=append_runs_worker, args=(str(path), f"pool{n}", 15)) for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with ResultStore(path) as store:
        assert len(store.run_ids()) == 60
        totals = store.connection.execute(
            "SELECT s.node_pool, sum(h.results) FROM check_hourly AS h "
            "JOIN scopes AS s ON s.id = h.scope GROUP BY s.node_pool ORDER BY 1"
        ).fetchall()
    assert totals == [(f"pool{n}", 15 * 5) for n in range(4)]


def _write_lock_is_held(path: Path) -> bool:
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    finally:
        conn.close()


def test_a_writer_killed_mid_run_leaves_earlier_runs_and_no_half_run(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    with ResultStore(path) as store:
        earlier = [make_run(f"before-{n}", BASE.replace(minute=n)) for n in range(3)]
        for run in earlier:
            store.append_run(run)
    ready = SPAWN.Event()
    writer = SPAWN.Process(target=stalled_writer_worker, args=(str(path), ready))
    writer.start()
    try:
        assert ready.wait(timeout=60), "the writer never reached its open transaction"
        assert _write_lock_is_held(path)  # it really is inside an uncommitted write
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.join(timeout=30)
    assert writer.exitcode == -signal.SIGKILL
    with ResultStore(path) as store:
        assert store.run_ids() == [run.run_id for run in earlier]
        assert [store.read_run(run.run_id) for run in earlier] == earlier
        conn = store.connection
        assert conn.execute("SELECT count(*) FROM checks").fetchone()[0] == 15
        assert conn.execute("SELECT sum(results) FROM check_hourly").fetchone()[0] == 15
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.append_run(make_run("after", BASE.replace(hour=2)))  # still writable
