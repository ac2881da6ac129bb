"""JSON lines: one schema-versioned CheckRecord per line on stdout, as each check finishes,
then one RunSummary line (``"record": "summary"``) when the run ends."""

from __future__ import annotations

from typing import TextIO

from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport, RunSummary


def summary_line(run: RunReport) -> str:
    return RunSummary.of(run).model_dump_json() + "\n"


def render_jsonl(run: RunReport) -> str:
    """All records of a run in plan order (the streamed output is in completion order), then
    its summary."""
    return "".join(record.model_dump_json() + "\n" for record in run.checks) + summary_line(run)


class JsonlOutput:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def start(self, plan: ProbePlan) -> None:
        return None

    def record(self, record: CheckRecord) -> None:
        self._stream.write(record.model_dump_json() + "\n")
        self._stream.flush()

    def finish(self, run: RunReport) -> None:
        self._stream.write(summary_line(run))
        self._stream.flush()
