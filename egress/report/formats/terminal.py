"""The report as a terminal view (rich tables); colour only when writing to a terminal."""

from __future__ import annotations

import io
import json

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from egress.compliance import RunStatus
from egress.report.corroboration import (
    CHECK_COLUMNS,
    ReportCorroboration,
    check_rows,
    pending_text,
    totals_text,
)
from egress.report.formats.base import (
    ReportFormat,
    assurance_text,
    cell_text,
    change_text,
    conditions_text,
    duration_text,
    findings_text,
    fleet_scope_text,
    gap_text,
    matrix_rows,
    percent,
    runs_text,
    status_counts_text,
    status_text,
    when,
)
from egress.report.model import (
    Category,
    ComplianceReport,
    Finding,
    Fleet,
    region_text,
    scope_name,
)

_EVIDENCE_CHARS = 300
_STATUS_STYLE = {
    RunStatus.NON_COMPLIANT: "bold white on red",
    RunStatus.NOT_PROVEN: "bold yellow",
    RunStatus.COMPLIANT: "bold green",
}


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _findings(title: str, findings: tuple[Finding, ...], style: str) -> RenderableType:
    if not findings:
        return Text(f"{title}: none", style="green")
    count = "unproven" if findings[0].category is Category.UNPROVEN else "failed"
    table = _table(title, ["node pool", "check", "endpoint", count, "first", "last"])
    for f in findings:
        table.add_row(
            scope_name(f.cluster, f.node_pool),
            Text(f.check_id, style=style),
            f"{f.host}:{f.port}/{f.transport}",
            f"{f.unproven if count == 'unproven' else f.failed}/{f.total}",
            when(f.first_failure),
            when(f.last_failure),
        )
    return table


def _fleet(fleet: Fleet) -> list[RenderableType]:
    """The matrix (clusters with a leak first), the coverage gaps, and a table per cluster."""
    if not fleet.clusters:
        return [Text("Fleet: no cluster probed.", "yellow")]
    matrix = _table(
        f"Fleet compliance matrix ({fleet_scope_text(fleet)})",
        ["cluster", "region", "cluster status", *fleet.node_pools],
    )
    for cluster, cells in matrix_rows(fleet):
        matrix.add_row(
            cluster.cluster or "?",
            region_text(cluster.regions),
            Text(cluster.status.words, _STATUS_STYLE[cluster.status]),
            *[Text(cell_text(c), _STATUS_STYLE[c.status]) if c else Text("-") for c in cells],
        )
    parts: list[RenderableType] = [matrix]
    if fleet.gaps:
        gaps = _table("Coverage gaps", ["node pool", "region", "gap", "last probed"])
        for cell in fleet.gaps:
            assert cell.gap is not None
            gaps.add_row(
                scope_name(cell.cluster, cell.node_pool),
                cell.region,
                Text(gap_text(cell.gap), "bold yellow"),
                when(cell.last_run),
            )
        parts.append(gaps)
    else:
        parts.append(Text("Coverage gaps: none", style="green"))
    for cluster in fleet.clusters:
        table = _table(
            f"Cluster {cluster.cluster or '?'} ({region_text(cluster.regions)}): "
            f"{cluster.status.words}: {'; '.join(cluster.reasons)}",
            [
                "node pool",
                "status",
                "runs",
                "nodes",
                "last probed",
                "stale after",
                "findings",
                "drift",
            ],
        )
        for cell in cluster.pools:
            table.add_row(
                cell.node_pool or "?",
                Text(cell.status.words, _STATUS_STYLE[cell.status]),
                runs_text(cell.runs),
                str(cell.nodes),
                when(cell.last_run),
                duration_text(cell.stale_after),
                findings_text(cell),
                f"{len(cell.drift.changes)} change(s)" if cell.drift else "-",
            )
        parts.append(table)
    return parts


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
        f"{latest.node or '?'}, {when(latest.run_started_at)}: {latest.verdict} "
        f"({latest.status.value}{', ' + latest.assurance.value if latest.assurance else ''}): "
        f"{latest.reason}",
        f"\n  evidence: {evidence}",
    )


def _corroboration(corroboration: ReportCorroboration) -> RenderableType:
    table = _table(f"Firewall corroboration: {totals_text(corroboration)}", CHECK_COLUMNS)
    for row in check_rows(corroboration):
        table.add_row(*row)
    return Group(table, Text(pending_text(corroboration)), *(Text(n) for n in corroboration.notes))


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
                (status_text(report), _STATUS_STYLE[report.status]),
                f"\nwindow {when(window.since)} to {when(window.until)}; {report.runs} runs, "
                f"{report.results} results ({status_counts_text(report.tally)}); pass rate "
                f"{percent(report.tally.pass_rate)} of judged results"
                f"\nblocked verdicts by assurance: {assurance_text(report.tally)}; "
                f"{conditions_text(report)}",
            ),
            title="egress compliance report",
            title_align="left",
            box=box.ASCII,
        )
        parts: list[RenderableType] = [
            header,
            *_fleet(report.fleet),
            _findings("Leaks", report.leaks, "bold red"),
            _findings("Failed required endpoints", report.failed_required, "red"),
            _findings("Failed optional endpoints", report.failed_optional, "yellow"),
            _findings("Unproven endpoints", report.unproven, "magenta"),
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
        if report.corroboration is not None:
            parts.append(_corroboration(report.corroboration))
        evidence = [_evidence(f) for f in report.findings if f.latest is not None]
        if evidence:
            parts += [Text("\nEvidence (latest finding of each endpoint)", style="bold"), *evidence]
        return Group(*parts)
