"""What a compiled policy uses, entry by entry, so a target can refuse what it cannot express."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from egress.model import (
    Allowance,
    ApplicationRule,
    CollectionAction,
    CompiledPolicy,
    DestinationKind,
    NatRule,
    NetworkRule,
    Rule,
)


class Feature(StrEnum):
    """Constructs of the compiled model that a target may or may not be able to express."""

    APPLICATION_RULES = "application-rules"
    NETWORK_RULES = "network-rules"
    DNAT_RULES = "dnat-rules"
    DENY_COLLECTIONS = "deny-collections"
    WILDCARD_FQDNS = "wildcard-fqdns"
    FQDN_TAGS = "fqdn-tags"
    SERVICE_TAGS = "service-tags"  # e.g. AzureCloud.eastus as a network-rule destination
    NETWORK_RULE_FQDNS = "network-rule-fqdns"  # needs the firewall policy's DNS proxy
    PORT_RANGES = "port-ranges"  # "1000-2000" or "*" in network rules
    SOURCE_IP_GROUPS = "source-ip-groups"
    NAT_PORT_RANGES = "nat-port-ranges"  # a DNAT port that is a range or above 64000
    # A collection holding more than one kind of rule (or NAT rules outside a DNAT
    # collection): Azure requires one rule type per collection, so no Azure target has it.
    MIXED_COLLECTIONS = "mixed-collections"
    WORKLOAD_SOURCES = "workload-sources"  # Kubernetes pod/namespace selectors as sources
    ROUTES = "routes"
    SERVICE_PUBLICATIONS = "service-publications"  # internal LoadBalancer Services for DNAT


ALL_FEATURES = frozenset(Feature)
RULE_FEATURES = ALL_FEATURES - {Feature.ROUTES, Feature.SERVICE_PUBLICATIONS}
# Every rule construct the Azure targets write (one rule type per collection; kube selector
# groups as sources are not rendered yet).
AZURE_RULE_FEATURES = RULE_FEATURES - {Feature.MIXED_COLLECTIONS, Feature.WORKLOAD_SOURCES}

_NAT_MAX_PORT = 64000  # azurerm validates DNAT ports to 1-64000


@dataclass(frozen=True, slots=True)
class FeatureUse:
    """One entry of the model using one feature, with a human description of where."""

    feature: Feature
    where: str  # e.g. "rule 'mcr' in collection 'aks-app' of group 'egress-aks'"


def _is_ip_or_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text == "*"
    return True


def _is_single_port(text: str, maximum: int) -> bool:
    return text.isdigit() and 1 <= int(text) <= maximum


def _rule_features(rule: Rule, action: CollectionAction) -> list[Feature]:
    used: list[Feature] = []
    if action is CollectionAction.DENY:
        used.append(Feature.DENY_COLLECTIONS)
    if isinstance(rule, ApplicationRule):
        used.append(Feature.APPLICATION_RULES)
        if any(fqdn.startswith("*") for fqdn in rule.target_fqdns):
            used.append(Feature.WILDCARD_FQDNS)
        if rule.fqdn_tags:
            used.append(Feature.FQDN_TAGS)
        if rule.sources.ip_groups:
            used.append(Feature.SOURCE_IP_GROUPS)
        if rule.sources.workloads:
            used.append(Feature.WORKLOAD_SOURCES)
    elif isinstance(rule, NetworkRule):
        used.append(Feature.NETWORK_RULES)
        if not all(_is_ip_or_cidr(address) for address in rule.destination_addresses):
            used.append(Feature.SERVICE_TAGS)
        if rule.destination_fqdns:
            used.append(Feature.NETWORK_RULE_FQDNS)
        if not all(port.isdigit() for port in rule.destination_ports):
            used.append(Feature.PORT_RANGES)
        if rule.sources.ip_groups:
            used.append(Feature.SOURCE_IP_GROUPS)
        if rule.sources.workloads:
            used.append(Feature.WORKLOAD_SOURCES)
    elif isinstance(rule, NatRule):
        used.append(Feature.DNAT_RULES)
        ports = (rule.destination_port, rule.translated_port)
        if not all(_is_single_port(port, _NAT_MAX_PORT) for port in ports):
            used.append(Feature.NAT_PORT_RANGES)
    return used


def allowance_features(allowance: Allowance) -> list[Feature]:
    """The features one target-neutral allowance uses."""
    used = [Feature.APPLICATION_RULES if allowance.is_app else Feature.NETWORK_RULES]
    kind = allowance.kind
    if kind is DestinationKind.WILDCARD:
        used.append(Feature.WILDCARD_FQDNS)
    if kind is DestinationKind.FQDN_TAG:
        used.append(Feature.FQDN_TAGS)
    if kind is DestinationKind.SERVICE_TAG:
        used.append(Feature.SERVICE_TAGS)
    if not allowance.is_app and kind in (DestinationKind.FQDN, DestinationKind.WILDCARD):
        used.append(Feature.NETWORK_RULE_FQDNS)
    if "-" in allowance.ports:
        used.append(Feature.PORT_RANGES)
    if allowance.sources.ip_groups:
        used.append(Feature.SOURCE_IP_GROUPS)
    if allowance.sources.workloads:
        used.append(Feature.WORKLOAD_SOURCES)
    return used


def allowance_uses(
    policy: CompiledPolicy, allowances: tuple[Allowance, ...]
) -> tuple[FeatureUse, ...]:
    """Every (feature, entry) pair as a target reading allowances (not Azure rules) sees it."""
    uses = [
        FeatureUse(feature, allowance.describe())
        for allowance in allowances
        for feature in allowance_features(allowance)
    ]
    if policy.route_table.routes:
        uses.append(FeatureUse(Feature.ROUTES, f"route table '{policy.route_table.name}'"))
    for service in policy.services:
        where = f"service '{service.namespace}/{service.name}'"
        uses.append(FeatureUse(Feature.DNAT_RULES, where))
        uses.append(FeatureUse(Feature.SERVICE_PUBLICATIONS, where))
    return tuple(uses)


def feature_uses(policy: CompiledPolicy) -> tuple[FeatureUse, ...]:
    """Every (feature, entry) pair in the policy, in model order."""
    uses: list[FeatureUse] = []
    for group in policy.rule_collection_groups:
        for collection in group.collections:
            kinds = {type(rule) for rule in collection.rules}
            if len(kinds) > 1 or (kinds and (NatRule in kinds) != collection.is_nat):
                uses.append(
                    FeatureUse(
                        Feature.MIXED_COLLECTIONS,
                        f"collection '{collection.name}' of group '{group.name}'",
                    )
                )
            for rule in collection.rules:
                where = (
                    f"rule '{rule.name}' in collection '{collection.name}' of group '{group.name}'"
                )
                uses.extend(
                    FeatureUse(feature, where)
                    for feature in _rule_features(rule, collection.action)
                )
    if policy.route_table.routes:
        uses.append(FeatureUse(Feature.ROUTES, f"route table '{policy.route_table.name}'"))
    uses.extend(
        FeatureUse(Feature.SERVICE_PUBLICATIONS, f"service '{service.namespace}/{service.name}'")
        for service in policy.services
    )
    return tuple(uses)
