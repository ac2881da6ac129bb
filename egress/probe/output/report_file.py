"""`--report PATH`: the whole run as one RunReport JSON document, written atomically."""

from __future__ import annotations

from pathlib import Path

from egress.output import write_file as write_atomic
from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport


def render_report(run: RunReport) -> str:
    return run.model_dump_json(indent=2) + "\n"


class ReportFileOutput:
    def __init__(self, path: Path) -> None:
        self._path = path

    def start(self, plan: ProbePlan) -> None:
        return None

    def record(self, record: CheckRecord) -> None:
        return None

    def finish(self, run: RunReport) -> None:
        write_atomic(self._path, render_report(run))
