"""The opt-in targets over the target-neutral allowances: goldens, refusals and limits."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from egress import api
from egress.errors import InputError, UnsupportedFeatureError
from egress.model import CompiledPolicy
from egress.service_tags import ServiceTags, load_service_tags
from egress.targets import TARGETS
from egress.targets.base import RenderInputs

from targets.cases import compiled

DATA = Path(__file__).parents[1] / "data" / "service_tags" / "ServiceTags_Public_20261123.json"
NEUTRAL = [name for name, target in TARGETS.items() if not target.on_by_default]
CASES = ["eastus-default", "westeurope-full", "eastus-neutral"]


@cache
def tags() -> ServiceTags:
    return load_service_tags(DATA)


def render(name: str, policy: CompiledPolicy, data: ServiceTags | None = None) -> dict[str, str]:
    return TARGETS[name](RenderInputs(service_tags=data)).render(policy)


def test_the_new_targets_are_opt_in_and_a_plain_compile_needs_no_data():
    assert NEUTRAL == ["allowlist", "nsg", "network-policy", "cilium", "appliance"]
    assert not set(NEUTRAL) & set(api.parse_targets([]))
    # A plain compile renders without Service Tags data, although eastus uses a tag.
    policy = compiled("eastus-default")
    assert api.render(policy, api.parse_targets([])).files


@pytest.mark.parametrize("name", NEUTRAL)
@pytest.mark.parametrize("case", CASES)
def test_neutral_target_matches_golden(golden: Callable[[str, str], None], case: str, name: str):
    policy = compiled(case)
    if case == "westeurope-full" and name in ("appliance", "network-policy", "cilium"):
        with pytest.raises(UnsupportedFeatureError, match=f"target '{name}'"):
            render(name, policy, tags())  # the full policy's IP group (and DNAT) cannot go there
        return
    files = render(name, policy, tags())
    assert files == render(name, policy, tags()), "deterministic"
    for relpath, text in files.items():
        golden(f"targets/{case}/{relpath}", text)


@pytest.mark.parametrize("name", ["appliance", "network-policy", "cilium"])
def test_a_service_tag_without_data_is_refused_in_one_sentence(name: str):
    policy = compiled("eastus-default")
    with pytest.raises(UnsupportedFeatureError) as caught:
        render(name, policy)
    message = caught.value.message
    assert message.count(". ") == 0 and message.endswith(".")
    assert "'AzureCloud.eastus' (required/tunnel-udp-1194, required/tunnel-tcp-9000)" in message
    assert "--service-tags ServiceTags_Public_YYYYMMDD.json" in message
    missing = ServiceTags("1", "Public", "other.json", {"AzureMonitor": ("198.19.10.0/24",)})
    with pytest.raises(UnsupportedFeatureError, match=r"not found in other\.json"):
        render(name, policy, missing)


def test_expanded_tags_record_the_change_number_and_their_prefixes():
    files = render("appliance", compiled("eastus-default"), tags())
    ruleset = files["appliance/nftables.nft"]
    assert "changeNumber 321 (Public, ServiceTags_Public_20261123.json)" in ruleset
    assert "ip daddr { 198.18.90.0/24, 198.18.91.0/24 } tcp dport 9000" in ruleset
    assert "ip daddr { 198.18.90.0/24, 198.18.91.0/24 } udp dport 1194" in ruleset
    policy_text = render("cilium", compiled("eastus-default"), tags())["cilium-policy.yaml"]
    assert "changeNumber 321" in policy_text and "198.18.90.0/24" in policy_text


def test_a_bad_service_tags_file_is_one_sentence(tmp_path: Path):
    bad = tmp_path / "ServiceTags_Public_1.json"
    bad.write_text('{"values": [{"name": "AzureCloud"}]}')
    with pytest.raises(InputError, match=r"values\[0\] has no name or properties.addressPrefixes"):
        load_service_tags(bad)
    bad.write_text("{")
    with pytest.raises(InputError, match="is not JSON"):
        load_service_tags(bad)


def test_allowlist_rows_carry_port_protocol_feature_condition_purpose_and_doc():
    files = render("allowlist", compiled("westeurope-full"))
    rows = list(csv.DictReader(io.StringIO(files["allowlist.csv"])))
    document = json.loads(files["allowlist.json"])
    assert len(rows) == len(document["allowances"])
    by_destination = {(r["destination"], r["port"], r["protocol"]): r for r in rows}
    mcr = by_destination[("mcr.microsoft.com", "443", "https")]  # data, never contacted
    assert mcr["feature"] == "required" and mcr["condition"] == "always"
    assert mcr["doc"].startswith("https://learn.microsoft.com/")
    postgres = by_destination[("10.50.0.0/24", "5432", "tcp")]
    assert postgres["feature"] == "policy" and postgres["kind"] == "cidr"
    # tag mode: the FQDN tag is listed as the explicit entries it stands for
    assert "AzureKubernetesService" not in {r["destination"] for r in rows}


def test_nsg_lists_what_it_cannot_express_and_keeps_tags():
    document = json.loads(render("nsg", compiled("eastus-default"))["nsg-rules.json"])
    rules = {r["properties"]["destinationAddressPrefix"]: r for r in document["securityRules"]}
    assert set(rules) == {"AzureCloud.eastus"}
    assert {r["properties"]["destinationPortRange"] for r in document["securityRules"]} == {
        "1194",
        "9000",
    }
    unexpressed = " ".join(item["allowance"] for item in document["notExpressible"])
    assert "fqdn mcr.microsoft.com https/443" in unexpressed
    assert "fqdn ntp.ubuntu.com udp/123" in unexpressed
    priorities = [r["properties"]["priority"] for r in document["securityRules"]]
    assert priorities == sorted(set(priorities)) and all(100 <= p <= 4096 for p in priorities)


def test_network_policy_validates_and_opens_fqdn_ports_only_for_the_firewall():
    text = render("network-policy", compiled("eastus-default"), tags())["network-policy.yaml"]
    (document,) = [d for d in yaml.safe_load_all(text) if d]
    kubernetes_validate.validate(document, "1.31", strict=True)
    egress = document["spec"]["egress"]
    assert egress[0]["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    by_port = {(r["ports"][0]["protocol"], r["ports"][0]["port"]): r["to"] for r in egress[1:]}
    assert by_port[("TCP", 9000)] == [
        {"ipBlock": {"cidr": "198.18.90.0/24"}},
        {"ipBlock": {"cidr": "198.18.91.0/24"}},
        {"ipBlock": {"cidr": "2001:db8:90::/48"}},
    ]
    anywhere = [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
    assert by_port[("TCP", 443)] == anywhere  # names: the firewall decides
    assert ("TCP", 22) not in by_port
    assert (
        "mcr.microsoft.com"
        in document["metadata"]["annotations"]["egress/fqdns-enforced-by-firewall"]
    )


WORKLOAD_TARGETS = ["azure-policy", "arm", "allowlist", "network-policy", "cilium"]


@pytest.mark.parametrize("name", WORKLOAD_TARGETS)
def test_workload_sources_match_golden(golden: Callable[[str, str], None], name: str):
    files = render(name, compiled("eastus-workloads"), tags())
    for relpath, text in files.items():
        golden(f"targets/eastus-workloads/{relpath}", text)


def test_workloads_become_kube_selector_groups_on_their_own_rules():
    policy = compiled("eastus-workloads")
    files = render("azure-policy", policy)
    groups = json.loads(files["kube-selector-groups.json"])
    assert groups == {
        "egress-payments": {
            "properties": {
                "namespaceSelector": {"matchLabels": {"team": "payments"}},
                "podSelector": {"matchLabels": {"app": "checkout"}},
            }
        },
        "egress-reports": {
            "properties": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "reporting"}}
            }
        },
    }
    bodies = json.loads(files["rule-collection-groups.json"])
    rules = [
        rule
        for body in bodies.values()
        for collection in body["properties"]["ruleCollections"]
        for rule in collection["rules"]
    ]
    policy_id = (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/hub/providers/"
        "Microsoft.Network/firewallPolicies/fw-policy/kubeSelectorGroups/"
    )
    stripe = next(r for r in rules if "api.stripe.test" in r.get("targetFqdns", []))
    assert stripe["sourceKubeSelectorGroups"] == [policy_id + "egress-payments"]
    assert "sourceAddresses" not in stripe  # the workload is the only source
    warehouse = next(r for r in rules if "10.60.0.0/24" in r.get("destinationAddresses", []))
    assert warehouse["sourceKubeSelectorGroups"] == [
        policy_id + "egress-payments",
        policy_id + "egress-reports",
    ]
    github = next(r for r in rules if "github.com" in r.get("targetFqdns", []))
    assert (
        github["sourceAddresses"] == ["10.240.1.0/24"] and "sourceKubeSelectorGroups" not in github
    )
    assert "api.stripe.test" not in github["targetFqdns"]
    with pytest.raises(UnsupportedFeatureError, match="uses workload-sources"):
        TARGETS["terraform"]().render(policy)  # azurerm has no kube selector groups
    template = json.loads(TARGETS["arm"]().render(policy)["azuredeploy.json"])
    kinds = [r["type"].rsplit("/", 1)[-1] for r in template["resources"]]
    assert kinds[:3] == ["kubeSelectorGroups", "kubeSelectorGroups", "ruleCollectionGroups"]
    arm_rules = [
        rule
        for r in template["resources"]
        if r["type"].endswith("ruleCollectionGroups")
        for collection in r["properties"]["ruleCollections"]
        for rule in collection["rules"]
    ]
    arm_stripe = next(r for r in arm_rules if "api.stripe.test" in r.get("targetFqdns", []))
    assert arm_stripe["sourceKubeSelectorGroups"] == [
        "[resourceId('Microsoft.Network/firewallPolicies/kubeSelectorGroups', "
        "parameters('firewallPolicyName'), 'egress-payments')]"
    ]


def test_kubernetes_policies_select_each_workload():
    text = render("network-policy", compiled("eastus-workloads"), tags())["network-policy.yaml"]
    documents = {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}
    for document in documents.values():
        kubernetes_validate.validate(document, "1.31", strict=True)
    payments = documents["egress-allowlist-payments"]
    assert payments["spec"]["podSelector"] == {"matchLabels": {"app": "checkout"}}
    assert payments["metadata"]["annotations"]["egress/apply-in-namespaces-labelled"] == (
        "team=payments"
    )
    assert (
        "api.stripe.test"
        in payments["metadata"]["annotations"]["egress/fqdns-enforced-by-firewall"]
    )
    assert documents["egress-allowlist"]["spec"]["podSelector"] == {}
    assert "namespace" not in documents["egress-allowlist"]["metadata"]  # every app namespace
    assert documents["egress-allowlist-reports"]["metadata"]["namespace"] == "reporting"
    text = render("cilium", compiled("eastus-workloads"), tags())["cilium-policy.yaml"]
    cilium = {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}
    selector = cilium["egress-allowlist-payments"]["spec"]["endpointSelector"]
    assert selector == {
        "matchLabels": {
            "k8s:app": "checkout",
            "k8s:io.cilium.k8s.namespace.labels.team": "payments",
        }
    }
    names = [
        f
        for r in cilium["egress-allowlist-payments"]["spec"]["egress"]
        for f in r.get("toFQDNs", [])
    ]
    assert names == [{"matchName": "api.stripe.test"}]


def test_kube_selector_bodies_load_into_the_sdk_models():
    from azure.mgmt.network.models import (
        ApplicationRule,
        FirewallPolicyKubeSelectorGroup,
        NetworkRule,
    )

    files = render("azure-policy", compiled("eastus-workloads"))
    for body in json.loads(files["kube-selector-groups.json"]).values():
        group = FirewallPolicyKubeSelectorGroup(body)
        assert group.properties is not None and (
            group.properties.pod_selector or group.properties.namespace_selector
        )
    for body in json.loads(files["rule-collection-groups.json"]).values():
        for collection in body["properties"]["ruleCollections"]:
            for rule in collection["rules"]:
                model = (ApplicationRule if rule["ruleType"] == "ApplicationRule" else NetworkRule)(
                    rule
                )
                assert model.source_kube_selector_groups == rule.get("sourceKubeSelectorGroups")
