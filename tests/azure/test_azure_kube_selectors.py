"""Kube selector groups (firewallPolicies/kubeSelectorGroups) planned, applied and pruned through
the real SDK, with the ownership, etag and permission rules of rule collection groups."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import NetworkManagementClient, models
from emulator import ArmEmulator

from egress.azure import make_plan
from egress.azure.diff import Action, Kind
from egress.azure.executor import Executor
from egress.azure.state import AzureTarget, DesiredState, SubnetRef, desired_from_policy
from egress.compiler import CompileRequest, compile_request
from egress.errors import AzureConflictError, AzurePermissionError

from azure_hub import (
    FAST_RETRY,
    POLICY,
    POLICY_ID,
    RG,
    SUB,
    SUBNET_ID,
    TABLE,
    TABLE_ID,
    Cli,
    rcg_id,
)

TARGET = AzureTarget(SUB, RG, POLICY, TABLE, RG, (SubnetRef.parse(SUBNET_ID),))
WEB = "egress-web"
WEB_ID = f"{POLICY_ID}/kubeSelectorGroups/{WEB}"
GROUP = rcg_id("egress-aks")
WEB_SELECTOR = {
    "properties": {
        "namespaceSelector": {"matchLabels": {"team": "shop"}},
        "podSelector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]}],
        },
    }
}
WEB_RULE = {
    "ruleType": "NetworkRule",
    "name": "web-to-payments",
    "description": "egress: policy",
    "ipProtocols": ["TCP"],
    "sourceKubeSelectorGroups": [WEB_ID],
    "destinationAddresses": ["10.50.0.4"],
    "destinationPorts": ["8443"],
}


@pytest.fixture(scope="module")
def base() -> DesiredState:
    return desired_from_policy(compile_request(CompileRequest(region="eastus")))


def _with_selectors(base: DesiredState, selectors: dict[str, Any]) -> DesiredState:
    groups = copy.deepcopy(base.groups)
    network = next(
        c
        for c in groups["egress-aks"]["properties"]["ruleCollections"]
        if c["rules"][0]["ruleType"] == "NetworkRule"
    )
    network["rules"].append(WEB_RULE)
    return dataclasses.replace(base, groups=groups, kube_selector_groups=selectors)


def _run(client: NetworkManagementClient, desired: DesiredState, *, prune: bool = False) -> Any:
    plan = make_plan(client, desired, TARGET, prune=prune)
    Executor(client, plan, timeout=60, retry=FAST_RETRY, poll_interval=0.01).run()
    return plan


def _doc(arm: ArmEmulator, rid: str) -> dict[str, Any]:
    doc = arm.resource(rid)
    assert doc is not None, rid
    return doc


def test_selector_groups_are_created_before_the_rules_that_use_them_then_in_sync(
    arm: ArmEmulator, client: NetworkManagementClient, base: DesiredState
) -> None:
    desired = _with_selectors(base, {WEB: WEB_SELECTOR})
    plan = _run(client, desired)
    assert [(s.kind, s.action, s.name) for s in plan.steps] == [
        (Kind.ROUTE_TABLE, Action.CREATE, TABLE),
        (Kind.SELECTOR, Action.CREATE, WEB),
        (Kind.GROUP, Action.CREATE, "egress-aks"),
        (Kind.SUBNET, Action.UPDATE, "vnet-aks/aks-subnet"),
    ]
    assert plan.steps[1].details == (
        '+ namespaceSelector: {"matchLabels": {"team": "shop"}}',
        '+ podSelector: {"matchExpressions": [{"key": "tier", "operator": "In", "values": '
        '["frontend"]}], "matchLabels": {"app": "web"}}',
    )
    puts = [(e.path, e.conditions) for e in arm.log if e.method == "PUT"]
    assert puts[1] == (WEB_ID, {"If-None-Match": "*"})
    stored = _doc(arm, WEB_ID)
    assert stored["properties"]["podSelector"] == WEB_SELECTOR["properties"]["podSelector"]
    assert stored["properties"]["provisioningState"] == "Succeeded"
    arm.reset_log()
    assert not make_plan(client, desired, TARGET).has_changes
    assert arm.writes == 0


def test_a_changed_selector_is_one_conditional_update(
    arm: ArmEmulator, client: NetworkManagementClient, base: DesiredState
) -> None:
    _run(client, _with_selectors(base, {WEB: WEB_SELECTOR}))
    etag = _doc(arm, WEB_ID)["etag"]
    changed = copy.deepcopy(WEB_SELECTOR)
    changed["properties"]["podSelector"]["matchLabels"] = {"app": "web-v2"}
    arm.reset_log()
    plan = _run(client, _with_selectors(base, {WEB: changed}))
    [step] = plan.steps
    assert (step.kind, step.action, step.etag) == (Kind.SELECTOR, Action.UPDATE, etag)
    assert [line.split(":")[0] for line in step.details] == ["~ podSelector"]
    assert [(e.method, e.path, e.conditions) for e in arm.log if e.method == "PUT"] == [
        ("PUT", WEB_ID, {"If-Match": etag})
    ]
    assert _doc(arm, WEB_ID)["properties"]["podSelector"]["matchLabels"] == {"app": "web-v2"}


def test_a_change_by_someone_else_after_the_plan_is_never_overwritten(
    arm: ArmEmulator, client: NetworkManagementClient, base: DesiredState
) -> None:
    _run(client, _with_selectors(base, {WEB: WEB_SELECTOR}))
    changed = copy.deepcopy(WEB_SELECTOR)
    changed["properties"]["namespaceSelector"] = {"matchLabels": {"team": "payments"}}
    desired = _with_selectors(base, {WEB: changed})
    desired.groups["egress-aks"]["properties"]["priority"] = 410  # and a group write after it
    plan = make_plan(client, desired, TARGET)
    assert [s.kind for s in plan.steps] == [Kind.SELECTOR, Kind.GROUP]
    theirs = copy.deepcopy(_doc(arm, WEB_ID))
    theirs["properties"]["podSelector"] = {"matchLabels": {"app": "theirs"}}
    arm.seed(WEB_ID, theirs)
    arm.reset_log()
    with pytest.raises(AzureConflictError, match="kube selector group 'egress-web' was changed"):
        Executor(client, plan, timeout=60, retry=FAST_RETRY, poll_interval=0.01).run()
    assert _doc(arm, WEB_ID)["properties"]["podSelector"] == {"matchLabels": {"app": "theirs"}}
    assert arm.accepted_writes() == []  # nor the group after it


def test_ownership_and_prune(
    arm: ArmEmulator, client: NetworkManagementClient, base: DesiredState
) -> None:
    desired = _with_selectors(base, {WEB: WEB_SELECTOR})
    _run(client, desired)
    selectors = f"{POLICY_ID}/kubeSelectorGroups"
    other = {"properties": {"podSelector": {"matchLabels": {"app": "x"}}}}
    arm.seed(f"{selectors}/egress-stale", other)  # egress's, no longer compiled
    arm.seed(f"{selectors}/afc-workloads", other)  # no prefix: AFC's or someone else's
    arm.seed(f"{selectors}/egress-shared", other)  # prefix, but a foreign group uses it
    foreign_rule = {**WEB_RULE, "description": "hand made"}
    foreign_rule["sourceKubeSelectorGroups"] = [f"{selectors}/egress-shared"]
    arm.seed(
        rcg_id("DefaultNetworkRuleCollectionGroup"),
        {
            "properties": {
                "priority": 200,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "ops",
                        "priority": 100,
                        "action": {"type": "Allow"},
                        "rules": [foreign_rule],
                    }
                ],
            }
        },
    )
    kept = make_plan(client, desired, TARGET)
    assert not kept.has_changes
    assert "kube selector group egress-stale" in kept.kept
    assert {"kube selector group afc-workloads", "kube selector group egress-shared"} <= set(
        kept.unmanaged
    )
    before = {n: _doc(arm, f"{selectors}/{n}") for n in ("afc-workloads", "egress-shared")}
    arm.reset_log()
    pruned = _run(client, desired, prune=True)
    assert [(s.kind, s.action, s.name) for s in pruned.steps] == [
        (Kind.SELECTOR, Action.DELETE, "egress-stale")
    ]
    assert arm.resource(f"{selectors}/egress-stale") is None
    for name, doc in before.items():
        assert _doc(arm, f"{selectors}/{name}") == doc  # same etag: never written
    # Compiling a selector group under the foreign-used name stops before any write.
    clash = _with_selectors(base, {WEB: WEB_SELECTOR, "egress-shared": WEB_SELECTOR})
    with pytest.raises(AzureConflictError, match="used by rule collection group"):
        make_plan(client, clash, TARGET)


def test_a_stale_selector_still_used_by_egress_rules_is_deleted_after_them(
    arm: ArmEmulator, client: NetworkManagementClient, base: DesiredState
) -> None:
    _run(client, _with_selectors(base, {WEB: WEB_SELECTOR}))
    arm.reset_log()
    plan = _run(client, base, prune=True)  # the rule and its selector group both go
    assert [(s.kind, s.action) for s in plan.steps] == [
        (Kind.GROUP, Action.UPDATE),
        (Kind.SELECTOR, Action.DELETE),
    ]
    assert [w.split()[0] for w in arm.accepted_writes()] == ["PUT", "DELETE"]
    assert arm.resource(WEB_ID) is None


def test_a_refused_selector_write_names_the_actions_needed(
    arm: ArmEmulator, client: NetworkManagementClient, base: DesiredState
) -> None:
    arm.denied_actions.add("Microsoft.Network/firewallPolicies/kubeSelectorGroups/write")
    with pytest.raises(AzurePermissionError) as denied:
        _run(client, _with_selectors(base, {WEB: WEB_SELECTOR}))
    assert "Microsoft.Network/firewallPolicies/kubeSelectorGroups/write" in str(denied.value)
    assert arm.accepted_writes() == [f"PUT {TABLE_ID}"]


def test_apply_from_a_compiled_folder_with_selector_groups(
    cli: Cli, tmp_path: Path, base: DesiredState
) -> None:
    from typer.testing import CliRunner

    from egress.cli import app

    out = tmp_path / "compiled"
    done = CliRunner().invoke(app, ["compile", "--region", "eastus", "--output", str(out)])
    assert done.exit_code == 0, done.output
    [groups_file] = out.rglob("rule-collection-groups.json")
    groups_file.write_text(json.dumps(_with_selectors(base, {}).groups))
    (groups_file.parent / "kube-selector-groups.json").write_text(json.dumps({WEB: WEB_SELECTOR}))
    result = cli.run("apply", "--yes", "--from", str(out))
    assert result.exit_code == 0, result.output
    assert "+ create kube selector group egress-web" in result.stderr
    assert cli.arm.resource(WEB_ID) is not None
    cli.arm.reset_log()
    assert cli.run("plan", "--from", str(out)).exit_code == 0
    assert cli.arm.writes == 0


# --- the emulator's side of the resource ----------------------------------------------------


def test_the_emulator_validates_selectors_and_references_like_arm(
    arm: ArmEmulator, client: NetworkManagementClient
) -> None:
    arm.lro_polls = 0
    selectors = client.firewall_policy_kube_selector_groups
    bad = {"properties": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}}
    with pytest.raises(HttpResponseError) as invalid:
        selectors.begin_create_or_update(
            RG, POLICY, WEB, models.FirewallPolicyKubeSelectorGroup(bad), polling=False
        )
    assert invalid.value.status_code == 400
    group = models.FirewallPolicyRuleCollectionGroup(
        {
            "properties": {
                "priority": 900,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "c",
                        "priority": 100,
                        "action": {"type": "Allow"},
                        "rules": [WEB_RULE],
                    }
                ],
            }
        }
    )
    groups = client.firewall_policy_rule_collection_groups
    with pytest.raises(HttpResponseError) as dangling:
        groups.begin_create_or_update(RG, POLICY, "g", group, polling=False)
    assert (dangling.value.status_code, dangling.value.error.code) == (  # type: ignore[union-attr]
        400,
        "InvalidResourceReference",
    )
    selectors.begin_create_or_update(
        RG, POLICY, WEB, models.FirewallPolicyKubeSelectorGroup(WEB_SELECTOR), polling=False
    )
    groups.begin_create_or_update(RG, POLICY, "g", group, polling=False)
    listed = [s.name for s in selectors.list(RG, POLICY)]
    assert listed == [WEB]
    with pytest.raises(HttpResponseError) as in_use:
        selectors.begin_delete(RG, POLICY, WEB, polling=False)
    assert in_use.value.error.code == "KubeSelectorGroupInUse"  # type: ignore[union-attr]
    groups.begin_delete(RG, POLICY, "g", polling=False)
    selectors.begin_delete(RG, POLICY, WEB, polling=False)
    assert arm.resource(WEB_ID) is None


def test_a_policy_with_workloads_applies_its_selector_groups_end_to_end(
    cli: Cli, tmp_path: Path
) -> None:
    policy = tmp_path / "cluster.yaml"
    policy.write_text(
        "workloads:\n"
        "  - {name: payments, namespace_labels: {team: payments}, pod_labels: {app: checkout}}\n"
        "allow:\n"
        "  - {name: stripe, fqdn: api.stripe.com, ports: ['https:443'], workloads: [payments]}\n"
        # api.stripe.com: data only, never contacted
    )
    applied = cli.run("apply", "--yes", "--policy", str(policy))
    assert applied.exit_code == 0, applied.output
    selector_id = f"{POLICY_ID}/kubeSelectorGroups/egress-payments"
    stored = _doc(cli.arm, selector_id)["properties"]
    assert stored["podSelector"] == {"matchLabels": {"app": "checkout"}}
    assert stored["namespaceSelector"] == {"matchLabels": {"team": "payments"}}
    writes = cli.arm.accepted_writes()
    assert writes.index(f"PUT {selector_id}") < min(
        i for i, w in enumerate(writes) if "/ruleCollectionGroups/" in w
    )
    # The policy file has no azure: scope, so the compiler wrote placeholder ids; apply bound
    # them to the policy it writes to, which ARM (the emulator) checks on the group PUT.
    references = [
        ref
        for name in ("egress-aks", "egress-user")
        if (group := cli.arm.resource(rcg_id(name))) is not None
        for collection in group["properties"]["ruleCollections"]
        for rule in collection["rules"]
        for ref in rule.get("sourceKubeSelectorGroups") or []
    ]
    assert references == [selector_id]
    cli.arm.reset_log()
    again = cli.run("plan", "--policy", str(policy))
    assert again.exit_code == 0, again.output
    assert cli.arm.writes == 0
