"""The output targets of `egress compile`, registered in one literal dict (the only registry)."""

from __future__ import annotations

from egress.targets.allowlist import AllowlistTarget
from egress.targets.appliance import ApplianceTarget
from egress.targets.arm_template import ArmTemplateTarget
from egress.targets.azure_policy import AzurePolicyTarget
from egress.targets.base import Files, Target
from egress.targets.cilium import CiliumTarget
from egress.targets.k8s_services import K8sServicesTarget
from egress.targets.network_policy import NetworkPolicyTarget
from egress.targets.nsg import NsgTarget
from egress.targets.probe_plan import ProbePlanTarget
from egress.targets.role_definition import RoleDefinitionTarget
from egress.targets.route_table import RouteTableTarget
from egress.targets.terraform import TerraformTarget

TARGETS: dict[str, type[Target]] = {
    "azure-policy": AzurePolicyTarget,
    "route-table": RouteTableTarget,
    "arm": ArmTemplateTarget,
    "terraform": TerraformTarget,
    "k8s-services": K8sServicesTarget,
    "probe-plan": ProbePlanTarget,
    "role": RoleDefinitionTarget,
    # Opt-in (`--target NAME`): they read the target-neutral allowances.
    "allowlist": AllowlistTarget,
    "nsg": NsgTarget,
    "network-policy": NetworkPolicyTarget,
    "cilium": CiliumTarget,
    "appliance": ApplianceTarget,
}

__all__ = ["TARGETS", "Files", "Target"]
