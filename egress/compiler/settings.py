"""Resolve the policy's cluster and firewall facts (or the documented defaults) for a compile."""

from __future__ import annotations

from dataclasses import dataclass

from egress.model import (
    IpProtocol,
    NatRule,
    NetworkPlugin,
    NextHopType,
    Provenance,
    Route,
    RouteTable,
    ServicePublication,
    Sources,
)
from egress.policy import DOC_FIREWALL_PRIVATE_IP, DOC_NODE_SUBNET, Policy
from egress.targets.azure_layout import GroupSpec

DOC_URL = "https://learn.microsoft.com/azure/aks/limit-egress-traffic"


@dataclass(frozen=True, slots=True)
class Resolved:
    sources: Sources
    private_ip: str
    public_ip: str | None
    aks_group: GroupSpec
    user_group: GroupSpec
    route_table: RouteTable
    warnings: tuple[str, ...]


def resolve_settings(policy: Policy, region: str) -> Resolved:
    """Sources follow the network plugin; missing facts fall back to Microsoft's doc example."""
    cluster, warnings = policy.cluster, []
    if cluster.source_ip_group:
        sources = Sources(ip_groups=(cluster.source_ip_group,))
    else:
        node = cluster.node_subnets
        if not node:
            node = (DOC_NODE_SUBNET,)
            warnings.append(
                f"assumed AKS node subnet {DOC_NODE_SUBNET} (Microsoft's example in {DOC_URL}); "
                "set cluster.node_subnets in the policy file"
            )
        pods = cluster.pod_subnets
        if cluster.network_plugin is NetworkPlugin.AZURE_CNI_POD_SUBNET and not pods:
            warnings.append(
                "network_plugin azure-cni-pod-subnet without cluster.pod_subnets: pod traffic "
                "keeps pod-subnet addresses and will not match these rules; add pod_subnets"
            )
        sources = Sources(addresses=tuple(sorted({*node, *pods}, key=_cidr_sort)))
    private_ip = policy.firewall.private_ip
    if private_ip is None:
        private_ip = DOC_FIREWALL_PRIVATE_IP
        warnings.append(
            f"assumed firewall private IP {DOC_FIREWALL_PRIVATE_IP} (Microsoft's example in "
            f"{DOC_URL}); set firewall.private_ip in the policy file"
        )
    public_ip = policy.firewall.public_ip
    if public_ip is None and not policy.dnat:
        warnings.append(
            "assumed no firewall public IP (no DNAT, no <public ip>/32 route); set "
            "firewall.public_ip in the policy file to publish services"
        )
    prefix = policy.managed_prefix
    groups = policy.rule_collection_groups
    aks = GroupSpec(groups.aks.name or f"{prefix}-aks", groups.aks.priority)
    user = GroupSpec(groups.user.name or f"{prefix}-user", groups.user.priority)
    routes = [
        Route(
            f"{prefix}-default-to-firewall", "0.0.0.0/0", NextHopType.VIRTUAL_APPLIANCE, private_ip
        )
    ]
    if policy.dnat and public_ip:
        host = f"{public_ip}/32" if ":" not in public_ip else f"{public_ip}/128"
        routes.append(Route(f"{prefix}-firewall-public-ip", host, NextHopType.INTERNET))
    table = RouteTable(
        name=policy.azure.route_table.name or f"{prefix}-aks-{region}",
        routes=tuple(routes),
        subnet_ids=tuple(sorted(policy.azure.subnet_ids)),
    )
    return Resolved(sources, private_ip, public_ip, aks, user, table, tuple(warnings))


def _cidr_sort(cidr: str) -> tuple[int, str]:
    return (":" in cidr, cidr)


def nat_rules(policy: Policy, source: str) -> tuple[NatRule, ...]:
    """One DNAT rule per publication (Azure NAT rules take a single destination port)."""
    public_ip = policy.firewall.public_ip or ""
    rules = []
    for index, pub in sorted(enumerate(policy.dnat), key=lambda item: item[1].name):
        rules.append(
            NatRule(
                name=pub.name,
                description=f"egress: publish {pub.namespace}/{pub.name}",
                ip_protocols=(IpProtocol(pub.protocol),),
                source_addresses=tuple(sorted(pub.source_addresses)),
                destination_address=public_ip,
                destination_port=str(pub.firewall_port),
                translated_address=pub.internal_ip,
                translated_port=str(pub.port),
                provenance=(
                    Provenance(
                        entry_id=f"policy/dnat[{index}] {pub.name}",
                        feature="policy",
                        source=source,
                        doc="https://learn.microsoft.com/azure/aks/limit-egress-traffic",
                        purpose=f"publish service {pub.namespace}/{pub.name} on the firewall",
                    ),
                ),
            )
        )
    return tuple(rules)


def service_publications(policy: Policy) -> tuple[ServicePublication, ...]:
    return tuple(
        ServicePublication(
            name=pub.name,
            namespace=pub.namespace,
            private_ip=pub.internal_ip,
            port=pub.port,
            target_port=pub.target_port or pub.port,
            protocol=IpProtocol(pub.protocol),
            selector=tuple(sorted(pub.selector.items())),
            subnet=pub.subnet,
        )
        for pub in sorted(policy.dnat, key=lambda p: (p.namespace, p.name))
    )
