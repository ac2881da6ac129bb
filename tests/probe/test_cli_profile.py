"""`egress probe run --profile`: the generic profile counts only what a firewall states."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Lab, make_plan
from test_cli import probe, write_plan

from egress.compliance import Assurance
from egress.probe_plan import CheckKind, Expectation, FirewallProfile
from egress.results import CheckRecord, Verdict

DENY = Expectation.DENY


def _records(stdout: str) -> dict[str, CheckRecord]:
    lines = [line for line in stdout.splitlines() if json.loads(line)["record"] == "check"]
    return {r.check_id: r for r in map(CheckRecord.model_validate_json, lines)}


def test_profile_overrides_the_plans_firewall(lab: Lab, tmp_path: Path) -> None:
    plan = make_plan(
        lab.check("good"),
        lab.check("cut", expectation=DENY),
        lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY),
    )
    path = write_plan(tmp_path, plan)
    _, stdout, _ = probe(lab, "--plan", str(path), "--format", "jsonl")
    azure = _records(stdout)
    assert azure["cut"].verdict is Verdict.BLOCKED
    assert azure["cut"].assurance is Assurance.SIGNATURE and azure["cut"].assumption
    assert azure["cut"].evidence["profile"] == FirewallProfile.AZURE_FIREWALL.value
    _, stdout, _ = probe(lab, "--plan", str(path), "--format", "jsonl", "--profile", "generic")
    generic = _records(stdout)
    assert generic["cut"].verdict is Verdict.INCONCLUSIVE and generic["cut"].assurance is None
    assert generic["deny470"].verdict is Verdict.BLOCKED  # a 470 is the firewall's own word
    assert generic["deny470"].assurance is Assurance.STATED
