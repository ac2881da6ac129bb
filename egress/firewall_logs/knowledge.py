"""What egress knows a destination is for: every catalog entry of the region and the policy.

Derived from the compiler's own intents (egress.compiler.intents.collect) with every feature
enabled, so explain and reconcile read the same expansion compile writes rules from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from egress.catalog import load_catalog
from egress.catalog.names import wildcard_covers
from egress.compiler.intents import USER_FEATURE, Intent, collect, resolve_features, resolve_region
from egress.model import Cloud
from egress.policy import Policy, load_policy


@dataclass(frozen=True, slots=True)
class Knowledge:
    cloud: Cloud
    region: str
    enabled: frozenset[str]  # features the cluster's compile enables (plus "policy")
    intents: tuple[Intent, ...]  # every entry of every feature, and the policy's allowances
    fqdn_tag: str | None  # the tag the compiled policy uses instead of required FQDNs
    tag_covered: tuple[Intent, ...]  # what that tag replaces

    def matching(self, host: str | None, address: str | None, port: int) -> list[Intent]:
        """Intents whose destination and port cover the flow, the most specific first."""
        found = [
            i for i in self.intents if _port_covers(i.ports, port) and _covers(i, host, address)
        ]
        return sorted(found, key=lambda i: (i.dest_kind != "fqdn", i.feature not in self.enabled))


def _port_covers(ports: str, port: int) -> bool:
    lo, _, hi = ports.partition("-")
    return int(lo) <= port <= int(hi or lo)


def _covers(intent: Intent, host: str | None, address: str | None) -> bool:
    if intent.dest_kind == "fqdn":
        return host is not None and host == intent.destination
    if intent.dest_kind == "wildcard_fqdn":
        return host is not None and wildcard_covers(intent.destination, host)
    if intent.dest_kind == "address" and address is not None:
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(
                intent.destination, strict=False
            )
        except ValueError:
            return False  # a service tag: its prefixes are not known offline
    return False


def load_knowledge(
    cloud: str,
    region: str,
    features: tuple[str, ...] = (),
    policy_path: Path | None = None,
    catalog_dir: Path | None = None,
) -> Knowledge:
    catalog = load_catalog(cloud, catalog_dir)
    policy = load_policy(policy_path) if policy_path else Policy()
    resolved_region = resolve_region(catalog, region)
    enabled = resolve_features(catalog, (*features, *policy.features))
    everything = resolve_features(catalog, ("all",))
    source = f"fqdn_lists/{catalog.cloud.value}.yaml"
    collected = collect(
        catalog,
        resolved_region,
        everything,
        policy,
        source=source,
        policy_source=str(policy_path or "(no policy file)"),
    )
    tag = catalog.fqdn_tag if collected.tag_covered else None
    return Knowledge(
        cloud=catalog.cloud,
        region=resolved_region,
        enabled=frozenset({*enabled, USER_FEATURE}),
        intents=collected.intents + collected.tag_covered,
        fqdn_tag=tag,
        tag_covered=collected.tag_covered,
    )
