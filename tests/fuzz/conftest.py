"""Prints how many generated cases the fuzz tests ran (`fuzz: N cases`) after the session."""

from __future__ import annotations

import pytest

from fuzz_cli import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.cases:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(TALLY.exit_codes.items()))
        terminalreporter.write_line(
            f"fuzz: {TALLY.cases} cases, {TALLY.crashes} crashes, "
            f"{TALLY.seconds:.1f} s in the CLI (exit codes {codes})"
        )
