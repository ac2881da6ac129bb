"""The report as a terminal view (rich tables); colour only when writing to a terminal."""

from __future__ import annotations

import io
import json

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from egress.report.formats.base import (
    STATUS_TEXT,
    ReportFormat,
    change_text,
    percent,
    runs_text,
    when,
)
from egress.report.model import ComplianceReport, Finding, Status, scope_name

_EVIDENCE_CHARS = 300
_STATUS_STYLE = {
    Status.LEAK: "bold white on red",
    Status.FAIL: "bold red",
    Status.PASS: "bold green",
    Status.NO_DATA: "bold yellow",
}


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _findings(title: str, findings: tuple[Finding, ...], style: str) -> RenderableType:
    if not findings:
        return Text(f"{title}: none", style="green")
    table = _table(title, ["node pool", "check", "endpoint", "failed", "first", "last"])
    for f in findings:
        table.add_row(
            scope_name(f.cluster, f.node_pool),
            Text(f.check_id, style=style),
            f"{f.host}:{f.port}/{f.transport}",
            f"{f.failed}/{f.total}",
            when(f.first_failure),
            when(f.last_failure),
        )
    return table


def _evidence(finding: Finding) -> RenderableType:
    """The latest failure in two lines; the full evidence is in the HTML, Markdown and JSON."""
    latest = finding.latest
    assert latest is not None
    evidence = json.dumps(json.loads(latest.details_json)["evidence"], sort_keys=True)
    if len(evidence) > _EVIDENCE_CHARS:
        evidence = evidence[: _EVIDENCE_CHARS - 3] + "..."
    return Text.assemble(
        (f"{finding.category.value} ", "bold"),
        (finding.check_id, "bold"),
        f" on {scope_name(finding.cluster, finding.node_pool)}: run {latest.run_id}, node "
        f"{latest.node or '?'}, {when(latest.run_started_at)}: {latest.verdict}: {latest.reason}",
        f"\n  evidence: {evidence}",
    )


class TerminalFormat(ReportFormat):
    """A compact view for people at a terminal; details live in the HTML and JSON."""

    name = "terminal"
    suffix = ".txt"

    def __init__(self, *, color: bool = False, width: int = 120) -> None:
        self.color = color
        self.width = width

    def render(self, report: ComplianceReport) -> str:
        buffer = io.StringIO()
        console = Console(
            file=buffer,
            width=self.width,
            color_system="standard" if self.color else None,
            force_terminal=self.color,
            highlight=False,
            emoji=False,
        )
        console.print(self._renderable(report))
        return buffer.getvalue()

    def _renderable(self, report: ComplianceReport) -> RenderableType:
        window = report.window
        header = Panel(
            Text.assemble(
                (STATUS_TEXT[report.status.value], _STATUS_STYLE[report.status]),
                f"\nwindow {when(window.since)} to {when(window.until)}; {report.runs} runs, "
                f"{report.results} results, {report.unjudged} inconclusive or unverifiable",
            ),
            title="egress compliance report",
            title_align="left",
            box=box.ASCII,
        )
        parts: list[RenderableType] = [
            header,
            _findings("Leaks", report.leaks, "bold red"),
            _findings("Failed required endpoints", report.failed_required, "red"),
            _findings("Failed optional endpoints", report.failed_optional, "yellow"),
        ]
        if report.flapping:
            flapping = _table(
                "Flapping endpoints", ["node pool", "check", "pass rate", "first", "last"]
            )
            for f in report.flapping:
                flapping.add_row(
                    scope_name(f.cluster, f.node_pool),
                    f.check_id,
                    percent(f.pass_rate),
                    when(f.first_failure),
                    when(f.last_failure),
                )
            parts.append(flapping)
        coverage = _table("Node pool coverage", ["node pool", "runs", "nodes", "last probed"])
        for pool in report.coverage:
            coverage.add_row(
                scope_name(pool.cluster, pool.node_pool),
                runs_text(pool.runs),
                str(pool.nodes),
                when(pool.last_run),
            )
        parts.append(coverage if report.coverage else Text("No node pool probed.", "yellow"))
        changes = [(d, c) for d in report.drift for c in d.changes]
        if changes:
            drift = _table("Drift between the last two runs", ["node pool", "check", "change"])
            for d, c in changes:
                drift.add_row(scope_name(d.cluster, d.node_pool), c.check_id, change_text(c))
            parts.append(drift)
        else:
            parts.append(Text("Drift between the last two runs: none"))
        evidence = [_evidence(f) for f in report.findings if f.latest is not None]
        if evidence:
            parts += [Text("\nEvidence (latest failure of each endpoint)", style="bold"), *evidence]
        return Group(*parts)
