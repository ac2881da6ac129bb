"""`egress report` on real files that are not a healthy store: refused with exit 5, untouched.

Each case is a real file: empty, damaged pages (bytes flipped in a real store), another
program's database, a store from a newer egress. Also the online backup command.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.store import LATEST_VERSION, ResultStore
from egress.store._sqlite import APPLICATION_ID

from store.sample_runs import fixed_history

NOW = "2026-11-20T12:00:00Z"


def _report(store: Path | str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["report", "--store", str(store), "--now", NOW, "--format", "json"]
    )
    return result.exit_code, " ".join(result.stderr.split())


def _store_with_history(path: Path, copies: int = 1) -> None:
    with ResultStore(path) as store:
        for n in range(copies):
            for run in fixed_history():
                store.append_run(run.model_copy(update={"run_id": f"{run.run_id}-{n}"}))


def test_a_healthy_store_reports(tmp_path: Path) -> None:
    path = tmp_path / "ok.sqlite"
    _store_with_history(path)
    code, _ = _report(path)
    assert code == 1  # the history holds a leak


def test_an_empty_file_is_refused_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    code, stderr = _report(path)
    assert code == 5
    assert f"result store {path} is empty (0 bytes)" in stderr
    assert path.stat().st_size == 0
    assert not Path(f"{path}-wal").exists()


def test_a_missing_store_is_refused_and_not_created(tmp_path: Path) -> None:
    code, stderr = _report(tmp_path / "absent.sqlite")
    assert code == 5
    assert "does not exist" in stderr
    assert list(tmp_path.iterdir()) == []


def test_damaged_pages_are_refused_with_the_recovery_path(tmp_path: Path) -> None:
    path = tmp_path / "damaged.sqlite"
    _store_with_history(path, copies=20)
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    pages = len(data) // page
    assert pages > 10
    middle = page * (pages // 2)
    for offset in range(middle, middle + page, 7):  # flip bytes all over one inner page
        data[offset] ^= 0xA5
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    code, stderr = _report(path)
    assert code == 5
    assert f"result store {path} is damaged" in stderr
    assert f"sqlite3 {path} .recover" in stderr
    assert path.read_bytes() == before  # nothing was written to it


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    code, stderr = _report(path)
    assert (code, "another program" in stderr) == (5, True)


def test_a_store_from_a_newer_egress_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    _store_with_history(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    code, stderr = _report(path)
    assert code == 5
    assert f"schema version {LATEST_VERSION + 1}, newer than this egress" in stderr


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are not the rows you are looking for\n" * 50)
    code, stderr = _report(path)
    assert (code, "not an SQLite file" in stderr) == (5, True)


def test_backup_makes_a_checked_copy_and_never_overwrites(tmp_path: Path) -> None:
    path, copy = tmp_path / "s.sqlite", tmp_path / "backups" / "s-copy.sqlite"
    _store_with_history(path)
    args = ["report", "backup", "--store", str(path), "--to", str(copy)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "backed up 12 run(s)" in result.stderr
    with ResultStore(copy, create=False, verify=True) as backup, ResultStore(path) as original:
        assert backup.run_ids() == original.run_ids()
        assert [backup.read_run(r) for r in backup.run_ids()] == [
            original.read_run(r) for r in original.run_ids()
        ]
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2
    assert "already exists" in again.stderr


@pytest.mark.parametrize("name", ["empty", "damaged"])
def test_backup_refuses_a_bad_store(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.sqlite"
    if name == "empty":
        path.touch()
    else:
        _store_with_history(path, copies=20)
        data = bytearray(path.read_bytes())
        for offset in range(len(data) // 2, len(data) // 2 + 4096, 5):
            data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
    target = tmp_path / "copy.sqlite"
    result = CliRunner().invoke(
        app, ["report", "backup", "--store", str(path), "--to", str(target)]
    )
    assert result.exit_code == 5
    assert not target.exists()
