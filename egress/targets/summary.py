"""The human summary of a compiled policy that `egress compile` prints (not a file target)."""

from __future__ import annotations

from dataclasses import dataclass

from egress.model import ApplicationRule, CompiledPolicy, NetworkRule, Rule, RuleCollection


@dataclass(frozen=True, slots=True)
class CollectionRow:
    """One rule collection in the summary table."""

    group: str
    collection: str
    kind: str  # "application", "network", "dnat" or "mixed"
    action: str
    priority: int
    rules: int
    destinations: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts and notes about a compiled policy, for people."""

    cloud: str
    region: str
    features: tuple[str, ...]
    rows: tuple[CollectionRow, ...]
    rules: int
    destinations: int
    naive_rules: int  # one rule per destination, protocol and port: what grouping saved
    routes: int
    services: int
    probe_checks: int
    dns_proxy_required: bool
    dns_proxy_reason: str
    warnings: tuple[str, ...]
    skipped: tuple[str, ...]


def destinations(rule: Rule) -> int:
    """How many destinations (FQDNs, tags, addresses) a rule names."""
    if isinstance(rule, ApplicationRule):
        return len(rule.target_fqdns) + len(rule.fqdn_tags)
    if isinstance(rule, NetworkRule):
        return len(rule.destination_addresses) + len(rule.destination_fqdns)
    return 1


def naive_rules(rule: Rule) -> int:
    """Rules a naive compiler would emit: one per destination, protocol and port."""
    if isinstance(rule, ApplicationRule):
        return destinations(rule) * max(len(rule.protocols), 1)
    if isinstance(rule, NetworkRule):
        return (
            destinations(rule)
            * max(len(rule.ip_protocols), 1)
            * max(len(rule.destination_ports), 1)
        )
    return 1


def _kind(collection: RuleCollection) -> str:
    if collection.is_nat:
        return "dnat"
    kinds = {type(rule) for rule in collection.rules}
    if kinds == {ApplicationRule}:
        return "application"
    if kinds == {NetworkRule}:
        return "network"
    return "mixed" if kinds else "empty"


def summarize(policy: CompiledPolicy, extra_warnings: tuple[str, ...] = ()) -> Summary:
    """Summarise the policy; extra_warnings come from the targets that were rendered."""
    rows = tuple(
        CollectionRow(
            group=group.name,
            collection=collection.name,
            kind=_kind(collection),
            action=str(collection.action),
            priority=collection.priority,
            rules=len(collection.rules),
            destinations=sum(destinations(rule) for rule in collection.rules),
        )
        for group in policy.rule_collection_groups
        for collection in group.collections
    )
    rules = policy.all_rules()
    return Summary(
        cloud=str(policy.cloud),
        region=policy.region,
        features=policy.features,
        rows=rows,
        rules=len(rules),
        destinations=sum(destinations(rule) for rule in rules),
        naive_rules=sum(naive_rules(rule) for rule in rules),
        routes=len(policy.route_table.routes),
        services=len(policy.services),
        probe_checks=len(policy.probe_plan.checks),
        dns_proxy_required=policy.firewall.dns_proxy_required,
        dns_proxy_reason=policy.firewall.dns_proxy_reason,
        warnings=policy.warnings + extra_warnings,
        skipped=policy.skipped,
    )
