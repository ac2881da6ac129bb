"""Desired state (from the compiler or a compiled folder) and live state (read from Azure)."""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from egress import azure_facts as perms
from egress.azure.boundary import get_or_none, map_azure_errors
from egress.errors import AzureNotFoundError, UsageError
from egress.targets.arm_template import ArmTemplateTarget
from egress.targets.azure_policy import AzurePolicyTarget
from egress.targets.route_table import RouteTableTarget

if TYPE_CHECKING:
    from azure.mgmt.network import NetworkManagementClient

    from egress.model import CompiledPolicy

# The files `egress compile` writes, named by their targets.
GROUPS_FILE = AzurePolicyTarget.files[0]  # rule-collection-groups.json
SELECTORS_FILE = AzurePolicyTarget.files[1]  # kube-selector-groups.json
(ROUTE_TABLE_FILE,) = RouteTableTarget.files
(ARM_TEMPLATE_FILE,) = ArmTemplateTarget.files  # has the route table name as a parameter default
MANAGED_TAG = perms.MANAGED_BY_TAG
PREFIX_TAG = perms.PREFIX_TAG
_SUBNET_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Network/"
    r"virtualNetworks/([^/]+)/subnets/([^/]+)$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class SubnetRef:
    """A subnet, parsed from its resource id."""

    id: str
    subscription_id: str
    resource_group: str
    vnet: str
    name: str

    @classmethod
    def parse(cls, subnet_id: str) -> SubnetRef:
        found = _SUBNET_ID.match(subnet_id.strip())
        if not found:
            raise UsageError(
                f"subnet id '{subnet_id}' is not a subnet resource id; expected "
                "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/"
                "virtualNetworks/<vnet>/subnets/<subnet>."
            )
        return cls(subnet_id.strip(), *found.groups())


@dataclass(frozen=True, slots=True)
class AzureTarget:
    """The Azure resources one plan/apply reads and writes."""

    subscription_id: str
    resource_group: str
    firewall_policy: str
    route_table: str | None
    route_table_resource_group: str
    subnets: tuple[SubnetRef, ...] = ()

    @property
    def policy_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/firewallPolicies/{self.firewall_policy}"
        )

    @property
    def route_table_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/"
            f"{self.route_table_resource_group}/providers/Microsoft.Network/routeTables/"
            f"{self.route_table}"
        )


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What egress wants in Azure: group bodies by name, the route table body, DNS needs."""

    prefix: str
    groups: dict[str, dict[str, Any]]  # RCG name -> {"properties": {...}}
    route_table: dict[str, Any] | None  # {"location", "tags", "properties": {"routes", ...}}
    dns_proxy_required: bool
    dns_proxy_reason: str = ""
    route_table_name: str | None = None  # the compiled name, when known
    # Kube selector group name -> {"properties": {"podSelector", "namespaceSelector"}}
    kube_selector_groups: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class LiveState:
    """What Azure holds now, as REST-shaped dicts (read-only fields included)."""

    policy: dict[str, Any]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    route_table: dict[str, Any] | None = None
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)  # by subnet id
    kube_selector_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_selectors: bool = False  # whether the kube selector groups were listed at all


def network_rules_use_fqdns(groups: dict[str, dict[str, Any]]) -> bool:
    return any(
        rule.get("ruleType") == "NetworkRule" and rule.get("destinationFqdns")
        for body in groups.values()
        for collection in body.get("properties", {}).get("ruleCollections", [])
        for rule in collection.get("rules", [])
    )


def desired_from_policy(policy: CompiledPolicy) -> DesiredState:
    """Render the compiled policy with the same targets `egress compile` uses."""
    from egress.targets import kube_selector_groups
    from egress.targets.azure_policy import rule_collection_group_bodies
    from egress.targets.route_table import route_table_body

    groups = rule_collection_group_bodies(policy)
    return DesiredState(
        prefix=policy.managed_prefix,
        groups=groups,
        route_table=route_table_body(policy) if policy.route_table.routes else None,
        dns_proxy_required=policy.firewall.dns_proxy_required or network_rules_use_fqdns(groups),
        dns_proxy_reason=policy.firewall.dns_proxy_reason,
        route_table_name=policy.route_table.name,
        kube_selector_groups=kube_selector_groups.group_bodies(policy),
    )


_SELECTOR_REF = re.compile(r"/kubeSelectorGroups/([^/]+)$", re.I)


def bind_selector_ids(desired: DesiredState, target: AzureTarget) -> DesiredState:
    """Point every rule's sourceKubeSelectorGroups at the selector groups of `target`'s policy.

    The compiler writes ids from the policy file's azure: scope (or placeholders without one);
    the scope apply writes to can differ (flags, --from), and ARM needs the real ids.
    """
    if not desired.kube_selector_groups:
        return desired
    groups = copy.deepcopy(desired.groups)
    for body in groups.values():
        for collection in (body.get("properties") or {}).get("ruleCollections") or []:
            for rule in collection.get("rules") or []:
                refs = rule.get("sourceKubeSelectorGroups")
                if refs:
                    rule["sourceKubeSelectorGroups"] = [_bind(str(ref), target) for ref in refs]
    return dataclasses.replace(desired, groups=groups)


def _bind(ref: str, target: AzureTarget) -> str:
    found = _SELECTOR_REF.search(ref)
    return f"{target.policy_id}/kubeSelectorGroups/{found.group(1)}" if found else ref


def _find(folder: Path, name: str) -> Path | None:
    direct = folder / name
    if direct.is_file():
        return direct
    nested = sorted(folder.glob(f"*/{name}"))
    return nested[0] if nested else None


def _read_json(path: Path) -> dict[str, Any]:
    from egress.inputs import load_json, read_text

    value = load_json(
        read_text(path, what="compiled file", error=UsageError), origin=str(path), error=UsageError
    )
    if not isinstance(value, dict):
        raise UsageError(f"compiled file {path} is not a JSON object; re-run egress compile.")
    return value


def desired_from_dir(folder: Path, *, prefix: str | None = None) -> DesiredState:
    """Read the Azure bodies an `egress compile` output folder holds."""
    if not folder.is_dir():
        raise UsageError(
            f"--from {folder} is not a folder; pass the output folder of egress compile."
        )
    groups_path = _find(folder, GROUPS_FILE)
    if groups_path is None:
        raise UsageError(
            f"{folder} has no {GROUPS_FILE}; run egress compile with the azure-policy target."
        )
    groups = _read_json(groups_path)
    table_path = _find(folder, ROUTE_TABLE_FILE)
    table = _read_json(table_path) if table_path else None
    found_prefix = prefix or ((table or {}).get("tags") or {}).get(PREFIX_TAG)
    if not found_prefix:
        raise UsageError(
            f"cannot tell the managed name prefix from {folder}; pass --managed-prefix."
        )
    selectors_path = _find(folder, SELECTORS_FILE)
    selectors = _read_json(selectors_path) if selectors_path else {}
    template_path = _find(folder, ARM_TEMPLATE_FILE)
    template = _read_json(template_path) if template_path else {}
    table_name = (template.get("parameters") or {}).get("routeTableName", {}).get("defaultValue")
    return DesiredState(
        prefix=str(found_prefix),
        groups=groups,
        route_table=table,
        dns_proxy_required=network_rules_use_fqdns(groups),
        dns_proxy_reason="network rules in the compiled groups use destinationFqdns",
        route_table_name=str(table_name) if table_name else None,
        kube_selector_groups=selectors,
    )


def _as_dict(model: Any) -> dict[str, Any]:
    return dict(model.as_dict())


def read_live(
    client: NetworkManagementClient, target: AzureTarget, *, selectors: bool = False
) -> LiveState:
    """GET the firewall policy, its groups, the route table and the subnets (reads only).

    Kube selector groups (Azure Firewall for Containers) are listed only with `selectors`: when
    the compiled policy has some, or --prune may remove stale ones.
    """
    policy_name, rg = target.firewall_policy, target.resource_group
    policy = get_or_none(
        lambda: client.firewall_policies.get(rg, policy_name),
        resource=f"firewall policy '{policy_name}'",
        needs=perms.READ_POLICY,
    )
    if policy is None:
        with map_azure_errors(f"resource group '{rg}'", needs=perms.READ_POLICY):
            existing = sorted(p.name or "" for p in client.firewall_policies.list(rg))
        there = ", ".join(existing) if existing else "none"
        raise AzureNotFoundError(
            f"firewall policy '{policy_name}' was not found in resource group '{rg}' "
            f"(policies there: {there}); pass --firewall-policy with one of them."
        )
    live = LiveState(policy=_as_dict(policy))
    with map_azure_errors(f"rule collection groups of '{policy_name}'", needs=perms.READ_GROUPS):
        for group in client.firewall_policy_rule_collection_groups.list(rg, policy_name):
            live.groups[str(group.name)] = _as_dict(group)
    if selectors:
        operations = client.firewall_policy_kube_selector_groups
        with map_azure_errors(
            f"kube selector groups of '{policy_name}'", needs=perms.READ_SELECTORS
        ):
            for selector in operations.list(rg, policy_name):
                live.kube_selector_groups[str(selector.name)] = _as_dict(selector)
        live.read_selectors = True
    if target.route_table:
        table_name, table_rg = target.route_table, target.route_table_resource_group
        table = get_or_none(
            lambda: client.route_tables.get(table_rg, table_name),
            resource=f"route table '{table_name}'",
            needs=perms.READ_ROUTE_TABLE,
        )
        live.route_table = _as_dict(table) if table is not None else None
    for subnet in target.subnets:
        live.subnets[subnet.id] = read_subnet(client, subnet)
    return live


def read_subnet(client: NetworkManagementClient, subnet: SubnetRef) -> dict[str, Any]:
    found = get_or_none(
        lambda: client.subnets.get(subnet.resource_group, subnet.vnet, subnet.name),
        resource=f"subnet '{subnet.vnet}/{subnet.name}'",
        needs=perms.READ_SUBNET,
    )
    if found is None:
        raise AzureNotFoundError(
            f"subnet '{subnet.name}' of virtual network '{subnet.vnet}' in resource group "
            f"'{subnet.resource_group}' was not found; check --subnet-id."
        )
    return _as_dict(found)
