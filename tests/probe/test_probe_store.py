"""`probe run --store`: bad paths fail before probing; a run the store cannot take is kept.

The lab's peers are on 127.0.0.0/8; the stores are real SQLite files and an unreachable
PostgreSQL address (a unix socket folder with no server in it).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

from conftest import Lab, make_plan
from test_cli import probe, write_plan

from egress.results import CheckRecord, RunReport
from egress.store import ResultStore


def _run_ids(stdout: str) -> set[str]:
    """Run ids of the check records on stdout (the last line is the run's summary)."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    return {CheckRecord.model_validate(d).run_id for d in lines if d["record"] == "check"}


def _plan(lab: Lab, tmp_path: Path) -> str:
    return str(write_plan(tmp_path, make_plan(lab.check("good"))))


def test_an_unwritable_report_path_fails_before_anything_is_probed(
    lab: Lab, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for flag in ("--report", "--junit"):
        code, stdout, stderr = probe(
            lab, "--plan", _plan(lab, tmp_path), "--format", "jsonl", flag, f"{blocker}/out.json"
        )
        assert code == 5, stderr
        assert stdout == ""  # not one check was probed
        assert f"{flag} {blocker}/out.json cannot be written" in stderr


def test_a_store_of_another_program_fails_before_probing(lab: Lab, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    code, stdout, stderr = probe(
        lab, "--plan", _plan(lab, tmp_path), "--format", "jsonl", "--store", str(other)
    )
    assert (code, stdout) == (5, "")
    assert "another program" in stderr
    bad_dsn = "postgresql://egress@host:notaport/db?bogus=1"
    code, stdout, stderr = probe(
        lab, "--plan", _plan(lab, tmp_path), "--format", "jsonl", "--store", bad_dsn
    )
    assert (code, stdout) == (5, "")
    assert "not a valid PostgreSQL DSN" in stderr


def test_a_locked_store_keeps_the_run_pending_and_the_next_run_pushes_it(
    lab: Lab, tmp_path: Path
) -> None:
    store = tmp_path / "results.sqlite"
    pending = Path(f"{store}.pending.jsonl")
    with ResultStore(store):
        pass
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the store
    plan = _plan(lab, tmp_path)
    args = ("--plan", plan, "--format", "jsonl", "--store", str(store), "--store-wait", "0.2")
    try:
        code, stdout, stderr = probe(lab, *args)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code in (0, 1), stderr  # the verdicts decide the exit code, not the store
    first = _run_ids(stdout)
    assert f"kept in {pending}" in " ".join(stderr.split())
    kept = [RunReport.model_validate_json(line) for line in pending.read_text().splitlines()]
    assert {run.run_id for run in kept} == first
    code, stdout, stderr = probe(lab, *args)
    second = _run_ids(stdout)
    assert "pushed 1 pending run(s)" in stderr
    assert not pending.exists()
    with ResultStore(store, create=False) as opened:
        assert set(opened.run_ids()) == first | second
        assert opened.read_run(kept[0].run_id) == kept[0]


def test_an_unreachable_database_keeps_the_run_for_report_ingest(lab: Lab, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from egress.cli import app

    nowhere = tmp_path / f"no-server-{uuid.uuid4().hex[:8]}"  # a socket folder, no server
    nowhere.mkdir()
    dsn = f"postgresql://egress@/fleet?host={nowhere}&sslmode=disable"  # unix socket: no TLS
    pending = tmp_path / "volume" / "pending.jsonl"
    code, stdout, stderr = probe(
        lab,
        *("--plan", _plan(lab, tmp_path), "--format", "jsonl"),
        *("--store", dsn, "--pending", str(pending)),
    )
    assert code in (0, 1), stderr
    assert len(_run_ids(stdout)) == 1  # the run still went to stdout as JSON lines
    message = " ".join(stderr.split())
    assert "cannot use the PostgreSQL store postgresql://egress@" in message
    assert f"kept in {pending}" in message
    local = tmp_path / "local.sqlite"
    result = CliRunner().invoke(app, ["report", "ingest", "--store", str(local), str(pending)])
    assert result.exit_code == 0, result.output
    assert "ingested 1 run(s) (1 results)" in result.stderr
