"""Store-based verify: the run's node IP (SNAT) and pod IP, kept by the store, find the flow."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from test_join_rules import T0, record, row
from typer.testing import CliRunner

from egress.cli import app
from egress.compliance import Verdict
from egress.probe_plan import Expectation
from egress.results import Attempt, CheckRecord, Location, RunReport
from egress.store import ResultStore

RUNNER = CliRunner()
POD = "10.244.1.17"  # the pod's own address, as the probe recorded it
NODE_IP = "10.240.0.9"  # the node's: where SNAT puts the pod's traffic


def _verify(tmp_path: Path, check: CheckRecord, rows: list[dict[str, Any]]) -> dict[str, Any]:
    store = tmp_path / "results.db"
    run = RunReport(
        run_id="run-1",
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(cluster="aks-1", node_pool="pool", node_ip=NODE_IP, pod_ip=POD),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        checks=(check,),
    )
    with ResultStore(store) as result_store:
        result_store.append_run(run)
    logs = tmp_path / "rows.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["firewall", "verify", "--logs", str(logs), "--store", str(store), "--skew", "2"]
    args += ["--since", (T0 - timedelta(hours=1)).isoformat(), "--format", "json"]
    args += ["--until", (T0 + timedelta(hours=1)).isoformat()]
    result = RUNNER.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _check(document: dict[str, Any]) -> dict[str, Any]:
    (run,) = document["runs"]
    (check,) = run["checks"]
    return check  # type: ignore[no-any-return]


def test_a_snat_flow_logged_from_the_node_ip_matches_through_the_store(tmp_path: Path) -> None:
    canary = record(Expectation.DENY, Verdict.BLOCKED, local_address=POD)
    snat = _check(_verify(tmp_path, canary, [row("Allow", SourceIp=NODE_IP)]))
    assert (snat["corroboration"], snat["status"]) == ("contradicted", "leak")


def test_another_hosts_address_does_not_match(tmp_path: Path) -> None:
    canary = record(Expectation.DENY, Verdict.BLOCKED, local_address=POD)
    other = _check(_verify(tmp_path, canary, [row("Allow", SourceIp="10.240.0.10")]))
    assert other["corroboration"] == "unmatched"


def test_the_pod_ip_stands_in_for_an_attempt_without_its_address(tmp_path: Path) -> None:
    canary = record(Expectation.DENY, Verdict.BLOCKED, local_address=POD)
    bare = canary.model_copy(
        update={
            "attempts": tuple(
                Attempt.model_validate(a.model_dump() | {"local_address": None})
                for a in canary.attempts
            )
        }
    )
    found = _check(_verify(tmp_path, bare, [row("Deny", SourceIp=POD)]))
    assert (found["corroboration"], found["assurance"]) == ("confirmed", "confirmed")
