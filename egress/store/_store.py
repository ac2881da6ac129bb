"""`ResultStore`: every probe run, written one whole run at a time, in SQLite or PostgreSQL."""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from egress.errors import PlanFileError, StoreError
from egress.results import RunReport
from egress.store._compact import (
    DEF_COLUMNS,
    OUTCOME_COLUMNS,
    Outcome,
    definition,
    intern,
    join,
    split,
)
from egress.store._dialect import Connection, Dialect
from egress.store._postgres import PostgresAuth, PostgresDatabase, TokenSource, is_dsn
from egress.store._schema import LATEST_VERSION, MIGRATIONS
from egress.store._sqlite import SqliteDatabase
from egress.store._summary import (
    CLASS_COLUMNS,
    SCOPE_COLUMNS,
    SUMMARY_TABLES,
    Counts,
    add_run,
    class_key,
    intern_keys,
    micros,
    write_counts,
)

T = TypeVar("T")

_RUN_COLUMNS = (
    "run_id, cluster, region, cloud, node_pool, node, pod, namespace, plan_hash, "
    "tool_version, started_at, finished_at, node_ip, pod_ip"
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

    def set_schema_version(self, conn: Connection, version: int) -> None: ...

    def lock_for_migration(self, conn: Connection) -> None: ...

    def insert_many(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...

    def insert_new(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> list[tuple[int, Any]]:
        """Insert rows of text columns whose first column (a unique key) is not stored yet;
        (id, key) of each row inserted (ON CONFLICT DO NOTHING: any writer's row wins)."""
        ...

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
        """Store whole runs in one transaction (all or none); the ids of those that were new.

        Everything but the SQL is computed first, so the transaction (and a retry) is short.
        """
        with acyclic_work():  # staging makes a few acyclic objects per check
            return self._append_runs(runs)

    def _append_runs(self, runs: Sequence[RunReport]) -> tuple[str, ...]:
        for run in runs:
            check_run(run)
        db = self._db
        with _Staging(runs, in_thread=_STAGE_IN_THREAD) as staging:

            def write(conn: Connection) -> tuple[str, ...]:
                new: list[_StagedRun] = []
                def_ids: dict[str, int] = {}
                outcome_ids: dict[str, int] = {}
                for chunk in staging:  # chunk k+1 is staged meanwhile (GIL free while we wait)
                    fresh = _insert_runs(db, conn, chunk)
                    defs = {
                        d: r for run, _ in fresh for d, r in run.defs.items() if d not in def_ids
                    }
                    outcomes = {
                        o.digest: o.row
                        for run, _ in fresh
                        for o in run.outcomes
                        if o.digest not in outcome_ids
                    }
                    def_ids.update(intern(conn, "check_defs", DEF_COLUMNS, defs))
                    outcome_ids.update(intern(conn, "outcomes", OUTCOME_COLUMNS, outcomes))
                    rows = [
                        (pk, position, def_ids[d], outcome_ids[o.digest], timing)
                        for run, pk in fresh
                        for position, (d, o, timing) in enumerate(
                            zip(run.def_digests, run.outcomes, run.timings, strict=True)
                        )
                    ]
                    db.insert_many(conn, "checks", _RESULT_COLUMNS, rows)
                    new.extend(run for run, _ in fresh)
                counts = _summary_counts(conn, new, def_ids)
                write_counts(conn, db.dialect, db.insert_many, counts)
                return tuple(run.run_id for run in new)

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
            for table, (unit, _) in SUMMARY_TABLES.items():
                conn.execute(f"DELETE FROM {table} WHERE period < ?", (micros(cutoff) // unit,))
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
        location["node_ip"] = run["node_ip"]
        location["pod_ip"] = run["pod_ip"]
        identity = {
            "run_id": run["run_id"],
            "plan_hash": run["plan_hash"],
            "tool_version": run["tool_version"],
            "cloud": run["cloud"],
            "region": run["region"],
            "location": location,
        }
        run_started = parse_ts(run["started_at"])
        checks = [
            _check_dict(dict(zip(_READ_COLUMNS, r, strict=True)), identity, run_started)
            for r in self.connection.execute(
                f"SELECT {', '.join(_READ_COLUMNS)} FROM check_results WHERE run = ? "
                "ORDER BY position",
                (run["pk"],),
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
        where.node_ip,
        where.pod_ip,
    )


@contextmanager
def acyclic_work() -> Iterator[None]:
    """Pause Python's cycle collector while building many acyclic objects (runs, rows).

    Each full collection walks every live object; a batch of runs is ~20 tracked objects
    per check, none in a cycle, so the collections during a bulk write or read find nothing
    and cost more than the encoding (40 % of append_runs' CPU on the store benchmark).
    Reference counting still frees everything; the collector's previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class _StagedRun:
    """A run as rows, computed before its transaction begins."""

    run_id: str
    row: tuple[Any, ...]
    def_digests: tuple[str, ...]
    defs: dict[str, tuple[Any, ...]]
    outcomes: tuple[Outcome, ...]
    timings: tuple[str, ...]


def _stage(run: RunReport) -> _StagedRun:
    digests, defs, outcomes, timings = [], {}, [], []
    for check in run.checks:
        def_digest, values = definition(check)
        digests.append(def_digest)
        defs[def_digest] = values
        outcome, timing = split(check, run.started_at)
        outcomes.append(outcome)
        timings.append(timing)
    return _StagedRun(
        run.run_id, _run_row(run), tuple(digests), defs, tuple(outcomes), tuple(timings)
    )


def _stage_chunk(runs: Sequence[RunReport]) -> list[_StagedRun]:
    return [_stage(run) for run in runs]


class _Staging:
    """The runs of one `append_runs`, staged in chunks of up to `_STAGE_CHUNK` runs, in order.

    In a worker thread, chunk k+1 is encoded while the transaction writes chunk k (the
    connection releases the GIL while it waits for the server); otherwise all are staged
    up front. Either way chunk 0 is staged before the transaction begins, and each chunk is
    staged once: a retried transaction writes the very same rows again.
    """

    def __init__(self, runs: Sequence[RunReport], *, in_thread: bool) -> None:
        # a short first chunk: the transaction waits for it alone, then the worker keeps ahead
        first = runs[:_FIRST_CHUNK]
        rest = runs[_FIRST_CHUNK:]
        chunks = [first, *(rest[i : i + _STAGE_CHUNK] for i in range(0, len(rest), _STAGE_CHUNK))]
        self._worker: ThreadPoolExecutor | None = None
        self._staged: list[Future[list[_StagedRun]] | list[_StagedRun]]
        if in_thread and len(chunks) > 1:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="egress-stage")
            self._staged = [_stage_chunk(chunks[0])]
            self._staged += [self._worker.submit(_stage_chunk, c) for c in chunks[1:]]
        else:
            self._staged = [_stage_chunk(chunk) for chunk in chunks]

    def __iter__(self) -> Iterator[list[_StagedRun]]:
        for index, entry in enumerate(self._staged):
            if isinstance(entry, Future):
                self._staged[index] = entry.result()
            staged = self._staged[index]
            assert not isinstance(staged, Future)
            yield staged

    def __enter__(self) -> _Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._worker is not None:  # after a failure, stop staging what will not be written
            self._worker.shutdown(wait=True, cancel_futures=True)


def _insert_runs(
    db: Database, conn: Connection, chunk: Sequence[_StagedRun]
) -> list[tuple[_StagedRun, int]]:
    """Insert the chunk's runs rows; the runs that were new, with their row ids.

    A run id already stored (also after a retried, ambiguous commit) is skipped, and so is
    a second copy of a run id within the same call.
    """
    pks = {
        str(run_id): pk
        for pk, run_id in db.insert_new(conn, "runs", _RUN_NAMES, [run.row for run in chunk])
    }
    fresh = []
    for run in chunk:
        pk = pks.pop(run.run_id, None)
        if pk is not None:
            fresh.append((run, pk))
    return fresh


def _summary_counts(
    conn: Connection, runs: Sequence[_StagedRun], def_ids: dict[str, int]
) -> dict[str, Counts]:
    """What `runs` add to each summary table (scope and class ids interned first)."""
    scope_ids = intern_keys(conn, "scopes", SCOPE_COLUMNS, [_scope(run) for run in runs])
    class_ids = intern_keys(
        conn,
        "result_classes",
        CLASS_COLUMNS,
        {class_key(o.verdict, o.status, o.assurance) for run in runs for o in run.outcomes},
    )
    counts: dict[str, Counts] = {}
    for run in runs:
        results = [
            (def_ids[d], class_ids[class_key(o.verdict, o.status, o.assurance)])
            for d, o in zip(run.def_digests, run.outcomes, strict=True)
        ]
        started = micros(parse_ts(run.row[_STARTED_AT]))
        add_run(counts, started, scope_ids[_scope(run)], results)
    return counts


def _scope(run: _StagedRun) -> tuple[str, str]:
    return (run.row[_CLUSTER], run.row[_NODE_POOL])


_RESULT_COLUMNS = ("run", "position", "def", "outcome", "timing")
_RUN_NAMES = tuple(_names(_RUN_COLUMNS))
_CLUSTER, _NODE_POOL, _STARTED_AT = (
    _names(_RUN_COLUMNS).index(name) for name in ("cluster", "node_pool", "started_at")
)
_READ_COLUMNS = (*DEF_COLUMNS, "verdict", "status", "assurance", "body", "timing")
_STAGE_CHUNK = 100  # runs staged, then written, at a time
_FIRST_CHUNK = 10  # staged before the transaction begins
_STAGE_IN_THREAD = True  # tests turn the worker thread off to compare with the serial path


def _check_dict(
    row: dict[str, Any], identity: dict[str, Any], run_started: datetime
) -> dict[str, Any]:
    joined = join(row["body"], row["timing"], run_started)
    return {
        **identity,
        **{name: row[name] for name in DEF_COLUMNS},
        "required": bool(row["required"]),
        "verdict": row["verdict"],
        "status": row["status"],
        "assurance": row["assurance"],
        "assumption": joined.assumption,
        "reason": joined.reason,
        "evidence": joined.evidence,
        "attempts": joined.attempts,
        "started_at": joined.started_at,
        "finished_at": joined.finished_at,
    }
