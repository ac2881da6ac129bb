"""`ResultStore`: the SQLite file that keeps every probe run, written one whole run at a time."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from egress.errors import PlanFileError, StoreError
from egress.results import CheckRecord, RunReport
from egress.store._schema import (
    LATEST_VERSION,
    MIGRATIONS,
    SUMMARY_TABLES,
    upsert_summary_for_run,
)

T = TypeVar("T")

_RUN_COLUMNS = (
    "run_id, cluster, region, cloud, node_pool, node, pod, namespace, plan_hash, "
    "tool_version, started_at, finished_at"
)
_CHECK_COLUMNS = (
    "run, check_id, host, port, transport, kind, expectation, destination, rule, feature, "
    "required, verdict, status, assurance, assumption, reason, evidence, attempts, "
    "started_at, finished_at, duration_ms"
)


def format_ts(moment: datetime) -> str:
    """Fixed-width UTC text, so SQL string order is time order (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`format_ts`; always timezone-aware UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class ResultStore:
    """An append-only history of probe runs in one SQLite file (WAL, versioned schema).

    Each :meth:`append_run` is one transaction, so readers and a crash only ever see whole
    runs. Several processes may append at once: SQLite's busy timeout waits for the write
    lock, and a bounded retry covers the rare busy error that the timeout does not.
    """

    def __init__(
        self,
        path: Path,
        *,
        create: bool = True,
        busy_timeout_s: float = 15.0,
        retries: int = 8,
    ) -> None:
        self.path = path
        self._retries = retries
        if not create and not path.is_file():
            raise StoreError(
                f"result store {path} does not exist; point --store at the file that "
                "`egress probe run --store` or `egress report ingest` wrote."
            )
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open result store {path}: {exc}; check the path.") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._retrying(lambda: self._conn.execute("PRAGMA journal_mode = WAL").fetchone())
            # FULL: a committed run survives power loss too, not only a killed process.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(
                f"result store {path} cannot be read ({exc}); it is not an egress store "
                "or is damaged: point --store at another file."
            ) from exc
        except StoreError:
            self._conn.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection, for the read queries in `egress.store.queries`."""
        return self._conn

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- writing -------------------------------------------------------------------------

    def append_run(self, run: RunReport) -> bool:
        """Store a whole run in one transaction; False if its run id is already stored."""
        duplicates = sorted(i for i, n in Counter(c.check_id for c in run.checks).items() if n > 1)
        if duplicates:
            raise PlanFileError(
                f"run {run.run_id} holds check id(s) {', '.join(duplicates)} more than once; "
                "a run must report each check once."
            )
        run_row = _run_row(run)
        check_rows = [_check_row(check) for check in run.checks]

        def write(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone():
                return False
            cursor = conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(12)})", run_row
            )
            run_pk = cursor.lastrowid
            conn.executemany(
                f"INSERT INTO checks ({_CHECK_COLUMNS}) VALUES ({_marks(21)})",
                [(run_pk, *row) for row in check_rows],
            )
            for table in SUMMARY_TABLES:
                conn.execute(upsert_summary_for_run(table), (run_pk,))
            return True

        return self.write_transaction(write)

    def prune(self, before: datetime) -> tuple[int, datetime]:
        """Delete whole days of runs that started before `before`'s day; (runs, cutoff).

        The cutoff is rounded down to midnight UTC so the summary tables stay exact. Freed
        pages are reused by later appends (the file does not shrink without VACUUM).
        """
        cutoff = parse_ts(format_ts(before)).replace(hour=0, minute=0, second=0, microsecond=0)
        stamp = format_ts(cutoff)

        def delete(conn: sqlite3.Connection) -> int:
            old_runs = "SELECT id FROM runs WHERE started_at < ?"
            conn.execute(f"DELETE FROM checks WHERE run IN ({old_runs})", (stamp,))
            deleted = conn.execute("DELETE FROM runs WHERE started_at < ?", (stamp,)).rowcount
            for table, width in SUMMARY_TABLES.items():
                conn.execute(f"DELETE FROM {table} WHERE period < ?", (stamp[:width],))
            return int(deleted)

        return self.write_transaction(delete), cutoff

    def write_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside BEGIN IMMEDIATE ... COMMIT, retrying while the store is busy."""

        try:
            return self._retrying(lambda: self._transaction(work))
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot write to result store {self.path}: {exc}; check that the volume is "
                "writable and not full."
            ) from exc

    def _retrying(self, action: Callable[[], T]) -> T:
        for attempt in range(self._retries):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt + 1 == self._retries:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable: the loop returns or raises")

    def _migrate(self) -> None:
        version = self.schema_version
        if version > LATEST_VERSION:
            raise StoreError(
                f"result store {self.path} has schema version {version}, newer than this "
                f"egress understands ({LATEST_VERSION}); upgrade egress."
            )
        if version == LATEST_VERSION:
            return
        if version == 0 and self._conn.execute("SELECT 1 FROM sqlite_master").fetchone():
            raise StoreError(
                f"{self.path} is an SQLite database of another program, not an egress result "
                "store; point --store at another file."
            )

        def upgrade(conn: sqlite3.Connection) -> None:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for step in MIGRATIONS[current:]:  # another process may have migrated meanwhile
                step(conn)
            conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")

        self._retrying(lambda: self._transaction(upgrade))

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(self._conn)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        return result

    # -- reading back --------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        """Every stored run id, oldest first."""
        rows = self._conn.execute("SELECT run_id FROM runs ORDER BY started_at, run_id")
        return [str(row[0]) for row in rows]

    def has_run(self, run_id: str) -> bool:
        query = "SELECT 1 FROM runs WHERE run_id = ?"
        return self._conn.execute(query, (run_id,)).fetchone() is not None

    def read_run(self, run_id: str) -> RunReport | None:
        """The stored run as the RunReport that was appended (times normalised to UTC)."""
        row = self._conn.execute(
            f"SELECT id, {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        run = dict(zip(["pk", *_names(_RUN_COLUMNS)], row, strict=True))
        location = {key: run[key] or None for key in ("cluster", "node_pool", "node", "pod")}
        location["namespace"] = run["namespace"]
        identity = {
            "run_id": run["run_id"],
            "plan_hash": run["plan_hash"],
            "tool_version": run["tool_version"],
            "cloud": run["cloud"],
            "region": run["region"],
            "location": location,
        }
        checks = [
            _check_dict(dict(zip(_names(_CHECK_COLUMNS), r, strict=True)), identity)
            for r in self._conn.execute(
                f"SELECT {_CHECK_COLUMNS} FROM checks WHERE run = ? ORDER BY id", (run["pk"],)
            )
        ]
        return RunReport.model_validate(
            {
                **identity,
                "started_at": run["started_at"],
                "finished_at": run["finished_at"],
                "checks": checks,
            }
        )

    def iter_runs(self) -> Iterator[RunReport]:
        for run_id in self.run_ids():
            run = self.read_run(run_id)
            if run is not None:
                yield run


def _names(columns: str) -> list[str]:
    return [name.strip() for name in columns.split(",")]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _run_row(run: RunReport) -> tuple[Any, ...]:
    where = run.location
    return (
        run.run_id,
        where.cluster or "",
        run.region,
        run.cloud,
        where.node_pool or "",
        where.node,
        where.pod,
        where.namespace,
        run.plan_hash,
        run.tool_version,
        format_ts(run.started_at),
        format_ts(run.finished_at),
    )


def _check_row(check: CheckRecord) -> tuple[Any, ...]:
    attempts = [attempt.model_dump(mode="json") for attempt in check.attempts]
    duration_ms = (check.finished_at - check.started_at).total_seconds() * 1000
    return (
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
        check.status.value,
        None if check.assurance is None else check.assurance.value,
        check.assumption,
        check.reason,
        json.dumps(check.evidence, sort_keys=True, default=str),
        json.dumps(attempts, sort_keys=True),
        format_ts(check.started_at),
        format_ts(check.finished_at),
        round(duration_ms, 3),
    )


def _check_dict(row: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    return {
        **identity,
        "check_id": row["check_id"],
        "host": row["host"],
        "port": row["port"],
        "transport": row["transport"],
        "kind": row["kind"],
        "expectation": row["expectation"],
        "destination": row["destination"],
        "rule": row["rule"],
        "feature": row["feature"],
        "required": bool(row["required"]),
        "verdict": row["verdict"],
        "status": row["status"],
        "assurance": row["assurance"],
        "assumption": row["assumption"],
        "reason": row["reason"],
        "evidence": json.loads(row["evidence"]),
        "attempts": json.loads(row["attempts"]),
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }
