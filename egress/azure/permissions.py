"""The Azure RBAC actions each plan read and apply write needs (printed on 403, documented)."""

from __future__ import annotations

NET = "Microsoft.Network"

READ_POLICY = (f"{NET}/firewallPolicies/read",)
READ_GROUPS = (f"{NET}/firewallPolicies/ruleCollectionGroups/read",)
READ_ROUTE_TABLE = (f"{NET}/routeTables/read",)
READ_ROUTES = (f"{NET}/routeTables/routes/read",)
READ_SUBNET = (f"{NET}/virtualNetworks/subnets/read",)

WRITE_GROUP = (f"{NET}/firewallPolicies/ruleCollectionGroups/write",)
DELETE_GROUP = (f"{NET}/firewallPolicies/ruleCollectionGroups/delete",)
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

PLAN_ACTIONS: tuple[str, ...] = (
    *READ_POLICY,
    *READ_GROUPS,
    *READ_ROUTE_TABLE,
    *READ_ROUTES,
    *READ_SUBNET,
)
APPLY_ACTIONS: tuple[str, ...] = (
    *PLAN_ACTIONS,
    *WRITE_GROUP,
    *DELETE_GROUP,
    *WRITE_ROUTE_TABLE,
    *WRITE_ROUTE,
    *DELETE_ROUTE,
    *WRITE_SUBNET,
)
