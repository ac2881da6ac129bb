"""The one interface every probe output implements."""

from __future__ import annotations

from typing import Protocol

from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport


class ProbeOutput(Protocol):
    """Receives the run as it happens: the plan, each finished check, then the whole run."""

    def start(self, plan: ProbePlan) -> None: ...

    def record(self, record: CheckRecord) -> None: ...

    def finish(self, run: RunReport) -> None: ...
