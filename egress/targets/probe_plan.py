"""The probe plan the in-cluster prober runs (written as the compiler built it)."""

from __future__ import annotations

from egress.model import CompiledPolicy
from egress.targets.base import Files, Target
from egress.targets.features import ALL_FEATURES


class ProbePlanTarget(Target):
    """`probe-plan.json`: one check per endpoint and port, plus the must-be-blocked canaries."""

    name = "probe-plan"
    files = ("probe-plan.json",)
    description = "versioned probe plan for `egress probe run`"
    supports = frozenset()
    # The plan is built by the compiler from the same rules; this target only serialises it.
    ignores = ALL_FEATURES

    def _render(self, policy: CompiledPolicy) -> Files:
        return {self.files[0]: policy.probe_plan.to_json()}
