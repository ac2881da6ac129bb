"""NSG outbound security rules for what an NSG can express: service tags, CIDRs, IPs, ports.

An NSG matches addresses and ports only. FQDNs, wildcards, FQDN tags, IP-group sources
and Kubernetes workload sources cannot be expressed; they are listed under
``notExpressible`` (the firewall enforces them), never silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from egress.errors import UnsupportedFeatureError
from egress.model import Allowance, CompiledPolicy, DestinationKind
from egress.targets.base import Files, json_text
from egress.targets.features import ALL_FEATURES, Feature
from egress.targets.neutral import NeutralTarget

FIRST_PRIORITY = 1000  # leaves 100-999 for the user's own rules
MAX_PRIORITY = 4096


def _reason(allowance: Allowance) -> str | None:
    if allowance.kind in (DestinationKind.FQDN, DestinationKind.WILDCARD):
        return "an NSG matches addresses, not names; the firewall enforces this FQDN"
    if allowance.kind is DestinationKind.FQDN_TAG:
        return "an NSG has no FQDN tags; the firewall enforces this tag"
    if allowance.sources.workloads:
        return "an NSG cannot select Kubernetes workloads"
    if not allowance.sources.addresses:
        return "an NSG cannot use an IP group as source"
    return None


class NsgTarget(NeutralTarget):
    """`nsg-rules.json`: outbound Allow security rules (REST JSON) and what an NSG cannot do."""

    name = "nsg"
    files = ("nsg-rules.json",)
    description = "NSG outbound security rules for the address-based allowances"
    supports = ALL_FEATURES - {Feature.ROUTES, Feature.SERVICE_PUBLICATIONS, Feature.DNAT_RULES}
    ignores = frozenset({Feature.ROUTES, Feature.SERVICE_PUBLICATIONS, Feature.DNAT_RULES})
    expands_service_tags = False  # an NSG takes service tags as they are

    def _render(self, policy: CompiledPolicy) -> Files:
        # (protocol, ports, sources) -> destinations; service tags one rule each (NSG rule)
        grouped: dict[tuple[str, str, tuple[str, ...]], list[Allowance]] = defaultdict(list)
        not_expressible: list[dict[str, str]] = []
        for allowance in self.allowances(policy):
            reason = _reason(allowance)
            if reason is not None:
                not_expressible.append({"allowance": allowance.describe(), "reason": reason})
                continue
            protocol = "Udp" if allowance.protocol.value == "udp" else "Tcp"
            grouped[(protocol, allowance.ports, allowance.sources.addresses)].append(allowance)
        rules: list[dict[str, Any]] = []
        for (protocol, ports, sources), allowances in grouped.items():
            tags = [a for a in allowances if a.kind is DestinationKind.SERVICE_TAG]
            others = [a for a in allowances if a.kind is not DestinationKind.SERVICE_TAG]
            prefixes = sorted({a.destination for a in others})
            destinations: list[tuple[str, list[Allowance], list[str]]] = [
                (tag.destination, [tag], [tag.destination]) for tag in tags
            ]
            if prefixes:
                destinations.append(("addresses", others, prefixes))
            for label, carried, values in destinations:
                priority = FIRST_PRIORITY + 10 * len(rules)
                properties: dict[str, Any] = {
                    "access": "Allow",
                    "direction": "Outbound",
                    "priority": priority,
                    "protocol": protocol,
                    "sourcePortRange": "*",
                    "destinationPortRange": ports,
                    "description": "egress: "
                    + ", ".join(p.entry_id for a in carried for p in a.provenance),
                }
                if len(sources) == 1:
                    properties["sourceAddressPrefix"] = sources[0]
                else:
                    properties["sourceAddressPrefixes"] = list(sources)
                if len(values) == 1:
                    properties["destinationAddressPrefix"] = values[0]
                else:
                    properties["destinationAddressPrefixes"] = values
                name = f"{policy.managed_prefix}-{protocol.lower()}-{ports}-{label}"
                rules.append({"name": name.replace(".", "-")[:80], "properties": properties})
        if rules and rules[-1]["properties"]["priority"] > MAX_PRIORITY:
            raise UnsupportedFeatureError(
                f"target 'nsg' needs {len(rules)} rules but NSG priorities end at "
                f"{MAX_PRIORITY}; allow fewer distinct ports or leave out --target nsg."
            )
        document = {"securityRules": rules, "notExpressible": not_expressible}
        return {self.files[0]: json_text(document)}
