"""Every target against hand-built policies: golden files, feature checks and target rules."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from egress.errors import UnsupportedFeatureError
from egress.model import CompiledPolicy
from egress.targets import TARGETS
from egress.targets.arm_template import RCG_TYPE, arm_template
from egress.targets.azure_policy import rule_collection_group_bodies
from egress.targets.base import Target
from egress.targets.features import ALL_FEATURES, Feature, feature_uses
from egress.targets.role_definition import PLACEHOLDER_SCOPE, SUBNET_ACTIONS
from egress.targets.route_table import route_table_body

from targets.cases import DEFAULT_TARGETS, FIXTURES
from targets.fixtures import full_policy, minimal_policy, nat_port_range_policy

GOLDEN = Path(__file__).parents[1] / "golden" / "targets"


@pytest.mark.parametrize("target_name", DEFAULT_TARGETS)
@pytest.mark.parametrize("case", list(FIXTURES))
def test_target_matches_golden(golden: Callable[[str, str], None], case: str, target_name: str):
    files = TARGETS[target_name]().render(FIXTURES[case]())
    for relpath, text in files.items():
        golden(f"targets/{case}/{relpath}", text)


@pytest.mark.parametrize("target_name", list(TARGETS))
def test_every_target_has_golden_files(target_name: str):
    target = TARGETS[target_name]
    assert target.name == target_name
    for relpath in target.files:
        assert list(GOLDEN.glob(f"*/{relpath}")), f"no golden file for {target_name}/{relpath}"


def test_registry_files_are_unique_and_targets_declare_every_feature():
    paths = [path for target in TARGETS.values() for path in target.files]
    assert len(paths) == len(set(paths))
    cannot = {name: ALL_FEATURES - t.supports - t.ignores for name, t in TARGETS.items()}
    assert cannot == {
        "azure-policy": {Feature.MIXED_COLLECTIONS},
        "route-table": set(),
        "arm": {Feature.MIXED_COLLECTIONS},
        "terraform": {
            Feature.NAT_PORT_RANGES,
            Feature.MIXED_COLLECTIONS,
            Feature.WORKLOAD_SOURCES,
        },
        "k8s-services": set(),
        "probe-plan": set(),
        "role": set(),
        "allowlist": set(),
        "nsg": set(),
        "network-policy": {Feature.SOURCE_IP_GROUPS},
        "cilium": {Feature.SOURCE_IP_GROUPS},
        "appliance": {
            Feature.DNAT_RULES,
            Feature.SOURCE_IP_GROUPS,
            Feature.WORKLOAD_SOURCES,
            Feature.MIXED_COLLECTIONS,
        },
    }
    for target in TARGETS.values():
        assert not target.supports & target.ignores, target.name


@pytest.mark.parametrize("target_name", DEFAULT_TARGETS)
def test_rendering_is_deterministic_and_pure(target_name: str):
    policy = full_policy()
    before = repr(policy)
    first = TARGETS[target_name]().render(policy)
    assert TARGETS[target_name]().render(full_policy()) == first
    assert repr(policy) == before


def test_feature_uses_names_each_entry():
    uses = {(use.feature, use.where) for use in feature_uses(full_policy())}
    assert (
        Feature.NETWORK_RULE_FQDNS,
        "rule 'ghcr' in collection 'egress-net-fqdn' of group 'egress-aks'",
    ) in uses
    assert (Feature.SERVICE_PUBLICATIONS, "service 'shop/store-front'") in uses
    assert (
        Feature.DENY_COLLECTIONS,
        "rule 'no-ssh-out' in collection 'egress-deny' of group 'egress-aks'",
    ) in uses


def test_unsupported_feature_error_lists_every_offending_entry():
    with pytest.raises(UnsupportedFeatureError) as raised:
        TARGETS["terraform"]().render(nat_port_range_policy())
    message = raised.value.message
    assert "target 'terraform' (egress.tf) cannot express 2 entries" in message
    assert (
        "rule 'range' in collection 'egress-dnat' of group 'egress-dnat' uses nat-port-ranges"
        in (message)
    )
    assert (
        "rule 'high' in collection 'egress-dnat' of group 'egress-dnat' uses nat-port-ranges"
        in (message)
    )


def test_a_target_refuses_features_it_does_not_declare():
    class AppOnly(Target):
        name = "app-only"
        files = ("app.txt",)
        description = "test target"
        supports = frozenset({Feature.APPLICATION_RULES})
        ignores = frozenset({Feature.ROUTES})

        def _render(self, policy: CompiledPolicy) -> dict[str, str]:
            raise AssertionError("must not render after a failed check")

    with pytest.raises(UnsupportedFeatureError) as raised:
        AppOnly().render(minimal_policy())
    message = raised.value.message
    assert "cannot express 4 entries" in message
    assert message.count("uses network-rules") == 2
    assert (
        "rule 'aks-api-tunnel' in collection 'egress-aks-network' of group 'egress-aks' "
        "uses service-tags" in message
    )
    assert (
        "rule 'aks-https' in collection 'egress-aks-application' of group 'egress-aks' "
        "uses wildcard-fqdns" in message
    )


def test_the_rest_targets_express_nat_port_ranges():
    bodies = rule_collection_group_bodies(nat_port_range_policy())
    nat = bodies["egress-dnat"]["properties"]["ruleCollections"][0]
    assert nat["action"] == {"type": "DNAT"}
    assert [r["destinationPorts"] for r in nat["rules"]] == [["1000-1010"], ["65000"]]


def test_route_table_has_internet_route_for_the_dnat_public_ip():
    routes = route_table_body(full_policy())["properties"]["routes"]
    assert {
        "name": "egress-fw-public",
        "properties": {"addressPrefix": "20.1.2.3/32", "nextHopType": "Internet"},
    } in routes
    assert route_table_body(full_policy())["tags"]["managed-by"] == "egress"


def test_arm_template_chains_groups_and_matches_rest_bodies():
    template = arm_template(full_policy())
    groups = [r for r in template["resources"] if r["type"] == RCG_TYPE]
    assert [g["name"].split("'")[-2] for g in groups] == ["egress-dnat", "egress-aks"]
    assert "dependsOn" not in groups[0]
    assert groups[1]["dependsOn"] == [
        f"[resourceId('{RCG_TYPE}', parameters('firewallPolicyName'), 'egress-dnat')]"
    ]
    bodies = rule_collection_group_bodies(full_policy())
    aks = json.dumps(groups[1]["properties"])
    # Literal strings starting with '[' are escaped as '[[' so ARM does not evaluate them.
    assert '"description": "[[GPU] drivers"' in aks
    assert json.loads(aks.replace('"[[GPU]', '"[GPU]')) == bodies["egress-aks"]["properties"]
    assert template["parameters"]["firewallPolicyName"]["defaultValue"] == "fw-policy"


def test_terraform_escapes_interpolation_and_uses_azurerm_names():
    text = TARGETS["terraform"]().render(full_policy())["egress.tf"]
    assert r'"FQDN tag \"AzureKubernetesService\" $${not.interpolated}"' in text
    assert 'action   = "Dnat"' in text
    assert "translated_port     = 8080" in text
    assert 'destination_fqdn_tags = ["AzureKubernetesService"]' in text
    assert text.count("{") == text.count("}")
    assert not re.search(r"\bdisable_bgp_route_propagation\b", text)


def test_k8s_services_are_valid_internal_load_balancers():
    text = TARGETS["k8s-services"]().render(full_policy())["k8s-services.yaml"]
    documents = list(yaml.safe_load_all(text))
    assert [d["metadata"]["name"] for d in documents] == ["metrics", "store-front"]
    for document in documents:
        kubernetes_validate.validate(document, "1.31", strict=True)
        annotations = document["metadata"]["annotations"]
        assert annotations["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
        assert document["spec"]["type"] == "LoadBalancer"
        assert "loadBalancerIP" not in document["spec"]
    store = documents[1]["metadata"]["annotations"]
    assert store["service.beta.kubernetes.io/azure-load-balancer-ipv4"] == "10.42.1.250"
    assert store["service.beta.kubernetes.io/azure-load-balancer-internal-subnet"] == "aks"


def test_k8s_services_write_nothing_without_publications():
    assert TARGETS["k8s-services"]().render(minimal_policy()) == {}


def test_role_definition_scopes_and_subnet_actions():
    target = TARGETS["role"]()
    role = json.loads(target.render(full_policy())["role-definition.json"])
    assert set(SUBNET_ACTIONS) <= set(role["Actions"])
    assert role["Actions"] == sorted(role["Actions"])
    assert role["AssignableScopes"] == [
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/hub",
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/spoke",
        "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/spoke",
    ]
    assert target.warnings(full_policy()) == ()


def test_role_definition_without_scope_uses_placeholder_and_warns():
    target = TARGETS["role"]()
    role = json.loads(target.render(minimal_policy())["role-definition.json"])
    assert role["AssignableScopes"] == [PLACEHOLDER_SCOPE]
    assert not set(SUBNET_ACTIONS) & set(role["Actions"])
    (warning,) = target.warnings(minimal_policy())
    assert PLACEHOLDER_SCOPE in warning


def test_probe_plan_target_writes_the_plan_verbatim():
    policy = replace(minimal_policy())
    files = TARGETS["probe-plan"]().render(policy)
    assert files == {"probe-plan.json": policy.probe_plan.to_json()}


def test_collections_mixing_rule_kinds_are_refused_by_every_azure_target():
    policy = full_policy()
    aks = policy.rule_collection_groups[1]
    mixed = replace(
        aks.collections[1], rules=(*aks.collections[1].rules, *aks.collections[2].rules)
    )
    nat_in_filter = replace(
        aks.collections[0], rules=policy.rule_collection_groups[0].collections[0].rules
    )
    broken = replace(
        policy,
        rule_collection_groups=(
            policy.rule_collection_groups[0],
            replace(aks, collections=(nat_in_filter, mixed, *aks.collections[2:])),
        ),
    )
    for name in ("azure-policy", "arm", "terraform"):
        with pytest.raises(UnsupportedFeatureError) as raised:
            TARGETS[name]().render(broken)
        message = raised.value.message
        assert (
            "collection 'egress-aks-network' of group 'egress-aks' uses mixed-collections"
            in message
        )
        assert "collection 'egress-deny' of group 'egress-aks' uses mixed-collections" in message
    assert TARGETS["route-table"]().render(broken)


def test_arm_template_deploys_a_route_table_in_another_group_through_a_nested_deployment():
    template = arm_template(full_policy())
    (nested,) = [r for r in template["resources"] if r["type"] == "Microsoft.Resources/deployments"]
    assert nested["resourceGroup"] == "[parameters('routeTableResourceGroup')]"
    assert template["parameters"]["routeTableResourceGroup"]["defaultValue"] == "spoke"
    (table,) = nested["properties"]["template"]["resources"]
    assert table["type"] == "Microsoft.Network/routeTables"
    assert table["properties"] == route_table_body(full_policy())["properties"]
    assert "routeTableResourceGroup" in template["outputs"]["routeTableId"]["value"]
    # Same resource group (or none configured): the route table is a plain resource.
    direct = arm_template(minimal_policy())
    assert [r["type"] for r in direct["resources"]][-1] == "Microsoft.Network/routeTables"
    assert "routeTableResourceGroup" not in direct["parameters"]
