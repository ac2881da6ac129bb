"""The report as Markdown, for pull requests and tickets (GitHub-flavoured tables)."""

from __future__ import annotations

from egress.report.formats.base import (
    ReportFormat,
    assurance_text,
    change_text,
    conditions_text,
    percent,
    runs_text,
    status_counts_text,
    status_text,
    when,
)
from egress.report.model import ComplianceReport, Finding, scope_name


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
        lines += ["## Evidence", ""]
        evidence = [line for f in report.findings for line in _evidence(f)]
        lines += evidence or ["No finding in this window.", ""]
        return "\n".join(lines).rstrip("\n") + "\n"
