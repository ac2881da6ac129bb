"""Cilium policies validate against Cilium's published CRD schema and select what they should."""

from __future__ import annotations

import json
from copy import deepcopy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from egress.targets import TARGETS
from egress.targets.base import RenderInputs

from targets.cases import compiled
from targets.test_neutral_targets import tags

SCHEMAS = Path(__file__).parents[1] / "data" / "cilium"
SCHEMA_FILES = {
    "CiliumClusterwideNetworkPolicy": "ciliumclusterwidenetworkpolicy_v2.json",
    "CiliumNetworkPolicy": "ciliumnetworkpolicy_v2.json",
}


def _closed(node: Any) -> Any:
    """Every object with declared properties rejects unknown ones (kubectl --validate=strict)."""
    if isinstance(node, dict):
        node = {key: _closed(value) for key, value in node.items()}
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


@cache
def validator(kind: str = "CiliumClusterwideNetworkPolicy") -> jsonschema.Draft7Validator:
    schema = _closed(json.loads((SCHEMAS / SCHEMA_FILES[kind]).read_text()))
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is not in the CRD
    return jsonschema.Draft7Validator(schema)


def documents(case: str) -> list[dict[str, Any]]:
    target = TARGETS["cilium"](RenderInputs(service_tags=tags()))
    text = target.render(compiled(case))["cilium-policy.yaml"]
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("case", ["eastus-default", "eastus-neutral", "eastus-workloads"])
def test_every_policy_validates_against_the_crd_schema(case: str):
    for document in documents(case):
        errors = sorted(validator(document["kind"]).iter_errors(document), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_the_schema_check_can_fail():
    (document,) = documents("eastus-default")
    broken = deepcopy(document)
    broken["spec"]["egress"][2]["toFQDNs"][0] = {"matchNames": "mcr.microsoft.com"}
    assert list(validator().iter_errors(broken))
    broken = deepcopy(document)
    broken["spec"]["egress"][2]["toPorts"][0]["ports"][0]["protocol"] = "HTTPS"
    assert list(validator().iter_errors(broken))


def test_fqdn_policy_has_the_dns_rule_names_patterns_and_cluster_entity():
    (document,) = documents("eastus-neutral")
    assert document["kind"] == "CiliumClusterwideNetworkPolicy"
    egress = document["spec"]["egress"]
    dns = egress[0]
    assert dns["toEndpoints"][0]["matchLabels"]["k8s:k8s-app"] == "kube-dns"
    assert dns["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert {"toEntities": ["cluster"]} in egress
    https = next(
        r
        for r in egress
        if r.get("toPorts") == [{"ports": [{"port": "443", "protocol": "TCP"}]}] and "toFQDNs" in r
    )
    assert {"matchName": "github.com"} in https["toFQDNs"]  # never contacted
    assert {"matchPattern": "*.githubusercontent.com"} in https["toFQDNs"]
    assert {"matchName": "githubusercontent.com"} not in https["toFQDNs"]  # no apex
    ranges = next(
        r
        for r in egress
        if r.get("toCIDR") == ["10.50.0.0/24"] and r["toPorts"][0]["ports"][0].get("endPort")
    )
    assert ranges["toPorts"][0]["ports"] == [{"port": "6000", "endPort": 6010, "protocol": "TCP"}]
    selector = document["spec"]["endpointSelector"]["matchExpressions"][0]
    assert selector == {
        "key": "k8s:io.kubernetes.pod.namespace",
        "operator": "NotIn",
        "values": ["kube-system"],
    }


def test_a_workload_pinned_to_a_namespace_gets_a_namespaced_policy():
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in documents("eastus-workloads")}
    assert kinds == {
        ("CiliumClusterwideNetworkPolicy", None),
        ("CiliumNetworkPolicy", "reporting"),
    }
