"""The PostgreSQL backend (psycopg 3): the fleet's shared store, same schema and queries.

`--store postgresql://user@host/db` selects it. TLS is on by default: a DSN that does not
say `sslmode` gets `sslmode=verify-full` against the system CA store. The password comes
from the DSN, PGPASSWORD / PGPASSFILE (read by libpq), a mounted Kubernetes Secret
(EGRESS_STORE_PASSWORD_FILE), or, for Azure Database for PostgreSQL flexible server, an
Entra ID access token from azure-identity (EGRESS_STORE_AUTH=entra), fetched again before it
expires whenever a connection is (re)opened. Every psycopg error is translated here into a
StoreError that names the server (never the password) and what to check.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import conninfo, errors

from egress.errors import StoreError
from egress.store._dialect import POSTGRES, Connection, Cursor, Dialect, to_format_style

T = TypeVar("T")

OWNER = "egress"
# The Entra ID scope of Azure Database for PostgreSQL (flexible server).
ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
# Fetch a new token when the cached one has less than this left (tokens live ~60-90 min).
TOKEN_REFRESH_MARGIN_S = 300.0
_MIGRATION_LOCK = 0x45475253  # pg_advisory_xact_lock key ("EGRS")
_RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected)


class AccessTokenLike(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class TokenSource(Protocol):
    """azure.core's TokenCredential, as far as the store uses it."""

    def get_token(self, *scopes: str) -> AccessTokenLike: ...


class EntraPassword:
    """An Entra ID access token used as the PostgreSQL password, refreshed before expiry."""

    def __init__(self, credential: TokenSource, *, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._clock = clock
        self._token: AccessTokenLike | None = None

    def __call__(self) -> str:
        token = self._token
        if token is None or token.expires_on - self._clock() < TOKEN_REFRESH_MARGIN_S:
            try:
                token = self._credential.get_token(ENTRA_SCOPE)
            except Exception as exc:  # azure-identity raises many types; this is the boundary
                raise StoreError(
                    f"cannot get an Entra ID token for the PostgreSQL store ({exc}); check the "
                    "pod's workload identity (service account annotation and federated "
                    "credential)."
                ) from exc
            self._token = token
        return token.token


@dataclass(frozen=True)
class PostgresAuth:
    """Where the password comes from, beyond what libpq reads itself (DSN, PGPASSWORD)."""

    password_file: Path | None = None  # a mounted Kubernetes Secret
    entra: bool = False  # an Entra ID token from azure-identity (workload identity)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PostgresAuth:
        mode = env.get("EGRESS_STORE_AUTH", "password").strip().lower()
        if mode not in ("password", "entra"):
            raise StoreError(
                f"EGRESS_STORE_AUTH={mode!r} is not a store authentication; use 'password' "
                "or 'entra'."
            )
        file = env.get("EGRESS_STORE_PASSWORD_FILE")
        return cls(password_file=Path(file) if file else None, entra=mode == "entra")

    def password_source(self, credential: TokenSource | None) -> Callable[[], str | None] | None:
        if self.entra:
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            return EntraPassword(credential)
        if self.password_file is not None:
            return _FilePassword(self.password_file)
        return None


@dataclass(frozen=True)
class _FilePassword:
    path: Path

    def __call__(self) -> str | None:
        if not self.path.exists():
            return None  # an optional Secret key left out: the DSN or PGPASSWORD decides
        try:  # read at each connect: a rotated Secret is picked up without a restart
            return self.path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(
                f"cannot read the store password file {self.path} ({exc}); check the Secret "
                "mounted at EGRESS_STORE_PASSWORD_FILE."
            ) from exc


def is_dsn(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def redact(params: Mapping[str, Any]) -> str:
    """user@host:port/dbname, for messages (never the password)."""
    host = str(params.get("host") or "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    user = f"{params['user']}@" if params.get("user") else ""
    database = params.get("dbname") or ""
    if host.startswith("/"):  # a unix socket folder
        return f"postgresql://{user}/{database}?host={host}"
    return f"postgresql://{user}{host}{port}/{database}"


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's parameters, with TLS verification on unless the DSN chooses otherwise."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise StoreError(
            f"--store is not a valid PostgreSQL DSN ({exc}); write it as "
            "postgresql://USER@HOST:5432/DBNAME (options after '?', e.g. sslmode=require)."
        ) from exc
    if "sslmode" not in params:
        params["sslmode"] = "verify-full"
        params.setdefault("sslrootcert", "system")  # the OS CA store (libpq >= 16)
    return params


class _Cursor:
    """A psycopg cursor seen through the `Cursor` protocol."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class PgConnection:
    """psycopg's connection taking the store's `?` placeholders."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return _Cursor(self.raw.execute(to_format_style(sql), tuple(parameters)))


def _explain(exc: psycopg.Error, label: str) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
    lowered = str(exc).lower()
    if "password" in lowered or "authentication" in lowered or "role" in lowered:
        advice = (
            "the server refused the credentials: check the user in the DSN and the password "
            "(EGRESS_STORE_PASSWORD_FILE, PGPASSWORD) or the Entra ID identity"
        )
    elif "database" in lowered and "does not exist" in lowered:
        advice = "create that database first (egress creates its tables, not the database)"
    elif "ssl" in lowered or "certificate" in lowered:
        advice = "TLS failed: check the server certificate, or set sslmode in the DSN"
    else:
        advice = "check that the server is running and reachable at that address"
    return f"cannot use the PostgreSQL store {label} ({text}); {advice}."


class PostgresDatabase:
    """One autocommit psycopg connection; `transaction` is the one way to write."""

    dialect: Dialect = POSTGRES

    def __init__(
        self,
        dsn: str,
        *,
        auth: PostgresAuth,
        credential: TokenSource | None = None,
        retries: int = 5,
        connect_timeout_s: int = 10,
    ) -> None:
        self._params = parse_dsn(dsn)
        self._params.setdefault("connect_timeout", connect_timeout_s)
        self._params.setdefault("application_name", "egress")
        self.label = redact(self._params)
        self._password = auth.password_source(credential)
        self._retries = retries
        self._conn = self._connect()
        try:
            self._check_owner()
        except BaseException:
            self._conn.close()
            raise

    # -- connection ----------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        last: psycopg.Error | None = None
        for attempt in range(self._retries):
            params = dict(self._params)
            password = self._password() if self._password is not None else None
            if password is not None:
                params["password"] = password
            try:
                return psycopg.connect(autocommit=True, prepare_threshold=None, **params)
            except psycopg.Error as exc:
                last = exc
                if not self._transient(exc) or attempt + 1 == self._retries:
                    break
                time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random()))
        assert last is not None
        raise StoreError(_explain(last, self.label)) from last

    @staticmethod
    def _transient(exc: psycopg.Error) -> bool:
        text = str(exc).lower()
        refused = ("password", "authentication", "does not exist", "ssl", "certificate")
        return isinstance(exc, psycopg.OperationalError) and not any(t in text for t in refused)

    def _check_owner(self) -> None:
        try:
            meta = self._conn.execute("SELECT to_regclass('egress_meta')").fetchone()
            if meta is not None and meta[0] is not None:
                owner = self._conn.execute(
                    "SELECT value FROM egress_meta WHERE key = 'owner'"
                ).fetchone()
                if owner is None or owner[0] != OWNER:
                    raise StoreError(
                        f"the PostgreSQL store {self.label} has an egress_meta table that egress "
                        "did not write; point --store at egress's own database or schema."
                    )
                return
            clash = self._conn.execute(
                "SELECT string_agg(name, ', ') FROM unnest(ARRAY['runs', 'checks', "
                "'check_hourly', 'check_daily']) AS name WHERE to_regclass(name) IS NOT NULL"
            ).fetchone()
        except psycopg.Error as exc:
            raise StoreError(_explain(exc, self.label)) from exc
        if clash is not None and clash[0]:
            raise StoreError(
                f"the PostgreSQL store {self.label} already holds tables of another program "
                f"({clash[0]}) and no egress schema; point --store at another database or "
                "schema (options=-csearch_path=NAME)."
            )

    # -- the Database interface ---------------------------------------------------------

    @property
    def connection(self) -> PgConnection:
        return PgConnection(self._conn)

    def close(self) -> None:
        self._conn.close()

    def verify(self) -> None:
        """The server checks its own pages; the schema checks happen on open."""

    def schema_version(self) -> int:
        try:
            if self._conn.execute("SELECT to_regclass('egress_meta')").fetchone()[0] is None:  # type: ignore[index]
                return 0
            row = self._conn.execute(
                "SELECT value FROM egress_meta WHERE key = 'version'"
            ).fetchone()
        except psycopg.Error as exc:
            raise StoreError(_explain(exc, self.label)) from exc
        return 0 if row is None else int(row[0])

    def set_schema_version(self, conn: Connection, version: int) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS egress_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        for key, value in (("owner", OWNER), ("version", str(int(version)))):
            conn.execute(
                "INSERT INTO egress_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def lock_for_migration(self, conn: Connection) -> None:
        """Serialise migrations of many writers; the lock ends with the transaction."""
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def insert_many(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            write = copy.write_row  # psycopg's C row formatter: ~4x faster than Python text
            for row in rows:
                write(row)

    def insert_new(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> list[tuple[int, Any]]:
        """One array per column, unnested: a short statement the server plans once per
        connection (a VALUES list of 1,400 placeholders is parsed anew every time)."""
        if not rows:
            return []
        arrays = [list(column) for column in zip(*rows, strict=True)]
        unnest = ", ".join(["%s::text[]"] * len(columns))
        inserted = self._conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({unnest}) "
            f"ON CONFLICT ({columns[0]}) DO NOTHING RETURNING id, {columns[0]}",
            arrays,
            prepare=True,
        )
        return [(int(pk), key) for pk, key in inserted]

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction; bounded retries on conflicts and lost connections.

        Work must be idempotent on retry (runs are keyed by run id): a connection lost while
        COMMIT was on its way may or may not have committed.
        """
        for attempt in range(self._retries):
            try:
                with self._conn.transaction():
                    return work(PgConnection(self._conn))
            except _RETRYABLE as exc:
                if attempt + 1 == self._retries:
                    raise StoreError(_explain(exc, self.label)) from exc
            except psycopg.OperationalError as exc:
                if not self._conn.closed and not self._conn.broken:
                    raise StoreError(_explain(exc, self.label)) from exc
                if attempt + 1 == self._retries:
                    raise StoreError(_explain(exc, self.label)) from exc
                self._conn.close()
                self._conn = self._connect()
            except psycopg.Error as exc:
                raise StoreError(_explain(exc, self.label)) from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable: the loop returns or raises")

    def backup_to(self, target: Path) -> None:
        raise StoreError(
            f"`egress report backup` copies SQLite stores; back up the PostgreSQL store "
            f"{self.label} with pg_dump or the server's own backups."
        )
