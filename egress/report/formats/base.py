"""The one interface every report format implements, and the helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar

from egress.report.model import ComplianceReport, DriftChange


class ReportFormat(ABC):
    """Turns a ComplianceReport into the text of one output format (pure, deterministic)."""

    name: ClassVar[str]
    suffix: ClassVar[str]

    @abstractmethod
    def render(self, report: ComplianceReport) -> str:
        """The whole document, ending with a newline."""


def when(moment: datetime | None) -> str:
    """A time as people read it in a report: minutes, UTC."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def runs_text(runs: int) -> str:
    """Runs of a pool in the window; zero means it went unprobed (a coverage gap)."""
    return str(runs) if runs else "0: NOT PROBED in this window"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def outcome(verdict: str | None, compliant: bool | None) -> str:
    """A verdict with its judgement, e.g. "blocked (ok)"; "absent" when not checked."""
    if verdict is None:
        return "absent"
    judged = {True: "ok", False: "NOT OK", None: "unjudged"}[compliant]
    return f"{verdict} ({judged})"


def change_text(change: DriftChange) -> str:
    before = outcome(change.before, change.before_compliant)
    after = outcome(change.after, change.after_compliant)
    return f"{before} -> {after}"


STATUS_TEXT = {
    "leak": "NON-COMPLIANT: traffic that must be blocked got through",
    "fail": "NON-COMPLIANT: a required endpoint was unreachable",
    "pass": "COMPLIANT: no leak and every required endpoint reachable",
    "no-data": "NO DATA: no probe run in this window",
}
