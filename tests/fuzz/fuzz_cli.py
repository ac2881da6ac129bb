"""Run the real CLI in-process on one generated input and check the promises every input gets.

Every case must end with a documented exit code (README), no traceback, no exception escaping
the command, and no partial output next to where output was asked for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import typer.main
import typer.testing
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner, Result

from egress.cli import app

DOCUMENTED_EXIT_CODES = frozenset({0, 1, 2, 3, 4, 5})
# Environment that keeps every case on this machine: no Azure credential but the environment
# one (never IMDS or the az CLI), and loopback endpoints for anything that would reach ARM.
SAFE_ENV: dict[str, str | None] = {
    "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential",
    "AZURE_CLIENT_ID": None,
    "AZURE_CLIENT_SECRET": None,
    "AZURE_TENANT_ID": None,
    "AZURE_AUTHORITY_HOST": None,
    "EGRESS_STORE": None,
    "EGRESS_REPORT_NOW": None,
    "NO_COLOR": "1",
    "COLUMNS": "100",
}
LOOPBACK_ARM = ["--arm-endpoint", "https://127.0.0.1:9", "--authority-host", "https://127.0.0.1:9"]


# EGRESS_FUZZ_SCALE=10 runs ten times the examples (a longer local fuzzing session).
_SCALE = float(os.environ.get("EGRESS_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int) -> settings:
    """Bounded settings: no example database, a deadline generous for a loaded 2-core box."""
    return settings(
        max_examples=max(1, int(max_examples * _SCALE)),
        deadline=10_000,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@dataclass
class Tally:
    """Cases run in this session, and how many broke a promise."""

    cases: int = 0
    crashes: int = 0
    seconds: float = 0.0
    exit_codes: Counter[int] = field(default_factory=Counter)


TALLY = Tally()
_RUNNER = CliRunner()
# typer rebuilds the click command on every invoke (~10 ms); the fuzzer reuses one.
_COMMAND = typer.main.get_command(app)


def run(args: Sequence[str], *, env: Mapping[str, str | None] | None = None) -> Result:
    """Invoke `egress ARGS` in-process and assert the promises; counts the case."""
    started = time.perf_counter()
    with mock.patch.object(typer.testing, "_get_command", lambda _app: _COMMAND):
        result = _RUNNER.invoke(app, list(args), env={**SAFE_ENV, **(env or {})})
    TALLY.cases += 1
    TALLY.exit_codes[result.exit_code] += 1
    TALLY.seconds += time.perf_counter() - started
    try:
        check_promises(result, args)
    except AssertionError:
        TALLY.crashes += 1
        raise
    return result


def check_promises(result: Result, args: Sequence[str]) -> None:
    where = f"egress {' '.join(map(repr, args))[:400]}"
    exception = result.exception
    if exception is not None and not isinstance(exception, SystemExit):
        raise AssertionError(f"{where} raised {exception!r}") from exception
    assert result.exit_code in DOCUMENTED_EXIT_CODES, f"{where}: exit {result.exit_code}"
    output = result.stdout + result.stderr
    assert "Traceback (most recent call last)" not in output, f"{where}:\n{output[-2000:]}"
    if result.exit_code == 2 and result.stderr.startswith("error:"):
        # The tool's own usage errors are one `error:` line (plus an optional hint).
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, f"{where}:\n{result.stderr[-2000:]}"


def assert_no_partial_output(target: Path, *, succeeded: bool) -> None:
    """After a failure nothing is at `target`; never a temporary file beside it."""
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    assert not leftovers, f"temporary output left beside {target}: {leftovers}"
    if not succeeded:
        assert not target.exists(), f"{target} was written although the command failed"


def scratch(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A folder for one test's cases, in memory where the OS offers it: compile and the store
    fsync every write, which on a busy disk costs more than the case itself."""
    shm = Path("/dev/shm")
    return tempfile.TemporaryDirectory(prefix=prefix, dir=shm if shm.is_dir() else None)


def remove(path: Path) -> None:
    """Delete an output file or folder between cases."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
