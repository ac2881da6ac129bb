"""The report as one self-contained HTML page: inline CSS and SVG, no script, no assets."""

from __future__ import annotations

import re
from html import escape

from egress.report.corroboration import CHECK_COLUMNS, check_rows, pending_text, totals_text
from egress.report.formats.base import (
    ReportFormat,
    assurance_text,
    cell_text,
    change_text,
    conditions_text,
    duration_text,
    fleet_scope_text,
    gap_text,
    matrix_rows,
    percent,
    runs_text,
    status_counts_text,
    status_text,
    when,
)
from egress.report.formats.timeline_svg import timeline_svg
from egress.report.model import (
    ComplianceReport,
    Finding,
    Fleet,
    Window,
    region_text,
    scope_name,
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:2rem auto;max-width:1100px;color:#212529;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:2px solid #dee2e6;padding-bottom:.2rem}
.status{padding:.8rem 1rem;border-radius:6px;font-weight:600;font-size:1.1rem;margin:1rem 0}
.status.non-compliant{background:#a51111;color:#fff}
.status.compliant{background:#d3f9d8;color:#1b5e20}
.status.not-proven{background:#fff3bf;color:#5c3c00}
.meta{color:#495057;font-size:.9rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #dee2e6;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f3f5}code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;
font-size:.85em}
.finding{border:1px solid #dee2e6;border-left:6px solid #d9480f;border-radius:4px;
padding:.6rem 1rem;margin:1rem 0}.finding.leak{border-left-color:#a51111}
.finding.failed-optional{border-left-color:#f59f00}
.finding.unproven{border-left-color:#ae3ec9}
.finding h3{margin:.2rem 0;font-size:1rem}
pre{background:#f8f9fa;border:1px solid #dee2e6;padding:.6rem;overflow-x:auto;
font-size:.8rem;max-height:24rem}
.none{color:#2f9e44}
td.non-compliant{background:#ffe3e3}td.not-proven{background:#fff3bf}
td.compliant{background:#ebfbee}.gap{font-weight:600;color:#5c3c00}
"""


def anchor(kind: str, *names: str) -> str:
    """A stable id for a cluster, pool or finding (characters outside [A-Za-z0-9_.-] as _)."""
    return "-".join([kind, *(re.sub(r"[^A-Za-z0-9_.-]", "_", n or "?") for n in names)])


def _link(target: str, text: str) -> str:
    return f'<a href="#{target}">{text}</a>'


def _fleet(fleet: Fleet) -> str:
    """The matrix with links into each cluster's drill-down, the gaps, then the drill-downs."""
    head = f'<h2>Fleet compliance matrix</h2><p class="meta">{escape(fleet_scope_text(fleet))}</p>'
    if not fleet.clusters:
        return head + '<p class="gap">No cluster was probed.</p>'
    columns = ["cluster", "region", "cluster status", *fleet.node_pools]
    rows = []
    for cluster, cells in matrix_rows(fleet):
        row = [
            f"<td>{_link(anchor('cluster', cluster.cluster), escape(cluster.cluster or '?'))}</td>",
            f"<td>{escape(region_text(cluster.regions))}</td>",
            f'<td class="{cluster.status.value}">{escape(cluster.status.words)}</td>',
        ]
        row += [
            f'<td class="{c.status.value}">'
            f"{_link(anchor('pool', c.cluster, c.node_pool), escape(cell_text(c)))}</td>"
            if c
            else "<td>-</td>"
            for c in cells
        ]
        rows.append("<tr>" + "".join(row) + "</tr>")
    matrix = (
        "<table><thead><tr>"
        + "".join(f"<th>{escape(c)}</th>" for c in columns)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    gaps = "<h2>Coverage gaps</h2>" + (
        _table(
            ["node pool", "region", "gap", "last probed"],
            [
                [
                    _link(
                        anchor("pool", c.cluster, c.node_pool),
                        escape(scope_name(c.cluster, c.node_pool)),
                    ),
                    escape(c.region),
                    f'<span class="gap">{escape(gap_text(c.gap))}</span>',
                    escape(when(c.last_run)),
                ]
                for c in fleet.gaps
                if c.gap is not None
            ],
        )
        if fleet.gaps
        else '<p class="none">Every node pool reported within its stale threshold.</p>'
    )
    drill = []
    for cluster in fleet.clusters:
        pool_rows = []
        for c in cluster.pools:
            gap = f'<br><span class="gap">{escape(gap_text(c.gap))}</span>' if c.gap else ""
            drift = f"{len(c.drift.changes)} change(s)" if c.drift else "-"
            findings = "<br>".join(
                _link(
                    anchor("finding", f.cluster, f.node_pool, f.check_id),
                    f"{escape(f.category.value)} <code>{escape(f.check_id)}</code>",
                )
                + (f": {escape(f.latest.reason)}" if f.latest else "")
                for f in c.findings
            )
            pool_rows.append(
                f'<tr id="{anchor("pool", c.cluster, c.node_pool)}">'
                f"<td>{escape(c.node_pool or '?')}</td>"
                f'<td class="{c.status.value}">{escape(c.status.words)}: '
                f"{escape('; '.join(c.reasons))}</td>"
                f"<td>{escape(runs_text(c.runs))}</td><td>{c.nodes}</td>"
                f"<td>{escape(when(c.last_run))}</td>"
                f"<td>{escape(duration_text(c.stale_after))}{gap}</td>"
                f"<td>{findings or 'none'}</td><td>{drift}</td></tr>"
            )
        header = ["node pool", "status", "runs", "nodes", "last probed", "stale after"]
        drill.append(
            f'<section id="{anchor("cluster", cluster.cluster)}">'
            f"<h3>Cluster {escape(cluster.cluster or '?')} "
            f"({escape(region_text(cluster.regions))})</h3>"
            f'<div class="status {cluster.status.value}">{escape(cluster.status.words)}: '
            f"{escape('; '.join(cluster.reasons))}</div>"
            "<table><thead><tr>"
            + "".join(f"<th>{h}</th>" for h in [*header, "findings", "drift"])
            + "</tr></thead><tbody>"
            + "".join(pool_rows)
            + "</tbody></table></section>"
        )
    return head + matrix + gaps + "<h2>Clusters</h2>" + "".join(drill)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _finding(finding: Finding, window: Window) -> str:
    latest = finding.latest
    where = escape(scope_name(finding.cluster, finding.node_pool))
    facts = (
        f"<p>{escape(finding.host)}:{finding.port}/{escape(finding.transport)} "
        f"({escape(finding.kind)}), expected <b>{escape(finding.expectation)}</b>, rule "
        f"<code>{escape(finding.rule)}</code>, destination "
        f"<code>{escape(finding.destination)}</code>"
        f"{', required' if finding.required else ''}.<br>"
        f"Failed {finding.failed} and unproven {finding.unproven} of {finding.total} results "
        f"(pass rate "
        f"{percent(finding.pass_rate)}); first failure {escape(when(finding.first_failure))}, "
        f"last {escape(when(finding.last_failure))}.</p>"
    )
    evidence = ""
    if latest is not None:
        evidence = (
            f"<p>Latest: run <code>{escape(latest.run_id)}</code> on node "
            f"{escape(latest.node or '?')}, pod {escape(latest.pod or '?')}, "
            f"{escape(when(latest.run_started_at))}: <b>{escape(latest.verdict)}</b> "
            f"({escape(latest.status.value)}"
            f"{', ' + escape(latest.assurance.value) if latest.assurance else ''}): "
            f"{escape(latest.reason)}"
            f"{'<br>Assumes: ' + escape(latest.assumption) if latest.assumption else ''}</p>"
            f"<details><summary>Evidence and attempts</summary>"
            f"<pre>{escape(latest.details_json)}</pre></details>"
        )
    return (
        f'<div class="finding {finding.category.value}" '
        f'id="{anchor("finding", finding.cluster, finding.node_pool, finding.check_id)}">'
        f"<h3>{escape(finding.category.value)}: <code>{escape(finding.check_id)}</code> on "
        f"{where}</h3>{facts}{timeline_svg(finding, window)}{evidence}</div>"
    )


def _findings(title: str, findings: tuple[Finding, ...], empty: str, window: Window) -> str:
    if not findings:
        return f'<h2>{escape(title)}</h2><p class="none">{escape(empty)}</p>'
    return f"<h2>{escape(title)}</h2>" + "".join(_finding(f, window) for f in findings)


class HtmlFormat(ReportFormat):
    """For auditors: status, findings with timelines and evidence, coverage and drift."""

    name = "html"
    suffix = ".html"

    def render(self, report: ComplianceReport) -> str:
        window = report.window
        sections = [
            f'<div class="status {report.status.value}">{escape(status_text(report))}</div>',
            f'<p class="meta">Window {escape(when(window.since))} to '
            f"{escape(when(window.until))}: {report.runs} runs, {report.results} results "
            f"({escape(status_counts_text(report.tally))}); pass rate "
            f"{percent(report.tally.pass_rate)} of judged results. Blocked verdicts by "
            f"assurance: {escape(assurance_text(report.tally))}; "
            f"{escape(conditions_text(report))}. Generated "
            f"{escape(when(report.generated_at))}.</p>",
            _fleet(report.fleet),
            _findings("Leaks", report.leaks, "No deny canary was reachable.", window),
            _findings(
                "Failed required endpoints",
                report.failed_required,
                "Every required endpoint passed.",
                window,
            ),
            _findings(
                "Failed optional endpoints",
                report.failed_optional,
                "No optional endpoint failed.",
                window,
            ),
            _findings(
                "Unproven endpoints",
                report.unproven,
                "Every endpoint that must be proven was.",
                window,
            ),
            "<h2>Flapping endpoints</h2>"
            + (
                _table(
                    ["node pool", "check", "pass rate", "first failure", "last failure"],
                    [
                        [
                            escape(scope_name(f.cluster, f.node_pool)),
                            f"<code>{escape(f.check_id)}</code>",
                            percent(f.pass_rate),
                            escape(when(f.first_failure)),
                            escape(when(f.last_failure)),
                        ]
                        for f in report.flapping
                    ],
                )
                if report.flapping
                else '<p class="none">No endpoint both passed and failed.</p>'
            ),
            "<h2>Node pool coverage</h2>"
            + _table(
                ["node pool", "runs", "nodes", "first run", "last probed"],
                [
                    [
                        escape(scope_name(c.cluster, c.node_pool)),
                        escape(runs_text(c.runs)),
                        str(c.nodes),
                        escape(when(c.first_run)),
                        escape(when(c.last_run)),
                    ]
                    for c in report.coverage
                ],
            ),
            "<h2>Drift between the last two runs</h2>" + self._drift(report),
        ]
        if report.corroboration is not None:
            c = report.corroboration
            sections.append(
                f'<h2>Firewall corroboration</h2><p class="meta">{escape(totals_text(c))}. '
                f"{escape(pending_text(c))}.</p>"
                + _table(CHECK_COLUMNS, [[escape(x) for x in row] for row in check_rows(c)])
                + "".join(f'<p class="meta">{escape(n)}</p>' for n in c.notes)
            )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Egress compliance report: {escape(report.status.words)}</title>"
            f"<style>{_CSS}</style></head><body><h1>Egress compliance report</h1>\n"
            + "\n".join(sections)
            + "\n</body></html>\n"
        )

    @staticmethod
    def _drift(report: ComplianceReport) -> str:
        rows = [
            [
                escape(scope_name(d.cluster, d.node_pool)),
                f"<code>{escape(c.check_id)}</code>",
                escape(change_text(c)),
                f"<code>{escape(d.previous_run_id)}</code> → "
                f"<code>{escape(d.latest_run_id)}</code>",
            ]
            for d in report.drift
            for c in d.changes
        ]
        if not rows:
            return '<p class="none">No check changed its result between the last two runs.</p>'
        return _table(["node pool", "check", "change", "runs"], rows)
