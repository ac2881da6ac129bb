"""The one interface every output target implements, and the checks all targets share."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from egress.errors import UnsupportedFeatureError
from egress.model import CompiledPolicy
from egress.service_tags import ServiceTags
from egress.targets.features import Feature, FeatureUse, feature_uses

Files = dict[str, str]  # relative path inside the output folder -> file text


@dataclass(frozen=True, slots=True)
class RenderInputs:
    """Data beyond the policy that some targets need (never read from the environment)."""

    service_tags: ServiceTags | None = None  # prefixes for targets that cannot use a tag
    # The Linux appliance: where its files are installed (the TLS key and the logs live
    # there too) and the resolver its DNS proxy forwards to (Azure DNS by default).
    appliance_dir: str = "/etc/egress-appliance"
    appliance_upstream_dns: str = "168.63.129.16"


def json_text(value: Any) -> str:
    """Deterministic JSON: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class Target(ABC):
    """Renders a compiled policy into files; refuses, listing every entry, what it cannot express.

    Subclasses set the class attributes and implement :meth:`_render`; they never mutate
    the policy and never read anything but it (no clock, no environment).
    """

    name: ClassVar[str]  # the --target value
    files: ClassVar[tuple[str, ...]]  # relative paths it may write
    description: ClassVar[str]  # one line for `--help` and docs/targets.md
    supports: ClassVar[frozenset[Feature]]  # features it expresses
    # Features it deliberately leaves to other targets (a route table carries no rules).
    ignores: ClassVar[frozenset[Feature]] = frozenset()
    # Written by a plain `egress compile`; opt-in targets need `--target NAME`.
    on_by_default: ClassVar[bool] = True

    def __init__(self, inputs: RenderInputs | None = None) -> None:
        self.inputs = inputs or RenderInputs()

    def uses(self, policy: CompiledPolicy) -> tuple[FeatureUse, ...]:
        """What the policy uses, entry by entry, as this target sees it (default: Azure rules)."""
        return feature_uses(policy)

    def unsupported(self, policy: CompiledPolicy) -> tuple[FeatureUse, ...]:
        """Every entry of the policy using a feature this target can neither express nor ignore."""
        handled = self.supports | self.ignores
        return tuple(use for use in self.uses(policy) if use.feature not in handled)

    def check(self, policy: CompiledPolicy) -> None:
        """Raise UnsupportedFeatureError naming every offending entry, or return."""
        offending = self.unsupported(policy)
        if not offending:
            return
        items = "; ".join(f"{use.where} uses {use.feature}" for use in offending)
        raise UnsupportedFeatureError(
            f"target '{self.name}' ({', '.join(self.files)}) cannot express "
            f"{len(offending)} entr{'y' if len(offending) == 1 else 'ies'}: {items}; "
            f"change those entries or leave out --target {self.name}."
        )

    def render(self, policy: CompiledPolicy) -> Files:
        """Check the policy, then render it; the same policy always gives the same bytes."""
        self.check(policy)
        return self._render(policy)

    def warnings(self, policy: CompiledPolicy) -> tuple[str, ...]:
        """Things the user should know about this target's output (shown in the summary)."""
        del policy
        return ()

    @abstractmethod
    def _render(self, policy: CompiledPolicy) -> Files:
        """Produce the files; called only after :meth:`check` passed."""
