"""CiliumClusterwideNetworkPolicy with toFQDNs: FQDN egress enforced inside the cluster.

For AKS with Advanced Container Networking Services (Cilium data plane, FQDN filtering).
Each policy has the DNS rule FQDN policies need (kube-dns on 53 with ``rules.dns`` so
Cilium's DNS proxy learns the names' addresses), ``toFQDNs`` (``matchName`` for a name,
``matchPattern`` for a wildcard, which like Azure never matches the apex), ``toCIDR`` for
addresses and expanded service tags, and ``toEntities: [cluster]`` so traffic inside the
cluster keeps working once egress is enforced.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from egress.k8s.spec import MANAGED_BY_LABEL
from egress.model import Allowance, CompiledPolicy, DestinationKind, WorkloadSelector
from egress.targets._k8s import (
    DNS_LABELS,
    DNS_NAMESPACE,
    NAMESPACE_NAME_LABEL,
    as_cidr,
    by_workload,
    object_name,
    to_yaml,
)
from egress.targets.base import Files
from egress.targets.features import ALL_FEATURES, Feature
from egress.targets.neutral import NeutralTarget

POD_NAMESPACE = "k8s:io.kubernetes.pod.namespace"
NAMESPACE_LABEL = "k8s:io.cilium.k8s.namespace.labels."
SYSTEM_NAMESPACES = ("kube-system",)


def endpoint_selector(workload: WorkloadSelector | None) -> dict[str, Any]:
    """The pods a policy applies to: a workload's labels, else every non-system pod."""
    if workload is None:
        return {
            "matchExpressions": [
                {"key": POD_NAMESPACE, "operator": "NotIn", "values": list(SYSTEM_NAMESPACES)}
            ]
        }
    labels = {f"k8s:{k}": v for k, v in workload.pod_labels}
    labels.update({f"{NAMESPACE_LABEL}{k}": v for k, v in workload.namespace_labels})
    return {"matchLabels": labels} if labels else {}


def _port(protocol: str, ports: str) -> dict[str, Any]:
    low, _, high = ports.partition("-")
    entry: dict[str, Any] = {"port": low, "protocol": "UDP" if protocol == "udp" else "TCP"}
    if high:
        entry["endPort"] = int(high)
    return entry


def _dns_rule() -> dict[str, Any]:
    selector = {f"k8s:{k}": v for k, v in DNS_LABELS.items()}
    selector[POD_NAMESPACE] = DNS_NAMESPACE
    return {
        "toEndpoints": [{"matchLabels": selector}],
        "toPorts": [
            {
                "ports": [{"port": "53", "protocol": "ANY"}],
                "rules": {"dns": [{"matchPattern": "*"}]},
            }
        ],
    }


def fqdn_selector(allowance: Allowance) -> tuple[str, str]:
    """('matchName', name) for a name, ('matchPattern', '*.x') for a wildcard."""
    if allowance.kind is DestinationKind.WILDCARD:
        return "matchPattern", allowance.destination
    return "matchName", allowance.destination


class CiliumTarget(NeutralTarget):
    """`cilium-policy.yaml`: CiliumClusterwideNetworkPolicy, per pinned namespace a CNP."""

    name = "cilium"
    files = ("cilium-policy.yaml",)
    description = "CiliumClusterwideNetworkPolicy with toFQDNs (AKS ACNS FQDN filtering)"
    supports = ALL_FEATURES - {
        Feature.ROUTES,
        Feature.SERVICE_PUBLICATIONS,
        Feature.DNAT_RULES,
        Feature.SOURCE_IP_GROUPS,
    }
    ignores = frozenset({Feature.ROUTES, Feature.SERVICE_PUBLICATIONS, Feature.DNAT_RULES})

    def _egress(self, allowances: tuple[Allowance, ...]) -> list[dict[str, Any]]:
        names: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        cidrs: dict[tuple[str, str], set[str]] = defaultdict(set)
        for allowance in allowances:
            key = ("udp" if allowance.protocol.value == "udp" else "tcp", allowance.ports)
            if allowance.kind in (DestinationKind.FQDN, DestinationKind.WILDCARD):
                names[key].add(fqdn_selector(allowance))
            else:
                cidrs[key].update(as_cidr(a) for a in self.addresses(allowance))
        rules: list[dict[str, Any]] = [_dns_rule(), {"toEntities": ["cluster"]}]
        for key, selectors in sorted(names.items(), key=lambda i: _sort(*i[0])):
            ordered = [{field: value} for field, value in sorted(selectors)]
            rules.append({"toFQDNs": ordered, "toPorts": [{"ports": [_port(*key)]}]})
        for key, blocks in sorted(cidrs.items(), key=lambda i: _sort(*i[0])):
            rules.append(
                {
                    "toCIDR": sorted(blocks, key=lambda c: (":" in c, c)),
                    "toPorts": [{"ports": [_port(*key)]}],
                }
            )
        return rules

    def _render(self, policy: CompiledPolicy) -> Files:
        documents = []
        note = self.data_note()
        for group in by_workload(self.allowances(policy)):
            workload = group.workload
            who = f"workload {workload.name}" if workload else "every non-system pod"
            spec = {
                "description": f"egress allowlist for {who}" + (f" ({note})" if note else ""),
                "endpointSelector": endpoint_selector(workload),
                "egress": self._egress(group.allowances),
            }
            metadata: dict[str, Any] = {
                "name": object_name(policy.managed_prefix, workload),
                "labels": dict([MANAGED_BY_LABEL]),
            }
            # A workload pinned to one namespace by name gets a namespaced policy there.
            pinned = dict(workload.namespace_labels).get(NAMESPACE_NAME_LABEL) if workload else None
            if pinned is not None:
                metadata["namespace"] = pinned
            kind = "CiliumNetworkPolicy" if pinned else "CiliumClusterwideNetworkPolicy"
            documents.append(
                {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": metadata, "spec": spec}
            )
        return {self.files[0]: to_yaml(documents)}


def _sort(protocol: str, ports: str) -> tuple[str, int, int]:
    low, _, high = ports.partition("-")
    return protocol, int(low), int(high or low)
