"""Azure Firewall Policy kube selector groups (api-version 2026-03-01): workloads as sources.

``firewallPolicies/{policy}/kubeSelectorGroups/{name}`` with ``podSelector`` and
``namespaceSelector`` label selectors; rules reference them in ``sourceKubeSelectorGroups``
by resource id. Each group is named ``<managed prefix>-<workload>`` so ownership follows
the same prefix rule as the rule collection groups.
"""

from __future__ import annotations

from typing import Any

from egress.model import AzureScope, CompiledPolicy, WorkloadSelector

PLACEHOLDER = "<{}>"  # shown where the policy file has no azure: scope yet


def group_name(prefix: str, workload: WorkloadSelector) -> str:
    return f"{prefix}-{workload.name}"


def policy_id(scope: AzureScope) -> str:
    """The firewall policy's resource id, with placeholders for what the policy leaves out."""
    subscription = scope.subscription_id or PLACEHOLDER.format("subscription-id")
    group = scope.resource_group or PLACEHOLDER.format("resource-group")
    name = scope.firewall_policy or PLACEHOLDER.format("firewall-policy")
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.Network/firewallPolicies/{name}"
    )


def group_id(scope: AzureScope, prefix: str, workload: WorkloadSelector) -> str:
    return f"{policy_id(scope)}/kubeSelectorGroups/{group_name(prefix, workload)}"


def workloads(policy: CompiledPolicy) -> tuple[WorkloadSelector, ...]:
    """Every workload the rules use, by name."""
    seen = {w.name: w for a in policy.allowances for w in a.sources.workloads}
    return tuple(seen[name] for name in sorted(seen))


def group_bodies(policy: CompiledPolicy) -> dict[str, dict[str, Any]]:
    """Kube selector group name -> PUT body ``{"properties": {...}}``."""
    bodies: dict[str, dict[str, Any]] = {}
    for workload in workloads(policy):
        properties: dict[str, Any] = {}
        if workload.pod_labels:
            properties["podSelector"] = {"matchLabels": dict(workload.pod_labels)}
        if workload.namespace_labels:
            properties["namespaceSelector"] = {"matchLabels": dict(workload.namespace_labels)}
        bodies[group_name(policy.managed_prefix, workload)] = {"properties": properties}
    return bodies


def scope_warning(policy: CompiledPolicy) -> tuple[str, ...]:
    if not workloads(policy):
        return ()
    scope = policy.azure
    if scope.subscription_id and scope.resource_group and scope.firewall_policy:
        return ()
    return (
        "sourceKubeSelectorGroups use placeholder ids (<subscription-id>, <resource-group>, "
        "<firewall-policy>); set azure.subscription_id, resource_group and firewall_policy "
        "in the policy file",
    )
