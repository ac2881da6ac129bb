"""`egress report --firewall-logs`: per-check corroboration in every format, judged by the rule."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_join_rules import NODE, T0, record, row
from typer.testing import CliRunner

from egress.cli import app
from egress.compliance import Verdict
from egress.probe_plan import Expectation
from egress.report import FormatName
from egress.results import CheckRecord, Location, RunReport
from egress.store import ResultStore

RUNNER = CliRunner()
NOW = (T0 + timedelta(hours=1)).isoformat()
SUFFIX = {"terminal": "txt", "html": "html", "markdown": "md", "json": "json", "junit": "xml"}


def _run(run_id: str, start: Any, checks: list[CheckRecord]) -> RunReport:
    return RunReport(
        run_id=run_id,
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(cluster="aks-1", node_pool="pool", node_ip=NODE),
        started_at=start,
        finished_at=start + timedelta(seconds=1),
        checks=tuple(c.model_copy(update={"run_id": run_id}) for c in checks),
    )


def _checks(shift: timedelta) -> list[CheckRecord]:
    """A canary the probe calls blocked, a required endpoint, and a canary nobody logged."""
    out = []
    for check_id, expectation, verdict, port in (
        ("canary", Expectation.DENY, Verdict.BLOCKED, 40000),
        ("required", Expectation.ALLOW, Verdict.REACHABLE, 40001),
        ("quiet", Expectation.DENY, Verdict.BLOCKED, 40002),
    ):
        check = record(expectation, verdict, local_port=port)
        attempts = tuple(
            a.model_copy(update={"started_at": a.started_at + shift}) for a in check.attempts
        )
        out.append(
            check.model_copy(
                update={
                    "check_id": check_id,
                    "attempts": attempts,
                    "started_at": check.started_at + shift,
                    "finished_at": check.finished_at + shift,
                }
            )
        )
    return out


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    later = timedelta(minutes=5)
    store = tmp_path / "results.db"
    with ResultStore(store) as result_store:
        result_store.append_run(_run("run-1", T0, _checks(timedelta(0))))
        result_store.append_run(_run("run-2", T0 + later, _checks(later)))
    logs = Path("rows.jsonl")  # relative: the report names it as given
    # run-1: the firewall allowed the canary and denied the required endpoint's flow; run-2:
    # it denied the canary, and the file ends there (the rest of run-2 has not arrived).
    run2 = (T0 + later + timedelta(milliseconds=300)).isoformat()
    rows = [row("Allow"), row("Deny", SourcePort=40001), row("Deny", TimeGenerated=run2)]
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return store, logs


def _report(store: Path, *args: str) -> Any:
    return RUNNER.invoke(app, ["report", "--store", str(store), "--now", NOW, "--days", "1", *args])


@pytest.mark.parametrize("name", [f.value for f in FormatName])
def test_every_format_shows_per_check_corroboration(
    setup: tuple[Path, Path], golden: Any, name: str
) -> None:
    store, logs = setup
    result = _report(store, "--firewall-logs", str(logs), "--format", name, "--skew", "2")
    assert result.exit_code == 1, result.output
    golden(f"report/corroborated.{SUFFIX[name]}", result.stdout)


def test_an_allowed_canary_turns_the_window_non_compliant_naming_the_rule(
    setup: tuple[Path, Path],
) -> None:
    store, logs = setup
    plain = json.loads(_report(store, "--format", "json").stdout)
    assert plain["status"] != "non-compliant"  # the probe alone saw the canary blocked
    assert "corroboration" not in plain
    result = _report(store, "--firewall-logs", str(logs), "--format", "json", "--skew", "2")
    document = json.loads(result.stdout)
    assert document["status"] == "non-compliant"
    assert "traffic that must be blocked got through" in document["reasons"]
    c = document["corroboration"]
    assert (c["confirmed"], c["contradicted"], c["unmatched"]) == (1, 2, 3)
    assert c["pending_runs"] == ["run-2"]  # the file holds nothing as late as run-2
    by_id = {x["check_id"]: x for x in c["checks"]}
    canary = by_id["canary"]["contradictions"]
    assert [(x["run_id"], x["status"], x["rule"]) for x in canary] == [
        ("run-1", "leak", "fp/g/c/r1")
    ]
    required = by_id["required"]["contradictions"]
    assert [(x["run_id"], x["status"]) for x in required] == [("run-1", "fail")]
    assert required[0]["rule"].startswith("default action")
    assert by_id["quiet"]["unmatched"] == 2
    assert (by_id["canary"]["confirmed"], by_id["canary"]["contradicted"]) == (1, 1)


def test_a_logged_deny_confirms_and_leaves_the_window_as_the_rule_says(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = setup
    logs = tmp_path / "deny.jsonl"
    logs.write_text(json.dumps(row("Deny")) + "\n")
    result = _report(store, "--firewall-logs", str(logs), "--format", "json", "--skew", "2")
    document = json.loads(result.stdout)
    c = document["corroboration"]
    assert (c["confirmed"], c["contradicted"]) == (1, 0)
    # the file ends before either run finished and not every flow matched: both pending
    assert c["pending_runs"] == ["run-1", "run-2"]
    assert c["status"] == "compliant"  # the checks, by the one rule
    # the pool went silent 55 minutes before --now: the gap still keeps the window unproven
    assert document["status"] == "not-proven"
    assert "coverage gap: the node pool stopped reporting" in document["reasons"]
    assert "leak" not in {s for x in c["checks"] for s, n in x["counts"]["by_status"].items() if n}


def test_a_bad_log_file_is_bad_input_and_nothing_is_written(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = setup
    logs = tmp_path / "bad.jsonl"
    logs.write_text('{"Type": "AZFWApplicationRule", "TimeGenerated": \n')
    out = tmp_path / "report.json"
    result = _report(store, "--firewall-logs", str(logs), "--format", "json", "--output", str(out))
    assert result.exit_code == 2
    assert "bad.jsonl" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_the_cluster_filter_limits_the_runs_corroborated(setup: tuple[Path, Path]) -> None:
    store, logs = setup
    other_run = _run("run-3", T0 + timedelta(minutes=10), _checks(timedelta(minutes=10)))
    other_run = other_run.model_copy(
        update={"location": other_run.location.model_copy(update={"cluster": "aks-2"})}
    )
    with ResultStore(store) as result_store:
        result_store.append_run(other_run)
    args = ["--firewall-logs", str(logs), "--format", "json", "--skew", "2"]
    mine = json.loads(_report(store, *args, "--cluster", "aks-1").stdout)["corroboration"]
    other = json.loads(_report(store, *args, "--cluster", "aks-2").stdout)["corroboration"]
    assert (mine["runs"], other["runs"]) == (2, 1)
