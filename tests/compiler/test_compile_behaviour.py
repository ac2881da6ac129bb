"""Compiler behaviour: normalisation, de-duplication, subsumption, grouping, sources, DNAT."""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
from pathlib import Path

import pytest

from egress.compiler import CompileRequest, compile_request
from egress.errors import CompileError, UsageError
from egress.model import (
    ApplicationRule,
    CollectionAction,
    CompiledPolicy,
    IpProtocol,
    NatRule,
    NetworkRule,
    NextHopType,
)

from .helpers import app_allowed, compile_with, net_allowed

BASE = {"cluster": {"node_subnets": ["10.42.1.0/24"]}, "firewall": {"private_ip": "10.42.2.4"}}


def _with(**extra: object) -> dict[str, object]:
    return {**BASE, **extra}


def _user_app_rules(policy: CompiledPolicy) -> list[ApplicationRule]:
    return [
        r
        for g in policy.rule_collection_groups
        for c in g.collections
        if c.name == "allow-application"
        for r in c.rules
        if isinstance(r, ApplicationRule)
    ]


def test_no_policy_uses_doc_example_and_warns_each_assumption() -> None:
    policy = compile_request(CompileRequest())
    assert policy.sources.addresses == ("10.42.1.0/24",)
    assert policy.firewall.private_ip == "10.42.2.4"
    assert policy.firewall.public_ip is None
    assert any("assumed AKS node subnet 10.42.1.0/24" in w for w in policy.warnings)
    assert any("assumed firewall private IP 10.42.2.4" in w for w in policy.warnings)
    assert any("assumed no firewall public IP" in w for w in policy.warnings)
    routes = policy.route_table.routes
    assert [(r.address_prefix, r.next_hop_type, r.next_hop_ip_address) for r in routes] == [
        ("0.0.0.0/0", NextHopType.VIRTUAL_APPLIANCE, "10.42.2.4")
    ]


def test_names_are_normalised(tmp_path: Path) -> None:
    policy = compile_with(
        tmp_path,
        _with(
            allow=[
                {"name": "upper", "fqdn": "API.Contoso.COM.", "ports": ["https:443"]},
                # data: never contacted
                {"name": "idn", "fqdn": "Bücher.example.org", "ports": ["https:443"]},
            ]
        ),
    )
    (rule,) = _user_app_rules(policy)
    # data: never contacted
    assert rule.target_fqdns == ("api.contoso.com", "xn--bcher-kva.example.org")


def test_duplicates_collapse_and_keep_both_provenances(tmp_path: Path) -> None:
    policy = compile_with(
        tmp_path,
        _with(
            allow=[
                {"name": "one", "fqdn": "a.contoso.com", "ports": ["https:443"]},
                {"name": "two", "fqdn": "A.contoso.com.", "ports": ["https:443"]},
            ]
        ),
    )
    (rule,) = _user_app_rules(policy)
    assert rule.target_fqdns == ("a.contoso.com",)
    assert [p.entry_id for p in rule.provenance] == ["policy/allow[0] one", "policy/allow[1] two"]


def test_wildcard_subsumes_subdomains_but_not_the_apex(tmp_path: Path) -> None:
    policy = compile_with(
        tmp_path,
        _with(
            allow=[
                {"name": "wild", "fqdn": "*.contoso.com", "ports": ["https:443"]},
                {"name": "sub", "fqdn": "api.contoso.com", "ports": ["https:443"]},
                {"name": "deep", "fqdn": "*.eu.contoso.com", "ports": ["https:443"]},
                {"name": "apex", "fqdn": "contoso.com", "ports": ["https:443"]},
                {"name": "other-port", "fqdn": "web.contoso.com", "ports": ["http:80"]},
            ]
        ),
    )
    targets = {(r.name, f) for r in _user_app_rules(policy) for f in r.target_fqdns}
    assert targets == {
        ("https-443", "*.contoso.com"),
        ("https-443", "contoso.com"),
        ("http-80", "web.contoso.com"),
    }
    wild = next(r for r in _user_app_rules(policy) if r.name == "https-443")
    assert {p.entry_id for p in wild.provenance} >= {"policy/allow[1] sub", "policy/allow[2] deep"}


def test_catalog_wildcard_subsumes_catalog_entries_in_china(tmp_path: Path) -> None:
    policy = compile_with(tmp_path, BASE, cloud="AzureChinaCloud", region="chinaeast2")
    fqdns = {
        f for r in policy.all_rules() if isinstance(r, ApplicationRule) for f in r.target_fqdns
    }
    assert "*.azk8s.cn" in fqdns
    assert "*.hcp.chinaeast2.cx.prod.service.azk8s.cn" not in fqdns
    hcp = next(c for c in policy.probe_plan.checks if c.id == "required/hcp/https-443")
    assert hcp.rule == "egress-aks/application/https-443"


def test_destinations_sharing_protocol_and_port_share_one_rule(tmp_path: Path) -> None:
    policy = compile_with(
        tmp_path,
        _with(
            allow=[
                {"name": "a", "fqdn": "a.contoso.com", "ports": ["https:443"]},
                {"name": "b", "fqdn": "b.contoso.com", "ports": ["https:443", "http:80"]},
                {"name": "c", "fqdn": "c.contoso.com", "ports": ["http:80", "https:443"]},
                {"name": "db", "cidr": "10.50.0.0/24", "ports": ["tcp:5432"]},
                {"name": "db2", "cidr": "10.51.0.0/24", "ports": ["tcp:5432"]},
            ]
        ),
    )
    rules = {r.name: r for r in _user_app_rules(policy)}
    assert rules["https-443"].target_fqdns == ("a.contoso.com",)
    assert rules["http-80-https-443"].target_fqdns == ("b.contoso.com", "c.contoso.com")
    network = [r for r in policy.all_rules() if isinstance(r, NetworkRule) and r.name == "tcp-5432"]
    assert len(network) == 1
    assert network[0].destination_addresses == ("10.50.0.0/24", "10.51.0.0/24")


def test_catalog_https_fqdns_fit_in_one_application_rule() -> None:
    policy = compile_request(CompileRequest(features=("all",)))
    app_rules = [r for r in policy.all_rules() if isinstance(r, ApplicationRule)]
    assert sorted(r.name for r in app_rules) == ["http-80", "https-443"]


def test_non_http_fqdn_goes_to_a_network_rule_and_requires_dns_proxy(tmp_path: Path) -> None:
    policy = compile_with(
        tmp_path, _with(allow=[{"name": "pg", "fqdn": "db.contoso.com", "ports": ["tcp:5432"]}])
    )
    assert net_allowed(policy, "db.contoso.com", "tcp", 5432)
    assert not app_allowed(policy, "db.contoso.com", "https", 443)
    assert policy.firewall.dns_proxy_required
    assert "db.contoso.com" in policy.firewall.dns_proxy_reason
    assert "ntp.ubuntu.com" in policy.firewall.dns_proxy_reason


def test_dns_proxy_off_lists_every_fqdn_network_entry(tmp_path: Path) -> None:
    data = _with(allow=[{"name": "pg", "fqdn": "db.contoso.com", "ports": ["tcp:5432"]}])
    data["firewall"] = {"private_ip": "10.42.2.4", "dns_proxy": False}
    with pytest.raises(CompileError) as caught:
        compile_with(tmp_path, data)
    message = str(caught.value)
    assert "ntp.ubuntu.com (required/ntp)" in message
    assert "db.contoso.com (policy/allow[0] pg)" in message
    assert "firewall.dns_proxy: true" in message


def test_dns_proxy_off_compiles_when_fqdn_network_entries_are_excluded(tmp_path: Path) -> None:
    data = _with(exclude=["ntp"], allow=[{"cidr": "91.189.91.157", "ports": ["udp:123"]}])
    data["firewall"] = {"private_ip": "10.42.2.4", "dns_proxy": False}
    policy = compile_with(tmp_path, data)
    assert not policy.firewall.dns_proxy_required
    assert "required/ntp: excluded by the policy's exclude list" in policy.skipped


def test_private_cluster_and_konnectivity_skip_with_reasons(tmp_path: Path) -> None:
    data = {**BASE, "cluster": {**BASE["cluster"], "private_cluster": True, "konnectivity": True}}
    policy = compile_with(tmp_path, data)
    skipped = "\n".join(policy.skipped)
    assert "required/hcp: not needed for private clusters" in skipped
    assert "required/tunnel-udp-1194: not needed for private clusters" in skipped
    assert not app_allowed(policy, "x.hcp.eastus.azmk8s.io", "https", 443)
    assert not net_allowed(policy, "AzureCloud.eastus", "udp", 1194)


def test_konnectivity_alone_drops_the_tunnel_ports(tmp_path: Path) -> None:
    data = {**BASE, "cluster": {**BASE["cluster"], "konnectivity": True}}
    policy = compile_with(tmp_path, data)
    assert not net_allowed(policy, "AzureCloud.eastus", "tcp", 9000)
    assert app_allowed(policy, "x.hcp.eastus.azmk8s.io", "https", 443)
    assert any(
        s.startswith("required/tunnel-tcp-9000: not needed with the konnectivity")
        for s in policy.skipped
    )


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        ("kubenet", ("10.42.1.0/24",)),
        ("azure-cni", ("10.42.1.0/24",)),
        ("azure-cni-overlay", ("10.42.1.0/24",)),
        ("azure-cni-pod-subnet", ("10.42.1.0/24", "10.42.64.0/18")),
    ],
)
def test_sources_follow_the_network_plugin(
    tmp_path: Path, plugin: str, expected: tuple[str, ...]
) -> None:
    cluster: dict[str, object] = {"network_plugin": plugin, "node_subnets": ["10.42.1.0/24"]}
    if plugin == "azure-cni-pod-subnet":
        cluster["pod_subnets"] = ["10.42.64.0/18"]
    policy = compile_with(tmp_path, {"cluster": cluster, "firewall": {"private_ip": "10.42.2.4"}})
    assert policy.sources.addresses == expected
    assert all(
        r.sources.addresses == expected for r in policy.all_rules() if not isinstance(r, NatRule)
    )


def test_ip_group_sources(tmp_path: Path) -> None:
    group = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/ipGroups/aks"
    policy = compile_with(
        tmp_path, {"cluster": {"source_ip_group": group}, "firewall": {"private_ip": "10.1.2.4"}}
    )
    assert policy.sources.ip_groups == (group,)
    assert policy.sources.addresses == ()


def test_dnat_makes_nat_rule_service_and_public_ip_route(tmp_path: Path) -> None:
    data = _with(
        dnat=[
            {
                "name": "web",
                "namespace": "shop",
                "firewall_port": 8080,
                "internal_ip": "10.42.1.200",
                "port": 80,
                "target_port": 8000,
                "selector": {"app": "web", "tier": "front"},
            },
        ]
    )
    data["firewall"] = {"private_ip": "10.42.2.4", "public_ip": "20.30.40.50"}
    policy = compile_with(tmp_path, data)
    group = next(g for g in policy.rule_collection_groups if g.name == "egress-user")
    dnat = group.collections[0]
    assert dnat.action is CollectionAction.DNAT
    (rule,) = dnat.rules
    assert isinstance(rule, NatRule)
    assert (rule.destination_address, rule.destination_port) == ("20.30.40.50", "8080")
    assert (rule.translated_address, rule.translated_port) == ("10.42.1.200", "80")
    assert rule.ip_protocols == (IpProtocol.TCP,)
    (service,) = policy.services
    assert (service.namespace, service.port, service.target_port) == ("shop", 80, 8000)
    assert service.selector == (("app", "web"), ("tier", "front"))
    assert [(r.address_prefix, r.next_hop_type) for r in policy.route_table.routes] == [
        ("0.0.0.0/0", NextHopType.VIRTUAL_APPLIANCE),
        ("20.30.40.50/32", NextHopType.INTERNET),
    ]


def test_fqdn_tag_mode_replaces_required_fqdns_but_probes_them(tmp_path: Path) -> None:
    policy = compile_with(tmp_path, _with(fqdn_mode="tag"), features=("gpu",))
    app_rules = [r for r in policy.all_rules() if isinstance(r, ApplicationRule)]
    tag_rule = next(r for r in app_rules if r.fqdn_tags)
    assert tag_rule.fqdn_tags == ("AzureKubernetesService",)
    assert tag_rule.target_fqdns == ()
    explicit = {f for r in app_rules for f in r.target_fqdns}
    assert "mcr.microsoft.com" not in explicit
    assert "nvidia.github.io" in explicit  # optional groups stay explicit
    mcr = next(c for c in policy.probe_plan.checks if c.id == "required/mcr/https-443")
    assert mcr.rule == f"egress-aks/application/{tag_rule.name}"
    assert net_allowed(policy, "AzureCloud.eastus", "udp", 1194)  # network rules stay


def test_unknown_region_and_feature_suggest_close_names() -> None:
    with pytest.raises(UsageError, match=r"unknown region 'eastuss'.*'eastus'"):
        compile_request(CompileRequest(region="eastuss"))
    with pytest.raises(UsageError, match=r"unknown feature 'gpus'.*'gpu'"):
        compile_request(CompileRequest(features=("gpus",)))
    with pytest.raises(UsageError, match="unknown region 'eastus' for AzureChinaCloud"):
        compile_request(CompileRequest(cloud="AzureChinaCloud"))


def test_unknown_exclude_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown catalog entry 'ntpp'.*'ntp'"):
        compile_with(tmp_path, _with(exclude=["ntpp"]))


def test_all_enables_every_feature() -> None:
    policy = compile_request(CompileRequest(features=("all",)))
    assert "gpu" in policy.features
    assert "cluster-extensions" in policy.features
    assert policy.features == tuple(sorted(policy.features))


def test_api_server_ip_and_custom_dns_need_facts(tmp_path: Path) -> None:
    policy = compile_request(CompileRequest())
    assert any(
        s.startswith("required/api-server-ip: the API server public IP") for s in policy.skipped
    )
    assert any(s.startswith("required/custom-dns: only with custom DNS") for s in policy.skipped)
    data = {
        **BASE,
        "cluster": {
            **BASE["cluster"],
            "custom_dns_servers": ["10.0.5.4", "10.0.5.5"],
            "api_server_ip": "20.1.2.3",
        },
    }
    policy = compile_with(tmp_path, data)
    assert net_allowed(policy, "10.0.5.4", "udp", 53)
    assert net_allowed(policy, "10.0.5.5", "udp", 53)
    assert net_allowed(policy, "20.1.2.3", "tcp", 443)
    assert policy.skipped == ()


def test_every_rule_has_provenance_and_stable_names() -> None:
    policy = compile_request(CompileRequest(features=("all",)))
    for rule in policy.all_rules():
        assert rule.provenance, rule.name
        for prov in rule.provenance:
            assert prov.source == "fqdn_lists/AzureCloud.yaml"
            assert prov.doc.startswith("https://learn.microsoft.com/")


def test_compile_is_deterministic(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
    request = CompileRequest(features=("all",), policy_path=example)
    first, second = compile_request(request), compile_request(request)
    assert first == second
    assert first.probe_plan.to_json() == second.probe_plan.to_json()
