"""Hand-built compiled policies: every target is tested on these independently of the compiler."""

from __future__ import annotations

from dataclasses import replace

from egress.model import (
    ApplicationRule,
    AppProtocol,
    AppProtocolType,
    AzureScope,
    Cloud,
    CollectionAction,
    CompiledPolicy,
    FirewallSettings,
    IpProtocol,
    NatRule,
    NetworkPlugin,
    NetworkRule,
    NextHopType,
    Provenance,
    Route,
    RouteTable,
    RuleCollection,
    RuleCollectionGroup,
    ServicePublication,
    Sources,
)
from egress.probe_plan import Check, CheckKind, Expectation, ProbePlan

NODES = Sources(addresses=("10.42.1.0/24",))
HTTPS = (AppProtocol(AppProtocolType.HTTPS, 443),)
DOC = "https://learn.microsoft.com/azure/aks/outbound-rules-control-egress"  # data only


def _prov(entry: str, feature: str = "required") -> tuple[Provenance, ...]:
    return (Provenance(entry, feature, "fqdn_lists/AzureCloud.yaml", DOC, "fixture"),)


def _plan(region: str, checks: tuple[Check, ...]) -> ProbePlan:
    return ProbePlan(cloud="AzureCloud", region=region, generated_by="egress test", checks=checks)


def _check(check_id: str, host: str, port: int, expectation: Expectation, rule: str) -> Check:
    return Check(
        id=check_id,
        host=host,
        port=port,
        transport="tcp",
        kind=CheckKind.HTTPS if port == 443 else CheckKind.TCP,
        expectation=expectation,
        destination=host,
        rule=rule,
        feature="canary" if expectation is Expectation.DENY else "required",
        required=expectation is Expectation.ALLOW,
    )


def minimal_policy() -> CompiledPolicy:
    """The shape of a default eastus compile: one network and one application collection."""
    network = NetworkRule(
        name="aks-api-tunnel",
        description="API server tunnel (not needed with konnectivity or a private cluster)",
        sources=NODES,
        ip_protocols=(IpProtocol.UDP,),
        destination_ports=("1194",),
        destination_addresses=("AzureCloud.eastus",),
        provenance=_prov("aks-required/apiudp"),
    )
    ntp = NetworkRule(
        name="ntp",
        description="time sync",
        sources=NODES,
        ip_protocols=(IpProtocol.UDP,),
        destination_ports=("123",),
        destination_addresses=("*",),
        provenance=_prov("aks-required/ntp"),
    )
    app = ApplicationRule(
        name="aks-https",
        description="AKS required FQDNs on HTTPS",
        sources=NODES,
        protocols=HTTPS,
        target_fqdns=(
            "*.data.mcr.microsoft.com",
            "*.hcp.eastus.azmk8s.io",
            "acs-mirror.azureedge.net",
            "login.microsoftonline.com",
            "management.azure.com",
            "mcr.microsoft.com",
            "packages.aks.azure.com",
            "packages.microsoft.com",
        ),
        provenance=_prov("aks-required/fqdns"),
    )
    groups = (
        RuleCollectionGroup(
            name="egress-aks",
            priority=300,
            collections=(
                RuleCollection("egress-aks-network", 200, CollectionAction.ALLOW, (network, ntp)),
                RuleCollection("egress-aks-application", 300, CollectionAction.ALLOW, (app,)),
            ),
        ),
    )
    return CompiledPolicy(
        cloud=Cloud.AZURE_CLOUD,
        region="eastus",
        features=("required",),
        network_plugin=NetworkPlugin.AZURE_CNI_OVERLAY,
        sources=NODES,
        firewall=FirewallSettings(
            private_ip="10.42.2.4",
            public_ip=None,
            dns_proxy_required=False,
            dns_proxy_reason="no network rule names an FQDN",
        ),
        rule_collection_groups=groups,
        route_table=RouteTable(
            name="egress-aks-rt",
            routes=(
                Route("egress-default", "0.0.0.0/0", NextHopType.VIRTUAL_APPLIANCE, "10.42.2.4"),
            ),
        ),
        services=(),
        probe_plan=_plan(
            "eastus",
            (
                _check(
                    "allow/mcr.microsoft.com:443",
                    "mcr.microsoft.com",
                    443,
                    Expectation.ALLOW,
                    "egress-aks/egress-aks-application/aks-https",
                ),
                _check(
                    "deny/canary:443",
                    "blocked.invalid",
                    443,
                    Expectation.DENY,
                    "canary/non-allowlisted-fqdn",
                ),
            ),
        ),
        managed_prefix="egress-",
    )


def full_policy() -> CompiledPolicy:
    """Everything the model can say: DNAT, IP groups, tags, FQDN network rules, deny, scope."""
    ip_group = (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/hub"
        "/providers/Microsoft.Network/ipGroups/ipg-aks"
    )
    both = Sources(addresses=("10.42.1.0/24", "10.42.8.0/21"), ip_groups=(ip_group,))
    base = minimal_policy()
    tag_rule = ApplicationRule(
        name="aks-fqdn-tag",
        description='FQDN tag "AzureKubernetesService" ${not.interpolated}',
        sources=both,
        protocols=(AppProtocol(AppProtocolType.HTTP, 80), *HTTPS),
        fqdn_tags=("AzureKubernetesService",),
        provenance=_prov("aks-required/tag"),
    )
    gpu = ApplicationRule(
        name="gpu",
        description="[GPU] drivers",
        sources=both,
        protocols=HTTPS,
        target_fqdns=("download.docker.com", "nvidia.github.io", "us.download.nvidia.com"),
        provenance=_prov("gpu/nvidia", "gpu"),
    )
    ghcr = NetworkRule(
        name="ghcr",
        description="GitHub container registry over plain TCP",
        sources=both,
        ip_protocols=(IpProtocol.TCP,),
        destination_ports=("443", "8000-8100"),
        destination_fqdns=("ghcr.io", "pkg-containers.githubusercontent.com"),
        provenance=_prov("policy/allow[0]", "policy"),
    )
    deny = NetworkRule(
        name="no-ssh-out",
        description="explicit deny",
        sources=both,
        ip_protocols=(IpProtocol.TCP,),
        destination_ports=("22",),
        destination_addresses=("0.0.0.0/0",),
        provenance=_prov("policy/deny[0]", "policy"),
    )
    nat = NatRule(
        name="store-front-http",
        description="publish store-front",
        ip_protocols=(IpProtocol.TCP,),
        source_addresses=("*",),
        destination_address="20.1.2.3",
        destination_port="80",
        translated_address="10.42.1.250",
        translated_port="8080",
        provenance=_prov("policy/publish[0]", "policy"),
    )
    groups = (
        RuleCollectionGroup(
            name="egress-dnat",
            priority=100,
            collections=(RuleCollection("egress-dnat", 100, CollectionAction.DNAT, (nat,)),),
        ),
        RuleCollectionGroup(
            name="egress-aks",
            priority=300,
            collections=(
                RuleCollection("egress-deny", 150, CollectionAction.DENY, (deny,)),
                *base.rule_collection_groups[0].collections,
                RuleCollection("egress-net-fqdn", 400, CollectionAction.ALLOW, (ghcr,)),
                RuleCollection("egress-app-extra", 500, CollectionAction.ALLOW, (tag_rule, gpu)),
            ),
        ),
    )
    subnet = (
        "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/spoke"
        "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks"
    )
    return CompiledPolicy(
        cloud=Cloud.AZURE_CLOUD,
        region="westeurope",
        features=("gpu", "required"),
        network_plugin=NetworkPlugin.AZURE_CNI_POD_SUBNET,
        sources=both,
        firewall=FirewallSettings(
            private_ip="10.42.2.4",
            public_ip="20.1.2.3",
            dns_proxy_required=True,
            dns_proxy_reason="network rule 'ghcr' names FQDNs",
        ),
        rule_collection_groups=groups,
        route_table=RouteTable(
            name="egress-aks-rt",
            routes=(
                Route("egress-default", "0.0.0.0/0", NextHopType.VIRTUAL_APPLIANCE, "10.42.2.4"),
                Route("egress-fw-public", "20.1.2.3/32", NextHopType.INTERNET),
            ),
            subnet_ids=(subnet,),
            disable_bgp_route_propagation=False,
        ),
        services=(
            ServicePublication(
                name="store-front",
                namespace="shop",
                private_ip="10.42.1.250",
                port=8080,
                target_port=8080,
                protocol=IpProtocol.TCP,
                selector=(("app", "store-front"),),
                subnet="aks",
            ),
            ServicePublication(
                name="metrics",
                namespace="ops",
                private_ip="10.42.1.251",
                port=9000,
                target_port=9090,
                protocol=IpProtocol.UDP,
                selector=(("app", "metrics"), ("tier", "backend")),
            ),
        ),
        probe_plan=_plan(
            "westeurope",
            (
                _check(
                    "allow/nvidia.github.io:443",
                    "nvidia.github.io",
                    443,
                    Expectation.ALLOW,
                    "egress-aks/egress-app-extra/gpu",
                ),
                _check("deny/ssh", "20.9.9.9", 22, Expectation.DENY, "canary/ssh"),
            ),
        ),
        managed_prefix="egress-",
        azure=AzureScope(
            subscription_id="00000000-0000-0000-0000-000000000001",
            resource_group="hub",
            firewall_policy="fw-policy",
            route_table_resource_group="spoke",
        ),
        warnings=("DNS proxy must be enabled on fw-policy",),
        skipped=("aks-required/apitcp: konnectivity",),
    )


def nat_port_range_policy() -> CompiledPolicy:
    """Two DNAT rules Terraform cannot express (a port range, a port above 64000)."""
    base = full_policy()
    ranged = NatRule(
        name="range",
        description="",
        ip_protocols=(IpProtocol.TCP,),
        source_addresses=("*",),
        destination_address="20.1.2.3",
        destination_port="1000-1010",
        translated_address="10.42.1.250",
        translated_port="1000-1010",
    )
    high = NatRule(
        name="high",
        description="",
        ip_protocols=(IpProtocol.UDP,),
        source_addresses=("*",),
        destination_address="20.1.2.3",
        destination_port="65000",
        translated_address="10.42.1.251",
        translated_port="53",
    )
    dnat = RuleCollectionGroup(
        name="egress-dnat",
        priority=100,
        collections=(RuleCollection("egress-dnat", 100, CollectionAction.DNAT, (ranged, high)),),
    )
    return replace(base, rule_collection_groups=(dnat, *base.rule_collection_groups[1:]))
