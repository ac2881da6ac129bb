"""The diff's small parts on their own: what counts as already applied, the subnet body, Failed
resources, summaries and keys (fast; these are what the mutation run exercises most)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from egress.azure.diff import (
    Action,
    Kind,
    Plan,
    Step,
    already_applied,
    build_plan,
    comparable_group,
    group_details,
    is_managed_group,
    is_managed_table,
    observed_etags,
    rule_summary,
    with_route_table,
)
from egress.azure.state import AzureTarget, DesiredState, LiveState, SubnetRef
from egress.errors import AzureApplyError, AzureConflictError, UsageError

from azure_hub import POLICY, RG, SUB, SUBNET_ID, SUBNET_PROPERTIES

TARGET = AzureTarget(SUB, RG, POLICY, None, RG)
TABLE_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/routeTables/rt"


def _rule(name: str, port: str) -> dict[str, Any]:
    return {
        "ruleType": "NetworkRule",
        "name": name,
        "description": "egress: required",
        "ipProtocols": ["TCP"],
        "sourceAddresses": ["10.42.1.0/24"],
        "destinationAddresses": ["10.9.0.4"],
        "destinationPorts": [port],
    }


def _collection(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": 100 if name == "a" else 200,
        "action": {"type": "Allow"},
        "rules": list(rules),
    }


def _group(*collections: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"priority": 400, "ruleCollections": list(collections)}}


def _plan(desired: dict[str, Any], live: dict[str, Any]) -> Plan:
    live = copy.deepcopy(live) | {"etag": 'W/"1"', "id": "/g"}
    return build_plan(
        DesiredState("egress", {"egress-aks": desired}, None, dns_proxy_required=False),
        LiveState({"properties": {}}, {"egress-aks": live}),
        TARGET,
    )


# --- keys: every collection and rule by its own name -------------------------------------


@pytest.mark.parametrize("which", [0, 1])
def test_a_change_in_any_of_several_rules_and_collections_is_seen(which: int) -> None:
    desired = _group(
        _collection("a", _rule("r1", "1"), _rule("r2", "2")),
        _collection("b", _rule("r3", "3"), _rule("r4", "4")),
    )
    for collection in (0, 1):
        live = copy.deepcopy(desired)
        live["properties"]["ruleCollections"][collection]["rules"][which]["destinationPorts"] = [
            "9"
        ]
        [step] = _plan(desired, live).steps
        name = ("a", "b")[collection]
        rule = (("r1", "r2"), ("r3", "r4"))[collection][which]
        assert step.details[:2] == (f"~ collection {name}", f"~   rule {rule}")


def test_order_of_collections_and_rules_is_not_a_change() -> None:
    desired = _group(
        _collection("a", _rule("r1", "1"), _rule("r2", "2")),
        _collection("b", _rule("r3", "3")),
    )
    live = copy.deepcopy(desired)
    live["properties"]["ruleCollections"].reverse()
    live["properties"]["ruleCollections"][1]["rules"].reverse()
    assert comparable_group(live) == comparable_group(desired)
    assert not _plan(desired, live).steps


def test_collections_and_rules_added_and_removed_read_as_such() -> None:
    desired = _group(_collection("a", _rule("r1", "1"), _rule("r2", "2")))
    live = _group(_collection("a", _rule("r1", "1"), _rule("r0", "0")), _collection("b"))
    [step] = _plan(desired, live).steps
    assert step.details == (
        "~ collection a",
        "+   rule r2: TCP from 10.42.1.0/24 to 10.9.0.4 port 2",
        "-   rule r0",
        "- collection b",
    )
    lines = group_details(_group(_collection("a", _rule("r1", "1"), _rule("r2", "2"))), None)
    assert lines[0] == "+ collection a (priority 100, Allow, 2 rules)"
    one = group_details(_group(_collection("b", _rule("r1", "1"))), None)
    assert one[0] == "+ collection b (priority 200, Allow, 1 rule)"


def test_a_failed_resource_is_rewritten_even_when_its_body_matches() -> None:
    body = _group(_collection("a", _rule("r1", "1")))
    failed = copy.deepcopy(body)
    failed["properties"]["provisioningState"] = "Failed"
    [step] = _plan(body, failed).steps
    assert (step.action, step.etag) == (Action.UPDATE, 'W/"1"')
    assert step.details == ("~ provisioningState: Failed -> Succeeded (re-applied)",)
    succeeded = copy.deepcopy(body)
    succeeded["properties"]["provisioningState"] = "Succeeded"
    assert not _plan(body, succeeded).steps


# --- summaries ---------------------------------------------------------------------------


def test_rule_summaries_name_every_source_and_destination() -> None:
    network = {
        "ruleType": "NetworkRule",
        "ipProtocols": ["UDP"],
        "sourceAddresses": ["10.42.1.0/24"],
        "sourceIpGroups": ["/ipGroups/aks"],
        "sourceKubeSelectorGroups": ["/firewallPolicies/fp/kubeSelectorGroups/egress-web"],
        "destinationAddresses": ["10.9.0.4"],
        "destinationFqdns": ["ntp.ubuntu.com"],  # data only, never contacted
        "destinationIpGroups": ["/ipGroups/dst"],
        "destinationPorts": ["123", "1000-2000"],
    }
    assert rule_summary(network) == (
        "UDP from 10.42.1.0/24, /ipGroups/aks, pods of egress-web to 10.9.0.4, ntp.ubuntu.com, "
        "/ipGroups/dst port 123, 1000-2000"
    )
    app = {
        "ruleType": "ApplicationRule",
        "protocols": [{"protocolType": "Http", "port": 80}, {"protocolType": "Https", "port": 443}],
        "sourceIpGroups": ["/ipGroups/aks"],
        "fqdnTags": ["AzureKubernetesService"],
        "targetFqdns": ["mcr.microsoft.com"],  # data only, never contacted
        "targetUrls": ["mcr.microsoft.com/v2"],
    }
    assert rule_summary(app) == (
        "Http:80, Https:443 from /ipGroups/aks to AzureKubernetesService, mcr.microsoft.com, "
        "mcr.microsoft.com/v2"
    )
    nat = {
        "ruleType": "NatRule",
        "ipProtocols": ["TCP"],
        "sourceAddresses": ["*"],
        "destinationAddresses": ["20.1.2.3"],
        "destinationPorts": ["443"],
        "translatedFqdn": "web.internal",  # data only, never contacted
        "translatedPort": "8443",
    }
    assert rule_summary(nat) == "TCP from * to 20.1.2.3:443 -> web.internal:8443"
    assert rule_summary({"ruleType": "NetworkRule"}) == "(none) from (none) to (none) port (none)"


def test_plan_counts_by_action() -> None:
    steps = tuple(
        Step(Kind.GROUP, action, f"g{i}", None, None)
        for i, action in enumerate([Action.CREATE, Action.CREATE, Action.DELETE])
    )
    plan = Plan(TARGET, steps)
    assert (plan.count(Action.CREATE), plan.count(Action.UPDATE), plan.count(Action.DELETE)) == (
        2,
        0,
        1,
    )
    assert plan.has_changes and not Plan(TARGET, ()).has_changes


# --- the subnet body and what counts as already applied -----------------------------------


def test_the_subnet_body_changes_only_the_route_table() -> None:
    read = {
        "id": SUBNET_ID,
        "name": "aks-subnet",
        "etag": 'W/"s"',
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": {**SUBNET_PROPERTIES, "provisioningState": "Succeeded"},
    }
    before = copy.deepcopy(read)
    body = with_route_table(read, TABLE_ID)
    assert read == before  # the live state is not mutated
    assert body == {
        "id": SUBNET_ID,
        "name": "aks-subnet",
        "properties": {**SUBNET_PROPERTIES, "routeTable": {"id": TABLE_ID}},
    }


ROUTE = {"name": "egress-r", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "None"}}
TABLE = {"tags": {"managed-by": "egress"}, "properties": {"routes": [ROUTE]}}
SELECTOR = {"properties": {"podSelector": {"matchLabels": {"app": "web"}}}}
SUBNET = {"properties": {**SUBNET_PROPERTIES, "routeTable": {"id": TABLE_ID}}}
GROUP = _group(_collection("a", _rule("r1", "1")))


def _other(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


CASES: list[tuple[Kind, Action, dict[str, Any] | None, dict[str, Any], dict[str, Any]]] = [
    (
        Kind.GROUP,
        Action.UPDATE,
        GROUP,
        GROUP | {"etag": "x"},
        _other(GROUP, ("properties", "priority"), 500),
    ),
    (
        Kind.SELECTOR,
        Action.CREATE,
        SELECTOR,
        _other(SELECTOR, ("properties", "provisioningState"), "Succeeded"),
        _other(SELECTOR, ("properties", "podSelector", "matchLabels"), {"app": "x"}),
    ),
    (
        Kind.ROUTE,
        Action.CREATE,
        ROUTE,
        _other(ROUTE, ("properties", "hasBgpOverride"), False),
        _other(ROUTE, ("properties", "nextHopType"), "Internet"),
    ),
    (
        Kind.ROUTE_TABLE,
        Action.CREATE,
        TABLE,
        _other(TABLE, ("tags", "extra"), "kept"),
        _other(TABLE, ("properties", "routes"), []),
    ),
    (
        Kind.ROUTE_TABLE,
        Action.CREATE,
        TABLE,
        TABLE,
        _other(TABLE, ("tags", "managed-by"), "someone"),
    ),
    (
        Kind.TABLE_TAGS,
        Action.UPDATE,
        {"tags": {"managed-by": "egress"}},
        _other(TABLE, ("properties", "routes"), []),
        {"tags": {}},
    ),
    (
        Kind.SUBNET,
        Action.UPDATE,
        SUBNET,
        _other(SUBNET, ("properties", "routeTable", "id"), TABLE_ID.upper()),
        _other(SUBNET, ("properties", "routeTable", "id"), TABLE_ID + "-other"),
    ),
]


@pytest.mark.parametrize(("kind", "action", "body", "same", "other"), CASES)
def test_already_applied_means_azure_holds_the_planned_body(
    kind: Kind, action: Action, body: Any, same: Any, other: Any
) -> None:
    subnet = SubnetRef.parse(SUBNET_ID) if kind is Kind.SUBNET else None
    step = Step(kind, action, "x", None, body, (), subnet)
    assert already_applied(step, same)
    assert not already_applied(step, other)
    assert not already_applied(step, None)


def test_a_delete_is_applied_when_the_resource_is_gone() -> None:
    step = Step(Kind.GROUP, Action.DELETE, "g", 'W/"1"', None)
    assert already_applied(step, None)
    assert not already_applied(step, GROUP)


def test_observed_etags_cover_every_resource_read() -> None:
    live = LiveState(
        policy={"id": "/P", "etag": "p"},
        groups={"g": {"id": "/P/G", "etag": "g"}},
        route_table={
            "id": "/T",
            "etag": "t",
            "properties": {"routes": [{"id": "/T/R", "etag": "r"}]},
        },
        subnets={"s": {"id": "/S", "etag": "s"}},
        kube_selector_groups={"k": {"id": "/P/K", "etag": "k"}},
    )
    assert observed_etags(live) == {
        "/p": "p",
        "/p/g": "g",
        "/t": "t",
        "/t/r": "r",
        "/s": "s",
        "/p/k": "k",
    }


# --- ownership, DNS proxy, afcManaged, table settings and subnets, without Azure ----------


def test_a_group_is_egress_s_only_with_the_prefix_and_every_rule_marked() -> None:
    marked = _group(_collection("a", _rule("r1", "1"), _rule("r2", "2")))
    assert is_managed_group("egress-aks", marked, "egress")
    assert not is_managed_group("other-aks", marked, "egress")
    half = copy.deepcopy(marked)
    half["properties"]["ruleCollections"][0]["rules"][1]["description"] = "hand made"
    assert not is_managed_group("egress-aks", half, "egress")
    assert not is_managed_group("egress-aks", _group(_collection("a")), "egress")  # no rules
    assert is_managed_table({"tags": {"managed-by": "egress"}})
    assert not is_managed_table({"tags": {"managed-by": "someone"}})
    assert not is_managed_table({"tags": {}}) and not is_managed_table(None)


def _live(**kwargs: Any) -> LiveState:
    return LiveState({"name": POLICY, "properties": kwargs.pop("policy", {})}, **kwargs)


def test_groups_egress_does_not_own_are_left_alone_and_a_name_clash_stops_the_plan() -> None:
    ours = _group(_collection("a", _rule("r1", "1")))
    theirs = _group(_collection("a", {**_rule("r1", "1"), "description": "hand made"}))
    desired = DesiredState("egress", {"egress-aks": ours}, None, dns_proxy_required=False)
    plan = build_plan(desired, _live(groups={"Default": theirs, "egress-x": theirs}), TARGET)
    assert plan.unmanaged == ("rule collection group Default", "rule collection group egress-x")
    assert [(s.action, s.name) for s in plan.steps] == [(Action.CREATE, "egress-aks")]
    with pytest.raises(AzureConflictError, match="not managed by egress"):
        build_plan(desired, _live(groups={"egress-aks": theirs}), TARGET)
    stale = _live(groups={"egress-old": ours})
    assert build_plan(desired, stale, TARGET).kept == ("rule collection group egress-old",)
    pruned = build_plan(desired, stale, TARGET, prune=True)
    assert [(s.action, s.name) for s in pruned.steps][-1] == (Action.DELETE, "egress-old")
    for bad, message in (
        ({"other": ours}, "does not start with the managed prefix"),
        ({"egress-x": theirs}, "description marker"),
    ):
        with pytest.raises(UsageError, match=message):
            build_plan(DesiredState("egress", bad, None, False), _live(), TARGET)


SEL_ID = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/firewallPolicies/p"


def test_selector_groups_used_by_foreign_groups_are_not_egress_s() -> None:
    selector = {"properties": {"podSelector": {"matchLabels": {"app": "web"}}}}
    foreign = _group(
        _collection(
            "a",
            {
                **_rule("r1", "1"),
                "description": "hand made",
                "sourceKubeSelectorGroups": [f"{SEL_ID}/kubeSelectorGroups/egress-shared"],
            },
        )
    )
    live = _live(
        groups={"Default": foreign},
        kube_selector_groups={"egress-shared": selector, "egress-old": selector, "afc": selector},
    )
    desired = DesiredState("egress", {}, None, False, kube_selector_groups={"egress-web": selector})
    plan = build_plan(desired, live, TARGET, prune=True)
    assert [(s.kind, s.action, s.name) for s in plan.steps] == [
        (Kind.SELECTOR, Action.CREATE, "egress-web"),
        (Kind.SELECTOR, Action.DELETE, "egress-old"),
    ]
    assert "kube selector group egress-shared" in plan.unmanaged
    assert "kube selector group afc" in plan.unmanaged
    assert build_plan(desired, live, TARGET).kept == ("kube selector group egress-old",)
    clash = DesiredState(
        "egress", {}, None, False, kube_selector_groups={"egress-shared": selector}
    )
    with pytest.raises(AzureConflictError, match="used by rule collection group"):
        build_plan(clash, live, TARGET)
    with pytest.raises(UsageError, match="does not start with the managed prefix"):
        build_plan(
            DesiredState("egress", {}, None, False, kube_selector_groups={"x": selector}),
            live,
            TARGET,
        )
    changed = {"properties": {"podSelector": {"matchLabels": {"app": "api"}}}}
    live.kube_selector_groups["egress-web"] = selector | {"etag": 'W/"k"'}
    update = build_plan(
        DesiredState("egress", {}, None, False, kube_selector_groups={"egress-web": changed}),
        live,
        TARGET,
    )
    [step] = update.steps
    assert (step.action, step.etag) == (Action.UPDATE, 'W/"k"')
    assert step.details == (
        '~ podSelector: {"matchLabels": {"app": "web"}} -> {"matchLabels": {"app": "api"}}',
    )


def test_fqdns_in_network_rules_need_the_dns_proxy() -> None:
    desired = DesiredState("egress", {}, None, dns_proxy_required=True, dns_proxy_reason="ntp")
    with pytest.raises(AzureApplyError, match=r"has DNS proxy disabled .* \(ntp\)"):
        build_plan(desired, _live(), TARGET)
    for settings in ({"enableProxy": True}, {"requireProxyForNetworkRules": False}):
        build_plan(desired, _live(policy={"dnsSettings": settings}), TARGET)
    with pytest.raises(AzureApplyError):
        build_plan(desired, _live(policy={"dnsSettings": {"enableProxy": False}}), TARGET)


def test_an_afc_managed_policy_refuses_group_and_selector_writes_only() -> None:
    selector = {"properties": {"podSelector": {"matchLabels": {"app": "web"}}}}
    afc = {"afcManaged": True}
    group = DesiredState(
        "egress", {"egress-aks": _group(_collection("a", _rule("r", "1")))}, None, False
    )
    sel = DesiredState("egress", {}, None, False, kube_selector_groups={"egress-web": selector})
    for desired in (group, sel):
        with pytest.raises(AzureApplyError, match="Azure Firewall for Containers"):
            build_plan(desired, _live(policy=afc), TARGET)
    assert not build_plan(DesiredState("egress", {}, None, False), _live(policy=afc), TARGET).steps


TABLE_TARGET = AzureTarget(SUB, RG, POLICY, "rt", RG, (SubnetRef.parse(SUBNET_ID),))


def test_subnets_are_associated_once_and_existing_table_settings_are_only_noted() -> None:
    want_table = {
        "location": "eastus",
        "tags": {"managed-by": "egress"},
        "properties": {"routes": [ROUTE], "disableBgpRoutePropagation": True},
    }
    desired = DesiredState("egress", {}, want_table, False)
    subnet = {"id": SUBNET_ID, "etag": 'W/"s"', "properties": dict(SUBNET_PROPERTIES)}
    have_table = {
        "id": TABLE_ID,
        "etag": 'W/"t"',
        "tags": {"managed-by": "egress"},
        "properties": {"routes": [ROUTE], "disableBgpRoutePropagation": False},
    }
    live = _live(route_table=have_table, subnets={SUBNET_ID: subnet})
    plan = build_plan(desired, live, TABLE_TARGET)
    [step] = plan.steps
    assert (step.kind, step.etag) == (Kind.SUBNET, 'W/"s"')
    assert step.details == (f"~ routeTable: (none) -> {TABLE_TARGET.route_table_id}",)
    assert plan.notes == (
        "route table rt has disableBgpRoutePropagation=false but the compiled policy wants "
        "true; egress leaves existing table settings alone, change it yourself if intended.",
    )
    associated = copy.deepcopy(subnet)
    associated["properties"]["routeTable"] = {"id": TABLE_TARGET.route_table_id.upper()}
    have_table["properties"]["disableBgpRoutePropagation"] = True
    again = build_plan(
        desired, _live(route_table=have_table, subnets={SUBNET_ID: associated}), TABLE_TARGET
    )
    assert not again.steps and not again.notes
    # No table yet and none to create: nothing to associate.
    assert not build_plan(
        DesiredState("egress", {}, None, False), _live(subnets={SUBNET_ID: subnet}), TABLE_TARGET
    ).steps
