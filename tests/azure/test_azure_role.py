"""The custom role `egress compile` writes is exactly what plan and apply need: one list."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.server import ACTION_TYPES

from egress import azure_facts
from egress.compiler import CompileRequest, compile_request
from egress.targets import TARGETS

from azure_hub import SUBNET_ID, Cli

# Every action the emulator can demand: each resource type's verbs, plus the join actions.
EMULATED_ACTIONS = {
    f"Microsoft.Network/{kind}/{verb}"
    for kind in set(ACTION_TYPES.values())
    for verb in ("read", "write", "delete")
} | {"Microsoft.Network/routeTables/join/action"}


def _role_actions(tmp_path: Path, *, subnets: bool) -> set[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"azure:\n  subnet_ids: ['{SUBNET_ID}']\n" if subnets else "{}\n")
    compiled = compile_request(CompileRequest(policy_path=policy))
    files = TARGETS["role"]().render(compiled)
    return set(json.loads(files["role-definition.json"])["Actions"])


def test_the_role_grants_the_actions_plan_and_apply_name_on_403(tmp_path: Path) -> None:
    assert _role_actions(tmp_path, subnets=True) == set(azure_facts.APPLY_ACTIONS)
    assert set(azure_facts.PLAN_ACTIONS) <= set(azure_facts.APPLY_ACTIONS)
    without = _role_actions(tmp_path, subnets=False)
    assert without == set(azure_facts.APPLY_ACTIONS) - set(azure_facts.SUBNET_ACTIONS)


def test_apply_and_prune_succeed_with_only_the_roles_actions(cli: Cli, tmp_path: Path) -> None:
    cli.arm.denied_actions |= EMULATED_ACTIONS - _role_actions(tmp_path, subnets=True)
    assert "Microsoft.Network/virtualNetworks/read" in cli.arm.denied_actions
    first = cli.run("apply", "--yes", "--prune")
    assert first.exit_code == 0, first.output
    assert cli.arm.writes == 3
    again = cli.run("plan", "--prune")
    assert again.exit_code == 0, again.output
