"""A store written by the version-1 schema opens, migrates to the latest version, and reports."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from egress.report import build_report
from egress.report.model import Status, Window
from egress.store import LATEST_VERSION, SCHEMA_V1, ResultStore
from egress.store._dialect import SQLITE

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
        assert store.schema_version == LATEST_VERSION == 2
        conn = store.connection
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"runs_by_time", "runs_by_scope", "checks_failing"} <= indexes
        hourly = conn.execute(
            "SELECT period, check_id, total, passed, failed, leaks, last_failure "
            "FROM check_hourly ORDER BY 1, 2"
        ).fetchall()
        assert hourly == [
            ("2026-11-20T00", "canary-443", 1, 1, 0, 0, None),
            ("2026-11-20T00", "mcr-443", 1, 1, 0, 0, None),
            ("2026-11-20T01", "canary-443", 1, 0, 1, 1, "2026-11-20T01:05:00.000000Z"),
            ("2026-11-20T01", "mcr-443", 1, 1, 0, 0, None),
        ]
        old = store.read_run("v1-run-1")
        assert old is not None
        assert [c.verdict for c in old.checks] == ["reachable", "reachable"]
        assert old.checks[1].is_leak
        window = Window(datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
        report = build_report(store, window)
    assert report.status is Status.LEAK
    assert [f.check_id for f in report.leaks] == ["canary-443"]


def test_migration_happens_once_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_file(path)
    ResultStore(path).close()
    with ResultStore(path) as store:
        total = store.connection.execute("SELECT sum(total) FROM check_hourly").fetchone()[0]
    assert total == 4
    with ResultStore(path) as store:
        daily = store.connection.execute(
            "SELECT period, check_id, total, failed FROM check_daily ORDER BY 1, 2"
        ).fetchall()
    assert daily == [("2026-11-20", "canary-443", 2, 1), ("2026-11-20", "mcr-443", 2, 0)]
