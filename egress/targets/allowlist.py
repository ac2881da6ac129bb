"""A plain allowlist (CSV and JSON) for any other firewall: one row per allowance."""

from __future__ import annotations

import csv
import io
from typing import Any

from egress.model import Allowance, CompiledPolicy, DestinationKind
from egress.targets.base import Files, json_text
from egress.targets.features import ALL_FEATURES, Feature
from egress.targets.neutral import NeutralTarget

COLUMNS = (
    "destination",
    "kind",
    "port",
    "protocol",
    "feature",
    "condition",
    "purpose",
    "doc",
    "source",
    "addresses",
)
_CONDITION_WORDS = {
    "not_private_cluster": "only for clusters without a private API server",
    "not_konnectivity": "only without the konnectivity agent",
}


def condition(allowance: Allowance) -> str:
    """When the allowance applies, in words: its catalog conditions and optional feature."""
    words: list[str] = []
    for prov in allowance.provenance:
        words.extend(_CONDITION_WORDS.get(c, c) for c in prov.conditions)
        if prov.feature not in ("required", "policy"):
            words.append(f"with feature {prov.feature}")
        if prov.feature == "policy":
            words.append("this cluster's policy")
    if all(p.feature == "required" and not p.conditions for p in allowance.provenance):
        return "always"
    return "; ".join(dict.fromkeys(words))


class AllowlistTarget(NeutralTarget):
    """`allowlist.csv` and `allowlist.json`: destination, port, protocol, why, and the doc."""

    name = "allowlist"
    files = ("allowlist.csv", "allowlist.json")
    description = "plain allowlist (CSV and JSON) for any other firewall"
    # Every allowance is one row; service tags stay tags (with prefixes when data is given).
    supports = ALL_FEATURES - {Feature.ROUTES, Feature.SERVICE_PUBLICATIONS, Feature.DNAT_RULES}
    ignores = frozenset({Feature.ROUTES, Feature.SERVICE_PUBLICATIONS, Feature.DNAT_RULES})
    expands_service_tags = False

    def rows(self, policy: CompiledPolicy) -> list[dict[str, Any]]:
        data = self.inputs.service_tags
        rows = []
        for allowance in self.allowances(policy):
            addresses: tuple[str, ...] = ()
            if allowance.kind is DestinationKind.SERVICE_TAG and data is not None:
                addresses = data.expand(allowance.destination) or ()
            rows.append(
                {
                    "destination": allowance.destination,
                    "kind": allowance.kind.value,
                    "port": allowance.ports,
                    "protocol": allowance.protocol.value,
                    "feature": "; ".join(dict.fromkeys(p.feature for p in allowance.provenance)),
                    "condition": condition(allowance),
                    "purpose": " ".join(dict.fromkeys(p.purpose for p in allowance.provenance)),
                    "doc": " ".join(dict.fromkeys(p.doc for p in allowance.provenance if p.doc)),
                    "source": ", ".join(p.entry_id for p in allowance.provenance),
                    "addresses": list(addresses),
                }
            )
        return rows

    def _render(self, policy: CompiledPolicy) -> Files:
        rows = self.rows(policy)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "addresses": " ".join(row["addresses"])})
        document: dict[str, Any] = {
            "cloud": policy.cloud.value,
            "region": policy.region,
            "sources": list(policy.sources.addresses) or list(policy.sources.ip_groups),
            "allowances": rows,
        }
        if self.inputs.service_tags is not None:
            document["serviceTags"] = {"changeNumber": self.inputs.service_tags.change_number}
        return {"allowlist.csv": buffer.getvalue(), "allowlist.json": json_text(document)}
