"""The report as Markdown, for pull requests and tickets (GitHub-flavoured tables)."""

from __future__ import annotations

from egress.report.corroboration import CHECK_COLUMNS, check_rows, pending_text, totals_text
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
from egress.report.model import ComplianceReport, Finding, Fleet, region_text, scope_name


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _findings(title: str, findings: tuple[Finding, ...], empty: str) -> list[str]:
    lines = [f"## {title}", ""]
    if not findings:
        return [*lines, empty, ""]
    rows: list[list[object]] = [
        [
            scope_name(f.cluster, f.node_pool),
            f"`{f.check_id}`",
            f"{f.host}:{f.port}/{f.transport}",
            f"{f.failed}/{f.total}",
            when(f.first_failure),
            when(f.last_failure),
            f.latest.reason if f.latest else "-",
        ]
        for f in findings
    ]
    header = ["node pool", "check", "endpoint", "failed", "first", "last", "latest reason"]
    return lines + _table(header, rows)


def _fleet(fleet: Fleet) -> list[str]:
    """The matrix, coverage gaps, and a drill-down section per cluster."""
    lines = ["## Fleet compliance matrix", "", f"Scope: {fleet_scope_text(fleet)}.", ""]
    if not fleet.clusters:
        return [*lines, "No cluster was probed.", ""]
    rows: list[list[object]] = [
        [
            f"**{cluster.cluster or '?'}**",
            region_text(cluster.regions),
            cluster.status.words,
            *[cell_text(c) if c else "-" for c in cells],
        ]
        for cluster, cells in matrix_rows(fleet)
    ]
    lines += _table(["cluster", "region", "cluster status", *fleet.node_pools], rows)
    lines += ["## Coverage gaps", ""]
    if fleet.gaps:
        gap_rows: list[list[object]] = [
            [scope_name(c.cluster, c.node_pool), c.region, gap_text(c.gap), when(c.last_run)]
            for c in fleet.gaps
            if c.gap is not None
        ]
        lines += _table(["node pool", "region", "gap", "last probed"], gap_rows)
    else:
        lines += ["Every node pool reported within its stale threshold.", ""]
    for cluster in fleet.clusters:
        lines += [
            f"### Cluster {cluster.cluster or '?'} ({region_text(cluster.regions)})",
            "",
            f"**{cluster.status.words}: {'; '.join(cluster.reasons)}**",
            "",
        ]
        pool_rows: list[list[object]] = [
            [
                c.node_pool or "?",
                cell_text(c),
                runs_text(c.runs),
                c.nodes,
                when(c.last_run),
                duration_text(c.stale_after),
                findings_text(c),
                f"{len(c.drift.changes)} change(s)" if c.drift else "-",
            ]
            for c in cluster.pools
        ]
        header = ["node pool", "status", "runs", "nodes", "last probed", "stale after"]
        lines += _table([*header, "findings", "drift"], pool_rows)
        evidence = [
            f"- {f.category.value} `{f.check_id}` on {f.node_pool or '?'}: run "
            f"{f.latest.run_id}, node {f.latest.node or '?'}, {when(f.latest.run_started_at)}: "
            f"{f.latest.verdict}: {f.latest.reason}"
            for c in cluster.pools
            for f in c.findings
            if f.latest is not None
        ]
        if evidence:
            lines += ["Latest evidence (in full under Evidence):", "", *evidence, ""]
    return lines


def _evidence(finding: Finding) -> list[str]:
    latest = finding.latest
    if latest is None:
        return []
    summary = (
        f"{finding.category.value}: <code>{finding.check_id}</code> on "
        f"{scope_name(finding.cluster, finding.node_pool)}, run {latest.run_id}"
    )
    return [
        "<details>",
        f"<summary>{summary}</summary>",
        "",
        f"- rule: `{finding.rule}` ({finding.expectation}, destination `{finding.destination}`)",
        f"- node {latest.node or '?'}, pod {latest.pod or '?'}, at "
        f"{when(latest.run_started_at)}, took {latest.duration_ms:.0f} ms",
        f"- verdict: **{latest.verdict}** ({latest.status.value}"
        f"{', ' + latest.assurance.value if latest.assurance else ''}): {latest.reason}",
        *([f"- assumes: {latest.assumption}"] if latest.assumption else []),
        "",
        "```json",
        latest.details_json,
        "```",
        "",
        "</details>",
        "",
    ]


class MarkdownFormat(ReportFormat):
    """Status first, then leaks, failed required endpoints, flapping, coverage, drift."""

    name = "markdown"
    suffix = ".md"

    def render(self, report: ComplianceReport) -> str:
        window = report.window
        lines = [
            "# Egress compliance report",
            "",
            f"**{status_text(report)}**",
            "",
            f"Window {when(window.since)} to {when(window.until)}: {report.runs} runs, "
            f"{report.results} results ({status_counts_text(report.tally)}); pass rate "
            f"{percent(report.tally.pass_rate)} of judged results. "
            f"Generated {when(report.generated_at)}.",
            "",
            f"Blocked verdicts by assurance: {assurance_text(report.tally)}; "
            f"{conditions_text(report)}.",
            "",
        ]
        lines += _fleet(report.fleet)
        lines += _findings("Leaks", report.leaks, "No deny canary was reachable.")
        lines += _findings(
            "Failed required endpoints", report.failed_required, "Every required endpoint passed."
        )
        lines += _findings(
            "Failed optional endpoints", report.failed_optional, "No optional endpoint failed."
        )
        lines += _findings(
            "Unproven endpoints", report.unproven, "Every endpoint that must be proven was."
        )
        lines += ["## Flapping endpoints", ""]
        if report.flapping:
            rows: list[list[object]] = [
                [
                    scope_name(f.cluster, f.node_pool),
                    f"`{f.check_id}`",
                    percent(f.pass_rate),
                    when(f.first_failure),
                    when(f.last_failure),
                ]
                for f in report.flapping
            ]
            header = ["node pool", "check", "pass rate", "first failure", "last failure"]
            lines += _table(header, rows)
        else:
            lines += ["No endpoint both passed and failed.", ""]
        lines += ["## Node pool coverage", ""]
        if report.coverage:
            rows = [
                [
                    scope_name(c.cluster, c.node_pool),
                    runs_text(c.runs),
                    c.nodes,
                    when(c.first_run),
                    when(c.last_run),
                ]
                for c in report.coverage
            ]
            lines += _table(["node pool", "runs", "nodes", "first run", "last probed"], rows)
        else:
            lines += ["No node pool was probed in this window.", ""]
        lines += ["## Drift between the last two runs", ""]
        drift_rows: list[list[object]] = [
            [
                scope_name(d.cluster, d.node_pool),
                f"`{c.check_id}`",
                change_text(c),
                f"{d.previous_run_id} -> {d.latest_run_id}",
            ]
            for d in report.drift
            for c in d.changes
        ]
        if drift_rows:
            lines += _table(["node pool", "check", "change", "runs"], drift_rows)
        else:
            lines += ["No check changed its result between the last two runs of any pool.", ""]
        if report.corroboration is not None:
            c = report.corroboration
            lines += ["## Firewall corroboration", "", totals_text(c) + ".", ""]
            lines += _table(CHECK_COLUMNS, [list[object](row) for row in check_rows(c)])
            lines += [pending_text(c) + ".", "", *(f"- {n}" for n in c.notes)]
            lines += [""] if c.notes else []
        lines += ["## Evidence", ""]
        evidence = [line for f in report.findings for line in _evidence(f)]
        lines += evidence or ["No finding in this window.", ""]
        return "\n".join(lines).rstrip("\n") + "\n"
