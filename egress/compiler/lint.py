"""Preflight lint: AKS address rules, firewall addresses, group settings; runs before compile."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from egress.compiler.findings import Finding, LintReport, Severity
from egress.compiler.findings import err as _err
from egress.compiler.findings import warn as _warn
from egress.compiler.lint_rules import lint_compiled
from egress.errors import CompileError
from egress.policy import Policy

if TYPE_CHECKING:
    from egress.compiler import CompileRequest

__all__ = ["Finding", "LintReport", "Severity", "lint", "lint_compiled", "lint_policy"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RESERVED = tuple(
    ipaddress.ip_network(c)
    for c in ("169.254.0.0/16", "172.30.0.0/16", "172.31.0.0/16", "192.0.2.0/24")
)


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


def raise_on_errors(
    findings: list[Finding], *, origin: str, also: str | None = None
) -> tuple[str, ...]:
    """Raise one CompileError listing every error (plus `also`); return the warnings as text."""
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        listing = "; ".join(str(f) for f in errors)
        extra = f" Also: {also}" if also else ""
        raise CompileError(f"{origin}: {len(errors)} lint error(s): {listing}.{extra}")
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
