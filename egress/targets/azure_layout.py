"""The Azure layout: pack allowances into as few rules, collections and groups as Azure allows.

Only the Azure targets (and the Azure-facing compiler steps: lint limits, rule hints in the
probe plan) need this; other targets read the allowances directly.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from egress.catalog.names import wildcard_covers
from egress.model import (
    Allowance,
    ApplicationRule,
    AppProtocol,
    AppProtocolType,
    CollectionAction,
    DestinationKind,
    IpProtocol,
    NatRule,
    NetworkRule,
    Provenance,
    Rule,
    RuleCollection,
    RuleCollectionGroup,
    Sources,
)

# Microsoft's stated RCG limit is 2 MB; engineering reported ~1.4 MB as the practical maximum
# (MicrosoftDocs/azure-docs#93880), so estimated bodies stay below that.
RCG_SIZE_BUDGET = 1_400_000
MAX_NAME = 80
IntentKey = tuple[str, str, str, str, bool, tuple[str, ...]]  # ..., workload names
COLLECTION_PRIORITY = {"dnat": 100, "network": 200, "application": 300}
_LEGACY_KIND = {
    DestinationKind.FQDN: "fqdn",
    DestinationKind.WILDCARD: "wildcard_fqdn",
    DestinationKind.FQDN_TAG: "fqdn_tag",
    DestinationKind.IP: "address",
    DestinationKind.CIDR: "address",
    DestinationKind.SERVICE_TAG: "address",
}


def allowance_key(allowance: Allowance) -> IntentKey:
    """The key the probe plan uses to find the rule that carries an allowance."""
    return (
        _LEGACY_KIND[allowance.kind],
        allowance.destination,
        allowance.protocol.value,
        allowance.ports,
        allowance.user,
        tuple(w.name for w in allowance.sources.workloads),
    )


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """Name and priority of one managed group before any size split."""

    name: str
    priority: int


@dataclass(frozen=True, slots=True)
class Layout:
    groups: tuple[RuleCollectionGroup, ...]
    rule_of: dict[IntentKey, str]  # allowance -> "<group>/<collection>/<rule>" that allows it


def azure_layout(
    allowances: tuple[Allowance, ...],
    sources: Sources,
    specs: tuple[GroupSpec, GroupSpec],
    nats: tuple[NatRule, ...] = (),
) -> Layout:
    """Pack the catalog allowances into the AKS group and the policy's into the user group.

    A pure function of its arguments: the same allowances always give the same groups.
    """
    # Allowances of one set of workloads share rules only with each other (their sources).
    partitions: dict[tuple[str, ...], dict[IntentKey, Allowance]] = defaultdict(dict)
    for allowance in allowances:
        key = allowance_key(allowance)
        partitions[key[5]][key] = allowance
    groups: list[RuleCollectionGroup] = []
    rule_of: dict[IntentKey, str] = {}
    for user, spec in zip((False, True), specs, strict=True):
        networks: list[Rule] = []
        applications: list[Rule] = []
        where: dict[IntentKey, tuple[str, str]] = {}
        for who in sorted(partitions):  # () first: the cluster-wide rules
            first = partitions[who]
            part_sources = next(iter(first.values())).sources if who else sources
            nets, apps, places = build_rules(
                first, subsume(first), part_sources, user=user, suffix=who
            )
            networks += nets
            applications += apps
            where.update(places)
        prefix = "allow-" if user else ""
        collections: list[tuple[str, CollectionAction, list[Rule]]] = []
        if user and nats:
            collections.append(("dnat", CollectionAction.DNAT, list(nats)))
        if networks:
            collections.append((f"{prefix}network", CollectionAction.ALLOW, networks))
        if applications:
            collections.append((f"{prefix}application", CollectionAction.ALLOW, applications))
        if not collections:
            continue
        packed, paths = pack_groups(spec, collections, RCG_SIZE_BUDGET)
        groups.extend(packed)
        for key, (local, destination) in where.items():
            rule_of[key] = paths[(f"{prefix}{local}", destination)]
    return Layout(tuple(groups), rule_of)


def subsume(first: dict[IntentKey, Allowance]) -> dict[IntentKey, IntentKey]:
    """Map each app FQDN/wildcard covered by a broader wildcard (same protocol, port, group).

    ``*.x.com`` covers ``a.x.com`` and ``*.a.x.com`` but never the apex ``x.com``.
    """
    buckets: dict[tuple[str, str, bool], list[IntentKey]] = defaultdict(list)
    for key, allowance in first.items():
        if allowance.is_app and allowance.kind in (DestinationKind.FQDN, DestinationKind.WILDCARD):
            buckets[(allowance.protocol, allowance.ports, allowance.user)].append(key)
    covered_by: dict[IntentKey, IntentKey] = {}
    for keys in buckets.values():
        wildcards = sorted(
            (k for k in keys if k[0] == "wildcard_fqdn"), key=lambda k: (len(k[1]), k[1])
        )
        if not wildcards:
            continue
        for key in keys:
            for wildcard in wildcards:
                if wildcard != key and wildcard_covers(wildcard[1], key[1]):
                    covered_by[key] = wildcard
                    break
    return covered_by


def _rule_name(parts: Iterable[str]) -> str:
    name = "-".join(parts)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}-{digest}"


def _ports_label(ports: str) -> str:
    return ports.replace("-", "to")


def build_rules(
    first: dict[IntentKey, Allowance],
    covered_by: dict[IntentKey, IntentKey],
    sources: Sources,
    *,
    user: bool,
    suffix: tuple[str, ...] = (),
) -> tuple[list[Rule], list[Rule], dict[IntentKey, tuple[str, str]]]:
    """Group destinations sharing protocols, ports and sources into application/network rules.

    Returns (network rules, application rules, intent -> ("<collection>/<rule>", destination)).
    """
    # application: destination -> {(protocol, port)}; tags and FQDNs never share a rule
    app: dict[tuple[str, str], set[tuple[str, int]]] = defaultdict(set)
    # network: (destination, class, protocol) -> {ports}
    net: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    dest_provs: dict[tuple[str, ...], list[Provenance]] = defaultdict(list)
    for key, intent in first.items():
        if intent.user != user or key in covered_by:
            continue
        if intent.is_app:
            cls = "tag" if intent.kind is DestinationKind.FQDN_TAG else "fqdn"
            app[(intent.destination, cls)].add((intent.protocol.value, int(intent.ports)))
            bucket: tuple[str, ...] = ("app", intent.destination, cls)
        else:
            cls = "fqdn" if intent.kind is DestinationKind.FQDN else "addr"
            net[(intent.destination, cls, intent.protocol.value)].add(intent.ports)
            bucket = ("net", intent.destination, cls, intent.protocol.value)
        dest_provs[bucket].extend(intent.provenance)
    # provenance of covered entries travels to the wildcard that covers them
    for key, wildcard in covered_by.items():
        if first[key].user == user:
            dest_provs[("app", wildcard[1], "fqdn")].extend(first[key].provenance)

    app_rules: dict[tuple[str, tuple[tuple[str, int], ...]], list[str]] = defaultdict(list)
    for (destination, cls), proto_set in app.items():
        app_rules[(cls, tuple(sorted(proto_set)))].append(destination)
    net_rules: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (destination, cls, proto), port_set in net.items():
        net_rules[(cls, proto, tuple(sorted(port_set, key=_port_sort)))].append(destination)

    where: dict[tuple[str, ...], str] = {}
    applications: list[Rule] = []
    for (cls, protos), destinations in sorted(app_rules.items()):
        parts = (["fqdn-tag"] if cls == "tag" else []) + [f"{p}-{port}" for p, port in protos]
        name = _rule_name([*parts, *suffix])
        destinations.sort()
        applications.append(
            ApplicationRule(
                name=name,
                description=_describe(dest_provs, [("app", d, cls) for d in destinations]),
                sources=sources,
                protocols=tuple(
                    AppProtocol(AppProtocolType(p.title()), port) for p, port in protos
                ),
                target_fqdns=tuple(destinations) if cls == "fqdn" else (),
                fqdn_tags=tuple(destinations) if cls == "tag" else (),
                provenance=_provs(dest_provs, [("app", d, cls) for d in destinations]),
            )
        )
        for d in destinations:
            where[("app", d, cls)] = f"application/{name}"
    networks: list[Rule] = []
    for (cls, proto, ports), destinations in sorted(net_rules.items(), key=_net_sort):
        parts = [proto, *(_ports_label(p) for p in ports)] + (["fqdn"] if cls == "fqdn" else [])
        name = _rule_name([*parts, *suffix])
        destinations.sort()
        buckets: list[tuple[str, ...]] = [("net", d, cls, proto) for d in destinations]
        networks.append(
            NetworkRule(
                name=name,
                description=_describe(dest_provs, buckets),
                sources=sources,
                ip_protocols=(IpProtocol(proto.upper()),),
                destination_ports=ports,
                destination_addresses=tuple(destinations) if cls == "addr" else (),
                destination_fqdns=tuple(destinations) if cls == "fqdn" else (),
                provenance=_provs(dest_provs, buckets),
            )
        )
        for bucket in buckets:
            where[bucket] = f"network/{name}"
    rule_of: dict[IntentKey, tuple[str, str]] = {}
    for key, intent in first.items():
        if intent.user != user:
            continue
        t = first[covered_by.get(key, key)]
        if t.is_app:
            cls = "tag" if t.kind is DestinationKind.FQDN_TAG else "fqdn"
            rule_of[key] = (where[("app", t.destination, cls)], t.destination)
        else:
            cls = "fqdn" if t.kind is DestinationKind.FQDN else "addr"
            rule_of[key] = (where[("net", t.destination, cls, t.protocol.value)], t.destination)
    return networks, applications, rule_of


def _port_sort(ports: str) -> tuple[int, int]:
    lo, _, hi = ports.partition("-")
    return int(lo), int(hi or lo)


def _net_sort(item: tuple[tuple[str, str, tuple[str, ...]], list[str]]) -> tuple[object, ...]:
    (cls, proto, ports), _ = item
    return (proto, [_port_sort(p) for p in ports], cls)


def _provs(
    dest_provs: dict[tuple[str, ...], list[Provenance]], buckets: list[tuple[str, ...]]
) -> tuple[Provenance, ...]:
    unique = {p for b in buckets for p in dest_provs[b]}
    return tuple(sorted(unique, key=lambda p: (p.feature != "required", p.feature, p.entry_id)))


def _describe(
    dest_provs: dict[tuple[str, ...], list[Provenance]], buckets: list[tuple[str, ...]]
) -> str:
    features = sorted({p.feature for b in buckets for p in dest_provs[b]})
    return "egress: " + ", ".join(features)


def estimate_size(rule: Rule) -> int:
    """Approximate REST JSON size of one rule in bytes (keys, values, punctuation)."""
    if isinstance(rule, ApplicationRule):
        values: list[str] = [*rule.target_fqdns, *rule.fqdn_tags]
    elif isinstance(rule, NetworkRule):
        values = [*rule.destination_addresses, *rule.destination_fqdns, *rule.destination_ports]
    else:
        values = [rule.destination_address, rule.translated_address, *rule.source_addresses]
    sources = []
    if not isinstance(rule, NatRule):
        sources = [*rule.sources.addresses, *rule.sources.ip_groups]
    payload = len(json.dumps([rule.name, rule.description, *values, *sources]))
    return payload + 300  # fixed keys: ruleType, protocols, empty arrays, terminateTLS, ...


def split_rule(rule: Rule, budget: int) -> list[Rule]:
    """Split a rule whose destination list alone exceeds the group budget into numbered parts."""
    if estimate_size(rule) <= budget or isinstance(rule, NatRule):
        return [rule]
    values = (
        rule.target_fqdns
        if isinstance(rule, ApplicationRule)
        else (rule.destination_fqdns or rule.destination_addresses)
    )
    chunks: list[list[str]] = [[]]
    size = 0
    for value in values:
        if size + len(value) + 4 > budget // 2 and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(value)
        size += len(value) + 4
    parts: list[Rule] = []
    for index, chunk in enumerate(chunks, start=1):
        name = rule.name if index == 1 else _rule_name([rule.name, str(index)])
        if isinstance(rule, ApplicationRule):
            parts.append(_replace_app(rule, name, tuple(chunk)))
        elif rule.destination_fqdns:
            parts.append(_replace_net(rule, name, fqdns=tuple(chunk)))
        else:
            parts.append(_replace_net(rule, name, addresses=tuple(chunk)))
    return parts


def _replace_app(rule: ApplicationRule, name: str, fqdns: tuple[str, ...]) -> ApplicationRule:
    return ApplicationRule(
        name=name,
        description=rule.description,
        sources=rule.sources,
        protocols=rule.protocols,
        target_fqdns=fqdns,
        fqdn_tags=rule.fqdn_tags,
        provenance=rule.provenance,
    )


def _replace_net(
    rule: NetworkRule, name: str, *, fqdns: tuple[str, ...] = (), addresses: tuple[str, ...] = ()
) -> NetworkRule:
    return NetworkRule(
        name=name,
        description=rule.description,
        sources=rule.sources,
        ip_protocols=rule.ip_protocols,
        destination_ports=rule.destination_ports,
        destination_addresses=addresses,
        destination_fqdns=fqdns,
        provenance=rule.provenance,
    )


def pack_groups(
    spec: GroupSpec, collections: list[tuple[str, CollectionAction, list[Rule]]], budget: int
) -> tuple[list[RuleCollectionGroup], dict[tuple[str, str], str]]:
    """Fill groups up to the size budget, overflowing into '<name>-2' (priority + 1), ...

    Returns the groups and ("<collection>/<rule>", destination) -> "<group>/<collection>/<part>"
    so every destination can be traced to the (possibly split) rule that carries it.
    """
    groups: list[dict[str, list[Rule]]] = [{}]
    placed: list[tuple[int, str, str, Rule]] = []  # group index, collection, original name, part
    size = 0
    for collection, _, rules in collections:
        for original in rules:
            for rule in split_rule(original, budget):
                rule_size = estimate_size(rule)
                if size + rule_size > budget and any(groups[-1].values()):
                    groups.append({})
                    size = 0
                groups[-1].setdefault(collection, []).append(rule)
                placed.append((len(groups) - 1, collection, original.name, rule))
                size += rule_size
    actions = {name: action for name, action, _ in collections}
    out: list[RuleCollectionGroup] = []
    names = [spec.name if i == 0 else f"{spec.name}-{i + 1}" for i in range(len(groups))]
    for index, content in enumerate(groups):
        if not content:
            continue
        name = names[index]
        cols = tuple(
            RuleCollection(
                name=cname,
                priority=COLLECTION_PRIORITY[cname.removeprefix("allow-")],
                action=actions[cname],
                rules=tuple(rules),
            )
            for cname, rules in sorted(
                content.items(), key=lambda kv: COLLECTION_PRIORITY[kv[0].removeprefix("allow-")]
            )
        )
        out.append(RuleCollectionGroup(name=name, priority=spec.priority + index, collections=cols))
    paths: dict[tuple[str, str], str] = {}
    for index, collection, original_name, part in placed:
        full = f"{names[index]}/{collection}/{part.name}"
        for destination in _destinations(part):
            paths[(f"{collection}/{original_name}", destination)] = full
    return out, paths


def _destinations(rule: Rule) -> tuple[str, ...]:
    if isinstance(rule, ApplicationRule):
        return (*rule.target_fqdns, *rule.fqdn_tags)
    if isinstance(rule, NetworkRule):
        return (*rule.destination_addresses, *rule.destination_fqdns)
    return ()
