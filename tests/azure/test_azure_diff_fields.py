"""Every writable field the diff compares, one by one: a change in any of them is an update.

The field lists come from azure-mgmt-network's own models (every REST field a caller may write),
not from egress, so a diff that ignores one field (say `destinationPorts`) fails here, and a field
the SDK gains fails the coverage check until it has a value below.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.mgmt.network import models

from egress.azure.diff import Action, Kind, build_plan
from egress.azure.state import AzureTarget, DesiredState, LiveState
from egress.errors import AzureConflictError

from azure_hub import POLICY, RG, SUB

TARGET = AzureTarget(SUB, RG, POLICY, None, RG)
TABLE_TARGET = AzureTarget(SUB, RG, POLICY, "rt-aks", RG)
ROUTE_TARGET_ETAG = 'W/"route-1"'

# Two different valid values per writable field; (a) is desired, (b) is what Azure holds.
VALUES: dict[str, tuple[Any, Any]] = {
    "description": ("egress: required", "egress: optional"),
    "sourceAddresses": (["10.42.1.0/24"], ["10.42.2.0/24"]),
    "destinationAddresses": (["AzureCloud.eastus"], ["AzureCloud.westus"]),
    "protocols": (
        [{"protocolType": "Https", "port": 443}],
        [{"protocolType": "Https", "port": 8443}],
    ),
    "targetFqdns": (["mcr.microsoft.com"], ["old.example"]),  # data only, never contacted
    "targetUrls": (["mcr.microsoft.com/v2"], ["mcr.microsoft.com/v1"]),  # data only
    "fqdnTags": (["AzureKubernetesService"], ["WindowsUpdate"]),
    "sourceIpGroups": (["/ipGroups/a"], ["/ipGroups/b"]),
    "sourceKubeSelectorGroups": (["/kubeSelectorGroups/a"], ["/kubeSelectorGroups/b"]),
    "terminateTLS": (True, False),
    "webCategories": (["Gambling"], ["Games"]),
    "httpHeadersToInsert": (
        [{"headerName": "X-A", "headerValue": "1"}],
        [{"headerName": "X-A", "headerValue": "2"}],
    ),
    "ipProtocols": (["TCP"], ["UDP"]),
    "destinationPorts": (["443"], ["9000"]),
    "destinationIpGroups": (["/ipGroups/c"], ["/ipGroups/d"]),
    "destinationFqdns": (["ntp.ubuntu.com"], ["time.example"]),  # data only, never contacted
    "sourceGeoLocations": (["US"], ["DE"]),
    "destinationGeoLocations": (["US"], ["FR"]),
    "translatedAddress": ("10.42.1.10", "10.42.1.11"),
    "translatedPort": ("8443", "8444"),
    "translatedFqdn": ("web.internal", "old.internal"),  # data only, never contacted
}
# Identity and type are not fields of one rule: a renamed rule is a removed and an added rule.
IDENTITY = frozenset({"name", "ruleType"})
RULE_MODELS = {
    "ApplicationRule": models.ApplicationRule,
    "NetworkRule": models.NetworkRule,
    "NatRule": models.NatRule,
}


def writable_fields(model: type[Any]) -> list[str]:
    """Every REST field of an SDK model a caller can send (visibility includes create)."""
    fields = model()._attr_to_rest_field.values()
    return [f._rest_name for f in fields if "create" in (f._visibility or ())]


RULE_FIELDS = [
    (rule_type, name)
    for rule_type, model in RULE_MODELS.items()
    for name in writable_fields(model)
    if name not in IDENTITY
]


def test_every_writable_rule_field_of_the_sdk_has_test_values() -> None:
    assert {name for _, name in RULE_FIELDS} <= set(VALUES)
    assert ("NetworkRule", "destinationPorts") in RULE_FIELDS


def _rule(rule_type: str, field: str, value: Any) -> dict[str, Any]:
    rule = {"ruleType": rule_type, "name": "r1", "description": "egress: required"}
    return {**rule, field: value}


def _group(rule: dict[str, Any], *, collection_priority: int = 100, action: str = "Allow") -> Any:
    nat = rule["ruleType"] == "NatRule"
    collection = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection"
        if nat
        else "FirewallPolicyFilterRuleCollection",
        "name": "c1",
        "priority": collection_priority,
        "action": {"type": "DNAT" if nat else action},
        "rules": [rule],
    }
    return {"properties": {"priority": 400, "ruleCollections": [collection]}}


def _as_azure_returns_it(body: dict[str, Any]) -> dict[str, Any]:
    live = copy.deepcopy(body)
    live.update(
        id="/g", etag='W/"1"', type="Microsoft.Network/firewallPolicies/ruleCollectionGroups"
    )
    live["properties"].update(provisioningState="Succeeded", size="0.001 MB")
    return live


def _plan(desired_body: dict[str, Any], live_body: dict[str, Any]) -> Any:
    desired = DesiredState("egress", {"egress-aks": desired_body}, None, dns_proxy_required=False)
    live = LiveState({"properties": {}}, {"egress-aks": _as_azure_returns_it(live_body)})
    return build_plan(desired, live, TARGET)


@pytest.mark.parametrize(("rule_type", "field"), RULE_FIELDS)
def test_a_changed_rule_field_is_an_update_naming_that_field(rule_type: str, field: str) -> None:
    want, have = VALUES[field]
    plan = _plan(_group(_rule(rule_type, field, want)), _group(_rule(rule_type, field, have)))
    [step] = plan.steps
    assert (step.kind, step.action, step.etag) == (Kind.GROUP, Action.UPDATE, 'W/"1"')
    assert step.details[:2] == ("~ collection c1", "~   rule r1")
    assert [line.split(":")[0] for line in step.details[2:]] == [f"~     {field}"]
    # The same field unchanged is no change at all.
    assert not _plan(
        _group(_rule(rule_type, field, want)), _group(_rule(rule_type, field, want))
    ).steps


# A rule without the egress: description is not egress's at all (the ownership tests).
@pytest.mark.parametrize(("rule_type", "field"), [f for f in RULE_FIELDS if f[1] != "description"])
def test_a_field_azure_lacks_is_an_update(rule_type: str, field: str) -> None:
    want, _ = VALUES[field]
    plan = _plan(_group(_rule(rule_type, field, want)), _group(_rule(rule_type, "name", "r1")))
    [step] = plan.steps
    assert step.action is Action.UPDATE
    assert any(line.startswith(f"~     {field}: (none) -> ") for line in step.details)


def test_collection_and_group_fields_are_compared() -> None:
    rule = _rule("NetworkRule", "destinationPorts", ["443"])
    base = _group(rule)
    for changed, line in (
        (_group(rule, collection_priority=200), "~   priority: 200 -> 100"),
        (_group(rule, action="Deny"), '~   action: {"type": "Deny"} -> {"type": "Allow"}'),
    ):
        [step] = _plan(base, changed).steps
        assert line in step.details
    other_priority = copy.deepcopy(base)
    other_priority["properties"]["priority"] = 500
    [step] = _plan(base, other_priority).steps
    assert step.details == ("~ priority: 500 -> 400",)
    renamed = copy.deepcopy(base)
    renamed["properties"]["ruleCollections"][0]["rules"][0]["name"] = "r0"
    [step] = _plan(base, renamed).steps
    assert "-   rule r0" in step.details
    assert any(line.startswith("+   rule r1: ") for line in step.details)


def test_every_writable_collection_and_group_field_is_covered() -> None:
    compared = {"ruleCollectionType", "name", "priority", "action", "rules"}
    for model in (
        models.FirewallPolicyFilterRuleCollection,
        models.FirewallPolicyNatRuleCollection,
    ):
        assert set(writable_fields(model)) == compared
    assert set(writable_fields(models.FirewallPolicyRuleCollectionGroupProperties)) == {
        "priority",
        "ruleCollections",
    }


# --- routes: fields and ownership -----------------------------------------------------------

ROUTE_VALUES: dict[str, tuple[Any, Any]] = {
    "addressPrefix": ("0.0.0.0/0", "10.0.0.0/8"),
    "nextHopType": ("VirtualAppliance", "Internet"),
    "nextHopIpAddress": ("10.42.0.4", "10.42.0.5"),
    "nextHop": ({"ipAddresses": ["10.42.0.4"]}, {"ipAddresses": ["10.42.0.6"]}),
}


def _table(routes: list[dict[str, Any]], *, managed: bool) -> dict[str, Any]:
    return {
        "id": "/rt",
        "etag": 'W/"t"',
        "location": "eastus",
        "tags": {"managed-by": "egress", "egress-prefix": "egress"} if managed else {},
        "properties": {"routes": routes},
    }


def _route(name: str, **props: Any) -> dict[str, Any]:
    base = {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance"}
    return {"name": name, "properties": {**base, **props}}


def _route_plan(want: list[dict[str, Any]], have: dict[str, Any], *, prune: bool = False) -> Any:
    desired = DesiredState(
        "egress",
        {},
        _table(want, managed=True) | {"id": None, "etag": None},
        dns_proxy_required=False,
    )
    live = LiveState({"properties": {}}, {}, route_table=have)
    return build_plan(desired, live, TABLE_TARGET, prune=prune)


def test_every_writable_route_field_has_test_values() -> None:
    assert set(writable_fields(models.RoutePropertiesFormat)) == set(ROUTE_VALUES)


@pytest.mark.parametrize("field", sorted(ROUTE_VALUES))
def test_a_changed_route_field_is_an_update_naming_it(field: str) -> None:
    want, have = ROUTE_VALUES[field]
    live_route = _route("egress-default", **{field: have}) | {"etag": ROUTE_TARGET_ETAG}
    plan = _route_plan(
        [_route("egress-default", **{field: want})], _table([live_route], managed=True)
    )
    [step] = plan.steps
    assert (step.kind, step.action, step.etag) == (Kind.ROUTE, Action.UPDATE, ROUTE_TARGET_ETAG)
    assert [line.split(":")[0] for line in step.details] == [f"~ {field}"]


def test_a_prefixed_route_in_a_table_without_the_managed_tag_is_not_ours() -> None:
    stray = _route("egress-old", addressPrefix="10.9.0.0/16") | {"etag": 'W/"r"'}
    untagged = _route_plan([], _table([stray], managed=False), prune=True)
    assert not any(s.kind is Kind.ROUTE for s in untagged.steps)  # never deleted
    assert "route egress-old" in untagged.unmanaged
    assert "route egress-old" not in untagged.kept
    # Control: the same route in a table carrying managed-by=egress is egress's to prune.
    tagged = _route_plan([], _table([stray], managed=True), prune=True)
    assert [(s.kind, s.action, s.name) for s in tagged.steps] == [
        (Kind.ROUTE, Action.DELETE, "egress-old")
    ]
    assert _route_plan([], _table([stray], managed=True)).kept == ("route egress-old",)


def test_a_compiled_route_whose_name_is_taken_in_an_untagged_table_stops_the_plan() -> None:
    theirs = _route("egress-default", nextHopIpAddress="10.42.0.9") | {"etag": 'W/"r"'}
    with pytest.raises(AzureConflictError, match="which egress does not manage"):
        _route_plan([_route("egress-default")], _table([theirs], managed=False))
    # In a tagged table the same route is egress's and is simply updated.
    [step] = _route_plan([_route("egress-default")], _table([theirs], managed=True)).steps
    assert (step.kind, step.action) == (Kind.ROUTE, Action.UPDATE)
