"""The user policy file format (YAML or TOML) as validated, frozen pydantic models."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from egress.catalog.names import (
    check_cidr,
    check_ip,
    check_service_tag,
    is_wildcard,
    normalise_fqdn,
    parse_port_spec,
    wildcard_covers,
)
from egress.inputs import GUID_PATTERN
from egress.model import NetworkPlugin
from egress.policy.workloads import Workload, check_workload_references

POLICY_SCHEMA_VERSION: Literal[1] = 1
# Microsoft's "limit egress traffic" example addresses, used when no policy says otherwise.
DOC_NODE_SUBNET = "10.42.1.0/24"
DOC_FIREWALL_PRIVATE_IP = "10.42.2.4"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _cidrs(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(check_cidr(v) for v in values)


class Cluster(_Frozen):
    """Facts about the AKS cluster that decide sources and which catalog entries apply."""

    network_plugin: NetworkPlugin = NetworkPlugin.AZURE_CNI_OVERLAY
    node_subnets: tuple[str, ...] = ()
    pod_subnets: tuple[str, ...] = ()
    source_ip_group: str | None = Field(default=None, pattern=r"^/subscriptions/.+/ipGroups/.+$")
    service_cidr: str | None = None
    pod_cidr: str | None = None
    dns_service_ip: str | None = None
    private_cluster: bool = False
    konnectivity: bool = False
    custom_dns_servers: tuple[str, ...] = ()
    api_server_ip: str | None = None

    _v_subnets = field_validator("node_subnets", "pod_subnets")(_cidrs)

    @field_validator("service_cidr", "pod_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        return None if value is None else check_cidr(value)

    @field_validator("dns_service_ip", "api_server_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else check_ip(value)

    @field_validator("custom_dns_servers")
    @classmethod
    def _ips(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_ip(v) for v in values)

    @model_validator(mode="after")
    def _pod_subnets_match_plugin(self) -> Cluster:
        if self.pod_subnets and self.network_plugin is not NetworkPlugin.AZURE_CNI_POD_SUBNET:
            raise ValueError(
                f"pod_subnets is only used with network_plugin azure-cni-pod-subnet, not "
                f"{self.network_plugin.value} (pod traffic is SNATed to the node); remove it"
            )
        return self


class Firewall(_Frozen):
    """The Azure Firewall the AKS subnets route through."""

    private_ip: str | None = None
    public_ip: str | None = None
    dns_proxy: bool = True
    # Which firewall behaviour the probe's judge may rely on (written into the probe plan).
    profile: Literal["azure-firewall", "generic"] = "azure-firewall"

    @field_validator("private_ip", "public_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else check_ip(value)


class Allow(_Frozen):
    """An application-specific allowance: one destination and its protocol:port list."""

    name: str | None = Field(default=None, pattern=_NAME, max_length=60)
    fqdn: str | None = None
    cidr: str | None = None
    service_tag: str | None = None
    ports: tuple[str, ...] = Field(min_length=1)
    purpose: str = ""
    probe_host: str | None = None
    tls_inspection: TlsInspectionPolicy = "allowed"  # may a TLS-inspecting proxy re-sign it?
    workloads: tuple[str, ...] = ()  # names under the policy's workloads: the only sources

    @field_validator("ports")
    @classmethod
    def _ports(cls, ports: tuple[str, ...]) -> tuple[str, ...]:
        for spec in ports:
            parse_port_spec(spec)
        return ports

    @model_validator(mode="after")
    def _one_destination(self) -> Allow:
        given = [k for k in ("fqdn", "cidr", "service_tag") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fqdn, cidr or service_tag")
        protocols = {parse_port_spec(p)[0] for p in self.ports}
        if self.fqdn is not None:
            normalise_fqdn(self.fqdn, wildcard=protocols <= {"http", "https"})
        else:
            if self.cidr is not None:
                check_cidr(self.cidr)
            if self.service_tag is not None:
                check_service_tag(self.service_tag)
            if protocols & {"http", "https"}:
                raise ValueError(
                    "cidr and service_tag destinations take tcp/udp ports; http/https match names"
                )
        if self.probe_host is not None:
            host = normalise_fqdn(self.probe_host, wildcard=False)
            fqdn = normalise_fqdn(self.fqdn, wildcard=True) if self.fqdn is not None else None
            if fqdn is not None and is_wildcard(fqdn) and not wildcard_covers(fqdn, host):
                raise ValueError(
                    f"probe_host '{self.probe_host}' is not under {fqdn}; give a host that the "
                    "wildcard matches"
                )
        return self


TlsInspectionPolicy = Literal["allowed", "forbidden"]
CanaryKind = Literal["https", "http", "tls", "tcp", "dns", "ntp"]
_UDP_KINDS = frozenset({"dns", "ntp"})


class Canary(_Frozen):
    """A destination that must stay blocked, probed to show the firewall denies it."""

    name: str = Field(pattern=_NAME, max_length=60)
    destination: str  # an FQDN or an IP address
    port: int = Field(ge=1, le=65535)
    kind: CanaryKind
    protocol: Literal["tcp", "udp"] | None = None  # follows the kind when left out
    canary_server: bool = False  # a server you keep up that answers on every port
    dns_query_name: str | None = None  # kind dns: the name asked of the outside resolver
    purpose: str = ""

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        try:
            return check_ip(value)
        except ValueError:
            return normalise_fqdn(value, wildcard=False)

    @model_validator(mode="after")
    def _consistent(self) -> Canary:
        wanted = "udp" if self.kind in _UDP_KINDS else "tcp"
        if self.protocol is not None and self.protocol != wanted:
            raise ValueError(f"kind {self.kind} runs over {wanted}, not {self.protocol}")
        if self.dns_query_name is not None:
            if self.kind != "dns":
                raise ValueError("dns_query_name goes only with kind dns")
            normalise_fqdn(self.dns_query_name, wildcard=False)
        return self

    @property
    def transport(self) -> Literal["tcp", "udp"]:
        return "udp" if self.kind in _UDP_KINDS else "tcp"

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.destination)
        except ValueError:
            return False
        return True


class Publication(_Frozen):
    """Publish an internal LoadBalancer Service on the firewall public IP through DNAT."""

    name: str = Field(pattern=_K8S_NAME)
    namespace: str = Field(default="default", pattern=_K8S_NAME)
    protocol: Literal["TCP", "UDP"] = "TCP"
    firewall_port: int = Field(ge=1, le=65535)
    internal_ip: str
    port: int = Field(ge=1, le=65535)
    target_port: int | None = Field(default=None, ge=1, le=65535)
    selector: dict[str, str] = Field(min_length=1)
    subnet: str | None = None
    source_addresses: tuple[str, ...] = ("*",)

    @field_validator("protocol", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("internal_ip")
    @classmethod
    def _private(cls, value: str) -> str:
        value = check_ip(value)
        if not ipaddress.ip_address(value).is_private:
            raise ValueError(f"'{value}' must be a private address of the internal load balancer")
        return value

    @field_validator("source_addresses")
    @classmethod
    def _sources(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v if v == "*" else check_cidr(v) for v in values)


class GroupSettings(_Frozen):
    """Name and priority of one rule collection group egress manages."""

    name: str | None = Field(default=None, pattern=_NAME, max_length=80)
    priority: int = Field(ge=100, le=65000)


class RuleCollectionGroups(_Frozen):
    aks: GroupSettings = GroupSettings(priority=400)  # catalog rules
    user: GroupSettings = GroupSettings(priority=500)  # allow entries and DNAT


class RouteTableSettings(_Frozen):
    name: str | None = Field(default=None, pattern=_NAME, max_length=80)
    resource_group: str | None = None


class Azure(_Frozen):
    subscription_id: str | None = Field(default=None, pattern=GUID_PATTERN)
    resource_group: str | None = None
    firewall_policy: str | None = None
    route_table: RouteTableSettings = RouteTableSettings()
    subnet_ids: tuple[str, ...] = ()

    @field_validator("subnet_ids")
    @classmethod
    def _subnet_ids(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if "/subnets/" not in value or not value.startswith("/subscriptions/"):
                raise ValueError(
                    f"'{value}' is not a subnet resource id (/subscriptions/.../subnets/x)"
                )
        return values


class Policy(_Frozen):
    """The whole user policy file; every field is optional."""

    schema_version: Literal[1] = POLICY_SCHEMA_VERSION
    cluster: Cluster = Cluster()
    firewall: Firewall = Firewall()
    features: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # catalog entry ids ("required/ntp" or "ntp") to leave out
    fqdn_mode: Literal["explicit", "tag"] = "explicit"
    allow: tuple[Allow, ...] = ()
    canaries: tuple[Canary, ...] = ()  # added to the defaults; the same name replaces one
    default_canaries: bool = True
    workloads: tuple[Workload, ...] = ()  # Kubernetes selectors that allow entries name
    dnat: tuple[Publication, ...] = ()
    probe_hosts: dict[str, str] = {}  # catalog entry id -> concrete host for a wildcard
    rule_collection_groups: RuleCollectionGroups = RuleCollectionGroups()
    managed_prefix: str = Field(default="egress", pattern=r"^[a-z][a-z0-9-]{0,19}$")
    azure: Azure = Azure()

    @field_validator("probe_hosts")
    @classmethod
    def _probe_hosts(cls, hosts: dict[str, str]) -> dict[str, str]:
        return {key: normalise_fqdn(host, wildcard=False) for key, host in hosts.items()}

    @model_validator(mode="after")
    def _unique(self) -> Policy:
        names = Counter(a.name for a in self.allow if a.name)
        dupes = sorted(n for n, c in names.items() if c > 1)
        if dupes:
            raise ValueError(f"allow has duplicate names: {', '.join(dupes)}; rename one")
        canaries = Counter(c.name for c in self.canaries)
        dupes = sorted(n for n, c in canaries.items() if c > 1)
        if dupes:
            raise ValueError(f"canaries has duplicate names: {', '.join(dupes)}; rename one")
        dnat = Counter(p.name for p in self.dnat)
        dupes = sorted(n for n, c in dnat.items() if c > 1)
        if dupes:
            raise ValueError(f"dnat has duplicate names: {', '.join(dupes)}; rename one")
        ports = Counter((p.protocol, p.firewall_port) for p in self.dnat)
        clashes = sorted(f"{proto}/{port}" for (proto, port), c in ports.items() if c > 1)
        if clashes:
            raise ValueError(
                f"dnat uses firewall port {', '.join(clashes)} more than once; give each "
                "publication its own firewall_port"
            )
        if self.dnat and self.firewall.public_ip is None:
            raise ValueError("dnat needs firewall.public_ip (the address clients connect to)")
        check_workload_references(self.workloads, self.allow)
        return self
