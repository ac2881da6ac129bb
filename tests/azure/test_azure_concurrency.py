"""Optimistic concurrency through the real SDK: every write is conditional on the plan's etags.

Each window a concurrent writer can hit is tested: a change landing after the plan, after the
last read (while the write is on its way), and between two writes. In every one the other
writer's change survives, apply exits 4, and nothing after the refused write is written.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.mgmt.network import NetworkManagementClient, models
from emulator import ArmEmulator, Interpose

from egress.azure import make_plan
from egress.azure.diff import Action
from egress.azure.executor import Executor, preconditions
from egress.azure.state import AzureTarget, DesiredState, SubnetRef, desired_from_policy
from egress.compiler import CompileRequest, compile_request
from egress.errors import AzureConflictError

from azure_hub import (
    FAST_RETRY,
    POLICY,
    RG,
    SUB,
    SUBNET_ID,
    TABLE,
    TABLE_ID,
    VNET,
    VNET_ID,
    Cli,
    rcg_id,
)

TARGET = AzureTarget(SUB, RG, POLICY, TABLE, RG, (SubnetRef.parse(SUBNET_ID),))
GROUP = rcg_id("egress-aks")
SOMEONE_ELSES_RULE = {
    "ruleType": "NetworkRule",
    "name": "hand-added",
    "description": "egress: required",  # looks like ours, but it is a colleague's edit
    "ipProtocols": ["TCP"],
    "sourceAddresses": ["10.42.1.0/24"],
    "destinationAddresses": ["10.9.9.9"],
    "destinationPorts": ["8443"],
}


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    return desired_from_policy(compile_request(CompileRequest(region="eastus")))


def _doc(arm: ArmEmulator, rid: str) -> dict[str, Any]:
    doc = arm.resource(rid)
    assert doc is not None, rid
    return doc


def _colleague_edits_group(arm: ArmEmulator) -> None:
    """Someone adds a rule to the group through the portal (a full PUT: new etag)."""
    body = copy.deepcopy(_doc(arm, GROUP))
    body["properties"]["ruleCollections"][0]["rules"].append(SOMEONE_ELSES_RULE)
    arm.seed(GROUP, body)


def _their_rule_is_there(arm: ArmEmulator) -> bool:
    rules = [
        r["name"] for c in _doc(arm, GROUP)["properties"]["ruleCollections"] for r in c["rules"]
    ]
    return "hand-added" in rules


def _apply(client: NetworkManagementClient, desired: DesiredState) -> int:
    plan = make_plan(client, desired, TARGET)
    return Executor(client, plan, timeout=60, retry=FAST_RETRY, poll_interval=0.01).run().writes


def _drifted_group(arm: ArmEmulator) -> None:
    """The group egress wrote, with one port changed by hand: the next plan updates it."""
    body = copy.deepcopy(_doc(arm, GROUP))
    body["properties"]["ruleCollections"][0]["rules"][0]["destinationPorts"] = ["9999"]
    arm.seed(GROUP, body)


def test_every_write_carries_the_etag_the_plan_saw(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    subnet_etag = _doc(arm, SUBNET_ID)["etag"]
    assert _apply(client, desired) == 3
    sent = [(e.method, e.path, e.conditions) for e in arm.log if e.method == "PUT"]
    assert sent == [
        ("PUT", TABLE_ID, {"If-None-Match": "*"}),
        ("PUT", GROUP, {"If-None-Match": "*"}),
        ("PUT", SUBNET_ID, {"If-Match": subnet_etag}),  # it existed: the etag the plan read
    ]

    # Second round: an update and a prune, each conditional on the etag the plan read.
    _drifted_group(arm)
    stale = f"{TABLE_ID}/routes/egress-old"
    arm.seed(stale, {"properties": {"addressPrefix": "10.8.0.0/16", "nextHopType": "None"}})
    plan = make_plan(client, desired, TARGET, prune=True)
    expected = {
        (step.action, step.name): preconditions(step)
        for step in plan.steps  # the etags here are the ones the GETs returned
    }
    assert expected == {
        (Action.UPDATE, "egress-aks"): {"If-Match": _doc(arm, GROUP)["etag"]},
        (Action.DELETE, "egress-old"): {"If-Match": _doc(arm, stale)["etag"]},
    }
    arm.reset_log()
    Executor(client, plan, timeout=60, retry=FAST_RETRY, poll_interval=0.01).run()
    by_name = {e.path.rsplit("/", 1)[1]: e.conditions for e in arm.log if e.method != "GET"}
    by_name.pop("token", None)
    assert by_name == {
        "egress-aks": expected[(Action.UPDATE, "egress-aks")],
        "egress-old": expected[(Action.DELETE, "egress-old")],
    }


def test_a_change_landing_after_the_plan_is_not_overwritten(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    _apply(client, desired)
    _drifted_group(arm)
    plan = make_plan(client, desired, TARGET)
    _colleague_edits_group(arm)  # lands while the plan is being reviewed
    arm.reset_log()
    with pytest.raises(AzureConflictError, match="was changed by someone else since the plan"):
        Executor(client, plan, timeout=60, retry=FAST_RETRY, poll_interval=0.01).run()
    assert _their_rule_is_there(arm)
    assert arm.accepted_writes() == []


def test_a_change_landing_after_the_last_read_is_not_overwritten(cli: Cli) -> None:
    # The old apply re-read the group, compared etags, then sent an unconditional PUT; a change
    # landing in between was lost. Here it lands just before the PUT reaches Azure.
    assert cli.run("apply", "--yes").exit_code == 0
    _drifted_group(cli.arm)
    cli.arm.interposed.append(
        Interpose("PUT", "egress-aks", lambda: _colleague_edits_group(cli.arm))
    )
    cli.arm.reset_log()
    result = cli.run("apply", "--yes")
    assert result.exit_code == 4, result.output
    assert (
        "rule collection group 'egress-aks' was changed by someone else since the plan"
        in result.stderr
    )
    assert "412 Precondition Failed" in result.stderr
    assert _their_rule_is_there(cli.arm)
    assert cli.arm.accepted_writes() == []


def test_a_change_landing_between_two_writes_stops_the_rest(cli: Cli) -> None:
    # While the route table is being created, a colleague re-associates the subnet: the table
    # and the group are written (their etags still hold), the subnet PUT is refused, and
    # nothing is written after it.
    other = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/routeTables/rt-x"

    def colleague_associates_subnet() -> None:
        subnet = _doc(cli.arm, SUBNET_ID)
        cli.arm.seed(
            SUBNET_ID, {"properties": {**subnet["properties"], "routeTable": {"id": other}}}
        )

    cli.arm.interposed.append(Interpose("PUT", f"routeTables/{TABLE}", colleague_associates_subnet))
    result = cli.run("apply", "--yes")
    assert result.exit_code == 4, result.output
    assert "subnet 'vnet-aks/aks-subnet' was changed by someone else" in result.stderr
    assert _doc(cli.arm, SUBNET_ID)["properties"]["routeTable"] == {"id": other}
    assert cli.arm.accepted_writes() == [f"PUT {TABLE_ID}", f"PUT {GROUP}"]
    refused = [e for e in cli.arm.log if e.method == "PUT" and e.path == SUBNET_ID]
    assert [e.status for e in refused] == [412]


def test_a_create_racing_another_create_gets_412_from_if_none_match(cli: Cli) -> None:
    theirs = {
        "properties": {
            "priority": 450,
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "theirs",
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [SOMEONE_ELSES_RULE],
                }
            ],
        }
    }
    cli.arm.interposed.append(Interpose("PUT", "egress-aks", lambda: cli.arm.seed(GROUP, theirs)))
    result = cli.run("apply", "--yes")
    assert result.exit_code == 4, result.output
    assert "If-None-Match *" in result.stderr
    group = _doc(cli.arm, GROUP)
    assert group["properties"]["priority"] == 450
    assert [c["name"] for c in group["properties"]["ruleCollections"]] == ["theirs"]
    assert cli.arm.accepted_writes() == [f"PUT {TABLE_ID}"]  # the subnet was never written


# --- the emulator enforces the headers as ARM does, on every resource type it serves ---------


def _writers(client: NetworkManagementClient) -> dict[str, tuple[str, Any, Any]]:
    """kind -> (resource id, conditional PUT, conditional DELETE) through the real SDK."""
    route_body = models.Route(
        {"properties": {"addressPrefix": "10.7.0.0/16", "nextHopType": "None"}}
    )
    group_body = models.FirewallPolicyRuleCollectionGroup(
        {"properties": {"priority": 900, "ruleCollections": []}}
    )
    policy_body = models.FirewallPolicy({"location": "eastus", "properties": {}})
    subnet_body = models.Subnet({"properties": {"addressPrefix": "10.42.1.0/24"}})
    return {
        "firewall policy": (
            f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/"
            "firewallPolicies/fp-other",
            lambda h: client.firewall_policies.begin_create_or_update(
                RG, "fp-other", policy_body, headers=h, polling=False
            ),
            lambda h: client.firewall_policies.begin_delete(
                RG, "fp-other", headers=h, polling=False
            ),
        ),
        "rule collection group": (
            rcg_id("g1"),
            lambda h: client.firewall_policy_rule_collection_groups.begin_create_or_update(
                RG, POLICY, "g1", group_body, headers=h, polling=False
            ),
            lambda h: client.firewall_policy_rule_collection_groups.begin_delete(
                RG, POLICY, "g1", headers=h, polling=False
            ),
        ),
        "route table": (
            TABLE_ID,
            lambda h: client.route_tables.begin_create_or_update(
                RG, TABLE, models.RouteTable({"location": "eastus"}), headers=h, polling=False
            ),
            lambda h: client.route_tables.begin_delete(RG, TABLE, headers=h, polling=False),
        ),
        "route": (
            f"{TABLE_ID}/routes/r1",
            lambda h: client.routes.begin_create_or_update(
                RG, TABLE, "r1", route_body, headers=h, polling=False
            ),
            lambda h: client.routes.begin_delete(RG, TABLE, "r1", headers=h, polling=False),
        ),
        "virtual network": (
            VNET_ID,
            lambda h: client.virtual_networks.begin_create_or_update(
                RG, VNET, models.VirtualNetwork(_doc_for_put(client)), headers=h, polling=False
            ),
            None,
        ),
        "subnet": (
            SUBNET_ID,
            lambda h: client.subnets.begin_create_or_update(
                RG, VNET, "aks-subnet", subnet_body,
                headers=h, polling=False,
            ),
            lambda h: client.subnets.begin_delete(RG, VNET, "aks-subnet", headers=h, polling=False),
        ),
    }  # fmt: skip


def _doc_for_put(client: NetworkManagementClient) -> dict[str, Any]:
    vnet = client.virtual_networks.get(RG, VNET).as_dict()
    return {
        "location": "eastus",
        "properties": {"addressSpace": vnet["properties"]["addressSpace"]},
    }


def _status(call: Any, headers: dict[str, str]) -> int:
    from azure.core.exceptions import HttpResponseError

    try:
        call(headers)
    except HttpResponseError as error:
        assert error.status_code == 412, error
        assert error.error is not None and error.error.code == "PreconditionFailed"
        return 412
    return 200


@pytest.mark.parametrize(
    "kind",
    [
        "firewall policy",
        "rule collection group",
        "route table",
        "route",
        "virtual network",
        "subnet",
    ],
)
def test_the_emulator_answers_unmet_preconditions_with_412_like_arm(
    arm: ArmEmulator, client: NetworkManagementClient, kind: str
) -> None:
    arm.lro_polls = 0  # each write finishes at once, so the policy is never busy (409)
    if kind == "route":
        arm.seed(TABLE_ID, {"location": "eastus"})  # its parent
    rid, put, delete = _writers(client)[kind]
    stale = 'W/"00000000-0000-0000-0000-000000000000"'
    if arm.resource(rid) is None:
        assert _status(put, {"If-Match": "*"}) == 412  # If-Match needs it to exist
        assert _status(put, {"If-Match": stale}) == 412
        assert arm.resource(rid) is None
        assert _status(put, {"If-None-Match": "*"}) == 200  # a create
    before = _doc(arm, rid)
    assert _status(put, {"If-None-Match": "*"}) == 412  # it exists now
    assert _status(put, {"If-Match": stale}) == 412
    assert _doc(arm, rid)["etag"] == before["etag"]  # refused writes change nothing
    assert _status(put, {"If-Match": before["etag"]}) == 200
    current = _doc(arm, rid)["etag"]
    assert current != before["etag"]
    if delete is not None:
        assert _status(delete, {"If-Match": before["etag"]}) == 412
        assert arm.resource(rid) is not None
        assert _status(delete, {"If-Match": current}) == 200
        assert arm.resource(rid) is None


def test_a_conditional_tags_patch_is_refused_on_a_moved_etag(
    arm: ArmEmulator, client: NetworkManagementClient
) -> None:
    arm.seed(TABLE_ID, {"location": "eastus", "tags": {"a": "1"}})
    tags = models.TagsObject(tags={"a": "2"})
    assert _status(lambda h: client.route_tables.update_tags(RG, TABLE, tags, headers=h), {
        "If-Match": 'W/"moved"'
    }) == 412  # fmt: skip
    assert _doc(arm, TABLE_ID)["tags"] == {"a": "1"}
    etag = _doc(arm, TABLE_ID)["etag"]
    client.route_tables.update_tags(RG, TABLE, tags, headers={"If-Match": etag})
    assert _doc(arm, TABLE_ID)["tags"] == {"a": "2"}


def test_an_afc_managed_policy_is_refused_before_any_write(cli: Cli) -> None:
    from azure_hub import POLICY_ID

    policy = _doc(cli.arm, POLICY_ID)
    cli.arm.seed(POLICY_ID, {**policy, "properties": {**policy["properties"], "afcManaged": True}})
    for command in (["plan"], ["apply", "--yes"]):
        result = cli.run(*command)
        assert result.exit_code == 4, result.output
        assert "firewall policy 'fp-hub' is managed by Azure Firewall for Containers" in (
            result.stderr
        )
    assert cli.arm.writes == 0  # egress refused itself; the emulator's own refusal never ran


def test_the_emulator_keeps_an_afc_managed_policy_read_only_without_the_sync_marker(
    arm: ArmEmulator, client: NetworkManagementClient
) -> None:
    from azure.core.exceptions import HttpResponseError

    from azure_hub import POLICY_ID

    policy = _doc(arm, POLICY_ID)
    arm.seed(POLICY_ID, {**policy, "properties": {**policy["properties"], "afcManaged": True}})
    body = models.FirewallPolicyRuleCollectionGroup(
        {"properties": {"priority": 900, "ruleCollections": []}}
    )
    groups = client.firewall_policy_rule_collection_groups
    with pytest.raises(HttpResponseError) as refused:
        groups.begin_create_or_update(RG, POLICY, "g1", body, polling=False)
    assert refused.value.status_code == 400
    assert arm.resource(rcg_id("g1")) is None
    arm.lro_polls = 0
    groups.begin_create_or_update(
        RG, POLICY, "g1", body, polling=False, params={"afcManagedSync": "true"}
    )
    assert arm.resource(rcg_id("g1")) is not None
