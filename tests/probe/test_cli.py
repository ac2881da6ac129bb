"""`egress probe run` end to end: exit codes, JSON lines, report file, JUnit, store, compile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import DNS_HOST, Lab, make_check, make_plan
from typer.testing import CliRunner

from egress.cli import app
from egress.probe_plan import CheckKind, Expectation, ProbePlan
from egress.results import (
    CheckRecord,
    CheckStatus,
    RunReport,
    RunStatus,
    RunSummary,
    Verdict,
    split_lines,
)

DENY = Expectation.DENY


def write_plan(tmp_path: Path, plan: ProbePlan) -> Path:
    path = tmp_path / "probe-plan.json"
    path.write_text(plan.to_json(), encoding="utf-8")
    return path


def records_of(stdout: str) -> dict[str, CheckRecord]:
    """The check records of JSON-lines output, by check id (the summary line set apart)."""
    records, summaries = split_lines(stdout.splitlines())
    assert len(summaries) == 1, "every run ends with exactly one summary line"
    return {r.check_id: r for r in records}


def summary_of(stdout: str) -> RunSummary:
    _, (summary,) = split_lines(stdout.splitlines())
    assert stdout.splitlines()[-1].startswith('{"schema_version":1,"record":"summary"')
    return summary


def probe(lab: Lab, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app,
        [
            "probe",
            "run",
            "--resolver",
            f"{DNS_HOST}:{lab.dns_port}",
            "--trust-store",
            str(lab.trust_store),
            "--timeout",
            "0.8",
            "--retries",
            "0",
            *args,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def test_leak_and_missing_required_endpoint_fail_the_run_with_evidence(
    lab: Lab, tmp_path: Path
) -> None:
    plan = make_plan(
        lab.check("good"),
        lab.check("cut", id="required-but-cut"),
        make_check("canary-dns", DNS_HOST, lab.dns_port, kind=CheckKind.DNS, expectation=DENY),
    )
    report, junit = tmp_path / "out" / "report.json", tmp_path / "out" / "junit.xml"
    code, stdout, _ = probe(
        lab,
        "--plan",
        str(write_plan(tmp_path, plan)),
        "--report",
        str(report),
        "--junit",
        str(junit),
    )
    assert code == 1
    records = records_of(stdout)
    assert set(records) == {"good", "required-but-cut", "canary-dns"}
    summary = summary_of(stdout)
    assert summary.run_status is RunStatus.NON_COMPLIANT and summary.words == "NON-COMPLIANT"
    assert (summary.leaks, summary.failures, summary.unproven) == (
        ("canary-dns",),
        ("required-but-cut",),
        (),
    )
    assert records["canary-dns"].is_leak
    assert records["canary-dns"].evidence["dns-query"]["rcode"] == "NOERROR"
    cut_record = records["required-but-cut"]
    assert cut_record.required and cut_record.status is CheckStatus.FAIL
    assert records["required-but-cut"].evidence["tls"]["outcome"] == "cut-after-client-hello"

    run = RunReport.model_validate_json(report.read_text())
    assert run.status() is RunStatus.NON_COMPLIANT and [c.check_id for c in run.checks] == [
        "good",
        "required-but-cut",
        "canary-dns",
    ]
    assert run.plan_hash == plan.plan_hash

    suite = ET.parse(junit).getroot().find("testsuite")
    # three checks and the run status; the two findings and the run status fail
    assert suite is not None and suite.get("failures") == "3" and suite.get("tests") == "4"
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert failures["good"] is None
    run_case = failures["run status"]
    assert run_case is not None and run_case.get("type") == "non-compliant"
    assert (run_case.get("message") or "").startswith("NON-COMPLIANT: ")
    leak, cut = failures["canary-dns"], failures["required-but-cut"]
    assert leak is not None and leak.get("type") == "leak"
    assert json.loads(leak.text or "")["dns-query"]["outcome"] == "reply"
    assert cut is not None and cut.get("type") == "non-compliant"
    assert json.loads(cut.text or "")["tls"]["bytes_from_server"] == 0


def test_compliant_run_exits_zero_and_skips_unverifiable(lab: Lab, tmp_path: Path) -> None:
    plan = make_plan(
        lab.check("good"),
        lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY),
        make_check(
            "tunnel",
            "t.probe.test",
            1194,
            kind=CheckKind.UNVERIFIABLE,
            unverifiable_reason="tunnel",
        ),
    )
    junit = tmp_path / "junit.xml"
    code, stdout, _ = probe(
        lab, "--plan", str(write_plan(tmp_path, plan)), "--junit", str(junit), "--cluster", "c1"
    )
    assert code == 0
    lines = stdout.splitlines()
    assert len(lines) == 4  # three checks and the summary
    records = list(records_of(stdout).values())
    assert summary_of(stdout).run_status is RunStatus.COMPLIANT
    assert {r.location.cluster for r in records} == {"c1"}
    assert {r.verdict for r in records} == {
        Verdict.REACHABLE,
        Verdict.BLOCKED,
        Verdict.UNVERIFIABLE,
    }
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["tunnel"].find("skipped") is not None
    assert cases["good"].find("failure") is None and cases["good"].find("skipped") is None


def test_table_format_prints_a_summary_on_stderr(lab: Lab, tmp_path: Path) -> None:
    plan = make_plan(lab.check("good"), lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY))
    code, stdout, stderr = probe(
        lab, "--plan", str(write_plan(tmp_path, plan)), "--format", "table"
    )
    assert code == 0
    assert stdout == ""
    assert "good" in stderr and "reachable" in stderr and "-> COMPLIANT" in stderr


def test_a_run_that_shows_nothing_blocked_is_not_proven(lab: Lab, tmp_path: Path) -> None:
    """Every allow check reachable but no deny check at all: nothing was shown to be blocked,
    so the run proves no firewall, strict or not."""
    plan = make_plan(lab.check("good"))
    code, _, stderr = probe(lab, "--plan", str(write_plan(tmp_path, plan)), "--format", "table")
    assert code == 1
    assert "-> NOT PROVEN" in stderr and "-> COMPLIANT" not in stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--plan", "missing.json"],
        ["--plan", "plan.json", "--region", "eastus"],
        ["--plan", "plan.json", "--format", "xml"],
        ["--plan", "plan.json", "--resolver", "dns.example"],
        ["--plan", "plan.json", "--control", "nope"],
        ["--plan", "plan.json", "--concurrency", "0"],
    ],
)
def test_usage_and_plan_errors_exit_2(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    write_plan(tmp_path, make_plan(lab.check("good")))
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = probe(lab, *args)
    assert code == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr


def test_empty_plan_is_a_plan_error(lab: Lab, tmp_path: Path) -> None:
    code, _, stderr = probe(lab, "--plan", str(write_plan(tmp_path, make_plan())))
    assert code == 2 and "no checks" in stderr


def test_bad_plan_file_names_the_file(lab: Lab, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "checks": "nope"}')
    code, _, stderr = probe(lab, "--plan", str(bad))
    assert code == 2
    assert "bad.json" in stderr


def test_unwritable_report_is_an_environment_error(lab: Lab, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    plan = write_plan(tmp_path, make_plan(lab.check("good")))
    code, _, stderr = probe(lab, "--plan", str(plan), "--report", str(blocker / "report.json"))
    assert code == 5
    assert "report.json" in stderr


def test_store_appends_the_run(lab: Lab, tmp_path: Path) -> None:
    store_module = pytest.importorskip("egress.store")
    store = tmp_path / "results.sqlite"
    checks = (lab.check("good"), lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY))
    plan = write_plan(tmp_path, make_plan(*checks))
    report = tmp_path / "report.json"
    code, _, stderr = probe(
        lab, "--plan", str(plan), "--store", str(store), "--report", str(report)
    )
    assert code == 0, stderr
    run = RunReport.model_validate_json(report.read_text())
    with store_module.ResultStore(store) as opened:
        assert opened.append_run(run) is False  # already stored by the probe


@pytest.mark.netns
def test_region_without_plan_file_compiles_and_probes_inside_a_netns(tmp_path: Path) -> None:
    """The default plan names real hosts and IPs: probe it only where nothing can leave."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root to create a network namespace (CI runs the suite as root)")
    pytest.importorskip("egress.compiler")
    name = f"egress-probe-cli-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        entry = "from egress.cli import main; main()"
        command = [sys.executable, "-c", entry, "probe", "run", "--region", "eastus"]
        result = subprocess.run(
            # resolver 127.0.0.1:53 has nothing listening; the namespace has no route out
            ["ip", "netns", "exec", name, *command, "--resolver", "127.0.0.1:53", "--format",
             "table", "--timeout", "0.3", "--deadline", "20", "--report", str(tmp_path / "r.json")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    # nothing is reachable and nothing is proven blocked: required endpoints are unproven,
    # which an auditor must see as a failed run, not a green one
    assert result.returncode == 1, result.stderr
    assert "could not be proven either way" in result.stderr
    assert "checks:" in result.stderr and "egress probe AzureCloud/eastus" in result.stderr
    run = RunReport.model_validate_json((tmp_path / "r.json").read_text())
    assert run.region == "eastus" and run.checks
    assert all(r.verdict is not Verdict.REACHABLE for r in run.checks)  # nothing got out


def test_an_unproven_required_endpoint_fails_the_run(lab: Lab, tmp_path: Path) -> None:
    """NXDOMAIN proves nothing blocked, but a required endpoint that was not shown to work
    must not leave the run green."""
    plan = make_plan(lab.check("good"), make_check("required-nx", "nx.probe.test", 443))
    code, stdout, stderr = probe(lab, "--plan", str(write_plan(tmp_path, plan)))
    records = records_of(stdout)
    assert summary_of(stdout).run_status is RunStatus.NOT_PROVEN
    assert records["required-nx"].verdict is Verdict.INCONCLUSIVE
    assert records["required-nx"].status is CheckStatus.UNPROVEN
    assert code == 1
    assert "required-nx" in stderr


def test_strict_also_fails_on_an_inconclusive_canary(lab: Lab, tmp_path: Path) -> None:
    plan = make_plan(
        lab.check("good"),
        lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY),
        make_check("canary-nx", "nx.probe.test", 443, expectation=DENY),
    )
    plan_file = str(write_plan(tmp_path, plan))
    relaxed, stdout, _ = probe(lab, "--plan", plan_file)
    verdicts = {check_id: r.verdict for check_id, r in records_of(stdout).items()}
    assert verdicts["canary-nx"] is Verdict.INCONCLUSIVE
    assert relaxed == 0
    strict, _, stderr = probe(lab, "--plan", plan_file, "--strict")
    assert strict == 1 and "canary-nx" in stderr
    assert "NOT PROVEN: --strict: a deny check was not proven blocked" in stderr


def test_an_all_inconclusive_run_reads_not_proven_everywhere(lab: Lab, tmp_path: Path) -> None:
    """Nothing reachable and nothing shown blocked (both names are NXDOMAIN in the lab): every
    output says NOT PROVEN, and the probe and the report both exit 1, never "compliant"."""
    plan = write_plan(
        tmp_path,
        make_plan(
            make_check("required-nx", "nx.probe.test", 443),
            make_check("canary-nx", "nx-canary.probe.test", 443, expectation=DENY),
        ),
    )
    report, junit, store = tmp_path / "r.json", tmp_path / "j.xml", tmp_path / "s.sqlite"
    code, stdout, stderr = probe(
        lab,
        "--plan",
        str(plan),
        "--report",
        str(report),
        "--junit",
        str(junit),
        "--store",
        str(store),
    )
    assert code == 1
    records = records_of(stdout)
    assert {r.verdict for r in records.values()} == {Verdict.INCONCLUSIVE}
    summary = summary_of(stdout)
    assert (summary.run_status, summary.words) == (RunStatus.NOT_PROVEN, "NOT PROVEN")
    assert set(summary.unproven) == {"required-nx", "canary-nx"}
    assert summary.by_status[CheckStatus.PASS] == 0
    assert "NOT PROVEN: a required endpoint was not proven reachable" in stderr
    assert json.loads(report.read_text())["run_status"] == "not-proven"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    run_failure = cases["run status"].find("failure")
    assert run_failure is not None and run_failure.get("type") == "not-proven"
    assert int(suite.get("failures") or 0) >= 1

    table_code, _, table = probe(lab, "--plan", str(plan), "--format", "table")
    assert table_code == 1
    assert "-> NOT PROVEN: a required endpoint was not proven reachable; nothing was shown" in (
        " ".join(table.split())
    )
    assert "COMPLIANT" not in table.replace("NON-COMPLIANT", "")

    for fmt in ("terminal", "json", "markdown", "html", "junit"):
        result = CliRunner().invoke(app, ["report", "--store", str(store), "--format", fmt])
        assert result.exit_code == 1, (fmt, result.stdout)
        assert "NOT PROVEN" in result.stdout or '"not-proven"' in result.stdout, fmt
        assert "COMPLIANT:" not in result.stdout.replace("NON-COMPLIANT", ""), fmt


def test_require_assurance_leaves_weaker_blocks_unproven(lab: Lab, tmp_path: Path) -> None:
    """No probe can reach `confirmed` on its own (only the firewall's logs can), so requiring
    it leaves the lab's 470 deny unproven: nothing is shown blocked and the run is NOT PROVEN,
    whatever assurance the judge gives the 470."""
    plan = write_plan(
        tmp_path,
        make_plan(lab.check("good"), lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY)),
    )
    code, stdout, _ = probe(lab, "--plan", str(plan))
    assert code == 0 and records_of(stdout)["deny470"].status is CheckStatus.PASS
    required, out, stderr = probe(lab, "--plan", str(plan), "--require-assurance", "confirmed")
    deny = records_of(out)["deny470"]
    assert (deny.verdict, deny.status) == (Verdict.BLOCKED, CheckStatus.UNPROVEN)
    summary = summary_of(out)
    assert (required, summary.run_status) == (1, RunStatus.NOT_PROVEN)
    assert summary.require_assurance == "confirmed" and summary.unproven == ("deny470",)
    assert "NOT PROVEN: nothing was shown to be blocked" in stderr
    bad, _, bad_err = probe(lab, "--plan", str(plan), "--require-assurance", "strong")
    assert bad == 2 and "--require-assurance 'strong'" in bad_err
