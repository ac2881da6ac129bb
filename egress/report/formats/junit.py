"""The report as JUnit XML: one test suite per node pool, one test case per endpoint."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from egress.compliance import RunStatus
from egress.report.corroboration import (
    ReportCorroboration,
    contradiction_text,
    pending_text,
    totals_text,
)
from egress.report.formats.base import ReportFormat, gap_text, percent, status_text, when
from egress.report.model import Category, ComplianceReport, EndpointResult, Finding, scope_name

# Every finding keeps the window from being COMPLIANT, so each fails its test case.
_FAILING = tuple(Category)


def _failure_text(finding: Finding) -> str:
    lines = [
        f"{finding.category.value}: {finding.host}:{finding.port}/{finding.transport} "
        f"({finding.expectation}, rule {finding.rule})",
        f"failed {finding.failed} and unproven {finding.unproven} of {finding.total} results, "
        f"pass rate "
        f"{percent(finding.pass_rate)}, first {when(finding.first_failure)}, "
        f"last {when(finding.last_failure)}",
    ]
    if finding.latest is not None:
        latest = finding.latest
        lines += [
            f"latest: run {latest.run_id} on node {latest.node or '?'}: {latest.verdict}: "
            f"{latest.reason}",
            latest.details_json,
        ]
    return "\n".join(lines)


def _corroboration(root: ET.Element, corroboration: ReportCorroboration) -> None:
    """One case per check; a contradiction that leaves the check failing fails it."""
    failing = [c for c in corroboration.checks if any(x.status.failing for x in c.contradictions)]
    suite = ET.SubElement(
        root,
        "testsuite",
        name="firewall corroboration",
        tests=str(len(corroboration.checks)),
        failures=str(len(failing)),
    )
    ET.SubElement(
        suite, "system-out"
    ).text = f"{totals_text(corroboration)}; {pending_text(corroboration)}"
    for check in corroboration.checks:
        case = ET.SubElement(suite, "testcase", classname="egress.firewall", name=check.check_id)
        text = (
            f"{check.host}:{check.port} ({check.expectation}): {check.confirmed} confirmed, "
            f"{check.contradicted} contradicted, {check.unmatched} unmatched"
            + "".join(f"\n{contradiction_text(x)}: {x.explanation}" for x in check.contradictions)
        )
        if check in failing:
            first = next(x for x in check.contradictions if x.status.failing)
            ET.SubElement(
                case, "failure", type=first.status.value, message=contradiction_text(first)
            ).text = text
        else:
            ET.SubElement(case, "system-out").text = text


class JunitFormat(ReportFormat):
    """Every finding is a failure, and so is a window that is not COMPLIANT."""

    name = "junit"
    suffix = ".xml"

    def render(self, report: ComplianceReport) -> str:
        findings = {(f.cluster, f.node_pool, f.check_id): f for f in report.findings}
        suites: dict[tuple[str, str], list[EndpointResult]] = defaultdict(list)
        for endpoint in report.endpoints:
            suites[(endpoint.cluster, endpoint.node_pool)].append(endpoint)
        compliant = report.status is RunStatus.COMPLIANT
        cells = [p for c in report.fleet.clusters for p in c.pools]
        failing_cells = [p for p in cells if p.status is not RunStatus.COMPLIANT]
        total_failures = sum(1 for e in report.endpoints if e.category in _FAILING)
        root = ET.Element(
            "testsuites",
            name="egress report",
            tests=str(len(report.endpoints) + 1 + len(cells)),
            failures=str(total_failures + (0 if compliant else 1) + len(failing_cells)),
            timestamp=report.generated_at.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        # The window's status as its own case, so NOT PROVEN fails a CI job even when no
        # endpoint does (e.g. nothing was shown to be blocked).
        status_suite = ET.SubElement(
            root,
            "testsuite",
            name="egress report status",
            tests="1",
            failures="0" if compliant else "1",
        )
        status_case = ET.SubElement(
            status_suite, "testcase", classname="egress.report", name="status"
        )
        ET.SubElement(status_case, "properties").append(
            ET.Element("property", name="status", value=report.status.value)
        )
        if not compliant:
            ET.SubElement(
                status_case, "failure", type=report.status.value, message=status_text(report)
            )
        # The fleet matrix: one case per node pool, failing unless its cell is COMPLIANT (a
        # coverage gap fails with type "coverage-gap").
        fleet_suite = ET.SubElement(
            root,
            "testsuite",
            name="egress fleet",
            tests=str(len(cells)),
            failures=str(len(failing_cells)),
        )
        for cell in cells:
            case = ET.SubElement(
                fleet_suite,
                "testcase",
                classname="egress.fleet",
                name=scope_name(cell.cluster, cell.node_pool),
            )
            properties = ET.SubElement(case, "properties")
            for name, value in (("region", cell.region), ("status", cell.status.value)):
                properties.append(ET.Element("property", name=name, value=value))
            if cell.status is not RunStatus.COMPLIANT:
                failure = ET.SubElement(
                    case,
                    "failure",
                    type="coverage-gap" if cell.gap else cell.status.value,
                    message=f"{cell.status.words}: {'; '.join(cell.reasons)}",
                )
                if cell.gap is not None:
                    failure.text = f"{gap_text(cell.gap)}; last probed {when(cell.last_run)}"
        for (cluster, pool), endpoints in sorted(suites.items()):
            suite = ET.SubElement(
                root,
                "testsuite",
                name=scope_name(cluster, pool),
                tests=str(len(endpoints)),
                failures=str(sum(1 for e in endpoints if e.category in _FAILING)),
            )
            for endpoint in endpoints:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"egress.{scope_name(cluster, pool)}",
                    name=endpoint.check_id,
                )
                finding = findings.get((cluster, pool, endpoint.check_id))
                if finding is None:
                    continue
                if finding.category in _FAILING:
                    failure = ET.SubElement(
                        case,
                        "failure",
                        type=finding.category.value,
                        message=finding.latest.reason if finding.latest else finding.category,
                    )
                    failure.text = _failure_text(finding)
                else:
                    ET.SubElement(case, "system-out").text = _failure_text(finding)
        if report.corroboration is not None:
            _corroboration(root, report.corroboration)
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
