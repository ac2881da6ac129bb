"""Shared test fixtures: golden-file comparison and a clean environment."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store.pg_server import PgServer, start_server

GOLDEN_DIR = Path(__file__).parent / "golden"

GoldenCheck = Callable[[str, str], None]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ files from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> GoldenCheck:
    """Compare text with tests/golden/<relpath> byte for byte; show a diff on mismatch.

    On mismatch the actual text is written next to the golden file as `<name>.actual`
    (git-ignored). `pytest --update-golden` rewrites the golden files instead.
    """
    update = bool(request.config.getoption("--update-golden"))

    def check(relpath: str, actual: str) -> None:
        path = GOLDEN_DIR / relpath
        actual_path = path.with_name(path.name + ".actual")
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8", newline="")
            actual_path.unlink(missing_ok=True)
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden to create it")
        expected = path.read_text(encoding="utf-8")
        if expected == actual:
            actual_path.unlink(missing_ok=True)
            return
        actual_path.write_text(actual, encoding="utf-8", newline="")
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(path),
                tofile=str(actual_path),
                n=2,
            )
        )
        pytest.fail(f"output differs from golden file {relpath}:\n{diff[:20000]}")

    return check


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may pick up a real Azure credential, proxy or in-cluster identity."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("AZURE_", "MSI_", "IDENTITY_")) or upper in {
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
        }:
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server (Debian's binaries) on a unix socket, for the session."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
