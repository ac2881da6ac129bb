"""Lint of the compiled rules: Azure Firewall limits, group clashes and shadowed rules."""

from __future__ import annotations

import ipaddress
from collections import Counter

from egress.catalog.names import wildcard_covers
from egress.compiler.findings import Finding
from egress.compiler.findings import err as _err
from egress.compiler.findings import warn as _warn
from egress.model import ApplicationRule, CompiledPolicy, NatRule, NetworkRule
from egress.targets.azure_layout import MAX_NAME, estimate_size

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RCG_SIZE_LIMIT = 2 * 1024 * 1024
MAX_NETWORK_FQDNS = 1000
MAX_DNAT_DESTINATIONS = 250
MAX_NETWORK_PAIRS = 20_000
PRIORITY_RANGE = (100, 65000)
MAX_GROUPS_SAFE = 50  # the lowest documented limit (policies created before July 2022)


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
    if len(groups) > MAX_GROUPS_SAFE:
        out.append(
            _warn(
                "LIM007",
                f"{len(groups)} rule collection groups: firewall policies created before July "
                f"2022 allow only {MAX_GROUPS_SAFE} in total; move allowances to IP groups or "
                "fewer, broader entries",
            )
        )
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
