"""PostgreSQL store: bad input gets one sentence and exit 5; passwords from a Secret file or an
Entra ID token, refreshed before it expires across a reconnect. All against the real server.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.store import LATEST_VERSION, PostgresAuth, ResultStore
from egress.store._postgres import ENTRA_SCOPE, parse_dsn
from egress.store._store import open_database

from store.pg_server import PgServer
from store.sample_runs import BASE, make_run

NOW = "2026-11-20T12:00:00Z"


def _report(store: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", "--store", store, "--now", NOW])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, " ".join(result.stderr.split())


def _role(server: PgServer, password: str) -> str:
    name = f"r_{uuid.uuid4().hex[:10]}"
    with server.admin() as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    return name


def _database_for(server: PgServer, owner: str) -> str:
    name = server.create_database()
    with server.admin() as conn:
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO {owner}')
    with server.admin() as conn, conn.transaction():
        pass
    return name


def test_tls_is_verified_unless_the_dsn_says_otherwise() -> None:
    assert parse_dsn("postgresql://u@db.example.invalid/fleet")["sslmode"] == "verify-full"
    assert parse_dsn("postgresql://u@db.example.invalid/fleet?sslmode=require")["sslmode"] == (
        "require"
    )


def test_a_malformed_dsn_is_one_sentence_and_exit_5() -> None:
    code, stderr = _report("postgresql://egress@localhost/db?no_such_option=1")
    assert code == 5
    assert "--store is not a valid PostgreSQL DSN" in stderr
    assert "Traceback" not in stderr


def test_bad_credentials_are_named_without_the_password(pg_server: PgServer) -> None:
    dsn = pg_server.dsn(pg_server.create_database(), password="wrong-secret")
    code, stderr = _report(dsn)
    assert code == 5
    assert "the server refused the credentials" in stderr
    assert "wrong-secret" not in stderr and "Traceback" not in stderr


def test_a_server_that_is_down_is_exit_5(tmp_path: Path) -> None:
    empty = tmp_path / "sock"
    empty.mkdir()  # a socket folder with no server behind it
    code, stderr = _report(f"postgresql://egress@/fleet?host={empty}&sslmode=disable")
    assert code == 5
    assert "check that the server is running and reachable" in stderr


def test_a_missing_database_and_an_empty_one_are_exit_5(pg_server: PgServer) -> None:
    code, stderr = _report(pg_server.dsn("no_such_db"))
    assert (code, "create that database first" in stderr) == (5, True)
    dsn = pg_server.dsn(pg_server.create_database())
    code, stderr = _report(dsn)
    assert (code, "holds no egress runs yet" in stderr) == (5, True)
    db = open_database(dsn, create=False, verify=False)
    assert db.schema_version() == 0  # the report created nothing
    db.close()


def test_a_newer_schema_is_exit_5(pg_server: PgServer) -> None:
    dsn = pg_server.dsn(pg_server.create_database())
    with ResultStore(dsn) as store:
        store.append_run(make_run("r1", BASE))
    db = open_database(dsn, create=False, verify=False)
    db.transaction(lambda conn: db.set_schema_version(conn, LATEST_VERSION + 1))
    db.close()
    code, stderr = _report(dsn)
    assert (code, "newer than this egress" in stderr) == (5, True)


def test_another_programs_tables_are_left_alone(pg_server: PgServer) -> None:
    dsn = pg_server.dsn(pg_server.create_database())
    db = open_database(dsn, create=True, verify=False)
    db.connection.execute("CREATE TABLE runs (id int)")
    db.close()
    result = CliRunner().invoke(app, ["report", "ingest", "--store", dsn, "/dev/null"])
    assert result.exit_code == 5
    assert "tables of another program (runs)" in result.stderr


def test_the_password_comes_from_a_mounted_secret_file(pg_server: PgServer, tmp_path: Path) -> None:
    role = _role(pg_server, "from-the-secret")
    dsn = pg_server.dsn(_database_for(pg_server, role), password=None, user=role)
    secret = tmp_path / "secret" / "password"
    secret.parent.mkdir()
    secret.write_text("from-the-secret\n")  # kubectl create secret --from-file keeps the newline
    with ResultStore(dsn, auth=PostgresAuth(password_file=secret)) as store:
        assert store.append_run(make_run("r1", BASE))
    env_auth = PostgresAuth.from_env({"EGRESS_STORE_PASSWORD_FILE": str(secret)})
    with ResultStore(dsn, auth=env_auth, create=False) as store:
        assert store.run_ids() == ["r1"]


@dataclass(frozen=True)
class _Token:
    token: str
    expires_on: int


class _TokenService:
    """Stands in for Entra ID behind azure-identity: hands out the current token."""

    def __init__(self, token: str, lifetime_s: float) -> None:
        self.token, self.lifetime_s, self.scopes = token, lifetime_s, []

    def get_token(self, *scopes: str) -> _Token:
        self.scopes.append(scopes)
        return _Token(self.token, int(time.time() + self.lifetime_s))


def test_an_entra_token_is_the_password_and_is_refreshed_before_it_expires(
    pg_server: PgServer,
) -> None:
    role = _role(pg_server, "token-one")
    dsn = pg_server.dsn(_database_for(pg_server, role), password=None, user=role)
    tokens = _TokenService("token-one", lifetime_s=60)  # expires inside the refresh margin
    with ResultStore(dsn, auth=PostgresAuth(entra=True), credential=tokens) as store:
        assert store.append_run(make_run("r1", BASE))
        assert tokens.scopes == [(ENTRA_SCOPE,)]
        with pg_server.admin() as admin:  # the token rotates and the server drops us
            admin.execute(f"ALTER ROLE {role} PASSWORD 'token-two'")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        tokens.token = "token-two"
        assert store.append_run(make_run("r2", BASE.replace(hour=1)))  # reconnects, new token
        assert store.run_ids() == ["r1", "r2"]
    assert len(tokens.scopes) == 2


def test_a_fresh_entra_token_is_reused_not_fetched_again(pg_server: PgServer) -> None:
    from egress.store._postgres import EntraPassword

    tokens = _TokenService("long-lived", lifetime_s=3600)
    password = EntraPassword(tokens)
    assert [password(), password(), password()] == ["long-lived"] * 3
    assert len(tokens.scopes) == 1


@pytest.mark.parametrize("mode", ["kerberos", ""])
def test_an_unknown_auth_mode_is_refused(mode: str) -> None:
    from egress.errors import StoreError

    if mode:
        with pytest.raises(StoreError, match="EGRESS_STORE_AUTH='kerberos'"):
            PostgresAuth.from_env({"EGRESS_STORE_AUTH": mode})
    else:
        assert PostgresAuth.from_env({}) == PostgresAuth()
