"""`--junit PATH`: one testcase per check; failures carry the evidence, skips say why."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from egress.output import write_file as write_atomic
from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport, Verdict


def _seconds(record: CheckRecord) -> str:
    return f"{max((record.finished_at - record.started_at).total_seconds(), 0.0):.3f}"


def _testcase(record: CheckRecord) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": f"egress.probe.{record.feature}",
            "name": record.check_id,
            "time": _seconds(record),
        },
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("host", f"{record.host}:{record.port}/{record.transport}"),
        ("kind", str(record.kind)),
        ("expectation", str(record.expectation)),
        ("verdict", str(record.verdict)),
        ("rule", record.rule),
        ("attempts", str(len(record.attempts))),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    if record.compliant is False:
        kind = "leak" if record.is_leak else "non-compliant"
        failure = ET.SubElement(
            case, "failure", {"type": kind, "message": f"{record.verdict}: {record.reason}"}
        )
        failure.text = json.dumps(record.evidence, indent=2, sort_keys=True, default=str)
    elif record.compliant is None:
        ET.SubElement(case, "skipped", {"message": f"{record.verdict}: {record.reason}"})
    return case


def render_junit(run: RunReport) -> str:
    """Deterministic JUnit XML for one run (times come from the records)."""
    failures = sum(1 for r in run.checks if r.compliant is False)
    skipped = sum(1 for r in run.checks if r.compliant is None)
    total = (run.finished_at - run.started_at).total_seconds()
    suite = ET.Element(
        "testsuite",
        {
            "name": f"egress probe {run.cloud}/{run.region}",
            "tests": str(len(run.checks)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "time": f"{max(total, 0.0):.3f}",
            "timestamp": run.started_at.isoformat(),
            "hostname": run.location.node or "",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", run.run_id),
        ("plan_hash", run.plan_hash),
        ("leaks", str(sum(1 for r in run.checks if r.is_leak))),
        ("inconclusive", str(sum(1 for r in run.checks if r.verdict is Verdict.INCONCLUSIVE))),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for record in run.checks:
        suite.append(_testcase(record))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


class JunitOutput:
    def __init__(self, path: Path) -> None:
        self._path = path

    def start(self, plan: ProbePlan) -> None:
        return None

    def record(self, record: CheckRecord) -> None:
        return None

    def finish(self, run: RunReport) -> None:
        write_atomic(self._path, render_junit(run))
