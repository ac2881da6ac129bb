"""Reconcile the catalog egress compiles for a cluster with AKS's own list for that cluster.

AKS's list (outboundNetworkDependenciesEndpoints) names domains only, with ports and protocols;
egress's side is every FQDN and wildcard intent of the cluster's enabled features. A domain
matches when equal, or when either side's wildcard covers the other's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from egress.azure.aks import AksEndpoint
from egress.catalog.names import wildcard_covers
from egress.compiler.intents import USER_FEATURE, Intent
from egress.firewall_logs.knowledge import Knowledge

# What the AzureKubernetesService FQDN tag does not cover (aks-baseline issue 289).
TAG_GAP = "add-ons and extensions (only the core AKS service is in the tag)"


class DriftKind(StrEnum):
    MISSING = "missing"  # AKS lists it, egress does not compile it
    EXTRA = "extra"  # egress compiles it, AKS does not list it
    PORT = "port"  # both name it, with different ports or protocols


@dataclass(frozen=True, slots=True)
class Drift:
    kind: DriftKind
    domain: str
    aks: str  # "https:443 (category images)" or ""
    ours: str  # "https:443 (required/mcr)" or ""
    doc: str  # catalog doc link for our entry
    category: str = ""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    cluster: str
    region: str
    features: tuple[str, ...]
    aks_endpoints: int
    drifts: tuple[Drift, ...]
    fqdn_tag: str | None
    not_in_tag: tuple[str, ...]  # our enabled entries the tag does not cover

    @property
    def drifted(self) -> bool:
        return bool(self.drifts)


def _names_meet(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("*.") and wildcard_covers(a, b.lstrip("*.")):
        return True
    return b.startswith("*.") and wildcard_covers(b, a.lstrip("*."))


def _port_text(protocol: str, port: int | str | None) -> str:
    return f"{protocol or '?'}:{port if port is not None else '?'}"


def _our_text(intent: Intent) -> str:
    return f"{_port_text(intent.protocol, intent.ports)} ({intent.provenance.entry_id})"


def _aks_protocol(endpoint: AksEndpoint) -> str:
    return {"https": "https", "http": "http", "udp": "udp"}.get(endpoint.protocol, "tcp")


def _same_port(endpoint: AksEndpoint, intent: Intent) -> bool:
    if endpoint.port is None:
        return True
    lo, _, hi = intent.ports.partition("-")
    in_range = int(lo) <= endpoint.port <= int(hi or lo)
    return in_range and _aks_protocol(endpoint) == intent.protocol


def reconcile(
    cluster: str, knowledge: Knowledge, endpoints: tuple[AksEndpoint, ...]
) -> Reconciliation:
    ours = [
        i
        for i in knowledge.intents
        if i.feature in knowledge.enabled
        and i.feature != USER_FEATURE
        and i.dest_kind in ("fqdn", "wildcard_fqdn")
    ]
    drifts: list[Drift] = []
    seen: set[tuple[str, str]] = set()
    matched_ours: set[int] = set()
    for endpoint in endpoints:
        key = (endpoint.domain, _port_text(endpoint.protocol, endpoint.port))
        if key in seen:
            continue
        seen.add(key)
        named = [n for n, i in enumerate(ours) if _names_meet(endpoint.domain, i.destination)]
        matched_ours.update(named)
        aks_text = f"{_port_text(endpoint.protocol, endpoint.port)} (category {endpoint.category})"
        if not named:
            drifts.append(
                Drift(DriftKind.MISSING, endpoint.domain, aks_text, "", "", endpoint.category)
            )
        elif not any(_same_port(endpoint, ours[n]) for n in named):
            first = ours[named[0]]
            drifts.append(
                Drift(
                    DriftKind.PORT,
                    endpoint.domain,
                    aks_text,
                    ", ".join(_our_text(ours[n]) for n in named),
                    first.provenance.doc,
                    endpoint.category,
                )
            )
    reported: set[tuple[str, str]] = set()
    for number, intent in enumerate(ours):
        if number in matched_ours:
            continue
        key = (intent.destination, intent.provenance.entry_id)
        if key in reported:
            continue
        reported.add(key)
        drifts.append(
            Drift(
                DriftKind.EXTRA,
                intent.destination,
                "",
                _our_text(intent),
                intent.provenance.doc,
            )
        )
    covered = {(i.destination, i.protocol, i.ports) for i in knowledge.tag_covered}
    not_in_tag: tuple[str, ...] = ()
    if knowledge.fqdn_tag:
        not_in_tag = tuple(
            sorted(
                {
                    f"{i.destination} ({i.provenance.entry_id})"
                    for i in ours
                    if (i.destination, i.protocol, i.ports) not in covered and i.is_app
                }
            )
        )
    order = {DriftKind.MISSING: 0, DriftKind.PORT: 1, DriftKind.EXTRA: 2}
    drifts.sort(key=lambda d: (order[d.kind], d.domain, d.aks, d.ours))
    return Reconciliation(
        cluster=cluster,
        region=knowledge.region,
        features=tuple(sorted(knowledge.enabled - {USER_FEATURE})),
        aks_endpoints=len(endpoints),
        drifts=tuple(drifts),
        fqdn_tag=knowledge.fqdn_tag,
        not_in_tag=not_in_tag,
    )
