"""Every output format of verify, explain and reconcile, byte for byte (tests/golden/fwlogs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from test_join_rules import NODE, T0, record, row

from egress.azure.aks import AksEndpoint
from egress.compliance import Verdict
from egress.firewall_logs.corroborate import corroborate
from egress.firewall_logs.explain import explain
from egress.firewall_logs.files import FileSource
from egress.firewall_logs.knowledge import load_knowledge
from egress.firewall_logs.model import LogTable
from egress.firewall_logs.reconcile import reconcile
from egress.firewall_logs.render import (
    explain_json,
    explain_text,
    reconcile_json,
    reconcile_text,
    verify_json,
    verify_text,
)
from egress.firewall_logs.source import LogQuery
from egress.probe_plan import Expectation
from egress.results import Location, RunReport

# Names are data only, never contacted.
DENIED = [
    ("security.ubuntu.com", 80, "HTTP"),
    ("nvidia.github.io", 443, "HTTPS"),
    ("unknown.example.test", 443, "HTTPS"),
]


def _run(checks: tuple[Any, ...]) -> RunReport:
    return RunReport(
        run_id="run-1",
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        checks=checks,
    )


def test_verify_outputs(tmp_path: Path, golden: Any) -> None:
    leak = record(Expectation.DENY, Verdict.BLOCKED)
    other = record(Expectation.ALLOW, Verdict.REACHABLE, local_port=40001)
    other = other.model_copy(update={"check_id": "required"})
    unmatched = record(Expectation.DENY, Verdict.BLOCKED, local_port=40002)
    unmatched = unmatched.model_copy(update={"check_id": "quiet"})
    path = tmp_path / "rows.jsonl"
    rows = [row("Allow"), row("Deny", SourcePort=40001)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = corroborate(
        [_run((leak, other, unmatched))], FileSource((path,)), skew=timedelta(seconds=2)
    )
    result = type(result)(
        "rows.jsonl", result.watermark, result.runs, result.notes, result.records_read
    )
    golden("fwlogs/verify.txt", "".join(verify_text(result)))
    text = "".join(verify_json(result))
    json.loads(text)
    golden("fwlogs/verify.json", text)


def test_explain_outputs(tmp_path: Path, golden: Any) -> None:
    rows = []
    for n, (host, port, protocol) in enumerate(DENIED):
        rows.append(
            {
                "Type": LogTable.APPLICATION_RULE.value,
                "TimeGenerated": (T0 + timedelta(minutes=n)).isoformat(),
                "SourceIp": NODE,
                "SourcePort": 41000 + n,
                "Fqdn": host,
                "DestinationPort": port,
                "Protocol": protocol,
                "Action": "Deny",
                "ActionReason": "No rule matched. Proceeding with default action",
            }
        )
    path = tmp_path / "denied.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = FileSource((path,))
    since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    query = LogQuery(since=since, until=until, sources=("10.240.0.0/16",), denies_only=True)
    result = explain(
        source.decisions(query),
        load_knowledge("AzureCloud", "eastus"),
        source="denied.jsonl",
        since=since,
        until=until,
        decisions_read=3,
    )
    golden("fwlogs/explain.txt", explain_text(result))
    golden("fwlogs/explain.json", explain_json(result))


def test_reconcile_outputs(golden: Any) -> None:
    aks = (
        AksEndpoint("images", "mcr.microsoft.com", 443, "https", "mcr"),
        AksEndpoint("images", "mcrprod.azurecr.io", 443, "https", "mcr storage"),
        AksEndpoint("artifacts", "packages.microsoft.com", 80, "http", "packages"),
        AksEndpoint("time-sync", "ntp.ubuntu.com", 123, "udp", "ntp"),
    )
    result = reconcile("aks-1", load_knowledge("AzureCloud", "eastus"), aks)
    golden("fwlogs/reconcile.txt", reconcile_text(result))
    golden("fwlogs/reconcile.json", reconcile_json(result))


def test_the_moment_is_fixed() -> None:
    assert datetime(2026, 11, 30, 12, 0, tzinfo=UTC) == T0
