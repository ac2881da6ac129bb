"""A store written by the version-1 schema opens, migrates to the latest version, and reports."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from egress.compliance import RunStatus
from egress.report import build_report
from egress.report.model import Window
from egress.store import LATEST_VERSION, MIGRATIONS, SCHEMA_V1, ResultStore, _schema
from egress.store._dialect import SQLITE

from store.summaries import named_rows

# The version-1 DDL exactly as egress 0.1 shipped it: real v1 files look like this forever.
V1_DDL = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    cluster TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL,
    cloud TEXT NOT NULL,
    node_pool TEXT NOT NULL DEFAULT '',
    node TEXT,
    pod TEXT,
    namespace TEXT,
    plan_hash TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    transport TEXT NOT NULL,
    kind TEXT NOT NULL,
    expectation TEXT NOT NULL,
    destination TEXT NOT NULL,
    rule TEXT NOT NULL,
    feature TEXT NOT NULL,
    required INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    compliant INTEGER,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    attempts TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    UNIQUE (run, check_id)
);
"""


def _v1_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL)
    conn.execute("PRAGMA user_version = 1")
    for n, (pool, canary) in enumerate([("system", "blocked"), ("system", "reachable")]):
        started = f"2026-11-20T0{n}:05:00.000000Z"
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, 'aks-old', 'eastus', 'AzureCloud', ?, 'aks-system-0',"
            " 'egress-probe-x', 'egress-probe', ?, '0.1.0', ?, ?)",
            (n + 1, f"v1-run-{n}", pool, "a" * 64, started, started.replace(":05:", ":06:")),
        )
        rows = [
            ("mcr-443", "mcr.microsoft.com", "allow", 1, "reachable", 1, "answered"),  # data only
            ("canary-443", "www.bing.com", "deny", 0, canary, int(canary == "blocked"), "x"),
        ]
        for check_id, host, expectation, required, verdict, compliant, reason in rows:
            conn.execute(
                "INSERT INTO checks (run, check_id, host, port, transport, kind, expectation, "
                "destination, rule, feature, required, verdict, compliant, reason, evidence, "
                "attempts, started_at, finished_at, duration_ms) VALUES "
                "(?, ?, ?, 443, 'tcp', 'https', ?, ?, 'r', 'f', ?, ?, ?, ?, ?, '[]', ?, ?, 12.5)",
                (
                    n + 1,
                    check_id,
                    host,
                    expectation,
                    host,
                    required,
                    verdict,
                    compliant,
                    reason,
                    json.dumps({"status": 200}),
                    started,
                    started,
                ),
            )
    conn.commit()
    conn.close()


def test_the_shipped_v1_ddl_was_never_edited() -> None:
    """SQLite's rendering of the shared v1 template is still what egress 0.1 shipped."""
    rendered = ";\n".join(SQLITE.ddl(SCHEMA_V1)) + ";"
    assert " ".join(rendered.split()) == " ".join(V1_DDL.split())


def test_a_version_1_store_is_migrated_and_keeps_every_run(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_file(path)
    with ResultStore(path, create=False) as store:
        assert store.schema_version == LATEST_VERSION == 6
        conn = store.connection
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"runs_by_time", "runs_by_scope"} <= indexes
        columns = {r[1] for r in conn.execute("PRAGMA table_info(checks)")}
        assert columns == {"run", "position", "def", "outcome", "timing"}  # version 4
        # statuses backfilled by the rule: a blocked canary passes, a reachable one leaks
        statuses = conn.execute(
            "SELECT r.run_id, c.check_id, c.status, c.assurance FROM check_results AS c "
            "JOIN runs AS r ON r.id = c.run ORDER BY 1, 2"
        ).fetchall()
        assert statuses == [
            ("v1-run-0", "canary-443", "pass", None),
            ("v1-run-0", "mcr-443", "pass", None),
            ("v1-run-1", "canary-443", "leak", None),
            ("v1-run-1", "mcr-443", "pass", None),
        ]
        hourly = [
            (row[0], row[3], *row[6:10], row[11][11:16]) for row in named_rows(conn, "check_hourly")
        ]
        assert hourly == [
            ("2026-11-20T00", "canary-443", "blocked", "pass", "", 1, "00:05"),
            ("2026-11-20T00", "mcr-443", "reachable", "pass", "", 1, "00:05"),
            ("2026-11-20T01", "canary-443", "reachable", "leak", "", 1, "01:05"),
            ("2026-11-20T01", "mcr-443", "reachable", "pass", "", 1, "01:05"),
        ]
        old = store.read_run("v1-run-1")
        assert old is not None
        assert [c.verdict for c in old.checks] == ["reachable", "reachable"]
        assert old.checks[1].is_leak
        window = Window(datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
        report = build_report(store, window)
    assert report.status is RunStatus.NON_COMPLIANT
    assert [f.check_id for f in report.leaks] == ["canary-443"]
    # blocked verdicts stored before assurance existed are counted as having none
    assert report.tally.blocked_by_assurance == {
        "signature": 0,
        "stated": 0,
        "confirmed": 0,
        "none": 1,
    }


def test_migration_happens_once_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_file(path)
    ResultStore(path).close()
    with ResultStore(path) as store:
        total = store.connection.execute("SELECT sum(results) FROM check_hourly").fetchone()[0]
    assert total == 4
    with ResultStore(path) as store:
        daily = sorted(
            (row[0], row[3], row[7], row[9]) for row in named_rows(store.connection, "check_daily")
        )
    assert daily == [
        ("2026-11-20", "canary-443", "leak", 1),
        ("2026-11-20", "canary-443", "pass", 1),
        ("2026-11-20", "mcr-443", "pass", 2),
    ]


def _v2_file(path: Path) -> None:
    _v1_file(path)
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[1](conn, SQLITE)
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def test_a_failed_version_3_migration_leaves_the_store_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backfill runs after the columns changed: if it fails, all of it is rolled back."""
    path = tmp_path / "v2.sqlite"
    _v2_file(path)

    def broken(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(_schema, "backfill_status", broken)
    with pytest.raises(Exception, match="simulated"):
        ResultStore(path, create=False)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(checks)")}
        assert "compliant" in columns and "status" not in columns
        assert conn.execute("SELECT count(*) FROM checks").fetchone() == (4,)
    finally:
        conn.close()
    monkeypatch.undo()
    with ResultStore(path, create=False) as store:  # and a later open migrates it
        assert store.schema_version == LATEST_VERSION
