"""The rule-level diff on its own: what counts as a change, and how changes read."""

from __future__ import annotations

import copy
from typing import Any

from egress.azure.diff import Action, Kind, build_plan, group_details, rule_summary
from egress.azure.state import AzureTarget, DesiredState, LiveState

from azure_hub import POLICY, RG, SUB

TARGET = AzureTarget(SUB, RG, POLICY, None, RG)
NAT = {
    "ruleType": "NatRule",
    "name": "web",
    "description": "egress: publish shop/web",
    "ipProtocols": ["TCP"],
    "sourceAddresses": ["*"],
    "destinationAddresses": ["20.1.2.3"],
    "destinationPorts": ["443"],
    "translatedAddress": "10.42.1.10",
    "translatedPort": "8443",
}
APP = {
    "ruleType": "ApplicationRule",
    "name": "mcr",
    "description": "egress: required",
    "protocols": [{"protocolType": "Https", "port": 443}],
    "sourceAddresses": ["10.42.1.0/24"],
    "targetFqdns": ["mcr.microsoft.com"],
    "terminateTLS": False,
}


def _group(*collections: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"priority": 400, "ruleCollections": list(collections)}}


def _collection(name: str, action: str, *rules: dict[str, Any]) -> dict[str, Any]:
    kind = (
        "FirewallPolicyNatRuleCollection"
        if action == "DNAT"
        else "FirewallPolicyFilterRuleCollection"
    )
    return {
        "ruleCollectionType": kind,
        "name": name,
        "priority": 100,
        "action": {"type": action},
        "rules": list(rules),
    }


def _as_azure_returns_it(body: dict[str, Any]) -> dict[str, Any]:
    """Read-only fields, ARM's empty-list defaults and a different collection order."""
    live = copy.deepcopy(body)
    live.update(
        id="/x", etag='W/"1"', type="Microsoft.Network/firewallPolicies/ruleCollectionGroups"
    )
    props = live["properties"]
    props.update(provisioningState="Succeeded", size="0.002 MB")
    props["ruleCollections"].reverse()
    for collection in props["ruleCollections"]:
        for rule in collection["rules"]:
            rule.setdefault("sourceIpGroups", [])
            rule.setdefault("destinationIpGroups", [])
    return live


def test_read_only_fields_defaults_and_order_are_not_changes() -> None:
    body = _group(_collection("nat", "DNAT", NAT), _collection("app", "Allow", APP))
    desired = DesiredState("egress", {"egress-aks": body}, None, dns_proxy_required=False)
    live = LiveState(policy={"properties": {}}, groups={"egress-aks": _as_azure_returns_it(body)})
    assert not build_plan(desired, live, TARGET).has_changes


def test_a_changed_rule_is_one_update_with_field_level_lines() -> None:
    body = _group(_collection("app", "Allow", APP))
    live_body = _as_azure_returns_it(body)
    live_body["properties"]["ruleCollections"][0]["rules"][0]["targetFqdns"] = [
        "old.example"
    ]  # data only, never contacted
    desired = DesiredState("egress", {"egress-aks": body}, None, dns_proxy_required=False)
    plan = build_plan(desired, LiveState({"properties": {}}, {"egress-aks": live_body}), TARGET)
    [step] = plan.steps
    assert (step.kind, step.action, step.etag) == (Kind.GROUP, Action.UPDATE, 'W/"1"')
    assert step.details == (
        "~ collection app",
        "~   rule mcr",
        "~     targetFqdns: old.example -> mcr.microsoft.com",
    )


def test_rule_summaries_read_like_the_rule() -> None:
    assert rule_summary(NAT) == "TCP from * to 20.1.2.3:443 -> 10.42.1.10:8443"
    assert rule_summary(APP) == "Https:443 from 10.42.1.0/24 to mcr.microsoft.com"
    lines = group_details(_group(_collection("nat", "DNAT", NAT)), None)
    assert lines == [
        "+ collection nat (priority 100, DNAT, 1 rule)",
        "+   rule web: TCP from * to 20.1.2.3:443 -> 10.42.1.10:8443",
    ]
