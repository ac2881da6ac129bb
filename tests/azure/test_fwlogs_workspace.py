"""Corroboration end to end: real squid traffic, its log as AZFW rows in the Log Analytics
emulator, read back through azure-monitor-query by `egress firewall verify`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.compliance import Assurance, Verdict
from egress.probe_plan import Expectation

from fwlogs_records import record_for, use_emulator_identity, write_run
from log_analytics import LogAnalyticsEmulator, QueryFault
from squid_lab import SquidLab, azfw_rows

WORKSPACE = "11111111-2222-3333-4444-555555555555"
CANARY = "canary.example.test"  # resolved locally by squid's hosts file, never contacted
REQUIRED = "mcr.microsoft.com"  # resolved locally, never contacted
OTHER_CANARY = "exfil.example.test"  # resolved locally, never contacted


@pytest.fixture
def la(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LogAnalyticsEmulator]:
    with LogAnalyticsEmulator(tmp_path) as emulator:
        emulator.readable.add(WORKSPACE)
        use_emulator_identity(monkeypatch, emulator.url, emulator.ca_path)
        yield emulator


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[SquidLab]:
    # The mistake under test: a rule that lets the canary through.
    allow = {"AllowMcr": [REQUIRED], "AllowCanaryByMistake": [CANARY]}
    with SquidLab(tmp_path, allow=allow, names=[REQUIRED, CANARY, OTHER_CANARY]) as squid:
        yield squid


def verify(la: LogAnalyticsEmulator, results: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "firewall",
            "verify",
            "--logs",
            f"workspace:{WORKSPACE}",
            "--workspace-endpoint",
            la.url,
            "--results",
            str(results),
            "--days",
            "1",
            "--skew",
            "1",
            *extra,
        ],
    )
    return result.exit_code, result.stdout if "json" in extra else result.output


def lab_run(lab: SquidLab, la: LogAnalyticsEmulator, tmp_path: Path) -> Path:
    """Three real requests through squid; the probe's own verdicts; squid's log ingested."""
    required = lab.get(REQUIRED)
    canary = lab.get(CANARY)
    other = lab.get(OTHER_CANARY)
    assert (required.status, canary.status, other.status) == (200, 200, 403)
    time.sleep(1.2)  # a firewall logs on: later traffic shows how far its logs have arrived
    assert lab.get(REQUIRED).status == 200
    la.ingest("AZFWApplicationRule", azfw_rows(lab.wait_for_log(4)))
    records = [
        record_for(
            required,
            check_id="required-mcr",
            expectation=Expectation.ALLOW,
            verdict=Verdict.REACHABLE,
            port=80,
        ),
        # The probe alone calls this canary blocked (a dead destination looks like a deny).
        record_for(
            canary,
            check_id="canary-http",
            expectation=Expectation.DENY,
            verdict=Verdict.BLOCKED,
            assurance=Assurance.SIGNATURE,
            port=80,
        ),
        record_for(
            other,
            check_id="canary-exfil",
            expectation=Expectation.DENY,
            verdict=Verdict.BLOCKED,
            assurance=Assurance.SIGNATURE,
            port=80,
        ),
    ]
    return write_run(tmp_path / "run.json", records)


def test_a_canary_the_firewall_allowed_is_a_leak_naming_the_allowing_rule(
    lab: SquidLab, la: LogAnalyticsEmulator, tmp_path: Path
) -> None:
    results = lab_run(lab, la, tmp_path)
    records = tmp_path / "corroborated.jsonl"
    code, out = verify(la, results, "--format", "json", "--records", str(records))
    assert code == 1, out
    report = json.loads(out)
    stored = {r["check_id"]: r for r in map(json.loads, records.read_text().splitlines())}
    assert (stored["canary-http"]["status"], stored["canary-http"]["assurance"]) == (
        "leak",
        "confirmed",
    )
    assert "AllowCanaryByMistake" in stored["canary-http"]["reason"]
    checks = {c["check_id"]: c for c in report["runs"][0]["checks"]}
    leak = checks["canary-http"]
    assert leak["corroboration"] == "contradicted"
    assert (leak["probe_status"], leak["status"]) == ("pass", "leak")
    assert leak["rule"] == "fp-lab/egress-lab/lab-allow/AllowCanaryByMistake"
    assert report["runs"][0]["status"] == "non-compliant"
    denied = checks["canary-exfil"]
    assert (denied["corroboration"], denied["status"], denied["assurance"]) == (
        "confirmed",
        "pass",
        "confirmed",
    )
    assert denied["rule"].startswith("default action (No rule matched")
    assert checks["required-mcr"]["corroboration"] == "confirmed"
    assert checks["required-mcr"]["rule"].endswith("/AllowMcr")
    # The query was bounded by time, by the run's source addresses and by rows.
    sent = next(q["query"] for q in la.queries if "project" in q["query"])
    assert 'ipv4_is_in_any_range(SourceIp, dynamic(["127.0.0.1"]))' in sent
    assert "| take 500000" in sent


def test_text_report_shows_each_checks_corroboration(
    lab: SquidLab, la: LogAnalyticsEmulator, tmp_path: Path
) -> None:
    code, out = verify(la, lab_run(lab, la, tmp_path))
    assert code == 1
    assert "NON-COMPLIANT" in out
    line = next(x for x in out.splitlines() if "canary-http" in x)
    assert "contradicted" in line and "pass -> leak" in line and "AllowCanaryByMistake" in line
    assert "1 confirmed" not in out and "2 confirmed, 1 contradicted, 0 unmatched" in out


def test_logs_not_arrived_are_unmatched_and_marked_then_waited_for(
    lab: SquidLab, la: LogAnalyticsEmulator, tmp_path: Path
) -> None:
    la.lag_seconds = 1.5
    results = lab_run(lab, la, tmp_path)
    code, out = verify(la, results, "--format", "json")
    report = json.loads(out)
    assert report["runs"][0]["logs_arrived"] is False
    outcomes = {c["corroboration"] for c in report["runs"][0]["checks"]}
    assert outcomes == {"unmatched"}, out  # never confirmed without a record
    assert code == 0  # unmatched changes nothing: the probe's own verdicts stand
    _, text = verify(la, results)
    assert "[firewall logs not arrived yet]" in text
    code, out = verify(la, results, "--format", "json", "--wait", "10", "--poll", "0.3")
    report = json.loads(out)
    assert report["runs"][0]["logs_arrived"] is True
    assert {c["corroboration"] for c in report["runs"][0]["checks"]} == {
        "confirmed",
        "contradicted",
    }


def test_a_workspace_the_credential_cannot_read_is_an_azure_refusal(
    lab: SquidLab, la: LogAnalyticsEmulator, tmp_path: Path
) -> None:
    results = lab_run(lab, la, tmp_path)
    la.readable.clear()
    code, out = verify(la, results)
    assert code == 4, out
    assert "Log Analytics Reader" in out and "Traceback" not in out


def test_partial_results_and_throttling_are_handled(
    lab: SquidLab, la: LogAnalyticsEmulator, tmp_path: Path
) -> None:
    results = lab_run(lab, la, tmp_path)
    la.faults.append(QueryFault("throttle", contains="project", times=1))
    la.faults.append(QueryFault("partial", contains="AZFWApplicationRule\n| where", times=1))
    _, out = verify(la, results, "--format", "json")
    report = json.loads(out)
    assert any("partial results" in n for n in report["notes"]), report["notes"]
    # The network-rule table was never written to: noted, not fatal.
    assert any("has no table AZFWNetworkRule" in n for n in report["notes"])
    assert any(q["query"].startswith("AZFWApplicationRule\n| where") for q in la.queries)
    checks = {c["check_id"]: c for c in report["runs"][0]["checks"]}
    missing = [c for c in checks.values() if c["corroboration"] == "unmatched"]
    assert missing and all("incomplete" in c["explanation"] for c in missing)
    assert all(c["corroboration"] != "confirmed" or c["rule"] for c in checks.values())


UBUNTU = "security.ubuntu.com"  # a catalog entry of feature ubuntu-updates; resolved locally


def test_explain_names_the_catalog_entry_a_denied_required_endpoint_needs(
    tmp_path: Path, la: LogAnalyticsEmulator
) -> None:
    with SquidLab(tmp_path, allow={"AllowMcr": [REQUIRED]}, names=[REQUIRED, UBUNTU]) as lab:
        assert lab.get(UBUNTU).status == 403  # denied by squid's default action
        assert lab.get(REQUIRED).status == 200
        la.ingest("AZFWApplicationRule", azfw_rows(lab.wait_for_log(2)))
    result = CliRunner().invoke(
        app,
        [
            "firewall",
            "explain",
            "--logs",
            f"workspace:{WORKSPACE}",
            "--workspace-endpoint",
            la.url,
            "--source",
            "127.0.0.0/8",
            "--region",
            "eastus",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    denials = json.loads(result.stdout)["denials"]
    assert [(d["destination"], d["finding"], d["entry"]) for d in denials] == [
        (UBUNTU, "enable-feature", "ubuntu-updates/ubuntu-security")
    ]
    sent = [q["query"] for q in la.queries]
    assert all('| where Action in ("Deny", "Drop")' in q for q in sent if "project" in q)


def test_the_query_api_of_each_cloud_is_its_own_audience() -> None:
    from egress.firewall_logs.workspace import WorkspaceSettings, WorkspaceSource
    from egress.model import Cloud

    endpoints = {
        cloud: WorkspaceSource(WorkspaceSettings(WORKSPACE, cloud=cloud)).endpoint
        for cloud in Cloud
    }
    assert endpoints == {
        Cloud.AZURE_CLOUD: "https://api.loganalytics.io",
        Cloud.AZURE_CHINA_CLOUD: "https://api.loganalytics.azure.cn",
        Cloud.AZURE_US_GOVERNMENT: "https://api.loganalytics.us",
    }
