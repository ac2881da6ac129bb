"""`--junit PATH`: one testcase per check; failures carry the evidence, skips say why."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from egress.compliance import RunJudgement
from egress.output import write_file as write_atomic
from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport, RunStatus, Verdict


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
        ("status", str(record.status)),
        ("assurance", str(record.assurance or "")),
        ("rule", record.rule),
        ("attempts", str(len(record.attempts))),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    if record.status.failing:
        kind = "leak" if record.is_leak else "non-compliant"
        failure = ET.SubElement(
            case, "failure", {"type": kind, "message": f"{record.verdict}: {record.reason}"}
        )
        failure.text = json.dumps(record.evidence, indent=2, sort_keys=True, default=str)
    elif not record.status.judged:
        judged = record.status.value
        label = judged if judged == record.verdict.value else f"{judged} ({record.verdict})"
        message = f"{label}: {record.reason}"
        ET.SubElement(case, "skipped", {"message": message})
    return case


def _run_case(judgement: RunJudgement) -> ET.Element:
    """The run status as a test case of its own, so NOT PROVEN fails a CI job even when no
    single check fails (e.g. nothing was shown to be blocked)."""
    case = ET.Element("testcase", {"classname": "egress.probe.run", "name": "run status"})
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", {"name": "status", "value": judgement.status.value})
    if judgement.status is not RunStatus.COMPLIANT:
        message = f"{judgement.status.words}: {'; '.join(judgement.reasons)}"
        ET.SubElement(case, "failure", {"type": judgement.status.value, "message": message})
    return case


def render_junit(run: RunReport) -> str:
    """Deterministic JUnit XML for one run (times come from the records)."""
    judgement = run.judgement()
    compliant = judgement.status is RunStatus.COMPLIANT
    failures = sum(1 for r in run.checks if r.status.failing) + (0 if compliant else 1)
    skipped = sum(1 for r in run.checks if not r.status.judged)
    total = (run.finished_at - run.started_at).total_seconds()
    suite = ET.Element(
        "testsuite",
        {
            "name": f"egress probe {run.cloud}/{run.region}",
            "tests": str(len(run.checks) + 1),
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
        ("run_status", judgement.status.value),
        ("leaks", str(sum(1 for r in run.checks if r.is_leak))),
        ("inconclusive", str(sum(1 for r in run.checks if r.verdict is Verdict.INCONCLUSIVE))),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for record in run.checks:
        suite.append(_testcase(record))
    suite.append(_run_case(judgement))
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
