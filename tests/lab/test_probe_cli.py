"""`egress probe run` as a process in the pod namespace, through the lab firewall, then the report.

This is how issue 11's closed loop runs the probe: the real command, its exit code and every
output file, with the lab's DNS proxy as resolver and the lab's test CA as trust store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.compliance import CheckStatus, RunStatus
from egress.probe_plan import CheckKind, ProbePlan
from egress.results import CheckRecord, RunReport

from firewall_lab import Lab
from lab_plans import DENY, DENY_HTTP, WITNESSES, check, plan

pytestmark = pytest.mark.netns
EGRESS = str(Path(sys.executable).with_name("egress"))


def probe_in_pod(lab: Lab, probe_plan: ProbePlan, out: Path) -> tuple[int, list[CheckRecord]]:
    """Run the probe CLI inside the pod namespace; its exit code and JSON-lines records."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(probe_plan.to_json(), encoding="utf-8")
    server, port = lab.resolver
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.topology.pod_ns,
            EGRESS,
            "probe",
            "run",
            "--plan",
            str(out / "plan.json"),
            "--resolver",
            f"{server}:{port}",
            "--trust-store",
            str(lab.trust_store),
            "--timeout",
            "0.6",
            "--retries",
            "1",
            "--format",
            "jsonl",
            "--report",
            str(out / "report.json"),
            "--junit",
            str(out / "junit.xml"),
            "--store",
            str(out / "results.db"),
            "--cluster",
            "lab",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    (out / "stdout.jsonl").write_text(done.stdout, encoding="utf-8")
    records = [
        CheckRecord.model_validate_json(line)
        for line in done.stdout.splitlines()
        if json.loads(line).get("record") == "check"
    ]
    return done.returncode, records


def report_exit(out: Path) -> int:
    return CliRunner().invoke(app, ["report", "--store", str(out / "results.db")]).exit_code


def test_a_compliant_run_exits_0_and_the_report_agrees(firewall_lab: Lab, tmp_path: Path) -> None:
    code, records = probe_in_pod(firewall_lab, plan(*WITNESSES, DENY_HTTP), tmp_path)
    assert {r.check_id: r.status for r in records} == {
        "allow-https": CheckStatus.PASS,
        "allow-tls-8443": CheckStatus.PASS,
        "allow-ntp": CheckStatus.PASS,
        "deny-http": CheckStatus.PASS,
    }
    assert code == 0
    run = RunReport.model_validate_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert run.status() is RunStatus.COMPLIANT
    assert not list(ET.parse(tmp_path / "junit.xml").getroot().iter("failure"))
    assert report_exit(tmp_path) == 0


def test_a_leak_exits_1_in_every_output(firewall_lab: Lab, tmp_path: Path) -> None:
    leaky = check("deny-leaky-https", "leaky.lab.test", 443, CheckKind.HTTPS, DENY)
    code, records = probe_in_pod(firewall_lab, plan(*WITNESSES, DENY_HTTP, leaky), tmp_path)
    assert code == 1
    by_id = {r.check_id: r for r in records}
    assert by_id["deny-leaky-https"].status is CheckStatus.LEAK
    run = RunReport.model_validate_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert run.status() is RunStatus.NON_COMPLIANT
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    # The leaking check fails, and so does the run's own test case.
    assert [f.get("name") for f in failures] == ["deny-leaky-https", "run status"]
    assert report_exit(tmp_path) == 1


def test_an_all_inconclusive_run_reads_not_proven_in_the_lines_and_the_report(
    firewall_lab: Lab, tmp_path: Path
) -> None:
    canaries = (
        check("deny-nx", "nx-deny.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-tcp-443", "unlisted.lab.test", 443, CheckKind.TCP, DENY),
    )
    code, records = probe_in_pod(firewall_lab, plan(*WITNESSES, *canaries), tmp_path)
    assert code == 1
    assert {r.check_id: r.status for r in records if r.expectation is DENY} == {
        "deny-nx": CheckStatus.UNPROVEN,
        "deny-tcp-443": CheckStatus.UNPROVEN,
    }
    run = RunReport.model_validate_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert run.status() is RunStatus.NOT_PROVEN
    lines = [json.loads(line) for line in (tmp_path / "stdout.jsonl").read_text().splitlines()]
    summary = lines[-1]
    assert summary["record"] == "summary", summary
    assert (summary["run_status"], summary["words"]) == ("not-proven", "NOT PROVEN")
    recount = sorted(r.check_id for r in records if r.status is CheckStatus.UNPROVEN)
    assert sorted(summary["unproven"]) == recount == ["deny-nx", "deny-tcp-443"]
    run_case = next(
        case
        for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
        if case.get("name") == "run status"
    )
    assert run_case.find("failure") is not None
    assert report_exit(tmp_path) == 1
