"""Azure facts egress relies on, each stated once: RBAC actions and the ownership tags.

Kept free of SDK imports so the compiler's targets (the custom role, the route table body)
can read them as cheaply as plan and apply do.
"""

from __future__ import annotations

NET = "Microsoft.Network"

# The tags egress sets on what it owns; apply never touches a route table without them.
MANAGED_BY_TAG = ("managed-by", "egress")
PREFIX_TAG = "egress-prefix"  # the name prefix of the groups and routes egress owns there

# The RBAC actions each plan read and apply write needs (printed on 403).
READ_POLICY = (f"{NET}/firewallPolicies/read",)
READ_GROUPS = (f"{NET}/firewallPolicies/ruleCollectionGroups/read",)
READ_SELECTORS = (f"{NET}/firewallPolicies/kubeSelectorGroups/read",)
READ_ROUTE_TABLE = (f"{NET}/routeTables/read",)
READ_ROUTES = (f"{NET}/routeTables/routes/read",)
READ_SUBNET = (f"{NET}/virtualNetworks/subnets/read",)

WRITE_GROUP = (f"{NET}/firewallPolicies/ruleCollectionGroups/write",)
DELETE_GROUP = (f"{NET}/firewallPolicies/ruleCollectionGroups/delete",)
WRITE_SELECTOR = (f"{NET}/firewallPolicies/kubeSelectorGroups/write",)
DELETE_SELECTOR = (f"{NET}/firewallPolicies/kubeSelectorGroups/delete",)
WRITE_ROUTE_TABLE = (f"{NET}/routeTables/write",)
WRITE_ROUTE = (f"{NET}/routeTables/routes/write",)
DELETE_ROUTE = (f"{NET}/routeTables/routes/delete",)
# Associating a route table writes the subnet and joins the table (and any NSG it keeps).
WRITE_SUBNET = (
    f"{NET}/virtualNetworks/subnets/write",
    f"{NET}/virtualNetworks/subnets/join/action",
    f"{NET}/routeTables/join/action",
    f"{NET}/networkSecurityGroups/join/action",
)

# By resource, as the custom role grants them (subnet actions only when subnets are named).
# --prune lists the kube selector groups even when none is compiled, so the role always has them.
FIREWALL_POLICY_ACTIONS = (
    *READ_POLICY,
    *READ_GROUPS,
    *WRITE_GROUP,
    *DELETE_GROUP,
    *READ_SELECTORS,
    *WRITE_SELECTOR,
    *DELETE_SELECTOR,
)
ROUTE_TABLE_ACTIONS = (
    *READ_ROUTE_TABLE,
    *WRITE_ROUTE_TABLE,
    *READ_ROUTES,
    *WRITE_ROUTE,
    *DELETE_ROUTE,
)
SUBNET_ACTIONS = (*READ_SUBNET, *WRITE_SUBNET)

PLAN_ACTIONS: tuple[str, ...] = (
    *READ_POLICY,
    *READ_GROUPS,
    *READ_SELECTORS,
    *READ_ROUTE_TABLE,
    *READ_ROUTES,
    *READ_SUBNET,
)
APPLY_ACTIONS: tuple[str, ...] = (*FIREWALL_POLICY_ACTIONS, *ROUTE_TABLE_ACTIONS, *SUBNET_ACTIONS)
