"""The output targets of `egress compile`, registered in one literal dict."""

from __future__ import annotations

from egress.targets.arm_template import ArmTemplateTarget
from egress.targets.azure_policy import AzurePolicyTarget
from egress.targets.base import Files, Target
from egress.targets.k8s_services import K8sServicesTarget
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
}

__all__ = ["TARGETS", "Files", "Target"]
