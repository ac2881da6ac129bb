"""One ARM deployment template with every rule collection group and the route table."""

from __future__ import annotations

from typing import Any

from egress.model import CompiledPolicy
from egress.targets import kube_selector_groups as kube
from egress.targets._azure_types import API_VERSION
from egress.targets.azure_policy import rule_collection_group_bodies
from egress.targets.base import Files, Target, json_text
from egress.targets.features import AZURE_RULE_FEATURES, Feature
from egress.targets.route_table import route_table_body

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
RCG_TYPE = "Microsoft.Network/firewallPolicies/ruleCollectionGroups"
KSG_TYPE = "Microsoft.Network/firewallPolicies/kubeSelectorGroups"
ROUTE_TABLE_TYPE = "Microsoft.Network/routeTables"
DEPLOYMENT_TYPE = "Microsoft.Resources/deployments"
DEPLOYMENT_API_VERSION = "2022-09-01"


def _parameters(policy: CompiledPolicy) -> dict[str, Any]:
    firewall_policy: dict[str, Any] = {
        "type": "string",
        "metadata": {"description": "Name of the existing Firewall Policy in this resource group."},
    }
    if policy.azure.firewall_policy:
        firewall_policy["defaultValue"] = policy.azure.firewall_policy
    parameters: dict[str, Any] = {
        "firewallPolicyName": firewall_policy,
        "location": {
            "type": "string",
            "defaultValue": policy.region,
            "metadata": {"description": "Region of the route table."},
        },
        "routeTableName": {
            "type": "string",
            "defaultValue": policy.route_table.name,
            "metadata": {"description": "Name of the route table for the AKS subnets."},
        },
    }
    other_group = _route_table_group(policy)
    if other_group is not None:
        parameters["routeTableResourceGroup"] = {
            "type": "string",
            "defaultValue": other_group,
            "metadata": {"description": "Resource group of the route table."},
        }
    return parameters


def _quote(name: str) -> str:
    """A string literal inside an ARM template expression."""
    return "'" + name.replace("'", "''") + "'"


def escape_literals(value: Any) -> Any:
    """Escape strings that ARM would otherwise evaluate as expressions (a leading '[')."""
    if isinstance(value, str):
        return "[" + value if value.startswith("[") else value
    if isinstance(value, list):
        return [escape_literals(item) for item in value]
    if isinstance(value, dict):
        return {key: escape_literals(item) for key, item in value.items()}
    return value


def _route_table_group(policy: CompiledPolicy) -> str | None:
    """The route table's resource group when it differs from the firewall policy's."""
    group = policy.azure.route_table_resource_group
    return group if group and group != policy.azure.resource_group else None


def _nested_route_table(route_table: dict[str, Any]) -> dict[str, Any]:
    """A nested deployment, because one template deploys into one resource group."""
    inner_parameters = {"routeTableName": {"type": "string"}, "location": {"type": "string"}}
    return {
        "type": DEPLOYMENT_TYPE,
        "apiVersion": DEPLOYMENT_API_VERSION,
        "name": "egress-route-table",
        "resourceGroup": "[parameters('routeTableResourceGroup')]",
        "properties": {
            "mode": "Incremental",
            "expressionEvaluationOptions": {"scope": "inner"},
            "parameters": {
                "routeTableName": {"value": "[parameters('routeTableName')]"},
                "location": {"value": "[parameters('location')]"},
            },
            "template": {
                "$schema": SCHEMA,
                "contentVersion": "1.0.0.0",
                "parameters": inner_parameters,
                "resources": [route_table],
            },
        },
    }


def _child_name(name: str) -> str:
    """'<policy>/<child>' as an ARM expression over the firewallPolicyName parameter."""
    return f"[format('{{0}}/{{1}}', parameters('firewallPolicyName'), {_quote(name)})]"


def _rcg_resource_id(name: str) -> str:
    return f"[resourceId('{RCG_TYPE}', parameters('firewallPolicyName'), {_quote(name)})]"


def _ksg_resource_id(name: str) -> str:
    return f"[resourceId('{KSG_TYPE}', parameters('firewallPolicyName'), {_quote(name)})]"


def _kube_selector_groups(policy: CompiledPolicy) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The kube selector group resources, and literal group id -> ARM resourceId expression."""
    resources = []
    for name, body in kube.group_bodies(policy).items():
        resources.append(
            {
                "type": KSG_TYPE,
                "apiVersion": API_VERSION,
                "name": _child_name(name),
                "properties": escape_literals(body["properties"]),
            }
        )
    ids = {
        kube.group_id(policy.azure, policy.managed_prefix, w): _ksg_resource_id(
            kube.group_name(policy.managed_prefix, w)
        )
        for w in kube.workloads(policy)
    }
    return resources, ids


def _with_kube_expressions(properties: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """Rules reference their kube selector groups by resourceId() in this deployment."""
    for collection in properties["ruleCollections"]:
        for rule in collection["rules"]:
            if "sourceKubeSelectorGroups" in rule:
                rule["sourceKubeSelectorGroups"] = [
                    ids[i] for i in rule["sourceKubeSelectorGroups"]
                ]
    return properties


def arm_template(policy: CompiledPolicy) -> dict[str, Any]:
    """The deployment template as a dict (deploy with `az deployment group create`)."""
    resources, kube_ids = _kube_selector_groups(policy)
    previous: str | None = None
    for name, body in rule_collection_group_bodies(policy).items():
        resource: dict[str, Any] = {
            "type": RCG_TYPE,
            "apiVersion": API_VERSION,
            "name": _child_name(name),
            "properties": _with_kube_expressions(escape_literals(body["properties"]), kube_ids),
        }
        # Azure updates one group of a policy at a time; parallel PUTs fail with a conflict.
        if previous is not None:
            resource["dependsOn"] = [_rcg_resource_id(previous)]
        elif kube_ids:  # the first group waits for the selector groups its rules name
            resource["dependsOn"] = sorted(set(kube_ids.values()))
        resources.append(resource)
        previous = name
    table = route_table_body(policy)
    route_table = {
        "type": ROUTE_TABLE_TYPE,
        "apiVersion": API_VERSION,
        "name": "[parameters('routeTableName')]",
        "location": "[parameters('location')]",
        "tags": escape_literals(table["tags"]),
        "properties": escape_literals(table["properties"]),
    }
    other_group = _route_table_group(policy)
    if other_group is None:
        resources.append(route_table)
        table_id = f"[resourceId('{ROUTE_TABLE_TYPE}', parameters('routeTableName'))]"
    else:
        resources.append(_nested_route_table(route_table))
        table_id = (
            f"[resourceId(parameters('routeTableResourceGroup'), '{ROUTE_TABLE_TYPE}', "
            "parameters('routeTableName'))]"
        )
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": (
                f"AKS egress for {policy.cloud} {policy.region}, generated by egress; "
                "associate the route table with the AKS subnets separately."
            )
        },
        "parameters": escape_literals(_parameters(policy)),
        "resources": resources,
        "outputs": {"routeTableId": {"type": "string", "value": table_id}},
    }


class ArmTemplateTarget(Target):
    """Everything Azure-side in one template: rule collection groups chained, then routes."""

    name = "arm"
    files = ("azuredeploy.json",)
    description = "ARM deployment template: rule collection groups and route table"
    supports = AZURE_RULE_FEATURES | {Feature.ROUTES, Feature.WORKLOAD_SOURCES}
    ignores = frozenset({Feature.SERVICE_PUBLICATIONS})

    def _render(self, policy: CompiledPolicy) -> Files:
        return {self.files[0]: json_text(arm_template(policy))}

    def warnings(self, policy: CompiledPolicy) -> tuple[str, ...]:
        del policy  # kube selector group ids are resourceId() expressions here: no placeholders
        return ()
