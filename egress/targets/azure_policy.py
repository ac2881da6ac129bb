"""Azure Firewall Policy rule collection groups as REST JSON bodies for api-version 2026-03-01."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from egress.model import (
    ApplicationRule,
    CompiledPolicy,
    NatRule,
    NetworkRule,
    Rule,
    RuleCollection,
    RuleCollectionGroup,
    Sources,
    WorkloadSelector,
)
from egress.targets import _azure_types as az
from egress.targets import kube_selector_groups as kube
from egress.targets.base import Files, Target, json_text
from egress.targets.features import AZURE_RULE_FEATURES, Feature

if TYPE_CHECKING:
    from azure.mgmt.network import types as t


def _sources(sources: Sources) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if sources.addresses:
        out["sourceAddresses"] = list(sources.addresses)
    if sources.ip_groups:
        out["sourceIpGroups"] = list(sources.ip_groups)
    return out


def _kube_sources(rule: ApplicationRule | NetworkRule, ids: KubeIds) -> list[str]:
    return [ids(w) for w in rule.sources.workloads]


KubeIds = Callable[[WorkloadSelector], str]


def _no_kube_ids(workload: WorkloadSelector) -> str:
    raise AssertionError(f"workload {workload.name} rendered without a firewall policy scope")


def _application_rule(rule: ApplicationRule, ids: KubeIds = _no_kube_ids) -> t.ApplicationRule:
    body: t.ApplicationRule = {
        "ruleType": az.APPLICATION_RULE,
        "name": rule.name,
        "protocols": [
            {"protocolType": str(p.protocol_type), "port": p.port} for p in rule.protocols
        ],
        "terminateTLS": False,
    }
    if rule.description:
        body["description"] = rule.description
    sources = _sources(rule.sources)
    if "sourceAddresses" in sources:
        body["sourceAddresses"] = sources["sourceAddresses"]
    if "sourceIpGroups" in sources:
        body["sourceIpGroups"] = sources["sourceIpGroups"]
    if rule.sources.workloads:
        body["sourceKubeSelectorGroups"] = _kube_sources(rule, ids)
    if rule.target_fqdns:
        body["targetFqdns"] = list(rule.target_fqdns)
    if rule.fqdn_tags:
        body["fqdnTags"] = list(rule.fqdn_tags)
    return body


def _network_rule(rule: NetworkRule, ids: KubeIds = _no_kube_ids) -> t.NetworkRule:
    body: t.NetworkRule = {
        "ruleType": az.NETWORK_RULE,
        "name": rule.name,
        "ipProtocols": [str(p) for p in rule.ip_protocols],
        "destinationPorts": list(rule.destination_ports),
    }
    if rule.description:
        body["description"] = rule.description
    sources = _sources(rule.sources)
    if "sourceAddresses" in sources:
        body["sourceAddresses"] = sources["sourceAddresses"]
    if "sourceIpGroups" in sources:
        body["sourceIpGroups"] = sources["sourceIpGroups"]
    if rule.sources.workloads:
        body["sourceKubeSelectorGroups"] = _kube_sources(rule, ids)
    if rule.destination_addresses:
        body["destinationAddresses"] = list(rule.destination_addresses)
    if rule.destination_fqdns:
        body["destinationFqdns"] = list(rule.destination_fqdns)
    return body


def _nat_rule(rule: NatRule) -> t.NatRule:
    body: t.NatRule = {
        "ruleType": az.NAT_RULE,
        "name": rule.name,
        "ipProtocols": [str(p) for p in rule.ip_protocols],
        "sourceAddresses": list(rule.source_addresses),
        "destinationAddresses": [rule.destination_address],
        "destinationPorts": [rule.destination_port],
        "translatedAddress": rule.translated_address,
        "translatedPort": rule.translated_port,
    }
    if rule.description:
        body["description"] = rule.description
    return body


def _rule(rule: Rule, ids: KubeIds) -> t.FirewallPolicyRule:
    if isinstance(rule, ApplicationRule):
        return _application_rule(rule, ids)
    if isinstance(rule, NetworkRule):
        return _network_rule(rule, ids)
    return _nat_rule(rule)


def _collection(collection: RuleCollection, ids: KubeIds) -> t.FirewallPolicyRuleCollection:
    rules = [_rule(rule, ids) for rule in collection.rules]
    if collection.is_nat:
        nat: t.FirewallPolicyNatRuleCollection = {
            "ruleCollectionType": az.NAT_COLLECTION,
            "name": collection.name,
            "priority": collection.priority,
            "action": {"type": "DNAT"},
            "rules": rules,
        }
        return nat
    filter_collection: t.FirewallPolicyFilterRuleCollection = {
        "ruleCollectionType": az.FILTER_COLLECTION,
        "name": collection.name,
        "priority": collection.priority,
        "action": {"type": str(collection.action)},
        "rules": rules,
    }
    return filter_collection


def rule_collection_group_properties(
    group: RuleCollectionGroup, ids: KubeIds = _no_kube_ids
) -> t.FirewallPolicyRuleCollectionGroupProperties:
    """The writable ``properties`` of one group (no size/provisioningState)."""
    return {
        "priority": group.priority,
        "ruleCollections": [_collection(c, ids) for c in group.collections],
    }


def rule_collection_group_bodies(policy: CompiledPolicy) -> dict[str, dict[str, Any]]:
    """RCG name -> PUT body ``{"properties": {...}}``, in the order the groups must be written."""
    bodies: dict[str, dict[str, Any]] = {}

    def ids(workload: WorkloadSelector) -> str:
        return kube.group_id(policy.azure, policy.managed_prefix, workload)

    for group in policy.rule_collection_groups:
        # Not typed as t.FirewallPolicyRuleCollectionGroup: that TypedDict requires the
        # read-only etag, which a PUT body must not carry.
        bodies[group.name] = {"properties": rule_collection_group_properties(group, ids)}
    return bodies


class AzurePolicyTarget(Target):
    """Rule collection group bodies keyed by name, for `az rest` or `egress apply`."""

    name = "azure-policy"
    description = (
        f"Firewall Policy rule collection groups as REST JSON (api-version {az.API_VERSION})"
    )
    files = ("rule-collection-groups.json", "kube-selector-groups.json")
    supports = AZURE_RULE_FEATURES | {Feature.WORKLOAD_SOURCES}
    ignores = frozenset({Feature.ROUTES, Feature.SERVICE_PUBLICATIONS})

    def _render(self, policy: CompiledPolicy) -> Files:
        files = {self.files[0]: json_text(rule_collection_group_bodies(policy))}
        groups = kube.group_bodies(policy)
        if groups:  # only when a policy entry names workloads
            files[self.files[1]] = json_text(groups)
        return files

    def warnings(self, policy: CompiledPolicy) -> tuple[str, ...]:
        return kube.scope_warning(policy)
