"""`egress apply` end to end through the real SDK: writes, idempotence, ownership, preservation."""

from __future__ import annotations

import copy
from typing import Any

from emulator import ArmEmulator

from azure_hub import (
    AKS_TABLE,
    AKS_TABLE_ID,
    POLICY,
    RG,
    SUB,
    SUBNET_ID,
    SUBNET_PROPERTIES,
    TABLE_ID,
    Cli,
    rcg_id,
    seed_kubenet_table,
)


def _doc(arm: ArmEmulator, rid: str) -> dict[str, Any]:
    doc = arm.resource(rid)
    assert doc is not None, rid
    return doc


def _network_rule_group(name: str, description: str) -> dict[str, Any]:
    rule = {
        "ruleType": "NetworkRule",
        "name": "ssh",
        "description": description,
        "ipProtocols": ["TCP"],
        "sourceAddresses": ["10.0.0.0/8"],
        "destinationAddresses": ["10.1.0.4"],
        "destinationPorts": ["22"],
    }
    collection = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "ops",
        "priority": 100,
        "action": {"type": "Allow"},
        "rules": [rule],
    }
    return {
        "properties": {
            "priority": 200 if "Default" in name else 500,
            "ruleCollections": [collection],
        }
    }


def test_apply_from_empty_writes_once_per_resource_then_is_a_noop(cli: Cli) -> None:
    first = cli.run("apply", "--yes")
    assert first.exit_code == 0, first.output
    assert cli.arm.write_log() == [
        f"PUT {TABLE_ID}",
        f"PUT {rcg_id('egress-aks')}",
        f"PUT {SUBNET_ID}",
    ]
    table = _doc(cli.arm, TABLE_ID)
    assert table["tags"] == {"managed-by": "egress", "egress-prefix": "egress"}
    assert [r["name"] for r in table["properties"]["routes"]] == ["egress-default-to-firewall"]
    assert _doc(cli.arm, SUBNET_ID)["properties"]["routeTable"] == {"id": TABLE_ID}
    assert "Applied 3 change(s)" in first.stderr

    cli.arm.reset_log()
    second = cli.run("apply", "--yes")
    assert second.exit_code == 0, second.output
    assert cli.arm.writes == 0
    assert set(cli.arm.count_by_method()) == {"GET"}
    assert "No changes" in second.stderr


def test_subnet_association_keeps_every_other_subnet_property(cli: Cli) -> None:
    assert cli.run("apply", "--yes").exit_code == 0
    props = _doc(cli.arm, SUBNET_ID)["properties"]
    for key, value in SUBNET_PROPERTIES.items():
        assert props[key] == value, key
    assert props["routeTable"] == {"id": TABLE_ID}


def test_unmanaged_groups_are_never_touched_and_stale_managed_ones_need_prune(cli: Cli) -> None:
    arm = cli.arm
    arm.seed(rcg_id("DefaultNetworkRuleCollectionGroup"), _network_rule_group("Default", "ops"))
    # Same prefix but no egress marker in its rules: still not egress's.
    arm.seed(rcg_id("egress-legacy"), _network_rule_group("legacy", "hand made"))
    arm.seed(rcg_id("egress-old"), _network_rule_group("old", "egress: required"))
    before = {
        n: _doc(arm, rcg_id(n)) for n in ("DefaultNetworkRuleCollectionGroup", "egress-legacy")
    }

    applied = cli.run("apply", "--yes")
    assert applied.exit_code == 0, applied.output
    assert (
        "Left alone (not managed by egress): rule collection group "
        "DefaultNetworkRuleCollectionGroup, rule collection group egress-legacy" in applied.stderr
    )
    assert "pass --prune to delete): rule collection group egress-old" in applied.stderr
    assert arm.resource(rcg_id("egress-old")) is not None

    pruned = cli.run("apply", "--yes", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert arm.resource(rcg_id("egress-old")) is None
    for name, doc in before.items():
        assert _doc(arm, rcg_id(name)) == doc  # same etag: never written
    assert all("egress-old" in w or "DELETE" not in w for w in arm.write_log())


def test_a_clashing_unmanaged_group_stops_the_run_before_any_write(cli: Cli) -> None:
    cli.arm.seed(rcg_id("egress-aks"), _network_rule_group("aks", "someone else's"))
    result = cli.run("apply", "--yes")
    assert result.exit_code == 4
    assert (
        "rule collection group 'egress-aks' already exists in firewall policy 'fp-hub' "
        "but is not managed by egress" in result.stderr
    )
    assert cli.arm.writes == 0


def test_kubenet_aks_routes_survive_and_egress_adds_only_its_own(cli: Cli) -> None:
    aks_routes = seed_kubenet_table(cli.arm)
    argv = ["apply", "--yes", "--subscription", SUB, "--resource-group", RG]
    argv += ["--firewall-policy", POLICY, "--route-table", AKS_TABLE, "--subnet-id", SUBNET_ID]
    result = cli.run(*argv, scope=False)
    assert result.exit_code == 0, result.output
    assert cli.arm.write_log() == [
        f"PATCH {AKS_TABLE_ID}",
        f"PUT {AKS_TABLE_ID}/routes/egress-default-to-firewall",
        f"PUT {rcg_id('egress-aks')}",
    ]
    for before in aks_routes:
        assert _doc(cli.arm, before["id"]) == before  # unchanged, same etag
    table = _doc(cli.arm, AKS_TABLE_ID)
    assert table["tags"] == {
        "aks-managed-cluster-name": "aks1",
        "managed-by": "egress",
        "egress-prefix": "egress",
    }
    assert "Left alone (not managed by egress): route aks-nodepool1-0" in result.stderr

    # AKS adds a node meanwhile; egress still leaves AKS's routes alone and writes nothing.
    cli.arm.seed(
        f"{AKS_TABLE_ID}/routes/aks-nodepool1-3",
        {
            "properties": {
                "addressPrefix": "10.244.3.0/24",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": "10.42.1.9",
            }
        },
    )
    cli.arm.reset_log()
    again = cli.run(*argv, scope=False)
    assert again.exit_code == 0, again.output
    assert cli.arm.writes == 0
    names = [r["name"] for r in _doc(cli.arm, AKS_TABLE_ID)["properties"]["routes"]]
    assert names == sorted(
        [*(f"aks-nodepool1-{i}" for i in range(4)), "egress-default-to-firewall"]
    )


def test_apply_from_a_compiled_folder(cli: Cli, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from egress.cli import app

    out = tmp_path / "compiled"
    compiled = CliRunner().invoke(app, ["compile", "--region", "eastus", "--output", str(out)])
    assert compiled.exit_code == 0, compiled.output
    # Without --route-table the compiled name (from azuredeploy.json) is used.
    argv = ["plan", "--from", str(out), "--subscription", SUB, "--resource-group", RG]
    unnamed = cli.run(*argv, "--firewall-policy", POLICY, scope=False)
    assert unnamed.exit_code == 3, unnamed.output
    assert "Route table egress-aks-eastus in resource group rg-hub" in unnamed.stdout
    result = cli.run("apply", "--yes", "--from", str(out))
    assert result.exit_code == 0, result.output
    assert len(cli.arm.write_log()) == 3
    cli.arm.reset_log()
    # Compiling on the fly gives the same desired state: nothing left to do.
    assert cli.run("plan").exit_code == 0
    assert cli.arm.writes == 0
    assert copy.deepcopy(_doc(cli.arm, SUBNET_ID))["properties"]["routeTable"]["id"] == TABLE_ID


def test_stale_managed_routes_are_kept_until_prune_and_aks_routes_never_go(cli: Cli) -> None:
    aks_routes = seed_kubenet_table(cli.arm)
    argv = ["apply", "--yes", "--subscription", SUB, "--resource-group", RG]
    argv += ["--firewall-policy", POLICY, "--route-table", AKS_TABLE, "--subnet-id", SUBNET_ID]
    assert cli.run(*argv, scope=False).exit_code == 0
    stale = f"{AKS_TABLE_ID}/routes/egress-old-hop"
    cli.arm.seed(
        stale,
        {
            "properties": {
                "addressPrefix": "10.9.0.0/16",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": "10.42.2.4",
            }
        },
    )
    kept = cli.run(*argv, scope=False)
    assert kept.exit_code == 0
    assert "pass --prune to delete): route egress-old-hop" in kept.stderr
    assert cli.arm.resource(stale) is not None
    cli.arm.reset_log()
    pruned = cli.run(*argv, "--prune", scope=False)
    assert pruned.exit_code == 0, pruned.output
    assert cli.arm.write_log() == [f"DELETE {stale}"]
    assert cli.arm.resource(stale) is None
    for before in aks_routes:
        assert _doc(cli.arm, before["id"]) == before
