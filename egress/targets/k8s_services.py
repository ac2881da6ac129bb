"""Kubernetes Services behind each DNAT publication: internal LoadBalancers on fixed IPs."""

from __future__ import annotations

from typing import Any

import yaml

from egress.k8s.spec import MANAGED_BY_LABEL
from egress.model import CompiledPolicy, ServicePublication
from egress.targets.base import Files, Target
from egress.targets.features import RULE_FEATURES, Feature

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
IPV4 = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
SUBNET = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"


def service_manifest(service: ServicePublication) -> dict[str, Any]:
    """One Service; the IP goes in the annotation, never in the deprecated spec.loadBalancerIP."""
    annotations = {INTERNAL: "true", IPV4: service.private_ip}
    if service.subnet is not None:
        annotations[SUBNET] = service.subnet
    protocol = str(service.protocol)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "annotations": annotations,
            "labels": dict([MANAGED_BY_LABEL]),
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": dict(service.selector),
            "ports": [
                {
                    "name": f"{protocol.lower()}-{service.port}",
                    "port": service.port,
                    "targetPort": service.target_port,
                    "protocol": protocol,
                }
            ],
        },
    }


def services_yaml(policy: CompiledPolicy) -> str:
    """All Services as one multi-document YAML stream, sorted by namespace and name."""
    ordered = sorted(policy.services, key=lambda s: (s.namespace, s.name))
    return yaml.safe_dump_all(
        [service_manifest(s) for s in ordered],
        sort_keys=True,
        default_flow_style=False,
        explicit_start=True,
    )


class K8sServicesTarget(Target):
    """The Services DNAT rules translate to; no file when the policy publishes nothing."""

    name = "k8s-services"
    files = ("k8s-services.yaml",)
    description = "Kubernetes internal LoadBalancer Services that DNAT rules point at"
    supports = frozenset({Feature.SERVICE_PUBLICATIONS})
    ignores = RULE_FEATURES | {Feature.ROUTES}

    def _render(self, policy: CompiledPolicy) -> Files:
        if not policy.services:
            return {}
        return {self.files[0]: services_yaml(policy)}
