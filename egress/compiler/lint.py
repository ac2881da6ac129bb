"""Preflight lint: AKS address rules, firewall addresses, shadowed rules and Azure limits."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from egress.catalog.names import wildcard_covers
from egress.compiler.layout import MAX_NAME, estimate_size
from egress.errors import CompileError
from egress.model import ApplicationRule, CompiledPolicy, NatRule, NetworkRule
from egress.policy import Policy

if TYPE_CHECKING:
    from egress.compiler import CompileRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RESERVED = tuple(
    ipaddress.ip_network(c)
    for c in ("169.254.0.0/16", "172.30.0.0/16", "172.31.0.0/16", "192.0.2.0/24")
)
RCG_SIZE_LIMIT = 2 * 1024 * 1024
MAX_NETWORK_FQDNS = 1000
MAX_DNAT_DESTINATIONS = 250
MAX_NETWORK_PAIRS = 20_000
PRIORITY_RANGE = (100, 65000)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class LintReport:
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)


def _err(code: str, message: str) -> Finding:
    return Finding(Severity.ERROR, code, message)


def _warn(code: str, message: str) -> Finding:
    return Finding(Severity.WARNING, code, message)


def lint(target: Policy | CompileRequest) -> LintReport:
    """Lint a policy alone, or a whole compile request (policy plus the compiled rules)."""
    from egress.compiler import CompileRequest, compile_policy
    from egress.policy import load_policy

    if isinstance(target, Policy):
        return LintReport(tuple(lint_policy(target)))
    assert isinstance(target, CompileRequest)
    policy = load_policy(target.policy_path) if target.policy_path else Policy()
    findings = lint_policy(policy)
    findings += lint_compiled(compile_policy(target, policy))
    return LintReport(tuple(findings))


def raise_on_errors(findings: list[Finding], *, origin: str) -> tuple[str, ...]:
    """Raise one CompileError listing every error; return the warnings as text."""
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        listing = "; ".join(str(f) for f in errors)
        raise CompileError(f"{origin}: {len(errors)} lint error(s): {listing}.")
    return tuple(f"lint {f}" for f in findings if f.severity is Severity.WARNING)


def lint_policy(policy: Policy) -> list[Finding]:
    """Checks on the policy's facts alone (AKS address plan, firewall IPs, group settings)."""
    return [*_address_plan(policy), *_firewall(policy), *_groups(policy)]


def _address_plan(policy: Policy) -> list[Finding]:
    cluster, out = policy.cluster, []
    ranges: list[tuple[str, Network]] = []
    if cluster.service_cidr:
        ranges.append(("cluster.service_cidr", ipaddress.ip_network(cluster.service_cidr)))
    if cluster.pod_cidr:
        ranges.append(("cluster.pod_cidr", ipaddress.ip_network(cluster.pod_cidr)))
    ranges += [
        (f"cluster.node_subnets[{i}]", ipaddress.ip_network(c))
        for i, c in enumerate(cluster.node_subnets)
    ]
    ranges += [
        (f"cluster.pod_subnets[{i}]", ipaddress.ip_network(c))
        for i, c in enumerate(cluster.pod_subnets)
    ]
    for field, net in ranges:
        for reserved in RESERVED:
            if net.version == reserved.version and net.overlaps(reserved):
                out.append(
                    _err(
                        "AKS001",
                        f"{field} {net} overlaps the AKS reserved range {reserved}; pick a range "
                        "outside 169.254.0.0/16, 172.30.0.0/16, 172.31.0.0/16 and 192.0.2.0/24",
                    )
                )
    for i, (field_a, a) in enumerate(ranges):
        for field_b, b in ranges[i + 1 :]:
            if a.version == b.version and a.overlaps(b):
                out.append(
                    _err(
                        "AKS003",
                        f"{field_a} {a} overlaps {field_b} {b}; the service CIDR, pod CIDR "
                        "and node subnets must not overlap",
                    )
                )
    if cluster.service_cidr:
        service = ipaddress.ip_network(cluster.service_cidr)
        if service.version == 4 and service.prefixlen <= 12:
            out.append(
                _err(
                    "AKS002",
                    f"cluster.service_cidr {service} is too large; it must be smaller than "
                    "/12 (for example 10.0.0.0/16)",
                )
            )
        if cluster.dns_service_ip:
            dns = ipaddress.ip_address(cluster.dns_service_ip)
            if dns not in service:
                out.append(
                    _err(
                        "AKS004",
                        f"cluster.dns_service_ip {dns} is outside cluster.service_cidr "
                        f"{service}; use an address inside it such as "
                        f"{service.network_address + 10}",
                    )
                )
            elif dns in (service.network_address, service.network_address + 1):
                out.append(
                    _err(
                        "AKS005",
                        f"cluster.dns_service_ip {dns} is the first address of {service} "
                        f"(used by kubernetes.default); use {service.network_address + 10}",
                    )
                )
    elif cluster.dns_service_ip:
        out.append(
            _warn(
                "AKS006",
                "cluster.dns_service_ip is set without cluster.service_cidr; "
                "add service_cidr so it can be checked",
            )
        )
    return out


def _firewall(policy: Policy) -> list[Finding]:
    out = []
    fw = policy.firewall
    if fw.private_ip and not ipaddress.ip_address(fw.private_ip).is_private:
        out.append(
            _err(
                "FW001",
                f"firewall.private_ip {fw.private_ip} is not a private address; "
                "use the firewall's private IP in AzureFirewallSubnet",
            )
        )
    if fw.public_ip and not ipaddress.ip_address(fw.public_ip).is_global:
        out.append(
            _err(
                "FW002",
                f"firewall.public_ip {fw.public_ip} is not a public address; "
                "use the address of the firewall's public IP resource",
            )
        )
    if fw.private_ip:
        ip = ipaddress.ip_address(fw.private_ip)
        for cidr in policy.cluster.node_subnets:
            if ip in ipaddress.ip_network(cidr):
                out.append(
                    _err(
                        "FW003",
                        f"firewall.private_ip {ip} is inside node subnet {cidr}; "
                        "the firewall lives in AzureFirewallSubnet, not the AKS subnet",
                    )
                )
    for index, allow in enumerate(policy.allow):
        if allow.cidr and ipaddress.ip_network(allow.cidr).prefixlen == 0:
            out.append(
                _warn(
                    "ALW001",
                    f"allow[{index}] opens {allow.cidr} to every address; "
                    "narrow it to the service's range",
                )
            )
    return out


def _groups(policy: Policy) -> list[Finding]:
    out = []
    groups = policy.rule_collection_groups
    prefix = policy.managed_prefix
    aks_name = groups.aks.name or f"{prefix}-aks"
    user_name = groups.user.name or f"{prefix}-user"
    if groups.aks.priority == groups.user.priority:
        out.append(
            _err(
                "RCG001",
                f"rule_collection_groups.aks and .user both use priority "
                f"{groups.aks.priority}; give each group its own priority",
            )
        )
    if aks_name == user_name:
        out.append(
            _err(
                "RCG002",
                f"rule_collection_groups.aks and .user are both named "
                f"'{aks_name}'; give each group its own name",
            )
        )
    for field, name in (("aks", aks_name), ("user", user_name)):
        if not name.startswith(f"{prefix}-"):
            out.append(
                _err(
                    "RCG003",
                    f"rule_collection_groups.{field}.name '{name}' does not start "
                    f"with the managed prefix '{prefix}-'; egress only manages groups it "
                    "owns, so rename it",
                )
            )
    return out


def lint_compiled(compiled: CompiledPolicy) -> list[Finding]:
    """Checks on the compiled rules: Azure limits, clashes and shadowed rules."""
    out: list[Finding] = []
    groups = compiled.rule_collection_groups
    for group_a, count in Counter(g.priority for g in groups).items():
        if count > 1:
            names = ", ".join(g.name for g in groups if g.priority == group_a)
            out.append(
                _err(
                    "RCG001",
                    f"rule collection groups {names} share priority {group_a}; "
                    "space the group priorities further apart",
                )
            )
    for name, count in Counter(g.name for g in groups).items():
        if count > 1:
            out.append(_err("RCG002", f"rule collection group name {name} is used {count} times"))
    lo, hi = PRIORITY_RANGE
    for group in groups:
        if not lo <= group.priority <= hi:
            out.append(
                _err(
                    "LIM001",
                    f"group {group.name} priority {group.priority} is outside "
                    f"{lo}-{hi}; lower the configured priority",
                )
            )
        size = sum(estimate_size(r) for c in group.collections for r in c.rules)
        if size > RCG_SIZE_LIMIT:
            out.append(
                _err(
                    "LIM005",
                    f"group {group.name} is about {size} bytes, over Azure's "
                    "2 MB limit per rule collection group; split the allow list",
                )
            )
        for collection in group.collections:
            for name in [collection.name] + [r.name for r in collection.rules]:
                if len(name) > MAX_NAME:
                    out.append(
                        _err(
                            "LIM002",
                            f"name '{name[:40]}...' in {group.name} is longer "
                            f"than {MAX_NAME} characters; shorten it",
                        )
                    )
    rules = compiled.all_rules()
    network_fqdns = {f for r in rules if isinstance(r, NetworkRule) for f in r.destination_fqdns}
    if len(network_fqdns) > MAX_NETWORK_FQDNS:
        out.append(
            _err(
                "LIM003",
                f"{len(network_fqdns)} FQDNs in network rules exceed Azure's "
                f"{MAX_NETWORK_FQDNS} per firewall; use http/https ports so they become "
                "application rules, or cidr entries",
            )
        )
    nat = [r for r in rules if isinstance(r, NatRule)]
    dnat_destinations = {(r.destination_address, r.destination_port, r.ip_protocols) for r in nat}
    public_ips = {r.destination_address for r in nat}
    if len(dnat_destinations) + len(public_ips) > MAX_DNAT_DESTINATIONS:
        out.append(
            _err(
                "LIM004",
                f"{len(dnat_destinations)} DNAT destinations plus "
                f"{len(public_ips)} public IPs exceed Azure's {MAX_DNAT_DESTINATIONS}; "
                "publish fewer services",
            )
        )
    pairs = sum(
        max(1, len(r.sources.addresses) + len(r.sources.ip_groups))
        * max(1, len(r.destination_addresses) + len(r.destination_fqdns))
        for r in rules
        if isinstance(r, NetworkRule)
    )
    if pairs > MAX_NETWORK_PAIRS:
        out.append(
            _err(
                "LIM006",
                f"network rules hold {pairs} source/destination pairs, over "
                f"Azure's {MAX_NETWORK_PAIRS}; use an IP group for the sources",
            )
        )
    if compiled.cloud.value != "AzureCloud" and any(
        isinstance(r, ApplicationRule) and r.fqdn_tags for r in rules
    ):
        out.append(
            _warn(
                "TAG001",
                f"fqdn_mode tag uses the AzureKubernetesService FQDN tag, which the Azure "
                f"Firewall docs describe for the public cloud; check it exists in "
                f"{compiled.cloud.value} or use fqdn_mode explicit",
            )
        )
    out += _shadowed(compiled)
    return out


def _shadowed(compiled: CompiledPolicy) -> list[Finding]:
    """User allowances that a catalog rule (or a broader allowance) already covers."""
    out = []
    catalog_app: dict[tuple[str, int], set[str]] = {}
    user_app: list[tuple[str, str, int, str]] = []
    for group in compiled.rule_collection_groups:
        for collection in group.collections:
            user = collection.name.startswith("allow-")
            for rule in collection.rules:
                if not isinstance(rule, ApplicationRule):
                    continue
                for app_proto in rule.protocols:
                    key = (app_proto.protocol_type.value, app_proto.port)
                    for fqdn in rule.target_fqdns:
                        if user:
                            user_app.append(
                                (fqdn, *key, f"{group.name}/{collection.name}/{rule.name}")
                            )
                        else:
                            catalog_app.setdefault(key, set()).add(fqdn)
    for fqdn, proto, port, where in user_app:
        existing = _covering(fqdn, catalog_app.get((proto, port), set()))
        if existing:
            out.append(
                _warn(
                    "SHD001",
                    f"{where}: {fqdn} on {proto}:{port} is already allowed "
                    f"by the AKS catalog rule for {existing}; remove the allowance",
                )
            )
    return out + _shadowed_addresses(compiled)


def _covering(fqdn: str, allowed: set[str]) -> str | None:
    """The allowed name or broadest wildcard that admits fqdn (never the apex), if any."""
    if fqdn in allowed:
        return fqdn
    labels = fqdn.split(".")
    for index in range(len(labels) - 1, 0, -1):  # broadest wildcard first
        candidate = "*." + ".".join(labels[index:])
        if candidate in allowed and wildcard_covers(candidate, fqdn):
            return candidate
    return None


def _shadowed_addresses(compiled: CompiledPolicy) -> list[Finding]:
    """Network destinations (CIDRs) contained in a broader one on the same protocol and port."""
    seen: dict[tuple[str, str], list[tuple[Network, str]]] = {}
    for group in compiled.rule_collection_groups:
        for collection in group.collections:
            for rule in collection.rules:
                if not isinstance(rule, NetworkRule):
                    continue
                where = f"{group.name}/{collection.name}/{rule.name}"
                for ip_proto in rule.ip_protocols:
                    for ports in rule.destination_ports:
                        for address in rule.destination_addresses:
                            try:
                                net = ipaddress.ip_network(address)
                            except ValueError:
                                continue  # a service tag
                            seen.setdefault((ip_proto.value, ports), []).append((net, where))
    out = []
    for (proto, ports), nets in sorted(seen.items()):
        for net, where in nets:
            wider = [
                (other, w)
                for other, w in nets
                if other != net and other.version == net.version and net.subnet_of(other)  # type: ignore[arg-type]
            ]
            if wider:
                other, other_where = min(wider, key=lambda item: item[0].prefixlen)
                out.append(
                    _warn(
                        "SHD002",
                        f"{where}: {net} on {proto}/{ports} is inside {other} already allowed by "
                        f"{other_where}; remove the narrower entry",
                    )
                )
    return out
