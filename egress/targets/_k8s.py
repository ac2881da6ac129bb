"""What the in-cluster policy targets (NetworkPolicy, Cilium) share: who a policy selects."""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from egress.model import Allowance, WorkloadSelector

# kube-dns in AKS: CoreDNS pods labelled k8s-app=kube-dns in kube-system, on 53/UDP and TCP.
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class Selected:
    """The pods one policy object selects, and the allowances it carries."""

    workload: WorkloadSelector | None  # None: every workload the cluster sources cover
    allowances: tuple[Allowance, ...]


def by_workload(allowances: tuple[Allowance, ...]) -> list[Selected]:
    """One group for allowances without workload sources, then one per named workload."""
    shared: list[Allowance] = []
    per: dict[WorkloadSelector, list[Allowance]] = defaultdict(list)
    for allowance in allowances:
        if not allowance.sources.workloads:
            shared.append(allowance)
        for workload in allowance.sources.workloads:
            per[workload].append(allowance)
    groups = [Selected(None, tuple(shared))] if shared or not per else []
    groups += [Selected(w, tuple(a)) for w, a in sorted(per.items(), key=lambda i: i[0].name)]
    return groups


def object_name(prefix: str, workload: WorkloadSelector | None) -> str:
    """A DNS-1123 name: '<prefix>-allowlist' or '<prefix>-allowlist-<workload>'."""
    raw = f"{prefix}-allowlist" + (f"-{workload.name}" if workload else "")
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:63].rstrip("-")


def as_cidr(address: str) -> str:
    """An IP becomes its host prefix (/32 or /128); a CIDR stays as it is."""
    return str(ipaddress.ip_network(address, strict=False))


def to_yaml(documents: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML, sorted keys; libyaml's emitter when present (same bytes, faster)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    parts = [
        yaml.dump(d, Dumper=dumper, sort_keys=True, default_flow_style=False, width=100)
        for d in documents
    ]
    return "---\n" + "---\n".join(parts)
