"""Deny canaries: the defaults (each one Azure Firewall can be shown to block) and the policy's."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from egress.catalog.names import wildcard_covers
from egress.compiler.intents import Intent
from egress.errors import UsageError
from egress.model import ApplicationRule, NetworkRule, RuleCollectionGroup
from egress.policy import Policy
from egress.policy.schema import Canary
from egress.probe_plan import (
    DEFAULT_APPLICATION_PORTS,
    Check,
    CheckKind,
    Expectation,
    FirewallProfile,
)

# Deny canaries: public names and addresses that no AKS rule allows, each chosen so that Azure
# Firewall can be shown to block it. They are plan data, contacted only by the in-cluster probe
# through the firewall.
UNLISTED_FQDNS = ("example.org", "example.net", "neverssl.com")
# Public resolvers that also answer DNS-over-TLS on TCP 853: a silent drop there is the path's.
DIRECT_IPS = ("1.1.1.1", "9.9.9.9", "8.8.8.8")
DIRECT_IP_PORT = 853
OUTSIDE_RESOLVERS = ("8.8.8.8", "1.1.1.1", "9.9.9.9")
WRONG_PORTS = (8443, 8080, 9443, 10443, 2083)
SSH_HOST = "github.com"
DEFAULT_QUERY_NAME = "mcr.microsoft.com"


def check_id(text: str) -> str:
    return re.sub(r"[^a-z0-9._:/-]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class RuleFacts:
    """What the compiled rules allow, as far as choosing and checking canaries needs."""

    app_ports_by_fqdn: dict[str, frozenset[int]]  # target FQDN (or wildcard) -> its ports
    application_ports: frozenset[int]  # where the proxy listens: app-rule ports + defaults
    used_ports: frozenset[int]  # every port any rule names
    cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    network_ports_by_cidr: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]

    @classmethod
    def of(
        cls, groups: tuple[RuleCollectionGroup, ...], tag_covered: tuple[Intent, ...] = ()
    ) -> RuleFacts:
        by_fqdn: dict[str, set[int]] = {}
        for intent in tag_covered:  # allowed through the FQDN tag's rule, on their own ports
            lo, _, hi = intent.ports.partition("-")
            by_fqdn.setdefault(intent.destination, set()).update(range(int(lo), int(hi or lo) + 1))
        app_ports: set[int] = set(DEFAULT_APPLICATION_PORTS)
        used: set[int] = set()
        cidrs: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
        for rule in (r for g in groups for c in g.collections for r in c.rules):
            if isinstance(rule, ApplicationRule):
                ports = {p.port for p in rule.protocols}
                app_ports |= ports
                used |= ports
                for fqdn in rule.target_fqdns:
                    by_fqdn.setdefault(fqdn, set()).update(ports)
            elif isinstance(rule, NetworkRule):
                for spec in rule.destination_ports:
                    lo, _, hi = spec.partition("-")
                    if int(hi or lo) - int(lo) < 70000:
                        used |= set(range(int(lo), int(hi or lo) + 1))
                for address in rule.destination_addresses:
                    try:
                        network = ipaddress.ip_network(address)
                    except ValueError:
                        continue  # a service tag
                    cidrs.extend((network, spec) for spec in rule.destination_ports)
        return cls(
            app_ports_by_fqdn={k: frozenset(v) for k, v in by_fqdn.items()},
            application_ports=frozenset(app_ports),
            used_ports=frozenset(used),
            cidrs=tuple(dict.fromkeys(n for n, _ in cidrs)),
            network_ports_by_cidr=tuple(cidrs),
        )

    def fqdn_ports(self, name: str) -> frozenset[int] | None:
        """The app-rule ports that allow `name`, or None when no application rule names it."""
        found = [
            ports
            for target, ports in self.app_ports_by_fqdn.items()
            if target == name or (target.startswith("*.") and wildcard_covers(target, name))
        ]
        return frozenset().union(*found) if found else None

    def routed(self, ip: str) -> bool:
        return any(ipaddress.ip_address(ip) in net for net in self.cidrs)

    def allows_ip_port(self, ip: str, port: int) -> bool:
        for network, spec in self.network_ports_by_cidr:
            lo, _, hi = spec.partition("-")
            if ipaddress.ip_address(ip) in network and int(lo) <= port <= int(hi or lo):
                return True
        return False


def _deny(
    name: str,
    host: str,
    port: int,
    kind: CheckKind,
    purpose: str,
    *,
    canary_server: bool = False,
    dns_query_name: str | None = None,
) -> Check:
    return Check(
        id=check_id(f"canary/{name}"),
        host=host,
        port=port,
        transport="udp" if kind in (CheckKind.DNS, CheckKind.NTP) else "tcp",
        kind=kind,
        expectation=Expectation.DENY,
        destination=host,
        rule=f"canary/{name}",
        feature="canary",
        required=True,
        purpose=purpose,
        canary_server=canary_server,
        dns_query_name=dns_query_name if kind is CheckKind.DNS else None,
    )


def canaries(rules: RuleFacts, policy: Policy) -> list[Check]:
    """The default canaries (each provable on Azure Firewall) and the policy's own."""
    out = {c.id: c for c in _default_canaries(rules, policy)} if policy.default_canaries else {}
    for canary in policy.canaries:
        check = _declared(canary, rules, FirewallProfile(policy.firewall.profile))
        out[check.id] = check  # a declared canary replaces the default of the same name
    return list(out.values())


def _default_canaries(rules: RuleFacts, policy: Policy) -> list[Check]:
    out = []
    unlisted = next((n for n in UNLISTED_FQDNS if rules.fqdn_ports(n) is None), None)
    if unlisted:  # 470 (stated) on HTTP; a cut after the ClientHello (signature) on HTTPS
        out.append(
            _deny("unlisted-fqdn-http", unlisted, 80, CheckKind.HTTP, "default deny for HTTP")
        )
        out.append(
            _deny("unlisted-fqdn-https", unlisted, 443, CheckKind.HTTPS, "default deny for HTTPS")
        )
    direct = next((ip for ip in DIRECT_IPS if not rules.routed(ip)), None)
    if direct and DIRECT_IP_PORT not in rules.application_ports:
        out.append(
            _deny(
                "direct-ip",
                direct,
                DIRECT_IP_PORT,
                CheckKind.TCP,
                "no egress to a bare public IP on a network-rule port (it answers TCP 853)",
                canary_server=True,  # a public DNS-over-TLS service: up whenever reachable
            )
        )
    plain = sorted(t for t in rules.app_ports_by_fqdn if not t.startswith("*."))
    allowed = DEFAULT_QUERY_NAME if DEFAULT_QUERY_NAME in plain else next(iter(plain), None)
    wrong_port = _wrong_port(allowed, rules) if allowed else None
    if wrong_port is not None:
        out.append(wrong_port)
    custom = set(policy.cluster.custom_dns_servers)
    resolver = next(
        (ip for ip in OUTSIDE_RESOLVERS if ip not in custom and not rules.routed(ip)), None
    )
    if resolver:
        out.append(
            _deny(
                "dns-outside-resolver",
                resolver,
                53,
                CheckKind.DNS,
                "no DNS to resolvers outside the VNet (exfiltration)",
                canary_server=True,  # a public resolver: answers whenever reachable
                dns_query_name=allowed or DEFAULT_QUERY_NAME,
            )
        )
    out.append(_deny("ssh", SSH_HOST, 22, CheckKind.TCP, "no outbound SSH", canary_server=True))
    return out


def _wrong_port(allowed: str, rules: RuleFacts) -> Check | None:
    """An allowed name on a port its rules do not allow: HTTP 80 (a 470) where it is free."""
    purpose = "an allowed name on a port no rule allows"
    if 80 not in (rules.fqdn_ports(allowed) or frozenset()):
        return _deny("allowed-fqdn-wrong-port", allowed, 80, CheckKind.HTTP, purpose)
    # Any other port is a network-rule port, where a denied flow is dropped silently and the
    # allowed name's service does not answer: such a canary could never be shown blocked.
    return None


def _declared(canary: Canary, rules: RuleFacts, profile: FirewallProfile) -> Check:
    """A policy canary; refused when the rules allow it or it can never be shown blocked."""
    kind = CheckKind(canary.kind)
    where = f"policy canaries entry '{canary.name}' ({canary.destination}:{canary.port})"
    proxied = canary.transport == "tcp" and canary.port in rules.application_ports
    if canary.is_ip and proxied and kind in (CheckKind.HTTPS, CheckKind.TLS):
        raise UsageError(
            f"{where}: TLS to a bare IP sends no SNI, so the firewall's proxy can never be shown "
            "to deny it; use an FQDN, or kind tcp on a network-rule port"
        )
    if canary.is_ip:
        allowed = rules.allows_ip_port(canary.destination, canary.port)
    else:
        allowed = canary.port in (rules.fqdn_ports(canary.destination) or frozenset())
    if allowed:
        raise UsageError(
            f"{where}: the compiled rules allow this destination and port, so it cannot be a "
            "canary; pick a destination and port no rule allows"
        )
    if not proxied and not canary.canary_server and profile is FirewallProfile.AZURE_FIREWALL:
        raise UsageError(
            f"{where}: Azure Firewall drops a denied flow on a network-rule port silently, so "
            "this canary could never be shown blocked; add canary_server: true if the "
            "destination answers on that port whenever it is let through, or use an FQDN "
            "over HTTP 80 or HTTPS 443"
        )
    return _deny(
        canary.name,
        canary.destination,
        canary.port,
        kind,
        canary.purpose or "declared in the policy",
        canary_server=canary.canary_server,
        dns_query_name=canary.dns_query_name or DEFAULT_QUERY_NAME,
    )
