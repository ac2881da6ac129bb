"""Issue 10 end to end in the lab: the real probe in the pod namespace, the lab firewall's own
log (squid's access log and the nftables trace) turned into AZFW* rows with Microsoft's column
names, and `egress firewall verify` joining them with the probe's records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_probe_cli import probe_in_pod
from typer.testing import CliRunner

from egress.cli import app
from egress.compliance import CheckStatus
from egress.probe_plan import CheckKind

from firewall_lab import Lab
from lab_logs import Decision, decisions
from lab_plans import DENY, DENY_HTTP, WITNESSES, check, plan

pytestmark = pytest.mark.netns
DEFAULT_REASON = "No rule matched. Proceeding with default action"


def azfw_row(decision: Decision) -> dict[str, Any]:
    """One lab decision as the row Azure Firewall would write for it."""
    at = datetime.fromtimestamp(decision.time, UTC).isoformat()
    default = decision.action == "deny" and decision.rule in (None, "policy", "terminate")
    common = {
        "TimeGenerated": at,
        "SourceIp": decision.source_ip,
        "SourcePort": decision.source_port,
        "DestinationPort": decision.destination_port,
        "Action": "Allow" if decision.action == "allow" else "Deny",
        "ActionReason": DEFAULT_REASON if default else "",
        "Policy": "" if default else "fp-lab",
        "RuleCollectionGroup": "" if default else "lab",
        "RuleCollection": "" if default else decision.source,
        "Rule": "" if default else str(decision.rule or ""),
    }
    if decision.source == "application-rule":
        return {
            "Type": "AZFWApplicationRule",
            **common,
            "Fqdn": decision.target or "",
            "Protocol": decision.protocol.upper(),
            "IsTlsInspected": decision.inspected,
            "TargetUrl": "",
        }
    return {
        "Type": "AZFWNetworkRule",
        **common,
        "DestinationIp": decision.destination_ip,
        "Protocol": decision.protocol.upper(),
    }


def test_the_firewalls_log_turns_a_cut_looking_canary_into_a_leak(
    firewall_lab: Lab, tmp_path: Path
) -> None:
    began = datetime.now(UTC).timestamp()
    # The lab firewall allows refuses.lab.test by SNI; the destination refuses: from the pod
    # it looks like a firewall's cut after the ClientHello. Only the firewall's log can tell.
    dead = check("deny-dead-https", "refuses.lab.test", 443, CheckKind.HTTPS, DENY)
    _, records = probe_in_pod(firewall_lab, plan(*WITNESSES, DENY_HTTP, dead), tmp_path)
    by_id = {r.check_id: r for r in records}
    assert by_id["deny-dead-https"].status is CheckStatus.UNPROVEN  # the probe alone
    rows = [azfw_row(d) for d in decisions(firewall_lab, since=began - 1)]
    logs = tmp_path / "azfw.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(
        app,
        [
            "firewall",
            "verify",
            "--logs",
            str(logs),
            "--results",
            str(tmp_path / "stdout.jsonl"),
            "--days",
            "1",
            "--skew",
            "2",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 1, result.output
    checks = {c["check_id"]: c for c in json.loads(result.stdout)["runs"][0]["checks"]}
    dead_check = checks["deny-dead-https"]
    assert (dead_check["corroboration"], dead_check["status"]) == ("contradicted", "leak")
    assert dead_check["rule"] == "fp-lab/lab/application-rule/splice"
    assert checks["deny-http"]["corroboration"] == "confirmed"
    assert checks["deny-http"]["assurance"] == "confirmed"
    assert checks["allow-tls-8443"]["rule"] == "fp-lab/lab/network-rule/net/tls-8443"
    assert checks["allow-https"]["corroboration"] == "confirmed"
