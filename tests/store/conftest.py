"""Store fixtures: one fresh store per backend (the PostgreSQL server is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.pg_server import PgServer


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, not yet created store lives: a file path or a DSN of an empty database."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.dsn(server.create_database())
