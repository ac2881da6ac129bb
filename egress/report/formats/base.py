"""The one interface every report format implements, and the helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import ClassVar

from egress.compliance import ASSURANCE_KEYS, CheckStatus, Tally
from egress.report.model import (
    Category,
    ClusterView,
    ComplianceReport,
    CoverageGap,
    DriftChange,
    Fleet,
    GapKind,
    PoolCell,
)


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


def duration_text(span: timedelta) -> str:
    """A duration as people read it, to the minute (seconds only under a minute): "1d 2h 5m"."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts)


_GAP_WORDS = {GapKind.STOPPED: "stopped reporting", GapKind.NOT_PROBED: "not probed in window"}


def gap_text(gap: CoverageGap) -> str:
    """E.g. "GAP: stopped reporting, silent 3h 25m (stale after 3h)"."""
    return (
        f"GAP: {_GAP_WORDS[gap.kind]}, silent {duration_text(gap.silent_for)} "
        f"(stale after {duration_text(gap.stale_after)})"
    )


def cell_text(cell: PoolCell) -> str:
    """A matrix cell: the pool's status words, then what made it so, e.g.
    "NON-COMPLIANT (1 leak, 1 failed)" or "NOT PROVEN (GAP)"."""
    counts = {c: sum(1 for f in cell.findings if f.category is c) for c in Category}
    marks = [
        f"{n} {word}"
        for n, word in (
            (counts[Category.LEAK], "leak"),
            (counts[Category.FAILED_REQUIRED] + counts[Category.FAILED_OPTIONAL], "failed"),
            (counts[Category.UNPROVEN], "unproven"),
        )
        if n
    ]
    if cell.gap is not None:
        marks.append("GAP")
    return cell.status.words + (f" ({', '.join(marks)})" if marks else "")


def matrix_rows(fleet: Fleet) -> list[tuple[ClusterView, list[PoolCell | None]]]:
    """Each cluster (leaks first) with its cell per matrix column (None: no such pool)."""
    rows = []
    for cluster in fleet.clusters:
        cells = {p.node_pool: p for p in cluster.pools}
        rows.append((cluster, [cells.get(name) for name in fleet.node_pools]))
    return rows


def fleet_scope_text(fleet: Fleet) -> str:
    """The filters and stale threshold the fleet view was made with."""
    clusters = ", ".join(fleet.scope.clusters) or "all"
    regions = ", ".join(fleet.scope.regions) or "all"
    stale = (
        duration_text(fleet.stale_after)
        if fleet.stale_after is not None
        else "3 x each pool's mean interval between runs (1h with fewer than two runs)"
    )
    return f"clusters: {clusters}; regions: {regions}; stale after: {stale}"


def findings_text(cell: PoolCell) -> str:
    """A pool's findings in one line, e.g. "leak canary-443; failed-optional nvidia-443"."""
    return "; ".join(f"{f.category.value} {f.check_id}" for f in cell.findings) or "none"
