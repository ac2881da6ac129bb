"""Turn the catalog (for one region) and the user policy into flat, normalised intents."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from egress.catalog import Catalog, Entry, closest, expand_region
from egress.catalog.names import check_cidr, normalise_fqdn, parse_port_spec, wildcard_covers
from egress.catalog.schema import PROBE_API_SERVER
from egress.errors import UsageError
from egress.model import (
    Allowance,
    DestinationKind,
    Protocol,
    Provenance,
    Sources,
    WorkloadSelector,
)
from egress.policy import Policy
from egress.probe_plan import TlsInspection

DestKind = Literal["fqdn", "wildcard_fqdn", "fqdn_tag", "address"]
IntentKey = tuple[str, str, str, str, bool, tuple[str, ...]]  # ..., workload names
USER_FEATURE = "policy"


@dataclass(frozen=True, slots=True)
class Intent:
    """One destination on one protocol and port (range), with where it came from."""

    dest_kind: DestKind
    destination: str  # normalised FQDN, wildcard, tag, service tag or address
    protocol: str  # http | https | tcp | udp
    ports: str  # "443" or "1000-2000"
    provenance: Provenance
    probe: str | None = None  # concrete host, "api-server", "unverifiable: why", or None
    user: bool = False  # from the policy's allow list: goes to the user collections
    tls_inspection: TlsInspection = TlsInspection.ALLOWED  # may an inspecting proxy re-sign it
    workloads: tuple[WorkloadSelector, ...] = ()  # the only sources, when the entry names any

    @property
    def is_app(self) -> bool:
        return self.protocol in ("http", "https")

    @property
    def feature(self) -> str:
        return self.provenance.feature


def intent_key(intent: Intent) -> IntentKey:
    who = tuple(w.name for w in intent.workloads)
    return (intent.dest_kind, intent.destination, intent.protocol, intent.ports, intent.user, who)


def _address_kind(destination: str) -> DestinationKind:
    try:
        ipaddress.ip_address(destination)
    except ValueError:
        pass
    else:
        return DestinationKind.IP
    try:
        ipaddress.ip_network(destination, strict=False)
    except ValueError:
        return DestinationKind.SERVICE_TAG
    return DestinationKind.CIDR


_KIND = {
    "fqdn": DestinationKind.FQDN,
    "wildcard_fqdn": DestinationKind.WILDCARD,
    "fqdn_tag": DestinationKind.FQDN_TAG,
}


def merge(intents: Iterable[Intent], sources: Sources) -> dict[IntentKey, Allowance]:
    """De-duplicate intents into allowances, keeping every provenance (first-appearance order)."""
    first: dict[IntentKey, Intent] = {}
    provs: dict[IntentKey, list[Provenance]] = defaultdict(list)
    for intent in intents:
        key = intent_key(intent)
        first.setdefault(key, intent)
        if intent.provenance not in provs[key]:
            provs[key].append(intent.provenance)
    return {
        key: Allowance(
            sources=Sources(workloads=intent.workloads) if intent.workloads else sources,
            kind=_KIND.get(intent.dest_kind) or _address_kind(intent.destination),
            destination=intent.destination,
            protocol=Protocol(intent.protocol),
            ports=intent.ports,
            provenance=tuple(provs[key]),
            probe=intent.probe,
            user=intent.user,
        )
        for key, intent in first.items()
    }


@dataclass(frozen=True, slots=True)
class Collected:
    intents: tuple[Intent, ...]
    tag_covered: tuple[Intent, ...]  # explicit entries the FQDN tag replaces (probed, no rule)
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


def resolve_features(catalog: Catalog, requested: tuple[str, ...]) -> tuple[str, ...]:
    """Validate feature names against the catalog; 'all' enables every group."""
    names = catalog.feature_names
    if "all" in requested:
        return tuple(sorted(names))
    for name in requested:
        if name not in names:
            raise UsageError(
                f"unknown feature '{name}' for {catalog.cloud.value}; "
                f"{closest(name, [*names, 'all'])}"
            )
    return tuple(sorted({"required", *requested}))


def resolve_region(catalog: Catalog, region: str) -> str:
    lowered = region.strip().lower().replace(" ", "")
    if lowered in catalog.regions:
        return lowered
    raise UsageError(
        f"unknown region '{region}' for {catalog.cloud.value}; "
        f"{closest(lowered, list(catalog.regions))}"
    )


def collect(
    catalog: Catalog,
    region: str,
    features: tuple[str, ...],
    policy: Policy,
    *,
    source: str,
    policy_source: str,
) -> Collected:
    """Expand the enabled catalog entries and the policy's allowances into intents."""
    intents: list[Intent] = []
    covered: list[Intent] = []
    skipped: list[str] = []
    warnings: list[str] = []
    excluded = set(policy.exclude)
    known_ids = {f"{f.name}/{e.id}" for f in catalog.features for e in f.entries}
    known_ids |= {e.id for f in catalog.features for e in f.entries}
    for field, names in (("exclude", excluded), ("probe_hosts", set(policy.probe_hosts))):
        unknown = sorted(names - known_ids)
        if unknown:
            raise UsageError(
                f"policy {field} names unknown catalog entry '{unknown[0]}'; "
                f"{closest(unknown[0], sorted(known_ids))}"
            )
    tag_mode = policy.fqdn_mode == "tag" and catalog.fqdn_tag is not None
    for feature in catalog.features:
        if feature.name not in features:
            continue
        if feature.warning:
            warnings.append(f"feature {feature.name}: {feature.warning}")
        for entry in feature.entries:
            key = f"{feature.name}/{entry.id}"
            reason = _skip_reason(entry, policy, excluded, key)
            if reason:
                skipped.append(f"{key}: {reason}")
                continue
            prov = Provenance(
                entry_id=key,
                feature=feature.name,
                source=source,
                doc=entry.doc or feature.doc,
                purpose=entry.purpose,
                conditions=tuple(entry.conditions),
            )
            probe = _probe_host(entry, key, policy, region) or entry.probe
            for intent in _entry_intents(entry, region, policy, prov, probe):
                if tag_mode and feature.name == "required" and intent.is_app:
                    covered.append(intent)
                else:
                    intents.append(intent)
    if covered and catalog.fqdn_tag:
        tag_prov = Provenance(
            entry_id=f"required/fqdn-tag-{catalog.fqdn_tag.lower()}",
            feature="required",
            source=source,
            doc="https://learn.microsoft.com/azure/firewall/fqdn-tags",
            purpose="Microsoft-maintained FQDN tag covering the AKS required FQDNs.",
        )
        intents.append(Intent("fqdn_tag", catalog.fqdn_tag, "https", "443", tag_prov))
    intents.extend(_allow_intents(policy, policy_source))
    return Collected(tuple(intents), tuple(covered), tuple(skipped), tuple(warnings))


def _probe_host(entry: Entry, key: str, policy: Policy, region: str) -> str | None:
    """The policy's probe host for this entry, checked to lie under the entry's wildcard."""
    host = policy.probe_hosts.get(key) or policy.probe_hosts.get(entry.id)
    if host is None:
        return None
    if entry.type == "wildcard_fqdn":
        wildcard = normalise_fqdn(expand_region(entry.destination, region), wildcard=True)
        if not wildcard_covers(wildcard, host):
            raise UsageError(
                f"policy probe_hosts[{entry.id}] '{host}' is not under {wildcard}; give a host "
                "that the wildcard matches"
            )
    return host


def _skip_reason(entry: Entry, policy: Policy, excluded: set[str], key: str) -> str | None:
    cluster = policy.cluster
    if key in excluded or entry.id in excluded:
        return "excluded by the policy's exclude list"
    if "not_private_cluster" in entry.conditions and cluster.private_cluster:
        return "not needed for private clusters (traffic stays on private networking)"
    if "not_konnectivity" in entry.conditions and cluster.konnectivity:
        return "not needed with the konnectivity agent"
    if entry.destination == "custom_dns_ip" and not cluster.custom_dns_servers:
        return "only with custom DNS servers (cluster.custom_dns_servers is empty)"
    if entry.destination == "api_server_ip" and cluster.api_server_ip is None:
        return (
            "the API server public IP is known only after cluster creation; set "
            "cluster.api_server_ip to add this rule"
        )
    return None


def _entry_intents(
    entry: Entry, region: str, policy: Policy, prov: Provenance, probe: str | None
) -> list[Intent]:
    if entry.type == "placeholder":
        cluster = policy.cluster
        if entry.destination == "custom_dns_ip":
            values = cluster.custom_dns_servers
        else:
            values = (cluster.api_server_ip,) if cluster.api_server_ip else ()
        destinations: list[tuple[str, DestKind]] = [(v, "address") for v in values]
    else:
        raw = expand_region(entry.destination, region)
        if entry.type in ("fqdn", "wildcard_fqdn"):
            raw = normalise_fqdn(raw, wildcard=entry.type == "wildcard_fqdn")
        kind: DestKind = "address"
        if entry.type in ("fqdn", "wildcard_fqdn", "fqdn_tag"):
            kind = entry.type
        destinations = [(raw, kind)]
    hint = expand_region(probe, region) if probe and probe != PROBE_API_SERVER else probe
    out = []
    for destination, kind in destinations:
        for spec in entry.ports:
            proto, lo, hi = parse_port_spec(spec)
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            inspection = TlsInspection(entry.tls_inspection)
            out.append(Intent(kind, destination, proto, ports, prov, hint, False, inspection))
    return out


def workload_selectors(policy: Policy) -> dict[str, WorkloadSelector]:
    """The policy's workloads as model values, by name."""
    return {
        w.name: WorkloadSelector(
            name=w.name,
            namespace_labels=tuple(sorted(w.namespace_labels.items())),
            pod_labels=tuple(sorted(w.pod_labels.items())),
        )
        for w in policy.workloads
    }


def _allow_intents(policy: Policy, source: str) -> list[Intent]:
    out = []
    selectors = workload_selectors(policy)
    for index, allow in enumerate(policy.allow):
        who = tuple(selectors[name] for name in sorted(set(allow.workloads)))
        name = allow.name or f"allow-{index}"
        prov = Provenance(
            entry_id=f"policy/allow[{index}]" + (f" {allow.name}" if allow.name else ""),
            feature=USER_FEATURE,
            source=source,
            doc="",
            purpose=allow.purpose or f"application allowance {name}",
        )
        inspection = TlsInspection(allow.tls_inspection)
        for spec in allow.ports:
            proto, lo, hi = parse_port_spec(spec)
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            if allow.fqdn is not None:
                app = proto in ("http", "https")
                fqdn = normalise_fqdn(allow.fqdn, wildcard=app)
                kind: DestKind = "wildcard_fqdn" if fqdn.startswith("*.") else "fqdn"
                out.append(
                    Intent(
                        kind,
                        fqdn,
                        proto,
                        ports,
                        prov,
                        allow.probe_host,
                        user=True,
                        tls_inspection=inspection,
                        workloads=who,
                    )
                )
            else:
                dest = check_cidr(allow.cidr) if allow.cidr else allow.service_tag or ""
                out.append(
                    Intent(
                        "address",
                        dest,
                        proto,
                        ports,
                        prov,
                        allow.probe_host,
                        user=True,
                        tls_inspection=inspection,
                        workloads=who,
                    )
                )
    return out
