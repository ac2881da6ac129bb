"""The SQLite backend: one local file in WAL mode, checked before anything trusts it.

Opening a store checks, in order, that the file exists (unless the command creates stores),
that it is a SQLite file (its 16-byte header), that it belongs to egress (`application_id`,
or the egress tables in a store older than that mark), that its schema is not newer than
this egress, and, when asked (reports, backups), that `PRAGMA quick_check` passes. Every
failure is a StoreError naming the file and what to do, never an empty report.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from egress.errors import StoreError
from egress.store._dialect import SQLITE, Connection, Dialect

T = TypeVar("T")

HEADER = b"SQLite format 3\x00"
# PRAGMA application_id of an egress store: "EGRS" as a big-endian 32-bit integer.
APPLICATION_ID = 0x45475253


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _is_damage(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def damaged(path: Path, detail: str) -> StoreError:
    """The one message for a damaged store: what failed and how to recover."""
    return StoreError(
        f"result store {path} is damaged ({detail}); nothing was read or written. Recover "
        f"with `sqlite3 {path} .recover | sqlite3 recovered.sqlite` (or restore a copy made "
        "by `egress report backup`) and point --store at the recovered file."
    )


class SqliteDatabase:
    """A store file opened and checked; `transaction` is the one way to write."""

    dialect: Dialect = SQLITE

    def __init__(
        self,
        path: Path,
        *,
        create: bool,
        verify: bool,
        busy_timeout_s: float = 15.0,
        retries: int = 8,
    ) -> None:
        self.path = path
        self.label = str(path)
        self._retries = retries
        self._check_file(create=create)
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            # The URI keeps a report from creating the file, even in a race with a delete.
            mode = "rwc" if create else "rw"
            uri = f"{path.resolve().as_uri()}?mode={mode}"
            self._conn = sqlite3.connect(
                uri, uri=True, timeout=busy_timeout_s, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open result store {path}: {exc}; check the path.") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._check_owner()
            if verify:
                self.verify()
            self.retrying(lambda: self._conn.execute("PRAGMA journal_mode = WAL").fetchone())
            # FULL: a committed run survives power loss too, not only a killed process.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            self._conn.close()
            if _is_damage(exc):
                raise damaged(path, str(exc)) from exc
            raise StoreError(
                f"result store {path} cannot be read ({exc}); check its permissions, or point "
                "--store at another file."
            ) from exc
        except StoreError:
            self._conn.close()
            raise

    # -- checks on open ------------------------------------------------------------------

    def _check_file(self, *, create: bool) -> None:
        path = self.path
        if path.is_dir():
            raise StoreError(f"result store {path} is a directory; point --store at a file.")
        if not path.exists():
            if create:
                return
            raise StoreError(
                f"result store {path} does not exist; point --store at the file that "
                "`egress probe run --store` or `egress report ingest` wrote."
            )
        try:
            with path.open("rb") as handle:
                header = handle.read(len(HEADER))
        except OSError as exc:
            raise StoreError(f"cannot read result store {path}: {exc}; check the path.") from exc
        if not header:
            if create:
                return  # an empty file is where a creating command starts a store
            raise StoreError(
                f"result store {path} is empty (0 bytes), so it holds no runs; point --store "
                "at the file the probe wrote (a report never creates a store)."
            )
        if header != HEADER:
            raise StoreError(
                f"result store {path} cannot be read: it is not an SQLite file (its header is "
                "wrong); point --store at the file the probe wrote."
            )

    def _check_owner(self) -> None:
        app_id = int(self._conn.execute("PRAGMA application_id").fetchone()[0])
        if app_id == APPLICATION_ID:
            return
        tables = {
            str(row[0])
            for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if app_id == 0 and (not tables or {"runs", "checks"} <= tables):
            return  # a new store, or one written before egress set its application_id
        raise StoreError(
            f"{self.path} is an SQLite database of another program, not an egress result "
            "store; point --store at another file."
        )

    def verify(self) -> None:
        """`PRAGMA quick_check`: every page and index readable (O(size), so reports only)."""
        try:
            problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, f"quick_check: {exc}") from exc
        if problems != ["ok"]:
            raise damaged(self.path, "quick_check: " + "; ".join(problems))

    # -- the Database interface ---------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, conn: Connection, version: int) -> None:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {int(version)}")

    def lock_for_migration(self, conn: Connection) -> None:
        """BEGIN IMMEDIATE already holds the only write lock."""

    def insert_many(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        marks = ", ".join("?" * len(columns))
        self._conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def insert_new(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> list[tuple[int, Any]]:
        """One multi-row INSERT (rows x columns stays under SQLite's 32,766 parameters)."""
        if not rows:
            return []
        marks = ", ".join(["(" + ", ".join("?" * len(columns)) + ")"] * len(rows))
        inserted = conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks} "
            f"ON CONFLICT ({columns[0]}) DO NOTHING RETURNING id, {columns[0]}",
            [value for row in rows for value in row],
        )
        return [(int(pk), key) for pk, key in inserted]

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` inside BEGIN IMMEDIATE ... COMMIT, retrying while the store is busy."""
        try:
            return self.retrying(lambda: self._transaction(work))
        except sqlite3.Error as exc:
            if _is_damage(exc):
                raise damaged(self.path, str(exc)) from exc
            raise StoreError(
                f"cannot write to result store {self.path}: {exc}; check that the volume is "
                "writable and not full, and that no other program holds the store locked."
            ) from exc

    def backup_to(self, target: Path) -> None:
        """A consistent, checked copy through SQLite's online backup API.

        Writers may keep appending meanwhile. The copy is made beside the target, checked
        with quick_check, and renamed into place: the target is a whole copy or absent.
        """
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = sqlite3.connect(str(temp), isolation_level=None)
            try:
                self._conn.backup(copy, pages=4096)
                problems = [str(row[0]) for row in copy.execute("PRAGMA quick_check(5)")]
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                copy.close()
            if problems != ["ok"]:
                raise StoreError(f"the copy of {self.path} failed quick_check: {problems}.")
            temp.replace(target)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot back up {self.path} to {target}: {exc}; choose a writable target."
            ) from exc
        finally:
            temp.unlink(missing_ok=True)

    # -- helpers ---------------------------------------------------------------------------

    def retrying(self, action: Callable[[], T]) -> T:
        for attempt in range(self._retries):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt + 1 == self._retries:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable: the loop returns or raises")

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(self._conn)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        return result
