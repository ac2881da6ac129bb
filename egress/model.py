"""The frozen intermediate model: what `egress compile` produces and every target reads.

The compiler (``egress.compiler``) builds one :class:`CompiledPolicy` from the catalog
and the user policy; targets, ``apply``, ``probe`` and the manifests only read it.
Everything here is immutable and already normalised, de-duplicated and ordered, so
rendering is a pure function of this value and output is byte-for-byte stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from egress.probe_plan import ProbePlan


class Cloud(StrEnum):
    """The Azure clouds the catalog covers (one file each under fqdn_lists/)."""

    AZURE_CLOUD = "AzureCloud"
    AZURE_CHINA_CLOUD = "AzureChinaCloud"
    AZURE_US_GOVERNMENT = "AzureUSGovernment"


class NetworkPlugin(StrEnum):
    """AKS network plugin mode; it decides which source ranges the firewall sees."""

    KUBENET = "kubenet"  # pods SNATed to the node: node subnet only
    AZURE_CNI = "azure-cni"  # pods take node-subnet addresses: node subnet
    AZURE_CNI_OVERLAY = "azure-cni-overlay"  # pods SNATed to the node: node subnet only
    AZURE_CNI_POD_SUBNET = "azure-cni-pod-subnet"  # pods have VNet addresses: node + pod subnets


class AppProtocolType(StrEnum):
    """Application rule protocols (REST ``protocolType``)."""

    HTTP = "Http"
    HTTPS = "Https"


class IpProtocol(StrEnum):
    """Network and NAT rule protocols (REST ``ipProtocols``)."""

    TCP = "TCP"
    UDP = "UDP"
    ICMP = "ICMP"
    ANY = "Any"


class CollectionAction(StrEnum):
    """Rule collection actions (REST ``action.type``)."""

    ALLOW = "Allow"
    DENY = "Deny"
    DNAT = "DNAT"


class NextHopType(StrEnum):
    """Route next hop types used by egress (REST ``nextHopType``)."""

    VIRTUAL_APPLIANCE = "VirtualAppliance"
    INTERNET = "Internet"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a rule's destination came from, so every rule can be traced to its source."""

    entry_id: str  # catalog entry id, e.g. "aks-required/mcr" or "policy/allow[2]"
    feature: str  # feature group, e.g. "required", "gpu", "policy"
    source: str  # file the entry was read from, e.g. "fqdn_lists/AzureCloud.yaml"
    doc: str  # documentation URL the requirement comes from ("" for user entries)
    purpose: str  # one line: why the cluster needs it
    conditions: tuple[str, ...] = ()  # catalog conditions, e.g. "not_private_cluster"


@dataclass(frozen=True, slots=True)
class WorkloadSelector:
    """Kubernetes pods by label: those matching pod_labels in namespaces matching namespace_labels.

    Empty label tuples match everything (as in a Kubernetes LabelSelector).
    """

    name: str  # unique within the policy; names the kube selector group and probe job
    namespace_labels: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    pod_labels: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs


@dataclass(frozen=True, slots=True)
class Sources:
    """Who: the AKS address ranges, an IP group, or Kubernetes workloads (never empty)."""

    addresses: tuple[str, ...] = ()
    ip_groups: tuple[str, ...] = ()
    workloads: tuple[WorkloadSelector, ...] = ()


class DestinationKind(StrEnum):
    """What an allowance lets traffic reach."""

    FQDN = "fqdn"
    WILDCARD = "wildcard"  # "*.example.com": subdomains only, never the apex
    IP = "ip"
    CIDR = "cidr"
    SERVICE_TAG = "service-tag"  # an Azure service tag, e.g. AzureCloud.eastus
    FQDN_TAG = "fqdn-tag"  # an Azure Firewall FQDN tag, e.g. AzureKubernetesService


class Protocol(StrEnum):
    """How: http/https are matched by Host/SNI, tcp/udp by address and port."""

    HTTP = "http"
    HTTPS = "https"
    TCP = "tcp"
    UDP = "udp"

    @property
    def is_app(self) -> bool:
        return self in (Protocol.HTTP, Protocol.HTTPS)


@dataclass(frozen=True, slots=True)
class Allowance:
    """One target-neutral allowance: who may reach what, how, and why.

    The compiler emits these de-duplicated and in a stable order; every target derives its
    own layout from them (the Azure targets pack them into rule collection groups).
    """

    sources: Sources
    kind: DestinationKind
    destination: str  # normalised FQDN, wildcard, address, CIDR or tag
    protocol: Protocol
    ports: str  # "443" or "1000-2000"
    provenance: tuple[Provenance, ...]
    probe: str | None = None  # probe hint: a concrete host, "api-server", "unverifiable: why"
    user: bool = False  # from the policy's allow list (the user group) rather than the catalog

    @property
    def is_app(self) -> bool:
        return self.protocol.is_app

    @property
    def port_range(self) -> tuple[int, int]:
        low, _, high = self.ports.partition("-")
        return int(low), int(high or low)

    def describe(self) -> str:
        """'allowance required/mcr (fqdn mcr.microsoft.com https/443)' for error messages."""
        ids = ", ".join(p.entry_id for p in self.provenance)
        return f"allowance {ids} ({self.kind} {self.destination} {self.protocol}/{self.ports})"


@dataclass(frozen=True, slots=True)
class AppProtocol:
    """One application-rule protocol and port, e.g. Https:443."""

    protocol_type: AppProtocolType
    port: int


@dataclass(frozen=True, slots=True)
class ApplicationRule:
    """An HTTP/S rule matched by SNI/Host: FQDNs (wildcards allowed) or FQDN tags."""

    name: str
    description: str
    sources: Sources
    protocols: tuple[AppProtocol, ...]
    target_fqdns: tuple[str, ...] = ()
    fqdn_tags: tuple[str, ...] = ()
    provenance: tuple[Provenance, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkRule:
    """An L4 rule: addresses, CIDRs, service tags or (with DNS proxy) plain FQDNs."""

    name: str
    description: str
    sources: Sources
    ip_protocols: tuple[IpProtocol, ...]
    destination_ports: tuple[str, ...]  # "443" or "1000-2000", as REST wants strings
    destination_addresses: tuple[str, ...] = ()  # IPs, CIDRs and service tags
    destination_fqdns: tuple[str, ...] = ()  # need the firewall policy's DNS proxy
    provenance: tuple[Provenance, ...] = ()


@dataclass(frozen=True, slots=True)
class NatRule:
    """A DNAT rule publishing an internal LoadBalancer service on the firewall public IP."""

    name: str
    description: str
    ip_protocols: tuple[IpProtocol, ...]
    source_addresses: tuple[str, ...]
    destination_address: str  # the firewall public IP
    destination_port: str
    translated_address: str  # the internal LoadBalancer IP
    translated_port: str
    provenance: tuple[Provenance, ...] = ()


Rule = ApplicationRule | NetworkRule | NatRule


@dataclass(frozen=True, slots=True)
class RuleCollection:
    """A named, prioritised list of rules of one kind sharing one action."""

    name: str
    priority: int
    action: CollectionAction  # DNAT collections hold only NatRule
    rules: tuple[Rule, ...]

    @property
    def is_nat(self) -> bool:
        return self.action is CollectionAction.DNAT


@dataclass(frozen=True, slots=True)
class RuleCollectionGroup:
    """A Firewall Policy rule collection group, written by Azure as one PUT."""

    name: str
    priority: int
    collections: tuple[RuleCollection, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """One user-defined route."""

    name: str
    address_prefix: str
    next_hop_type: NextHopType
    next_hop_ip_address: str | None = None


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The route table associated with the AKS subnets."""

    name: str
    routes: tuple[Route, ...]
    subnet_ids: tuple[str, ...] = ()  # subnets to associate, when the policy names them
    disable_bgp_route_propagation: bool = True


@dataclass(frozen=True, slots=True)
class ServicePublication:
    """An internal LoadBalancer Service that a DNAT rule points at."""

    name: str
    namespace: str
    private_ip: str  # service.beta.kubernetes.io/azure-load-balancer-ipv4
    port: int
    target_port: int
    protocol: IpProtocol  # TCP or UDP
    selector: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    subnet: str | None = None  # azure-load-balancer-internal-subnet


@dataclass(frozen=True, slots=True)
class FirewallSettings:
    """What the firewall policy itself must provide for the rules to work."""

    private_ip: str
    public_ip: str | None
    dns_proxy_required: bool  # network rules carry FQDNs
    dns_proxy_reason: str  # why it is required, or why not; shown in the summary


@dataclass(frozen=True, slots=True)
class AzureScope:
    """Where `apply` writes; None fields mean "not configured" (compile still works)."""

    subscription_id: str | None = None
    resource_group: str | None = None
    firewall_policy: str | None = None
    route_table_resource_group: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Everything egress knows about one cluster's egress, after compilation."""

    cloud: Cloud
    region: str
    features: tuple[str, ...]  # enabled feature groups, sorted
    network_plugin: NetworkPlugin
    sources: Sources
    firewall: FirewallSettings
    rule_collection_groups: tuple[RuleCollectionGroup, ...]  # the Azure layout of allowances
    route_table: RouteTable
    services: tuple[ServicePublication, ...]
    probe_plan: ProbePlan
    managed_prefix: str  # name prefix of every group and route egress owns
    azure: AzureScope = field(default_factory=AzureScope)
    warnings: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # catalog entries not applicable, each with the reason
    # The target-neutral content: who may reach what and how, each with provenance.
    allowances: tuple[Allowance, ...] = ()
    # With fqdn_mode "tag", the explicit allowances the FQDN tag stands for: targets that
    # cannot use an Azure FQDN tag allow these instead.
    tag_members: tuple[Allowance, ...] = ()

    def all_rules(self) -> tuple[Rule, ...]:
        return tuple(
            rule
            for group in self.rule_collection_groups
            for collection in group.collections
            for rule in collection.rules
        )
