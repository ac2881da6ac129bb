"""The policies every target is checked on: hand-built fixtures and real compiles."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from egress.compiler import CompileRequest, compile_request
from egress.model import CompiledPolicy
from egress.targets import TARGETS

from targets.fixtures import full_policy, minimal_policy

POLICIES = Path(__file__).parent / "policies"

COMPILED: dict[str, CompileRequest] = {
    "eastus-default": CompileRequest(region="eastus"),
    "westeurope-full": CompileRequest(
        region="westeurope", policy_path=POLICIES / "full.yaml", features=("all",)
    ),
    "china-chinaeast2": CompileRequest(
        cloud="AzureChinaCloud", region="chinaeast2", features=("all",)
    ),
    "gov-usgovvirginia": CompileRequest(cloud="AzureUSGovernment", region="usgovvirginia"),
}
# Real compiles only the opt-in targets are checked on (goldens of those targets alone).
NEUTRAL_COMPILED: dict[str, CompileRequest] = {
    "eastus-neutral": CompileRequest(region="eastus", policy_path=POLICIES / "neutral.yaml"),
    "eastus-workloads": CompileRequest(region="eastus", policy_path=POLICIES / "workloads.yaml"),
}


@cache
def compiled(case: str) -> CompiledPolicy:
    return compile_request({**COMPILED, **NEUTRAL_COMPILED}[case])


FIXTURES: dict[str, Callable[[], CompiledPolicy]] = {
    "fixture-minimal": minimal_policy,
    "fixture-full": full_policy,
}


def policy_for(case: str) -> CompiledPolicy:
    """Any case by name: a fixture or a real compile."""
    if case in FIXTURES:
        return FIXTURES[case]()
    return compiled(case)


ALL_CASES = [*FIXTURES, *COMPILED]


# The targets a plain `egress compile` writes (Azure); the opt-in ones have their own tests.
DEFAULT_TARGETS = [name for name, target in TARGETS.items() if target.on_by_default]
