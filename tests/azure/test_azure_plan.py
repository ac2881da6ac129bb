"""`egress plan` through the real SDK against the emulator: rule-level diff text and exit codes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from azure_hub import AKS_TABLE, RG, SUB, SUBNET_ID, TABLE_ID, Cli, rcg_id, seed_kubenet_table

GoldenCheck = Callable[[str, str], None]


def _group(arm: Any, name: str) -> dict[str, Any]:
    doc = arm.resource(rcg_id(name))
    assert doc is not None
    return {"properties": doc["properties"]}


def test_plan_from_empty_lists_every_rule_and_exits_3(cli: Cli, golden: GoldenCheck) -> None:
    result = cli.run("plan")
    assert result.exit_code == 3, result.output
    golden("azure/plan-from-empty.txt", result.stdout)
    assert cli.arm.writes == 0
    assert set(cli.arm.count_by_method()) == {"GET"}


def test_plan_after_apply_is_clean_and_exits_0(cli: Cli) -> None:
    assert cli.run("apply", "--yes").exit_code == 0
    result = cli.run("plan")
    assert result.exit_code == 0, result.output
    assert "No changes: Azure matches the compiled policy." in result.stdout


def test_plan_shows_rule_level_changes_not_blobs(cli: Cli, golden: GoldenCheck) -> None:
    assert cli.run("apply", "--yes").exit_code == 0
    # Someone edits the managed group by hand: a port changes, a rule is added, one removed.
    drifted = copy.deepcopy(_group(cli.arm, "egress-aks"))
    network = drifted["properties"]["ruleCollections"][0]
    network["rules"][0]["destinationPorts"] = ["9000", "9001"]
    removed = network["rules"].pop()
    network["rules"].append(
        {
            "ruleType": "NetworkRule",
            "name": "hand-made",
            "description": "egress: added by hand",
            "ipProtocols": ["TCP"],
            "sourceAddresses": ["*"],
            "destinationAddresses": ["10.0.0.1"],
            "destinationPorts": ["22"],
        }
    )
    drifted["properties"]["priority"] = 410
    cli.arm.seed(rcg_id("egress-aks"), drifted)
    # ... and the firewall route is pointed elsewhere.
    route_id = f"{TABLE_ID}/routes/egress-default-to-firewall"
    route = cli.arm.resource(route_id)
    assert route is not None
    route["properties"]["nextHopIpAddress"] = "10.42.2.99"
    cli.arm.seed(route_id, {"properties": route["properties"]})

    result = cli.run("plan")
    assert result.exit_code == 3, result.output
    golden("azure/plan-drift.txt", result.stdout)
    assert f"+   rule {removed['name']}" in result.stdout
    assert f"subscription {SUB}" in result.stdout and RG in result.stdout


def test_plan_into_the_aks_kubenet_table(cli: Cli, golden: GoldenCheck) -> None:
    seed_kubenet_table(cli.arm)
    cli.arm.seed(
        rcg_id("DefaultNetworkRuleCollectionGroup"),
        {"properties": {"priority": 200, "ruleCollections": []}},
    )
    argv = ["plan", "--subscription", SUB, "--resource-group", RG, "--firewall-policy", "fp-hub"]
    argv += ["--route-table", AKS_TABLE, "--subnet-id", SUBNET_ID]
    result = cli.run(*argv, scope=False)
    assert result.exit_code == 3, result.output
    golden("azure/plan-kubenet.txt", result.stdout)
