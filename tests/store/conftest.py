"""Store fixtures: a real PostgreSQL server for the session, and one store per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.pg_server import PgServer, start_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, not yet created store lives: a file path or a DSN of an empty database."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.dsn(server.create_database())
