"""The route table that sends AKS egress to the firewall, as a REST JSON body (2026-03-01)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from egress.azure_facts import MANAGED_BY_TAG, PREFIX_TAG
from egress.model import CompiledPolicy, Route
from egress.targets._azure_types import API_VERSION
from egress.targets.base import Files, Target, json_text
from egress.targets.features import RULE_FEATURES, Feature

if TYPE_CHECKING:
    from azure.mgmt.network import types as t


def route_body(route: Route) -> dict[str, Any]:
    """One route as REST JSON (``name`` plus ``properties``)."""
    properties: t.RoutePropertiesFormat = {
        "addressPrefix": route.address_prefix,
        "nextHopType": str(route.next_hop_type),
    }
    if route.next_hop_ip_address is not None:
        properties["nextHopIpAddress"] = route.next_hop_ip_address
    return {"name": route.name, "properties": properties}


def managed_tags(policy: CompiledPolicy) -> dict[str, str]:
    """Tags marking a resource as egress-managed (with the name prefix of what it owns)."""
    key, value = MANAGED_BY_TAG
    return {key: value, PREFIX_TAG: policy.managed_prefix}


def route_table_body(policy: CompiledPolicy) -> dict[str, Any]:
    """PUT body of the route table: location, managed tags, routes, BGP propagation."""
    table = policy.route_table
    # Not t.RouteTablePropertiesFormat: its `routes` items (t.Route) require the read-only etag.
    properties: dict[str, Any] = {
        "routes": [route_body(route) for route in table.routes],
        "disableBgpRoutePropagation": table.disable_bgp_route_propagation,
    }
    return {"location": policy.region, "tags": managed_tags(policy), "properties": properties}


class RouteTableTarget(Target):
    """The route table body, for `az rest` or `egress apply`."""

    name = "route-table"
    files = ("route-table.json",)
    description = (
        f"route table with the firewall default route as REST JSON (api-version {API_VERSION})"
    )
    supports = frozenset({Feature.ROUTES})
    ignores = RULE_FEATURES | {Feature.SERVICE_PUBLICATIONS}

    def _render(self, policy: CompiledPolicy) -> Files:
        return {self.files[0]: json_text(route_table_body(policy))}
