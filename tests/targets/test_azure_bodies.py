"""The REST bodies validate against the ARM spec (2026-03-01) and load into the SDK models."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from azure.mgmt.network import models

from egress.targets.azure_policy import rule_collection_group_bodies
from egress.targets.route_table import route_table_body

from targets.arm_spec import route_table_schema, rule_collection_group_schema
from targets.cases import ALL_CASES, policy_for

RULE_MODELS = {
    "ApplicationRule": models.ApplicationRule,
    "NetworkRule": models.NetworkRule,
    "NatRule": models.NatRule,
}
COLLECTION_MODELS = {
    "FirewallPolicyFilterRuleCollection": models.FirewallPolicyFilterRuleCollection,
    "FirewallPolicyNatRuleCollection": models.FirewallPolicyNatRuleCollection,
}


def spec_errors(schema: dict[str, Any], body: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(body)
    ]


@pytest.mark.parametrize("case", ALL_CASES)
def test_rule_collection_groups_match_the_rest_spec(case: str):
    bodies = rule_collection_group_bodies(policy_for(case))
    assert bodies
    for name, body in bodies.items():
        assert spec_errors(rule_collection_group_schema(), body) == [], name


@pytest.mark.parametrize("case", ALL_CASES)
def test_route_table_matches_the_rest_spec(case: str):
    assert spec_errors(route_table_schema(), route_table_body(policy_for(case))) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["properties"].update(priority=99), "99 is less than the minimum of 100"),
        (lambda b: _rule(b).update(targetFQDNs=["x.test"]), "targetFQDNs"),
        (lambda b: _rule(b).update(ruleType="FqdnRule"), "is not valid under any of the given"),
        (lambda b: _collection(b)["action"].update(type="Dnat"), "is not valid under any"),
        (lambda b: b["properties"].update(provisioningState="Succeeded"), "provisioningState"),
    ],
)
def test_the_spec_check_catches_bad_bodies(mutate: Any, expected: str):
    body = copy.deepcopy(rule_collection_group_bodies(policy_for("fixture-full"))["egress-aks"])
    mutate(body)
    errors = spec_errors(rule_collection_group_schema(), body)
    assert any(expected in error for error in errors), errors


def _collection(body: dict[str, Any]) -> dict[str, Any]:
    collection: dict[str, Any] = body["properties"]["ruleCollections"][-1]
    return collection


def _rule(body: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = _collection(body)["rules"][0]
    return rule


@pytest.mark.parametrize("case", ALL_CASES)
def test_rule_collection_groups_load_into_sdk_models(case: str):
    for body in rule_collection_group_bodies(policy_for(case)).values():
        group = models.FirewallPolicyRuleCollectionGroup(body)
        assert group.as_dict() == body
        assert group.properties.priority == body["properties"]["priority"]
        for collection, raw in zip(
            group.properties.rule_collections, body["properties"]["ruleCollections"], strict=True
        ):
            assert isinstance(collection, COLLECTION_MODELS[raw["ruleCollectionType"]])
            assert collection.priority == raw["priority"]
            for rule, raw_rule in zip(collection.rules, raw["rules"], strict=True):
                assert isinstance(rule, RULE_MODELS[raw_rule["ruleType"]])
                assert rule.name == raw_rule["name"]
                if isinstance(rule, models.ApplicationRule):
                    assert rule.target_fqdns == raw_rule.get("targetFqdns")
                    assert rule.fqdn_tags == raw_rule.get("fqdnTags")
                if isinstance(rule, models.NatRule):
                    assert rule.translated_port == raw_rule["translatedPort"]


@pytest.mark.parametrize("case", ALL_CASES)
def test_route_table_loads_into_sdk_model(case: str):
    policy = policy_for(case)
    body = route_table_body(policy)
    table = models.RouteTable(body)
    assert table.as_dict() == body
    assert table.location == policy.region
    hops = [
        (r.properties.address_prefix, r.properties.next_hop_type) for r in table.properties.routes
    ]
    assert ("0.0.0.0/0", "VirtualAppliance") in hops
    if policy.firewall.public_ip and policy.services:
        assert (f"{policy.firewall.public_ip}/32", "Internet") in hops
