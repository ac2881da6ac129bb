"""A least-privilege custom Azure role holding exactly the actions `egress apply` needs."""

from __future__ import annotations

import re
from typing import Any

from egress.azure_facts import FIREWALL_POLICY_ACTIONS, ROUTE_TABLE_ACTIONS, SUBNET_ACTIONS
from egress.model import CompiledPolicy
from egress.targets.base import Files, Target, json_text
from egress.targets.features import ALL_FEATURES

PLACEHOLDER_SCOPE = "/subscriptions/SUBSCRIPTION_ID/resourceGroups/RESOURCE_GROUP"

_RG_SCOPE = re.compile(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+)(/|$)", re.IGNORECASE)


def _resource_group_scope(subscription: str | None, group: str | None) -> str | None:
    if subscription and group:
        return f"/subscriptions/{subscription}/resourceGroups/{group}"
    return None


def assignable_scopes(policy: CompiledPolicy) -> tuple[str, ...]:
    """Resource-group scopes of the firewall policy, the route table and the subnets."""
    scope = policy.azure
    scopes = {
        _resource_group_scope(scope.subscription_id, scope.resource_group),
        _resource_group_scope(
            scope.subscription_id, scope.route_table_resource_group or scope.resource_group
        ),
    }
    for subnet_id in policy.route_table.subnet_ids:
        match = _RG_SCOPE.match(subnet_id)
        if match:
            scopes.add(match.group(1))
    return tuple(sorted(s for s in scopes if s is not None))


def actions(policy: CompiledPolicy) -> tuple[str, ...]:
    """The sorted actions; subnet actions only when the policy names subnets to associate."""
    # `apply` reads the policy and writes (or with --prune deletes) only its own groups and
    # routes; associating the route table rewrites each subnet named.
    needed = set(FIREWALL_POLICY_ACTIONS) | set(ROUTE_TABLE_ACTIONS)
    if policy.route_table.subnet_ids:
        needed |= set(SUBNET_ACTIONS)
    return tuple(sorted(needed))


def role_definition(policy: CompiledPolicy) -> dict[str, Any]:
    """The role in the shape `az role definition create --role-definition @file` reads."""
    scopes = assignable_scopes(policy) or (PLACEHOLDER_SCOPE,)
    return {
        "Name": f"egress apply ({policy.managed_prefix})",
        "IsCustom": True,
        "Description": (
            "Lets `egress apply` read the firewall policy, write the rule collection groups "
            "and routes it manages, and associate its route table with the AKS subnets."
        ),
        "Actions": list(actions(policy)),
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": list(scopes),
    }


class RoleDefinitionTarget(Target):
    """`role-definition.json` for the identity that runs `egress apply`."""

    name = "role"
    files = ("role-definition.json",)
    description = "least-privilege custom role for `egress apply`"
    supports = frozenset()
    ignores = ALL_FEATURES  # the actions do not depend on which rules the groups hold

    def warnings(self, policy: CompiledPolicy) -> tuple[str, ...]:
        if assignable_scopes(policy):
            return ()
        return (
            f"role-definition.json uses the placeholder scope {PLACEHOLDER_SCOPE}: set "
            "azure.subscription_id and azure.resource_group in the policy file, or edit it.",
        )

    def _render(self, policy: CompiledPolicy) -> Files:
        return {self.files[0]: json_text(role_definition(policy))}
