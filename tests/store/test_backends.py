"""The one store suite, run against both backends: a real SQLite file and a real PostgreSQL.

Each test gets a store location that does not exist yet (a file path, or the DSN of an empty
database on the session's PostgreSQL server) and checks what a user relies on: whole runs
only, exact summaries, migrations, no accidental creation, newer schemas refused, many
writers, and writers killed inside their transaction.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from egress.errors import ExitCode, PlanFileError, StoreError
from egress.results import CheckRecord, RunReport, Verdict
from egress.store import (
    LATEST_VERSION,
    Connection,
    ResultStore,
    _schema,
    format_ts,
    ingest_files,
    rebuild_summaries,
)
from egress.store._schema import MIGRATIONS
from egress.store._store import _RUN_COLUMNS, Database, _run_row, open_database
from egress.store._summary import SUMMARY_TABLES, micros, micros_sql
from egress.store.queries import status_counts

from store.sample_runs import BASE, cluster_writer_worker, fixed_history, make_run
from store.summaries import named_rows

SPAWN = multiprocessing.get_context("spawn")


def _summary_rows(store: ResultStore, table: str) -> list[tuple[object, ...]]:
    rows = store.connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")
    return [tuple(int(v) for v in row) for row in rows.fetchall()]


def _recount(runs: list[RunReport]) -> dict[tuple[str, ...], int]:
    """Hourly results per status recomputed in Python from the runs (not by the store's SQL)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for run in runs:
        hour = run.started_at.strftime("%Y-%m-%dT%H")
        for check in run.checks:
            where = (run.location.cluster or "", run.location.node_pool or "")
            counts[(hour, *where, check.check_id, check.status.value)] += 1
    return dict(counts)


def _stored_counts(store: ResultStore) -> dict[tuple[str, ...], int]:
    counts: Counter[tuple[str, ...]] = Counter()
    for row in named_rows(store.connection, "check_hourly"):
        counts[(*row[:4], row[7])] += row[9]
    return dict(counts)


def test_a_run_reads_back_whole_and_a_duplicate_is_ignored(store_location: str) -> None:
    run = make_run("r1", BASE, overrides={"mcr-443": Verdict.BLOCKED})
    with ResultStore(store_location) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.append_run(run) is True
        assert store.append_run(make_run("r1", BASE + timedelta(hours=1))) is False
        assert store.read_run("r1") == run
        assert store.run_ids() == ["r1"]
        doubled = run.model_copy(update={"run_id": "r2", "checks": (*run.checks, run.checks[0])})
        with pytest.raises(PlanFileError, match="mcr-443"):
            store.append_run(doubled)
        assert store.run_ids() == ["r1"]


def test_summaries_match_an_independent_recount_and_a_rebuild(store_location: str) -> None:
    history = fixed_history()
    with ResultStore(store_location) as store:
        for run in history:
            store.append_run(run)
        assert _stored_counts(store) == _recount(history)
        incremental = [_summary_rows(store, t) for t in ("check_hourly", "check_daily")]
        store.write_transaction(rebuild_summaries)
        assert [_summary_rows(store, t) for t in ("check_hourly", "check_daily")] == incremental


def test_a_report_never_creates_a_store(store_location: str) -> None:
    with pytest.raises(StoreError, match=r"does not exist|holds no egress runs") as caught:
        ResultStore(store_location, create=False)
    assert caught.value.exit_code is ExitCode.ENVIRONMENT
    if store_location.startswith("postgresql://"):
        with ResultStore(store_location, create=True) as store:  # still empty: creates now
            assert store.run_ids() == []
    else:
        assert not Path(store_location).exists()


def test_a_schema_from_a_newer_egress_is_refused_untouched(store_location: str) -> None:
    with ResultStore(store_location) as store:
        store.append_run(make_run("r1", BASE))
    db = open_database(store_location, create=False, verify=False)
    db.transaction(lambda conn: db.set_schema_version(conn, LATEST_VERSION + 1))
    db.close()
    for create in (True, False):
        with pytest.raises(StoreError, match="newer than this egress") as caught:
            ResultStore(store_location, create=create)
        assert caught.value.exit_code is ExitCode.ENVIRONMENT
    db = open_database(store_location, create=False, verify=False)
    assert db.schema_version() == LATEST_VERSION + 1
    assert db.connection.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    db.close()


_V1_RUN_COLUMNS = ", ".join(_RUN_COLUMNS.split(", ")[:12])  # without node_ip, pod_ip (v4)
_V1_CHECK_COLUMNS = (
    "run",
    "check_id",
    "host",
    "port",
    "transport",
    "kind",
    "expectation",
    "destination",
    "rule",
    "feature",
    "required",
    "verdict",
    "compliant",
    "reason",
    "evidence",
    "attempts",
    "started_at",
    "finished_at",
    "duration_ms",
)


def _v1_check_row(pk: int, check: CheckRecord) -> tuple[object, ...]:
    """A check row exactly as a version-1 egress wrote it."""
    attempts = [attempt.model_dump(mode="json") for attempt in check.attempts]
    return (
        pk,
        check.check_id,
        check.host,
        check.port,
        check.transport,
        check.kind.value,
        check.expectation.value,
        check.destination,
        check.rule,
        check.feature,
        int(check.required),
        check.verdict.value,
        None if check.compliant is None else int(check.compliant),
        check.reason,
        json.dumps(check.evidence, sort_keys=True),
        json.dumps(attempts, sort_keys=True),
        format_ts(check.started_at),
        format_ts(check.finished_at),
        (check.finished_at - check.started_at).total_seconds() * 1000,
    )


def test_a_version_1_store_migrates_and_keeps_its_runs(store_location: str) -> None:
    runs = fixed_history()[:4]
    db = open_database(store_location, create=True, verify=False)

    def version_1(conn: Connection) -> None:
        MIGRATIONS[0](conn, db.dialect)
        db.set_schema_version(conn, 1)
        for run in runs:
            pk = conn.execute(
                f"INSERT INTO runs ({_V1_RUN_COLUMNS}) VALUES ({', '.join('?' * 12)}) RETURNING id",
                _run_row(run)[:12],
            ).fetchone()[0]
            rows = [_v1_check_row(pk, check) for check in run.checks]
            db.insert_many(conn, "checks", _V1_CHECK_COLUMNS, rows)

    db.transaction(version_1)
    db.close()
    with ResultStore(store_location, create=False) as store:
        assert store.schema_version == LATEST_VERSION
        assert _stored_counts(store) == _recount(runs)
        # version 1 knew no assurance: a blocked canary reads back without one
        stored = [store.read_run(r.run_id) for r in runs]
        assert [s.checks if s else None for s in stored] == [
            tuple(c.model_copy(update={"assurance": None}) for c in r.checks) for r in runs
        ]


def test_ingest_loads_lines_and_is_idempotent(store_location: str, tmp_path: Path) -> None:
    history = fixed_history()
    lines = tmp_path / "logs.jsonl"
    lines.write_text(
        "".join(check.model_dump_json() + "\n" for run in history for check in run.checks)
    )
    with ResultStore(store_location) as store:
        first = ingest_files(store, [lines])
        again = ingest_files(store, [lines])
        assert (first.runs_added, first.checks_added, first.rejected) == (12, 60, ())
        assert (again.runs_added, again.runs_already_stored) == (0, 12)
        stored = store.read_run("gpu-5")
        assert stored is not None
        assert stored.checks == next(r for r in history if r.run_id == "gpu-5").checks


def test_prune_keeps_whole_days_and_exact_summaries(store_location: str) -> None:
    runs = [
        make_run(f"d{d}h{h}", BASE + timedelta(days=d, hours=h)) for d in range(3) for h in (1, 13)
    ]
    with ResultStore(store_location) as store:
        store.append_runs(runs)
        deleted, _ = store.prune(BASE + timedelta(days=1, hours=5))
        assert deleted == 2
        assert _stored_counts(store) == _recount(runs[2:])


def _open_transactions(store_location: str) -> int:
    """Transactions left open by egress writers (PostgreSQL) / whether the lock is held."""
    db = open_database(store_location, create=False, verify=False)
    try:
        if db.dialect.name == "postgresql":
            row = db.connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'egress' "
                "AND state LIKE 'idle in transaction%'"
            ).fetchone()
            return int(row[0])
        import sqlite3

        probe = sqlite3.connect(store_location, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return 0
        except sqlite3.OperationalError:
            return 1
        finally:
            probe.close()
    finally:
        db.close()


def test_twenty_writers_some_killed_mid_transaction_lose_nothing(store_location: str) -> None:
    """One writer per cluster; every fifth freezes inside its fourth run and is killed there."""
    with ResultStore(store_location) as store:  # created once, as the first CronJob would
        assert store.run_ids() == []
    runs_each, killed = 6, {f"c{n:02d}" for n in range(0, 20, 5)}
    workers = {}
    for n in range(20):
        cluster = f"c{n:02d}"
        ready = SPAWN.Event()
        freeze_at = 3 if cluster in killed else -1
        process = SPAWN.Process(
            target=cluster_writer_worker,
            args=(store_location, cluster, runs_each, freeze_at, ready),
        )
        process.start()
        workers[cluster] = (process, ready)
    pending, deadline = set(killed), time.monotonic() + 120
    while pending:  # kill each frozen writer as soon as it holds its open transaction
        assert time.monotonic() < deadline, f"writers {sorted(pending)} never froze"
        for cluster in sorted(c for c in pending if workers[c][1].is_set()):
            assert _open_transactions(store_location) >= 1
            process = workers[cluster][0]
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=30)
            pending.discard(cluster)
        time.sleep(0.02)
    for cluster, (process, _) in workers.items():
        process.join(timeout=180)
        assert process.exitcode == (-signal.SIGKILL if cluster in killed else 0), cluster
    deadline = time.monotonic() + 10  # the server notices the dead clients' sockets
    while _open_transactions(store_location) and time.monotonic() < deadline:
        time.sleep(0.1)
    expected = [
        make_run(f"{c}-{n}", BASE + timedelta(minutes=5 * n), cluster=c, node_pool="pool")
        for c in sorted(workers)
        for n in range(3 if c in killed else runs_each)
    ]
    with ResultStore(store_location, create=False, verify=True) as store:
        assert sorted(store.run_ids()) == sorted(r.run_id for r in expected)
        assert all(store.read_run(r.run_id) == r for r in expected)
        checks = store.connection.execute("SELECT count(*) FROM checks").fetchone()[0]
        assert int(checks) == 5 * len(expected)  # no half-written run left any rows
        assert _stored_counts(store) == _recount(expected)
        assert store.append_run(make_run("after", BASE, cluster="c00"))  # still writable


def test_unchanged_results_share_one_outcome_and_every_result_reads_back_whole(
    store_location: str,
) -> None:
    """Timings and source ports change every run, yet an unchanged passing check is stored
    once; a leak whose evidence differs run to run keeps each evidence whole."""
    runs = []
    for n in range(12):
        leak = {"canary-bing-443": Verdict.REACHABLE} if n in (5, 9) else {}
        run = make_run(f"r{n}", BASE + timedelta(minutes=5 * n), overrides=leak)
        checks = []
        for index, check in enumerate(run.checks):
            attempt = check.attempts[0]
            phases = tuple(
                p.model_copy(update={"duration_ms": p.duration_ms + n * 0.125 + index})
                for p in attempt.phases
            )
            moved = attempt.model_copy(
                update={
                    "phases": phases,
                    "started_at": attempt.started_at + timedelta(milliseconds=n),
                    "local_address": f"10.244.3.{n + 10}",  # a new pod IP each run
                    "local_port": 40000 + 7 * n + index,
                }
            )
            evidence = {**check.evidence, "local_port": 40000 + 7 * n + index}
            if check.check_id in leak:
                evidence["server"] = f"edge-{n}"  # the leak's evidence is new each time
            checks.append(check.model_copy(update={"attempts": (moved,), "evidence": evidence}))
        where = run.location.model_copy(
            update={"node_ip": "10.240.0.4", "pod_ip": f"10.244.3.{n + 10}"}
        )
        located = [c.model_copy(update={"location": where}) for c in checks]
        runs.append(run.model_copy(update={"checks": tuple(located), "location": where}))
    with ResultStore(store_location) as store:

        def count(table: str) -> int:
            return int(store.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

        store.append_run(runs[0])
        first = count("outcomes")  # outcomes are content: equal results of two checks share one
        assert 0 < first <= 5
        store.append_runs(runs[1:])
        assert count("check_defs") == 5
        assert count("outcomes") == first + 2  # only the two leaks, each with its own evidence
        assert [store.read_run(r.run_id) for r in runs] == runs


def test_bulk_rows_keep_every_character_and_null(store_location: str) -> None:
    """The bulk path (COPY text format on PostgreSQL) escapes what it must."""
    nasty = ["tab\there", "new\nline", "back\\slash", "\\N", "cr\rlf", "", "ünïcode ✓"]
    db = open_database(store_location, create=True, verify=False)
    try:

        def roundtrip(conn: Connection) -> list[tuple[object, ...]]:
            conn.execute(f"CREATE TABLE scratch (n INTEGER, t TEXT, x {db.dialect.real})")
            rows = [(n, text, n / 3) for n, text in enumerate(nasty)] + [(99, None, None)]
            db.insert_many(conn, "scratch", ("n", "t", "x"), rows)
            return [tuple(r) for r in conn.execute("SELECT n, t, x FROM scratch ORDER BY n")]

        stored = db.transaction(roundtrip)
    finally:
        db.close()
    assert stored == [(n, text, n / 3) for n, text in enumerate(nasty)] + [(99, None, None)]


def _hourly_indexes(store: ResultStore) -> set[str]:
    if store.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE tablename = 'check_hourly'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'check_hourly'"
    return {str(row[0]) for row in store.connection.execute(query)}


def _old_store(
    store_location: str, version: int, runs: list[RunReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written by the egress of schema `version` (4 or 5): the same result rows, and
    version-3 summaries exactly as that egress kept them (its appends equalled a rebuild)."""
    import egress.store._store as store_module

    with monkeypatch.context() as old_egress:
        old_egress.setattr(store_module, "MIGRATIONS", MIGRATIONS[:version])
        old_egress.setattr(store_module, "LATEST_VERSION", version)
        old_egress.setattr(store_module, "_summary_counts", lambda *args: {})
        with ResultStore(store_location) as store:
            store.append_runs(runs)
            store.write_transaction(_schema._rebuild_v3_summaries)
            assert store.schema_version == version


def _v3_summary_rows(db: Database, table: str) -> list[tuple[object, ...]]:
    rows = db.connection.execute(
        "SELECT period, cluster, node_pool, check_id, expectation, required, verdict, status, "
        f"assurance, results, first_at, last_at FROM {table}"
    ).fetchall()
    return sorted((*row[:5], int(row[5]), *row[6:9], int(row[9]), *row[10:]) for row in rows)


def test_a_version_4_store_migrates_and_keeps_its_runs(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = fixed_history()
    _old_store(store_location, 4, runs[:-2], monkeypatch)
    with ResultStore(store_location) as store:
        assert store.schema_version == LATEST_VERSION
        store.append_runs(runs[-2:])  # the new version keeps writing the same rows
        assert _stored_counts(store) == _recount(runs)
        assert [store.read_run(r.run_id) for r in runs] == runs
        if store.dialect.name == "postgresql":
            references = store.connection.execute(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'checks'::regclass "
                "AND contype = 'f'"
            ).fetchone()
            assert references is not None and int(references[0]) == 1  # run, for prune


def test_a_version_5_store_migrates_to_narrow_summaries_saying_the_same(
    store_location: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs = fixed_history()
    _old_store(store_location, 5, runs[:-3], monkeypatch)
    db = open_database(store_location, create=False, verify=False)
    try:  # what version 5 holds, read before anything migrates it
        version_5 = {t: _v3_summary_rows(db, t) for t in SUMMARY_TABLES}
    finally:
        db.close()
    assert len(version_5["check_hourly"]) > len(version_5["check_daily"]) > 0
    with ResultStore(store_location, create=False) as store:
        assert store.schema_version == LATEST_VERSION == 6
        if store.dialect.name == "postgresql":
            query = "SELECT indexname FROM pg_indexes"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        indexes = {row[0] for row in store.connection.execute(query)}
        assert {"runs_by_region", "check_hourly_by_endpoint"} <= indexes
        # row for row the narrow summaries say what the text ones said, times included
        assert {t: named_rows(store.connection, t) for t in SUMMARY_TABLES} == version_5
        store.append_runs(runs[-3:])
        assert _stored_counts(store) == _recount(runs)
        assert [store.read_run(r.run_id) for r in runs] == runs
        migrated = {t: named_rows(store.connection, t) for t in SUMMARY_TABLES}
        since, until = BASE - timedelta(minutes=30), BASE + timedelta(days=1, minutes=7)
        counts = status_counts(store.connection, since, until)
        incremental = [_summary_rows(store, t) for t in SUMMARY_TABLES]
        store.write_transaction(rebuild_summaries)
        assert [_summary_rows(store, t) for t in SUMMARY_TABLES] == incremental
        if store.dialect.name == "postgresql":
            options = store.connection.execute(
                "SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'check_%ly'"
            ).fetchall()
            assert dict(options) == {
                "check_hourly": ["fillfactor=50"],
                "check_daily": ["fillfactor=50"],
            }
    # the same runs written by version 6 alone: the same summaries and the same counts
    with ResultStore(tmp_path / "fresh.sqlite") as fresh:
        fresh.append_runs(runs)
        assert {t: named_rows(fresh.connection, t) for t in SUMMARY_TABLES} == migrated
        assert status_counts(fresh.connection, since, until) == counts


def test_stored_timestamps_become_the_same_microseconds_in_sql_as_in_python(
    store_location: str,
) -> None:
    """The rebuild's date arithmetic agrees with Python on leap days, month and year ends."""
    moments = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2000, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 30, 5, 250000, tzinfo=UTC),
        datetime(2100, 3, 1, 0, 0, 0, 7, tzinfo=UTC),
    ]
    with ResultStore(store_location) as store:
        for moment in moments:
            row = store.connection.execute(
                f"WITH t (v) AS (VALUES (?)) SELECT {micros_sql('v')} FROM t", (format_ts(moment),)
            ).fetchone()
            assert int(row[0]) == micros(moment), moment
