"""Property test: random policies never crash the compiler.

Each one yields either a CompiledPolicy that passes the compiler's own checks, or a clean
EgressError with a message (never a traceback from a bug).
"""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
import ipaddress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress.catalog.names import normalise_fqdn
from egress.compiler import CompileRequest, compile_checked
from egress.compiler.lint import lint_compiled
from egress.errors import EgressError
from egress.model import ApplicationRule, CompiledPolicy, NatRule, NetworkRule, NextHopType
from egress.policy import validate_policy
from egress.probe_plan import Expectation, parse_plan

LABELS = st.sampled_from(
    ["a", "api", "xn--bcher-kva", "Mcr", "b-1", "data", "ünï", "-bad", "x" * 64, ""]
)
FQDNS = st.one_of(
    st.lists(LABELS, min_size=1, max_size=4).map(lambda parts: ".".join([*parts, "com"])),
    st.lists(LABELS, min_size=1, max_size=3).map(lambda parts: "*." + ".".join([*parts, "net"])),
    st.sampled_from(
        ["a.*.com", "*", "*.com", "1.2.3.4", "mcr.microsoft.com.", "MCR.Microsoft.com"]
    ),
    st.text(max_size=20),
)
PORTS = st.one_of(
    st.builds(
        lambda proto, port: f"{proto}:{port}",
        st.sampled_from(["tcp", "udp", "http", "https", "sctp", "HTTPS"]),
        st.one_of(st.integers(-1, 70000), st.sampled_from([80, 443, 53, 123, 5432])),
    ),
    st.sampled_from(["tcp:1000-2000", "https:443", "http:80", "tcp:443", "udp:9-8", "tcp:x"]),
)
IPV4 = st.ip_addresses(v=4).map(str)
CIDRS = st.one_of(
    st.builds(
        lambda ip, prefix: str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False)),
        IPV4,
        st.integers(8, 32),
    ),
    st.sampled_from(["10.0.0.1/24", "300.1.1.0/24", "10.42.1.0/24", "fd00::/64", "junk"]),
)
GOOD_CIDRS = st.builds(
    lambda ip, prefix: str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False)),
    IPV4,
    st.integers(13, 28),
)
ALLOW = st.one_of(
    st.fixed_dictionaries({"fqdn": FQDNS, "ports": st.lists(PORTS, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"cidr": CIDRS, "ports": st.lists(PORTS, min_size=1, max_size=2)}),
    st.fixed_dictionaries(
        {
            "service_tag": st.sampled_from(["Storage", "AzureCloud.eastus", "bad tag"]),
            "ports": st.lists(PORTS, min_size=1, max_size=2),
        }
    ),
)
DNAT = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["web", "api", "Bad_Name"]),
        "firewall_port": st.integers(0, 70000),
        "internal_ip": st.one_of(IPV4, st.just("10.42.1.9")),
        "port": st.integers(1, 65535),
        "selector": st.just({"app": "web"}),
        "protocol": st.sampled_from(["TCP", "udp", "ICMP"]),
    }
)
POLICIES = st.fixed_dictionaries(
    {},
    optional={
        "cluster": st.fixed_dictionaries(
            {},
            optional={
                "network_plugin": st.sampled_from(
                    ["kubenet", "azure-cni", "azure-cni-overlay", "azure-cni-pod-subnet"] * 3
                    + ["calico"]
                ),
                "node_subnets": st.lists(CIDRS, max_size=2),
                "service_cidr": st.one_of(GOOD_CIDRS, GOOD_CIDRS, CIDRS),
                "pod_cidr": st.one_of(GOOD_CIDRS, GOOD_CIDRS, CIDRS),
                "dns_service_ip": IPV4,
                "private_cluster": st.booleans(),
                "konnectivity": st.booleans(),
                "custom_dns_servers": st.lists(IPV4, max_size=2),
                "api_server_ip": IPV4,
            },
        ),
        "firewall": st.fixed_dictionaries(
            {},
            optional={"private_ip": IPV4, "public_ip": IPV4, "dns_proxy": st.booleans()},
        ),
        "features": st.lists(
            st.sampled_from(["gpu", "windows", "all", "defender", "gpus"]), max_size=3
        ),
        "fqdn_mode": st.sampled_from(["explicit", "tag"] * 4 + ["magic"]),
        "allow": st.lists(ALLOW, max_size=6),
        "dnat": st.lists(DNAT, max_size=2),
        "exclude": st.lists(st.sampled_from(["ntp", "required/mcr", "nope"]), max_size=2),
        "rule_collection_groups": st.fixed_dictionaries(
            {"aks": st.fixed_dictionaries({"priority": st.integers(99, 65001)})}
        ),
    },
)


def check_compiled(policy: CompiledPolicy) -> None:
    """The compiler's promises, re-checked independently of how it keeps them."""
    assert [f for f in lint_compiled(policy) if f.severity == "error"] == []
    groups = policy.rule_collection_groups
    assert len({g.name for g in groups}) == len(groups)
    assert len({g.priority for g in groups}) == len(groups)
    paths = set()
    for group in groups:
        assert 100 <= group.priority <= 65000
        assert len({c.priority for c in group.collections}) == len(group.collections)
        for collection in group.collections:
            assert 100 <= collection.priority <= 65000 and len(collection.name) <= 80
            for rule in collection.rules:
                assert len(rule.name) <= 80 and rule.provenance
                paths.add(f"{group.name}/{collection.name}/{rule.name}")
                if isinstance(rule, ApplicationRule):
                    assert rule.target_fqdns or rule.fqdn_tags
                    assert all(normalise_fqdn(f, wildcard=True) == f for f in rule.target_fqdns)
                    assert all(1 <= p.port <= 64000 for p in rule.protocols)
                elif isinstance(rule, NetworkRule):
                    assert rule.destination_addresses or rule.destination_fqdns
                    assert not any(f.startswith("*") for f in rule.destination_fqdns)
                    assert rule.sources.addresses or rule.sources.ip_groups
                else:
                    assert isinstance(rule, NatRule) and collection.is_nat
                    assert rule.destination_port.isdigit()
    has_network_fqdns = any(
        isinstance(r, NetworkRule) and r.destination_fqdns for r in policy.all_rules()
    )
    assert policy.firewall.dns_proxy_required is has_network_fqdns
    default = policy.route_table.routes[0]
    assert (default.address_prefix, default.next_hop_type) == (
        "0.0.0.0/0",
        NextHopType.VIRTUAL_APPLIANCE,
    )
    assert default.next_hop_ip_address == policy.firewall.private_ip
    plan = policy.probe_plan
    assert parse_plan(plan.to_json(), origin="property") == plan
    for check in plan.checks:
        if check.expectation is Expectation.ALLOW:
            assert check.rule in paths


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=POLICIES, cloud=st.sampled_from(["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"]))
def test_random_policies_compile_or_fail_cleanly(raw: dict[str, Any], cloud: str) -> None:
    region = {
        "AzureCloud": "eastus",
        "AzureChinaCloud": "chinanorth3",
        "AzureUSGovernment": "usgovarizona",
    }[cloud]
    try:
        policy = validate_policy(raw, origin="random.yaml")
        compiled = compile_checked(CompileRequest(cloud=cloud, region=region), policy)
    except EgressError as error:
        assert error.message and "Traceback" not in error.message
        return
    check_compiled(compiled)
