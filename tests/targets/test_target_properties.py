"""Random compiled policies: every target renders valid output or refuses cleanly, never crashes."""

from __future__ import annotations

import json
import re
from typing import Any

import hypothesis.strategies as st
import jsonschema
import yaml
from azure.mgmt.network import models
from hypothesis import HealthCheck, given, settings

from egress.errors import UnsupportedFeatureError
from egress.model import (
    ApplicationRule,
    AppProtocol,
    AppProtocolType,
    Cloud,
    CollectionAction,
    CompiledPolicy,
    FirewallSettings,
    IpProtocol,
    NatRule,
    NetworkPlugin,
    NetworkRule,
    NextHopType,
    Route,
    RouteTable,
    RuleCollection,
    RuleCollectionGroup,
    ServicePublication,
    Sources,
)
from egress.probe_plan import ProbePlan
from egress.targets import TARGETS
from egress.targets.arm_template import RCG_TYPE
from egress.targets.azure_policy import rule_collection_group_bodies

from targets.arm_spec import rule_collection_group_schema

NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
# Descriptions may hold anything a user types: quotes, '[' (ARM), '${' (HCL), unicode.
TEXT = st.text(
    alphabet=st.sampled_from(list("ab [$]{}%\"'\\\n\t\x08\x0c-é")), max_size=20
) | st.sampled_from(["[x]", "${var}", "%{if}", ""])
FQDNS = st.builds(
    lambda wild, host, zone: f"{'*.' if wild else ''}{host}.{zone}.test",  # never contacted
    st.booleans(),
    NAMES,
    NAMES,
)
CIDRS = st.builds(lambda a, b: f"10.{a}.{b}.0/24", st.integers(0, 255), st.integers(0, 255))
PORTS = (
    st.integers(1, 65535).map(str)
    | st.builds(lambda a, span: f"{a}-{a + span}", st.integers(1, 60000), st.integers(1, 100))
    | st.just("*")
)
PRIORITIES = st.integers(100, 65000)
SOURCES = st.builds(
    Sources,
    addresses=st.lists(CIDRS, min_size=1, max_size=2, unique=True).map(tuple),
    ip_groups=st.lists(
        NAMES.map(
            lambda n: f"/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/ipGroups/{n}"
        ),
        max_size=1,
    ).map(tuple),
)


def unique_names(rules: list[Any]) -> bool:
    return len({r.name for r in rules}) == len(rules)


APP_RULES = st.builds(
    ApplicationRule,
    name=NAMES,
    description=TEXT,
    sources=SOURCES,
    protocols=st.lists(
        st.builds(AppProtocol, st.sampled_from(AppProtocolType), st.integers(1, 64000)),
        min_size=1,
        max_size=2,
    ).map(tuple),
    target_fqdns=st.lists(FQDNS, max_size=3, unique=True).map(tuple),
    fqdn_tags=st.lists(st.just("AzureKubernetesService"), max_size=1).map(tuple),
)
NETWORK_RULES = st.builds(
    NetworkRule,
    name=NAMES,
    description=TEXT,
    sources=SOURCES,
    ip_protocols=st.lists(st.sampled_from(IpProtocol), min_size=1, max_size=2, unique=True).map(
        tuple
    ),
    destination_ports=st.lists(PORTS, min_size=1, max_size=2, unique=True).map(tuple),
    destination_addresses=st.lists(
        CIDRS | st.just("AzureCloud.eastus"), max_size=2, unique=True
    ).map(tuple),
    destination_fqdns=st.lists(FQDNS.filter(lambda f: "*" not in f), max_size=2).map(tuple),
)
NAT_RULES = st.builds(
    NatRule,
    name=NAMES,
    description=TEXT,
    ip_protocols=st.sampled_from([(IpProtocol.TCP,), (IpProtocol.UDP,)]),
    source_addresses=st.just(("*",)),
    destination_address=st.just("20.1.2.3"),
    destination_port=st.integers(1, 65535).map(str),
    translated_address=st.just("10.42.1.250"),
    translated_port=st.integers(1, 65535).map(str),
)


def collection(rules: st.SearchStrategy[Any], actions: list[CollectionAction]) -> Any:
    return st.builds(
        RuleCollection,
        name=NAMES,
        priority=PRIORITIES,
        action=st.sampled_from(actions),
        rules=st.lists(rules, min_size=1, max_size=3).filter(unique_names).map(tuple),
    )


COLLECTIONS = (
    collection(APP_RULES, [CollectionAction.ALLOW, CollectionAction.DENY])
    | collection(NETWORK_RULES, [CollectionAction.ALLOW, CollectionAction.DENY])
    | collection(NAT_RULES, [CollectionAction.DNAT])
)
GROUPS = st.builds(
    RuleCollectionGroup,
    name=NAMES,
    priority=PRIORITIES,
    collections=st.lists(COLLECTIONS, min_size=1, max_size=3, unique_by=lambda c: c.name).map(
        tuple
    ),
)
SERVICES = st.builds(
    ServicePublication,
    name=NAMES,
    namespace=NAMES,
    private_ip=st.just("10.42.1.9"),
    port=st.integers(1, 65535),
    target_port=st.integers(1, 65535),
    protocol=st.sampled_from([IpProtocol.TCP, IpProtocol.UDP]),
    selector=st.just((("app", "x"),)),
    subnet=st.none() | NAMES,
)
POLICIES = st.builds(
    CompiledPolicy,
    cloud=st.sampled_from(Cloud),
    region=st.sampled_from(["eastus", "chinaeast2", "usgovvirginia"]),
    features=st.just(("required",)),
    network_plugin=st.sampled_from(NetworkPlugin),
    sources=SOURCES,
    firewall=st.just(FirewallSettings("10.42.2.4", "20.1.2.3", True, "test")),
    rule_collection_groups=st.lists(GROUPS, min_size=1, max_size=3, unique_by=lambda g: g.name).map(
        tuple
    ),
    route_table=st.builds(
        RouteTable,
        name=NAMES,
        routes=st.just(
            (
                Route("default", "0.0.0.0/0", NextHopType.VIRTUAL_APPLIANCE, "10.42.2.4"),
                Route("fw-public", "20.1.2.3/32", NextHopType.INTERNET),
            )
        ),
        disable_bgp_route_propagation=st.booleans(),
    ),
    services=st.lists(SERVICES, max_size=2, unique_by=lambda s: (s.namespace, s.name)).map(tuple),
    probe_plan=st.just(ProbePlan(cloud="AzureCloud", region="eastus", generated_by="t", checks=())),
    managed_prefix=NAMES,
)


def hcl_unquote(literal: str) -> str:
    """Decode one quoted HCL string the way Terraform does; fail on any interpolation."""
    body, out, index = literal[1:-1], [], 0
    while index < len(body):
        if body.startswith(("$${", "%%{"), index):
            out.append(body[index + 1 : index + 3])
            index += 3
        else:
            assert not body.startswith(("${", "%{"), index), f"interpolation in {literal}"
            out.append(body[index])
            index += 1
    assert re.fullmatch(r'(?:[^"\\\x00-\x1f]|\\[nrt"\\]|\\u[0-9a-f]{4})*', "".join(out))
    decoded: str = json.loads('"' + "".join(out) + '"')
    return decoded


def terraform_descriptions(text: str) -> set[str]:
    found = re.findall(r'^ *description += (".*")$', text, flags=re.MULTILINE)
    return {hcl_unquote(literal) for literal in found} - {
        "Resource id of the existing Azure Firewall Policy.",
        "Resource group of the route table.",
        "Region of the route table.",
    }


def descriptions(policy: CompiledPolicy) -> set[str]:
    return {rule.description for rule in policy.all_rules() if rule.description}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POLICIES)
def test_every_target_renders_or_refuses_cleanly(policy: CompiledPolicy):
    for name, target_class in TARGETS.items():
        target = target_class()
        try:
            files = target.render(policy)
        except UnsupportedFeatureError as error:
            assert f"target '{name}'" in error.message
            assert target.unsupported(policy)
            continue
        assert files == target_class().render(policy)
        assert set(files) <= set(target.files)
        for relpath, text in files.items():
            assert text.endswith("\n"), relpath
            if relpath.endswith(".json"):
                json.loads(text)
            elif relpath.endswith(".yaml"):
                assert all(yaml.safe_load_all(text))
            elif relpath.endswith(".tf"):
                assert terraform_descriptions(text) == descriptions(policy)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POLICIES)
def test_rest_bodies_always_match_the_spec_and_the_sdk(policy: CompiledPolicy):
    validator = jsonschema.Draft202012Validator(rule_collection_group_schema())
    for body in rule_collection_group_bodies(policy).values():
        assert list(validator.iter_errors(body)) == []
        assert models.FirewallPolicyRuleCollectionGroup(body).as_dict() == body


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POLICIES)
def test_arm_template_never_lets_a_literal_become_an_expression(policy: CompiledPolicy):
    template = json.loads(TARGETS["arm"]().render(policy)["azuredeploy.json"])

    def literals(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [s for item in value for s in literals(item)]
        if isinstance(value, dict):
            return [s for item in value.values() for s in literals(item)]
        return []

    for resource in template["resources"]:
        for text in literals(resource["properties"]):
            assert not text.startswith("[") or text.startswith("[["), text
    groups = [r for r in template["resources"] if r["type"] == RCG_TYPE]
    assert len(groups) == len(policy.rule_collection_groups)
