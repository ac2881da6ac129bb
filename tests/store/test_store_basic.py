"""ResultStore: append and read back, duplicates, summaries, and unreadable stores."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from egress.errors import ExitCode, PlanFileError, StoreError
from egress.results import Verdict
from egress.store import LATEST_VERSION, ResultStore, rebuild_summaries

from store.sample_runs import BASE, fixed_history, make_run
from store.summaries import named_rows


def test_append_then_read_back_gives_the_same_run(tmp_path: Path) -> None:
    run = make_run("r1", BASE, overrides={"mcr-443": Verdict.BLOCKED})
    with ResultStore(tmp_path / "results.sqlite") as store:
        assert store.append_run(run) is True
        assert store.read_run("r1") == run
        assert store.read_run("missing") is None
        assert store.schema_version == LATEST_VERSION


def test_the_store_is_a_wal_file_another_process_can_open(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        store.append_run(make_run("r1", BASE))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM checks").fetchone()[0] == 5


def test_a_duplicate_run_id_is_ignored(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert store.append_run(make_run("r1", BASE))
        changed = make_run("r1", BASE + timedelta(hours=1), overrides={"api-443": Verdict.BLOCKED})
        assert store.append_run(changed) is False
        assert store.read_run("r1") == make_run("r1", BASE)
        assert store.run_ids() == ["r1"]


def test_a_run_with_a_check_twice_is_refused_whole(tmp_path: Path) -> None:
    run = make_run("r1", BASE)
    doubled = run.model_copy(update={"checks": (*run.checks, run.checks[0])})
    with ResultStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(PlanFileError, match="mcr-443"):
            store.append_run(doubled)
        assert store.run_ids() == []


def test_hourly_summary_kept_by_appends_equals_a_full_rebuild(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "s.sqlite") as store:
        for run in fixed_history():
            store.append_run(run)
        conn = store.connection
        incremental = named_rows(conn, "check_hourly")
        incremental_daily = named_rows(conn, "check_daily")
        store.write_transaction(rebuild_summaries)
        assert named_rows(conn, "check_hourly") == incremental
        assert named_rows(conn, "check_daily") == incremental_daily
    leaks = [row for row in incremental if row[7] == "leak"]  # the stored status column
    assert [(row[2], row[3], row[9]) for row in leaks] == [("gpu", "canary-bing-443", 1)]
    # every stored check row is counted exactly once, whatever its status
    assert sum(row[9] for row in incremental) == sum(len(r.checks) for r in fixed_history())


def test_report_refuses_to_create_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist") as caught:
        ResultStore(tmp_path / "absent.sqlite", create=False)
    assert caught.value.exit_code is ExitCode.ENVIRONMENT
    assert not (tmp_path / "absent.sqlite").exists()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are not the rows you are looking for\n" * 50)
    with pytest.raises(StoreError, match="cannot be read"):
        ResultStore(path, create=False)


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(StoreError, match="another program"):
        ResultStore(path)
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("notes",)]


def test_a_store_from_a_newer_egress_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this egress"):
        ResultStore(path)


def test_prune_deletes_whole_old_days_and_keeps_summaries_exact(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from egress.cli import app

    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        for day in range(3):
            for hour in (1, 13):
                moment = BASE + timedelta(days=day, hours=hour)
                store.append_run(make_run(f"d{day}h{hour}", moment))
    now = (BASE + timedelta(days=2, hours=20)).isoformat()
    args = ["report", "prune", "--store", str(path), "--keep-days", "1", "--now", now]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "deleted 2 run(s) that started before 2026-11-21T00:00:00+00:00" in result.stderr
    with ResultStore(path) as store:
        assert store.run_ids() == ["d1h1", "d1h13", "d2h1", "d2h13"]
        conn = store.connection
        assert conn.execute("SELECT count(*) FROM checks").fetchone()[0] == 4 * 5
        tables = ("check_hourly", "check_daily")
        before = [conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall() for t in tables]
        store.write_transaction(rebuild_summaries)
        after = [conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall() for t in tables]
    assert before == after
