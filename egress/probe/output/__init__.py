"""Probe outputs, registered in one place: stream formats (table, jsonl) and report files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from rich.console import Console

from egress.errors import UsageError
from egress.output import write_file as write_atomic
from egress.probe.output.base import ProbeOutput
from egress.probe.output.jsonl import JsonlOutput, render_jsonl
from egress.probe.output.junit import JunitOutput, render_junit
from egress.probe.output.report_file import ReportFileOutput, render_report
from egress.probe.output.table import TableOutput, render_table

StreamFactory = Callable[[TextIO, Console], ProbeOutput]

STREAM_FORMATS: dict[str, StreamFactory] = {
    "table": lambda stdout, console: TableOutput(console),
    "jsonl": lambda stdout, console: JsonlOutput(stdout),
}


def default_format(stdout: TextIO) -> str:
    """A table for a person at a terminal, JSON lines for pipes and `kubectl logs`."""
    return "table" if stdout.isatty() else "jsonl"


def build_outputs(
    fmt: str | None,
    *,
    report: Path | None,
    junit: Path | None,
    console: Console,
    stdout: TextIO = sys.stdout,
) -> list[ProbeOutput]:
    name = fmt or default_format(stdout)
    factory = STREAM_FORMATS.get(name)
    if factory is None:
        known = ", ".join(sorted(STREAM_FORMATS))
        raise UsageError(f"--format {name!r} is unknown; use one of: {known}.")
    outputs = [factory(stdout, console)]
    if report is not None:
        outputs.append(ReportFileOutput(report))
    if junit is not None:
        outputs.append(JunitOutput(junit))
    return outputs


__all__ = [
    "STREAM_FORMATS",
    "ProbeOutput",
    "build_outputs",
    "default_format",
    "render_jsonl",
    "render_junit",
    "render_report",
    "render_table",
    "write_atomic",
]
