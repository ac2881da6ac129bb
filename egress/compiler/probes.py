"""Derive the probe plan from the compiled rules: one check per endpoint plus deny canaries."""

from __future__ import annotations

import ipaddress
import re

from egress import __version__
from egress.catalog.names import wildcard_covers
from egress.catalog.schema import PROBE_API_SERVER, UNVERIFIABLE_PREFIX
from egress.compiler.intents import Intent
from egress.compiler.layout import IntentKey
from egress.model import ApplicationRule, NetworkRule, RuleCollectionGroup
from egress.policy import Policy
from egress.probe_plan import Check, CheckKind, Expectation, HostSource, ProbePlan

# Deny canaries: public names and addresses that no AKS rule allows. They are plan data,
# contacted only by the in-cluster probe through the firewall.
UNLISTED_FQDNS = ("example.org", "example.net", "neverssl.com")
DIRECT_IPS = ("1.1.1.1", "9.9.9.9", "208.67.222.222")
OUTSIDE_RESOLVERS = ("8.8.8.8", "1.1.1.1", "9.9.9.9")
WRONG_PORTS = (8443, 8080, 9443, 10443, 2083)
SSH_HOST = "github.com"


def _check_id(text: str) -> str:
    return re.sub(r"[^a-z0-9._:/-]+", "-", text.lower()).strip("-")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def build_probe_plan(
    *,
    cloud: str,
    region: str,
    first: dict[IntentKey, Intent],
    covered: tuple[Intent, ...],
    rule_of: dict[IntentKey, str],
    groups: tuple[RuleCollectionGroup, ...],
    policy: Policy,
) -> ProbePlan:
    checks: dict[str, Check] = {}
    seen: set[tuple[str, str, int, str]] = set()
    tag_path = next(
        (rule_of[k] for k, intent in first.items() if intent.dest_kind == "fqdn_tag"), ""
    )
    probed = [(intent, rule_of[key]) for key, intent in first.items() if key in rule_of]
    probed += [(intent, tag_path) for intent in covered]
    for intent, rule in probed:
        check = _allow_check(intent, rule)
        if check is None:
            continue
        endpoint = (
            check.host_source.value + ":" + check.host,
            check.transport,
            check.port,
            check.kind.value,
        )
        if endpoint in seen or check.id in checks:
            continue
        seen.add(endpoint)
        checks[check.id] = check
    allowed = sorted({i.destination for i, _ in probed if i.dest_kind in ("fqdn", "wildcard_fqdn")})
    for check in _canaries(allowed, groups, policy):
        checks[check.id] = check
    ordered = sorted(
        checks.values(),
        key=lambda c: (c.expectation is Expectation.DENY, c.feature != "required", c.id),
    )
    return ProbePlan(
        cloud=cloud, region=region, generated_by=f"egress {__version__}", checks=tuple(ordered)
    )


def _label(entry_id: str) -> str:
    """Check-id stem: the catalog id, or the allowance's name so reordering keeps ids stable."""
    stem, _, name = entry_id.partition(" ")
    return f"policy/{name}" if name else stem.replace("[", "-").replace("]", "")


def _allow_check(intent: Intent, rule: str) -> Check | None:
    if intent.dest_kind == "fqdn_tag":
        return None  # the covered explicit entries are probed instead
    prov = intent.provenance
    port = int(intent.ports.partition("-")[0])
    transport = "udp" if intent.protocol == "udp" else "tcp"
    base = {
        "id": _check_id(f"{_label(prov.entry_id)}/{intent.protocol}-{port}"),
        "port": port,
        "transport": transport,
        "expectation": Expectation.ALLOW,
        "destination": intent.destination,
        "rule": rule,
        "feature": prov.feature,
        "required": prov.feature == "required",
        "purpose": prov.purpose,
    }
    hint = intent.probe
    if hint and hint.startswith(UNVERIFIABLE_PREFIX):
        return _unverifiable(base, intent.destination, hint[len(UNVERIFIABLE_PREFIX) :].strip())
    if hint == PROBE_API_SERVER:
        kind = _kind(intent.protocol, port)
        if kind is CheckKind.UNVERIFIABLE:
            return _unverifiable(base, intent.destination, "UDP has no request/response to prove")
        return Check(host=intent.destination, host_source=HostSource.API_SERVER, kind=kind, **base)
    host = hint
    if host is None:
        if intent.dest_kind == "fqdn" or (
            intent.dest_kind == "address" and _is_ip(intent.destination)
        ):
            host = intent.destination
        else:
            why = (
                "a wildcard has no concrete host"
                if intent.dest_kind == "wildcard_fqdn"
                else "a service tag or CIDR names no single host"
            )
            return _unverifiable(base, intent.destination, f"{why}; set probe_host or probe_hosts")
    kind = _kind(intent.protocol, port)
    if kind is CheckKind.UNVERIFIABLE:
        return _unverifiable(
            base, intent.destination, f"UDP {port} has no request/response to prove"
        )
    extra = {"dns_query_name": "mcr.microsoft.com"} if kind is CheckKind.DNS else {}
    return Check(host=host, kind=kind, **base, **extra)


def _unverifiable(base: dict[str, object], destination: str, reason: str) -> Check:
    host = destination if len(destination) <= 253 else destination[:253]
    return Check.model_validate(
        {**base, "host": host, "kind": CheckKind.UNVERIFIABLE, "unverifiable_reason": reason}
    )


def _kind(protocol: str, port: int) -> CheckKind:
    if protocol == "https":
        return CheckKind.HTTPS
    if protocol == "http":
        return CheckKind.HTTP
    if protocol == "tcp":
        return CheckKind.TLS if port == 443 else CheckKind.TCP
    if port == 123:
        return CheckKind.NTP
    if port == 53:
        return CheckKind.DNS
    return CheckKind.UNVERIFIABLE


def _canaries(
    allowed: list[str], groups: tuple[RuleCollectionGroup, ...], policy: Policy
) -> list[Check]:
    rules = [r for g in groups for c in g.collections for r in c.rules]
    used_ports: set[int] = set()
    cidrs = []
    for rule in rules:
        if isinstance(rule, ApplicationRule):
            used_ports |= {p.port for p in rule.protocols}
        elif isinstance(rule, NetworkRule):
            for ports in rule.destination_ports:
                lo, _, hi = ports.partition("-")
                used_ports |= (
                    set(range(int(lo), int(hi or lo) + 1))
                    if int(hi or lo) - int(lo) < 70000
                    else set()
                )
            for address in rule.destination_addresses:
                try:
                    cidrs.append(ipaddress.ip_network(address))
                except ValueError:
                    continue  # a service tag

    def listed(name: str) -> bool:
        return any(a == name or (a.startswith("*.") and wildcard_covers(a, name)) for a in allowed)

    def routed(ip: str) -> bool:
        return any(ipaddress.ip_address(ip) in net for net in cidrs)

    def deny(name: str, host: str, port: int, kind: CheckKind, purpose: str, **extra: str) -> Check:
        return Check(
            id=f"canary/{name}",
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
            **extra,
        )

    out = []
    unlisted = next((n for n in UNLISTED_FQDNS if not listed(n)), None)
    if unlisted:
        out.append(
            deny("unlisted-fqdn-https", unlisted, 443, CheckKind.HTTPS, "default deny for HTTPS")
        )
        out.append(
            deny("unlisted-fqdn-http", unlisted, 80, CheckKind.HTTP, "default deny for HTTP")
        )
    direct = next((ip for ip in DIRECT_IPS if not routed(ip)), None)
    if direct:
        out.append(
            deny("direct-ip-https", direct, 443, CheckKind.HTTPS, "no egress to a bare public IP")
        )
    plain = [a for a in allowed if not a.startswith("*.")]
    allowed_fqdn = "mcr.microsoft.com" if "mcr.microsoft.com" in plain else next(iter(plain), None)
    wrong = next((p for p in WRONG_PORTS if p not in used_ports), None)
    if allowed_fqdn and wrong:
        out.append(
            deny(
                "allowed-fqdn-wrong-port",
                allowed_fqdn,
                wrong,
                CheckKind.TCP,
                "an allowed name on a port no rule allows",
            )
        )
    custom = set(policy.cluster.custom_dns_servers)
    resolver = next((ip for ip in OUTSIDE_RESOLVERS if ip not in custom and not routed(ip)), None)
    if resolver:
        out.append(
            deny(
                "dns-outside-resolver",
                resolver,
                53,
                CheckKind.DNS,
                "no DNS to resolvers outside the VNet (exfiltration)",
                dns_query_name=allowed_fqdn or "mcr.microsoft.com",
            )
        )
    out.append(deny("ssh", SSH_HOST, 22, CheckKind.TCP, "no outbound SSH"))
    return out
