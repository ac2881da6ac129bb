"""Plan and apply the compiled policy to Azure with azure-mgmt-network, safely and idempotently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from egress.azure.diff import Plan, build_plan
from egress.azure.state import AzureTarget, DesiredState, bind_selector_ids, read_live

if TYPE_CHECKING:
    from azure.mgmt.network import NetworkManagementClient


def make_plan(
    client: NetworkManagementClient,
    desired: DesiredState,
    target: AzureTarget,
    *,
    prune: bool = False,
) -> Plan:
    """Read live state (GETs only) and diff it against the desired state."""
    desired = bind_selector_ids(desired, target)
    selectors = bool(desired.kube_selector_groups) or prune
    return build_plan(desired, read_live(client, target, selectors=selectors), target, prune=prune)


__all__ = ["AzureTarget", "DesiredState", "Plan", "make_plan"]
