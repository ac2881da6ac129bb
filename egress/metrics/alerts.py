"""The probe's alert rules, written once and rendered for Prometheus and Azure Monitor.

One list of :class:`AlertRule` becomes a ``PrometheusRule`` (prometheus-operator, also read by
Azure Managed Prometheus' add-on) and an ARM template holding one
``Microsoft.AlertsManagement/prometheusRuleGroups`` resource. The expressions use the metric
names of :mod:`egress.metrics.registry` and group by the Pushgateway grouping key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress.compliance import RunStatus
from egress.metrics.registry import (
    GROUP_LABELS,
    LAST_COMPLETE_RUN,
    RUN_FAILED_REQUIRED,
    RUN_LEAKS,
    RUN_STATUS,
    RUN_UNPROVEN_REQUIRED,
)

RULE_GROUP = "egress-probe"
AZURE_RULE_GROUP_API_VERSION = "2023-03-01"
_BY = ", ".join(GROUP_LABELS)
# Azure Monitor severities: 0 critical, 1 error, 2 warning, 3 informational, 4 verbose.
_AZURE_SEVERITY = {"critical": 0, "error": 1, "warning": 2}


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    expression: str
    for_seconds: int
    severity: str  # critical, error or warning
    summary: str


def alert_rules(*, stale_after_seconds: int) -> tuple[AlertRule, ...]:
    """The rules; `stale_after_seconds` is how long without a complete run is too long."""
    not_proven = RunStatus.NOT_PROVEN.value
    return (
        AlertRule(
            "EgressLeak",
            f"max by ({_BY}) ({RUN_LEAKS}) > 0",
            0,
            "critical",
            "{{ $value }} deny check(s) got through the firewall on {{ $labels.cluster }}/"
            "{{ $labels.node_pool }}: egress that must be blocked is open.",
        ),
        AlertRule(
            "EgressRequiredEndpointFailed",
            f"max by ({_BY}) ({RUN_FAILED_REQUIRED}) > 0",
            600,
            "error",
            "{{ $value }} required AKS endpoint(s) are blocked on {{ $labels.cluster }}/"
            "{{ $labels.node_pool }}: the cluster may fail to pull images or reach its API.",
        ),
        AlertRule(
            "EgressRequiredEndpointUnproven",
            f"max by ({_BY}) ({RUN_UNPROVEN_REQUIRED}) > 0 or max by ({_BY}) "
            f'({RUN_STATUS}{{status="{not_proven}"}}) == 1',
            600,
            "warning",
            "The last probe runs on {{ $labels.cluster }}/{{ $labels.node_pool }} are NOT "
            "PROVEN: a required endpoint could not be shown reachable, or nothing was shown "
            "blocked.",
        ),
        AlertRule(
            "EgressProbeStale",
            f"time() - max by ({_BY}) ({LAST_COMPLETE_RUN}) > {stale_after_seconds}",
            0,
            "warning",
            "No complete egress probe run from {{ $labels.cluster }}/{{ $labels.node_pool }} "
            f"for more than {stale_after_seconds} s: nothing proves its egress now.",
        ),
    )


def _prometheus_duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _iso_duration(seconds: int) -> str:
    return f"PT{seconds // 60}M" if seconds % 60 == 0 else f"PT{seconds}S"


def prometheus_rule_groups(rules: tuple[AlertRule, ...]) -> list[dict[str, Any]]:
    """The `groups` list of a Prometheus rule file (and of a PrometheusRule's spec)."""
    return [
        {
            "name": RULE_GROUP,
            "rules": [
                {
                    "alert": rule.name,
                    "expr": rule.expression,
                    "for": _prometheus_duration(rule.for_seconds),
                    "labels": {"severity": rule.severity},
                    "annotations": {"summary": rule.summary},
                }
                for rule in rules
            ],
        }
    ]


def prometheus_rule(
    rules: tuple[AlertRule, ...], *, namespace: str, labels: dict[str, str]
) -> dict[str, Any]:
    """A prometheus-operator PrometheusRule object for the manifest stream."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": RULE_GROUP, "namespace": namespace, "labels": labels},
        "spec": {"groups": prometheus_rule_groups(rules)},
    }


def azure_rule_group_template(
    rules: tuple[AlertRule, ...], *, cluster: str | None
) -> dict[str, Any]:
    """An ARM template with one Azure Managed Prometheus rule group holding the same alerts."""
    properties: dict[str, Any] = {
        "description": "egress probe alerts: leaks, failed or unproven required endpoints, "
        "stale probes.",
        "enabled": True,
        "interval": "PT1M",
        "scopes": ["[parameters('azureMonitorWorkspaceId')]"],
        "rules": [
            {
                "alert": rule.name,
                "expression": rule.expression,
                "for": _iso_duration(rule.for_seconds),
                "severity": _AZURE_SEVERITY[rule.severity],
                "labels": {"severity": rule.severity},
                "annotations": {"summary": rule.summary},
                "enabled": True,
                "resolveConfiguration": {"autoResolved": True, "timeToResolve": "PT10M"},
                "actions": [{"actionGroupId": "[parameters('actionGroupId')]"}],
            }
            for rule in rules
        ],
    }
    if cluster:
        properties["clusterName"] = cluster
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "azureMonitorWorkspaceId": {
                "type": "string",
                "metadata": {"description": "Resource id of the Azure Monitor workspace."},
            },
            "actionGroupId": {
                "type": "string",
                "metadata": {"description": "Resource id of the action group to notify."},
            },
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        },
        "resources": [
            {
                "type": "Microsoft.AlertsManagement/prometheusRuleGroups",
                "apiVersion": AZURE_RULE_GROUP_API_VERSION,
                "name": RULE_GROUP if not cluster else f"{RULE_GROUP}-{cluster}",
                "location": "[parameters('location')]",
                "properties": properties,
            }
        ],
    }
