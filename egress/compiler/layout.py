"""Pack intents into as few Azure Firewall rules, collections and groups as the limits allow."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from egress.catalog.names import wildcard_covers
from egress.compiler.intents import Intent
from egress.model import (
    ApplicationRule,
    AppProtocol,
    AppProtocolType,
    CollectionAction,
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
IntentKey = tuple[str, str, str, str, bool]
COLLECTION_PRIORITY = {"dnat": 100, "network": 200, "application": 300}


def intent_key(intent: Intent) -> IntentKey:
    return (intent.dest_kind, intent.destination, intent.protocol, intent.ports, intent.user)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """Name and priority of one managed group before any size split."""

    name: str
    priority: int


@dataclass(frozen=True, slots=True)
class Layout:
    groups: tuple[RuleCollectionGroup, ...]
    rule_of: dict[IntentKey, str]  # intent -> "<group>/<collection>/<rule>" that allows it
    subsumed: tuple[str, ...]  # "x covered by *.y on https:443" notes


def merge(
    intents: Iterable[Intent],
) -> tuple[dict[IntentKey, Intent], dict[IntentKey, list[Provenance]]]:
    """De-duplicate intents, keeping every provenance (order of first appearance)."""
    first: dict[IntentKey, Intent] = {}
    provs: dict[IntentKey, list[Provenance]] = defaultdict(list)
    for intent in intents:
        key = intent_key(intent)
        first.setdefault(key, intent)
        if intent.provenance not in provs[key]:
            provs[key].append(intent.provenance)
    return first, provs


def subsume(first: dict[IntentKey, Intent]) -> dict[IntentKey, IntentKey]:
    """Map each app FQDN/wildcard covered by a broader wildcard (same protocol, port, group).

    ``*.x.com`` covers ``a.x.com`` and ``*.a.x.com`` but never the apex ``x.com``.
    """
    buckets: dict[tuple[str, str, bool], list[IntentKey]] = defaultdict(list)
    for key, intent in first.items():
        if intent.is_app and intent.dest_kind in ("fqdn", "wildcard_fqdn"):
            buckets[(intent.protocol, intent.ports, intent.user)].append(key)
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
    first: dict[IntentKey, Intent],
    provs: dict[IntentKey, list[Provenance]],
    covered_by: dict[IntentKey, IntentKey],
    sources: Sources,
    *,
    user: bool,
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
            cls = "tag" if intent.dest_kind == "fqdn_tag" else "fqdn"
            app[(intent.destination, cls)].add((intent.protocol, int(intent.ports)))
            bucket: tuple[str, ...] = ("app", intent.destination, cls)
        else:
            cls = "fqdn" if intent.dest_kind == "fqdn" else "addr"
            net[(intent.destination, cls, intent.protocol)].add(intent.ports)
            bucket = ("net", intent.destination, cls, intent.protocol)
        dest_provs[bucket].extend(provs[key])
    # provenance of covered entries travels to the wildcard that covers them
    for key, wildcard in covered_by.items():
        if first[key].user == user:
            dest_provs[("app", wildcard[1], "fqdn")].extend(provs[key])

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
        name = _rule_name(parts)
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
        name = _rule_name(parts)
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
            cls = "tag" if t.dest_kind == "fqdn_tag" else "fqdn"
            rule_of[key] = (where[("app", t.destination, cls)], t.destination)
        else:
            cls = "fqdn" if t.dest_kind == "fqdn" else "addr"
            rule_of[key] = (where[("net", t.destination, cls, t.protocol)], t.destination)
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
