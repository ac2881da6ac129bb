"""The one interface every report format implements, and the helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar

from egress.compliance import ASSURANCE_KEYS, CheckStatus, Tally
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


def outcome(verdict: str | None, status: CheckStatus | None) -> str:
    """A verdict with its stored status, e.g. "blocked (pass)"; "absent" when not checked."""
    if verdict is None:
        return "absent"
    return f"{verdict} ({status.value if status else '?'})"


def change_text(change: DriftChange) -> str:
    before = outcome(change.before, change.before_status)
    after = outcome(change.after, change.after_status)
    return f"{before} -> {after}"


def status_text(report: ComplianceReport) -> str:
    """The report's status line: the run-status words and every reason, as the probe says it."""
    return f"{report.status.words}: {'; '.join(report.reasons)}"


def status_counts_text(tally: Tally) -> str:
    """Results by status, in the compliance module's order, e.g. "3 pass, 1 leak"."""
    counted = [f"{n} {status.value}" for status, n in tally.by_status.items() if n]
    return ", ".join(counted) or "none"


def assurance_text(tally: Tally) -> str:
    """Blocked verdicts by how they are known, e.g. "2 stated, 1 signature"."""
    counted = [f"{tally.blocked_by_assurance[k]} {k}" for k in ASSURANCE_KEYS]
    return ", ".join(c for c in counted if not c.startswith("0 ")) or "none"


def conditions_text(report: ComplianceReport) -> str:
    """Which rule options the report was judged under."""
    minimum = report.require_assurance.value if report.require_assurance else "any"
    return f"strict: {'yes' if report.strict else 'no'}; required assurance: {minimum}"
