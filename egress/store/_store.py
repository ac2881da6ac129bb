"""`ResultStore`: every probe run, written one whole run at a time, in SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from egress.errors import PlanFileError, StoreError
from egress.results import CheckRecord, RunReport
from egress.store._dialect import Connection, Dialect
from egress.store._postgres import PostgresAuth, PostgresDatabase, TokenSource, is_dsn
from egress.store._schema import (
    LATEST_VERSION,
    MIGRATIONS,
    SUMMARY_TABLES,
    upsert_summary_for_run,
)
from egress.store._sqlite import SqliteDatabase

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


class Database(Protocol):
    """One backend (SQLite file or PostgreSQL server) under the shared store logic."""

    dialect: Dialect
    label: str  # the file or the redacted DSN, for messages

    @property
    def connection(self) -> Connection: ...

    def close(self) -> None: ...

    def verify(self) -> None: ...

    def schema_version(self) -> int: ...

    def is_empty(self) -> bool: ...

    def set_schema_version(self, conn: Connection, version: int) -> None: ...

    def lock_for_migration(self, conn: Connection) -> None: ...

    def insert_many(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...

    def transaction(self, work: Callable[[Connection], T]) -> T: ...

    def backup_to(self, target: Path) -> None: ...


def open_database(
    location: Path | str,
    *,
    create: bool,
    verify: bool,
    auth: PostgresAuth | None = None,
    credential: TokenSource | None = None,
    wait_s: float = 15.0,
) -> Database:
    """`postgresql://...` picks PostgreSQL; anything else is the path of an SQLite file.

    `wait_s` bounds how long a writer waits for a busy store (per attempt) before giving up.
    """
    if isinstance(location, str) and is_dsn(location):
        return PostgresDatabase(
            location,
            auth=auth if auth is not None else PostgresAuth.from_env(os.environ),
            credential=credential,
        )
    return SqliteDatabase(
        Path(location),
        create=create,
        verify=verify,
        busy_timeout_s=wait_s,
        retries=8 if wait_s >= 5 else 3,
    )


def check_run(run: RunReport) -> None:
    """A run the store can hold: each check id once (PlanFileError otherwise)."""
    duplicates = sorted(i for i, n in Counter(c.check_id for c in run.checks).items() if n > 1)
    if duplicates:
        raise PlanFileError(
            f"run {run.run_id} holds check id(s) {', '.join(duplicates)} more than once; a "
            "run must report each check once."
        )


class ResultStore:
    """An append-only history of probe runs, in SQLite or PostgreSQL (versioned schema).

    Each :meth:`append_run` is one transaction, so readers and a crash only ever see whole
    runs. Many processes may append at once: each backend serialises or retries conflicting
    writers a bounded number of times. `create=False` (reports) never creates a store, and
    `verify=True` also checks every page (SQLite's quick_check) before anything is read.
    """

    def __init__(
        self,
        location: Path | str,
        *,
        create: bool = True,
        verify: bool = False,
        auth: PostgresAuth | None = None,
        credential: TokenSource | None = None,
        wait_s: float = 15.0,
    ) -> None:
        self._db = open_database(
            location, create=create, verify=verify, auth=auth, credential=credential, wait_s=wait_s
        )
        self.label = self._db.label
        try:
            self._migrate(create=create)
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

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
    def connection(self) -> Connection:
        """The open connection, for the read queries in `egress.store.queries`."""
        return self._db.connection

    @property
    def dialect(self) -> Dialect:
        return self._db.dialect

    @property
    def schema_version(self) -> int:
        return self._db.schema_version()

    def backup_to(self, target: Path) -> None:
        self._db.backup_to(target)

    # -- writing -------------------------------------------------------------------------

    def append_run(self, run: RunReport) -> bool:
        """Store a whole run in one transaction; False if its run id is already stored."""
        return bool(self.append_runs([run]))

    def append_runs(self, runs: Sequence[RunReport]) -> tuple[str, ...]:
        """Store whole runs in one transaction (all or none); the ids of those that were new."""
        for run in runs:
            check_run(run)
        rows = [
            (run.run_id, _run_row(run), [_check_row(check) for check in run.checks]) for run in runs
        ]

        def write(conn: Connection) -> tuple[str, ...]:
            added: list[str] = []
            for run_id, run_row, check_rows in rows:
                inserted = conn.execute(
                    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(12)}) "
                    "ON CONFLICT (run_id) DO NOTHING RETURNING id",
                    run_row,
                ).fetchone()
                if inserted is None:
                    continue  # already stored (also after a retried, ambiguous commit)
                run_pk = int(inserted[0])
                self._db.insert_many(
                    conn, "checks", _names(_CHECK_COLUMNS), [(run_pk, *r) for r in check_rows]
                )
                for table in SUMMARY_TABLES:
                    conn.execute(upsert_summary_for_run(table), (run_pk,))
                added.append(run_id)
            return tuple(added)

        return self.write_transaction(write)

    def prune(self, before: datetime) -> tuple[int, datetime]:
        """Delete whole days of runs that started before `before`'s day; (runs, cutoff).

        The cutoff is rounded down to midnight UTC so the summary tables stay exact. Freed
        pages are reused by later appends (the file does not shrink without VACUUM).
        """
        cutoff = parse_ts(format_ts(before)).replace(hour=0, minute=0, second=0, microsecond=0)
        stamp = format_ts(cutoff)

        def delete(conn: Connection) -> int:
            old_runs = "SELECT id FROM runs WHERE started_at < ?"
            conn.execute(f"DELETE FROM checks WHERE run IN ({old_runs})", (stamp,))
            deleted = conn.execute("DELETE FROM runs WHERE started_at < ?", (stamp,)).rowcount
            for table, width in SUMMARY_TABLES.items():
                conn.execute(f"DELETE FROM {table} WHERE period < ?", (stamp[:width],))
            return int(deleted)

        return self.write_transaction(delete), cutoff

    def write_transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction (bounded retries while the store is busy)."""
        return self._db.transaction(work)

    def _migrate(self, *, create: bool) -> None:
        version = self._db.schema_version()
        if version > LATEST_VERSION:
            raise StoreError(
                f"result store {self.label} has schema version {version}, newer than this "
                f"egress understands ({LATEST_VERSION}); upgrade egress (nothing was changed)."
            )
        if version == LATEST_VERSION:
            return
        if version == 0 and not create:
            raise StoreError(
                f"result store {self.label} holds no egress runs yet (no egress schema); point "
                "--store at the store the probe writes (a report never creates one)."
            )
        db = self._db

        def upgrade(conn: Connection) -> None:
            db.lock_for_migration(conn)
            current = db.schema_version()  # another process may have migrated meanwhile
            if current > LATEST_VERSION:
                raise StoreError(
                    f"result store {self.label} was just upgraded to schema version {current} "
                    f"by a newer egress; upgrade this one ({LATEST_VERSION})."
                )
            for step in MIGRATIONS[current:]:
                step(conn, db.dialect)
            db.set_schema_version(conn, LATEST_VERSION)

        self.write_transaction(upgrade)

    # -- reading back --------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        """Every stored run id, oldest first."""
        rows = self.connection.execute("SELECT run_id FROM runs ORDER BY started_at, run_id")
        return [str(row[0]) for row in rows]

    def has_run(self, run_id: str) -> bool:
        query = "SELECT 1 FROM runs WHERE run_id = ?"
        return self.connection.execute(query, (run_id,)).fetchone() is not None

    def read_run(self, run_id: str) -> RunReport | None:
        """The stored run as the RunReport that was appended (times normalised to UTC)."""
        row = self.connection.execute(
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
            for r in self.connection.execute(
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
