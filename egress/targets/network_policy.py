"""Kubernetes NetworkPolicy: pods may egress only to DNS and the allowed addresses and ports.

A NetworkPolicy matches addresses and ports, never names. So it pairs with the firewall:
an allowance on an FQDN opens its port to any address (``0.0.0.0/0``, ``::/0``) and the
firewall, which every pod's traffic is routed through, decides by name. Allowances on
IPs, CIDRs and (expanded) service tags are exact. Everything else a pod tries is dropped
in the node before it reaches the firewall.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from egress.k8s.spec import MANAGED_BY_LABEL
from egress.model import Allowance, CompiledPolicy, DestinationKind
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

ANY_ADDRESS = ("0.0.0.0/0", "::/0")
NAME_BASED = (DestinationKind.FQDN, DestinationKind.WILDCARD)


def _ports(protocol: str, ports: str) -> dict[str, Any]:
    low, _, high = ports.partition("-")
    entry: dict[str, Any] = {"protocol": "UDP" if protocol == "udp" else "TCP", "port": int(low)}
    if high:
        entry["endPort"] = int(high)
    return entry


def _dns_rule() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: DNS_NAMESPACE}},
                "podSelector": {"matchLabels": dict(DNS_LABELS)},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


class NetworkPolicyTarget(NeutralTarget):
    """`network-policy.yaml`: default-deny egress except DNS, the CIDRs and the firewall's ports."""

    name = "network-policy"
    files = ("network-policy.yaml",)
    description = "Kubernetes NetworkPolicy (egress: DNS, allowed CIDRs and ports)"
    supports = ALL_FEATURES - {
        Feature.ROUTES,
        Feature.SERVICE_PUBLICATIONS,
        Feature.DNAT_RULES,
        Feature.SOURCE_IP_GROUPS,  # an Azure IP group means nothing inside the cluster
    }
    ignores = frozenset({Feature.ROUTES, Feature.SERVICE_PUBLICATIONS, Feature.DNAT_RULES})

    def _egress(self, allowances: tuple[Allowance, ...]) -> list[dict[str, Any]]:
        blocks: dict[tuple[str, str], set[str]] = defaultdict(set)
        for allowance in allowances:
            protocol = "udp" if allowance.protocol.value == "udp" else "tcp"
            if allowance.kind in NAME_BASED or allowance.kind is DestinationKind.FQDN_TAG:
                blocks[(protocol, allowance.ports)].update(ANY_ADDRESS)
            else:
                blocks[(protocol, allowance.ports)].update(
                    as_cidr(a) for a in self.addresses(allowance)
                )
        rules = [_dns_rule()]
        for (protocol, ports), cidrs in sorted(blocks.items(), key=lambda i: _sort(*i[0])):
            rules.append(
                {
                    "to": [{"ipBlock": {"cidr": c}} for c in sorted(cidrs, key=_cidr_sort)],
                    "ports": [_ports(protocol, ports)],
                }
            )
        return rules

    def _render(self, policy: CompiledPolicy) -> Files:
        documents = []
        for group in by_workload(self.allowances(policy)):
            workload = group.workload
            selector = dict(workload.pod_labels) if workload else {}
            annotations = {
                "egress/fqdns-enforced-by-firewall": " ".join(
                    sorted({a.destination for a in group.allowances if a.kind in NAME_BASED})
                ),
            }
            if workload and workload.namespace_labels:
                annotations["egress/apply-in-namespaces-labelled"] = ",".join(
                    f"{k}={v}" for k, v in workload.namespace_labels
                )
            note = self.data_note()
            if note:
                annotations["egress/service-tags"] = note
            metadata: dict[str, Any] = {
                "name": object_name(policy.managed_prefix, workload),
                "labels": dict([MANAGED_BY_LABEL]),
                "annotations": annotations,
            }
            # A workload pinned to one namespace by name: the policy goes into it.
            pinned = dict(workload.namespace_labels).get(NAMESPACE_NAME_LABEL) if workload else None
            if pinned is not None:
                metadata["namespace"] = pinned
            documents.append(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": metadata,
                    "spec": {
                        "podSelector": {"matchLabels": selector} if selector else {},
                        "policyTypes": ["Egress"],
                        "egress": self._egress(group.allowances),
                    },
                }
            )
        header = (
            "# egress: Kubernetes NetworkPolicy. Apply in each application namespace\n"
            "# (kubectl apply -n NAMESPACE -f network-policy.yaml). It cannot match names:\n"
            "# FQDN allowances open their port to any address and the firewall decides by name.\n"
        )
        return {self.files[0]: header + to_yaml(documents)}


def _sort(protocol: str, ports: str) -> tuple[str, int, int]:
    low, _, high = ports.partition("-")
    return protocol, int(low), int(high or low)


def _cidr_sort(cidr: str) -> tuple[bool, str]:
    return ":" in cidr, cidr
