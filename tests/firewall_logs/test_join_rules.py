"""The join's rules on exact flows: same source and port, destination, time window, tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from egress.compliance import Assurance, CheckStatus, Verdict, check_status
from egress.firewall_logs.corroborate import Outcome, corroborate
from egress.firewall_logs.files import FileSource
from egress.probe_plan import CheckKind, Expectation
from egress.results import Attempt, CheckRecord, Location, Phase, RunReport

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NODE = "10.240.0.4"
HOST = "canary.example.test"  # data only, never contacted


def record(
    expectation: Expectation,
    verdict: Verdict,
    *,
    port: int = 443,
    local_port: int = 40000,
    local_address: str = NODE,
    node_ip: str | None = None,
) -> CheckRecord:
    assurance = Assurance.SIGNATURE if verdict is Verdict.BLOCKED else None
    tcp = Phase(
        name="tcp",
        ok=verdict is not Verdict.BLOCKED,
        duration_ms=500.0,
        detail={"address": "203.0.113.7"},
    )
    return CheckRecord(
        run_id="run-1",
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(node_ip=node_ip),
        check_id="c",
        host=HOST,
        port=port,
        transport="tcp",
        kind=CheckKind.TCP if port not in (80, 443) else CheckKind.HTTPS,
        expectation=expectation,
        destination=HOST,
        rule="r",
        feature="canary",
        required=expectation is Expectation.ALLOW,
        verdict=verdict,
        status=check_status(expectation=expectation, verdict=verdict, assurance=assurance),
        assurance=assurance,
        reason="probe",
        evidence={},
        attempts=(
            Attempt(
                started_at=T0,
                verdict=verdict,
                reason="",
                phases=(tcp,),
                local_address=local_address,
                local_port=local_port,
            ),
        ),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
    )


def row(action: str, **changes: Any) -> dict[str, Any]:
    base = {
        "Type": "AZFWApplicationRule",
        "TimeGenerated": (T0 + timedelta(milliseconds=300)).isoformat(),
        "SourceIp": NODE,
        "SourcePort": 40000,
        "Fqdn": HOST,
        "DestinationPort": 443,
        "Protocol": "HTTPS",
        "Action": action,
        "ActionReason": "",
        "Policy": "fp",
        "RuleCollectionGroup": "g",
        "RuleCollection": "c",
        "Rule": "r1" if action == "Allow" else "",
    }
    return base | changes


def run_with(tmp_path: Path, check: CheckRecord, rows: list[dict[str, Any]]) -> Any:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = RunReport(
        run_id="run-1",
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        checks=(check,),
    )
    result = corroborate([report], FileSource((path,)), skew=timedelta(seconds=2))
    return next(result.checks)


def test_an_allowed_canary_is_a_leak_through_the_one_rule(tmp_path: Path) -> None:
    c = run_with(tmp_path, record(Expectation.DENY, Verdict.BLOCKED), [row("Allow")])
    assert (c.outcome, c.status, c.verdict) == (
        Outcome.CONTRADICTED,
        CheckStatus.LEAK,
        Verdict.REACHABLE,
    )
    assert c.rule == "fp/g/c/r1"


def test_a_logged_deny_confirms_a_blocked_canary(tmp_path: Path) -> None:
    c = run_with(tmp_path, record(Expectation.DENY, Verdict.BLOCKED), [row("Deny")])
    assert (c.outcome, c.status, c.assurance) == (
        Outcome.CONFIRMED,
        CheckStatus.PASS,
        Assurance.CONFIRMED,
    )
    assert c.rule.startswith("default action")


def test_a_deny_for_an_allow_check_fails_it_naming_the_default_action(tmp_path: Path) -> None:
    c = run_with(tmp_path, record(Expectation.ALLOW, Verdict.REACHABLE), [row("Deny")])
    assert (c.outcome, c.status) == (Outcome.CONTRADICTED, CheckStatus.FAIL)


def test_an_allow_for_a_failed_allow_check_blames_the_destination(tmp_path: Path) -> None:
    c = run_with(tmp_path, record(Expectation.ALLOW, Verdict.BLOCKED), [row("Allow")])
    assert (c.outcome, c.verdict, c.status) == (
        Outcome.CONTRADICTED,
        Verdict.UNHEALTHY,
        CheckStatus.PASS,
    )


def test_an_inconclusive_canary_denied_by_the_firewall_becomes_a_pass(tmp_path: Path) -> None:
    c = run_with(tmp_path, record(Expectation.DENY, Verdict.INCONCLUSIVE), [row("Deny")])
    assert (c.status, c.assurance) == (CheckStatus.PASS, Assurance.CONFIRMED)


@pytest.mark.parametrize(
    "changes",
    [
        {"SourcePort": 40001},  # another flow of the same node
        {"SourceIp": "10.240.0.5"},  # another node
        {"DestinationPort": 80},
        {"Fqdn": "other.example.test"},
        {"TimeGenerated": (T0 + timedelta(seconds=4)).isoformat()},  # past end + skew
        {"TimeGenerated": (T0 - timedelta(seconds=3)).isoformat()},  # before start - skew
        {"Type": "AZFWDnsQuery", "QueryName": HOST},  # a DNS proxy row is no decision
    ],
)
def test_anything_but_the_same_flow_in_its_window_stays_unmatched(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    c = run_with(tmp_path, record(Expectation.DENY, Verdict.BLOCKED), [row("Allow", **changes)])
    assert c.outcome is Outcome.UNMATCHED
    assert (c.status, c.assurance) == (CheckStatus.PASS, Assurance.SIGNATURE)  # unchanged


def test_a_network_rule_matches_by_the_resolved_address(tmp_path: Path) -> None:
    network = {
        "Type": "AZFWNetworkRule",
        "TimeGenerated": (T0 + timedelta(milliseconds=300)).isoformat(),
        "SourceIp": NODE,
        "SourcePort": 40000,
        "DestinationIp": "203.0.113.7",
        "DestinationPort": 8443,
        "Protocol": "TCP",
        "Action": "Allow",
        "Policy": "fp",
        "RuleCollectionGroup": "g",
        "RuleCollection": "net",
        "Rule": "any-8443",
    }
    c = run_with(tmp_path, record(Expectation.DENY, Verdict.BLOCKED, port=8443), [network])
    assert (c.status, c.rule) == (CheckStatus.LEAK, "fp/g/net/any-8443")


def test_within_the_skew_still_matches(tmp_path: Path) -> None:
    late = {"TimeGenerated": (T0 + timedelta(seconds=2.5)).isoformat()}
    c = run_with(tmp_path, record(Expectation.DENY, Verdict.BLOCKED), [row("Allow", **late)])
    assert c.status is CheckStatus.LEAK


def test_behind_snat_the_node_ip_is_the_source_the_firewall_saw(tmp_path: Path) -> None:
    pod = record(Expectation.DENY, Verdict.BLOCKED, local_address="10.244.1.9", node_ip=NODE)
    assert run_with(tmp_path, pod, [row("Allow")]).status is CheckStatus.LEAK
    alone = record(Expectation.DENY, Verdict.BLOCKED, local_address="10.244.1.9")
    assert run_with(tmp_path, alone, [row("Allow")]).outcome is Outcome.UNMATCHED


def test_a_run_without_source_ports_says_so(tmp_path: Path) -> None:
    old = record(Expectation.DENY, Verdict.BLOCKED)
    attempt = old.attempts[0].model_copy(update={"local_address": None, "local_port": None})
    c = run_with(tmp_path, old.model_copy(update={"attempts": (attempt,)}), [row("Allow")])
    assert c.outcome is Outcome.UNMATCHED
    assert c.explanation == "the run did not record the attempt's source address and port"
