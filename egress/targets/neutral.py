"""The base of targets that read target-neutral allowances instead of the Azure layout.

They see an FQDN tag as the explicit allowances it stands for (``tag_members``), and an
Azure service tag as its address prefixes from the Service Tags data the user supplied.
"""

from __future__ import annotations

from pathlib import PurePath

from egress.errors import UnsupportedFeatureError
from egress.model import Allowance, CompiledPolicy, DestinationKind
from egress.service_tags import SUPPLY_HINT
from egress.targets.base import Target
from egress.targets.features import FeatureUse, allowance_features, allowance_uses


class NeutralTarget(Target):
    """A target over ``policy.allowances``; opt-in unless it says otherwise."""

    on_by_default = False
    # Whether this target turns service tags into prefixes (NSG rules use the tags as-is).
    expands_service_tags = True

    def allowances(self, policy: CompiledPolicy) -> tuple[Allowance, ...]:
        """The allowances with each FQDN tag replaced by the explicit entries it covers."""
        out: list[Allowance] = []
        for allowance in policy.allowances:
            if allowance.kind is DestinationKind.FQDN_TAG and policy.tag_members:
                out.extend(policy.tag_members)
            else:
                out.append(allowance)
        return tuple(out)

    def uses(self, policy: CompiledPolicy) -> tuple[FeatureUse, ...]:
        return allowance_uses(policy, self.allowances(policy))

    def unsupported(self, policy: CompiledPolicy) -> tuple[FeatureUse, ...]:
        # Same answer as the base class, but names only the offending entries: describing
        # every one of 10,000 allowances per target would cost more than rendering them.
        handled = self.supports | self.ignores
        offending = [
            a for a in self.allowances(policy) if not handled.issuperset(allowance_features(a))
        ]
        uses = allowance_uses(policy, tuple(offending))
        return tuple(use for use in uses if use.feature not in handled)

    def check(self, policy: CompiledPolicy) -> None:
        super().check(policy)
        if self.expands_service_tags:
            self._check_service_tags(policy)

    def _check_service_tags(self, policy: CompiledPolicy) -> None:
        data = self.inputs.service_tags
        missing: dict[str, list[str]] = {}
        for allowance in self.allowances(policy):
            if allowance.kind is not DestinationKind.SERVICE_TAG:
                continue
            if data is None or data.expand(allowance.destination) is None:
                ids = [p.entry_id for p in allowance.provenance]
                missing.setdefault(allowance.destination, []).extend(ids)
        if not missing:
            return
        tags = "; ".join(
            f"'{tag}' ({', '.join(dict.fromkeys(ids))})" for tag, ids in sorted(missing.items())
        )
        where = "without Service Tags data" if data is None else f"not found in {data.source}"
        raise UnsupportedFeatureError(
            f"target '{self.name}' cannot use Azure service tag{'s' if len(missing) > 1 else ''} "
            f"{tags} {where}; {SUPPLY_HINT} so they expand to address prefixes, or leave out "
            f"--target {self.name}."
        )

    def addresses(self, allowance: Allowance) -> tuple[str, ...]:
        """IPs and CIDRs an address allowance stands for (a service tag expanded)."""
        if allowance.kind is DestinationKind.SERVICE_TAG:
            data = self.inputs.service_tags
            expanded = data.expand(allowance.destination) if data else None
            assert expanded is not None, "check() refuses unknown service tags"
            return expanded
        return (allowance.destination,)

    def data_note(self) -> str | None:
        """One line naming the Service Tags data used, or None when none was given."""
        data = self.inputs.service_tags
        if data is None:
            return None
        origin = PurePath(data.source).name  # a file name, never a machine-specific path
        return f"Service Tags data: changeNumber {data.change_number} ({data.cloud}, {origin})"
