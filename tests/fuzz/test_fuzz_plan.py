"""Fuzz the probe plan (structured and byte-level) through `egress probe manifest --plan`.

The plan is read exactly as `probe run --plan` reads it (one resolver), but manifest only
renders YAML: a fuzzed plan that happens to be valid is never probed, so no packet leaves.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.compiler import CompileRequest, compile_request

from fuzz_cli import assert_no_partial_output, fuzz_settings, remove, run, scratch
from fuzz_strategies import JSON_VALUES, mutate_tree, mutated_bytes

PLAN = compile_request(CompileRequest(region="eastus")).probe_plan.to_json()
TREE = json.loads(PLAN)
SMALL = json.dumps({**TREE, "checks": TREE["checks"][:3]}).encode()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with scratch("fuzz-plan-") as folder:
        yield Path(folder)


def _manifest(workdir: Path, data: bytes) -> None:
    plan = workdir / "plan.json"
    plan.write_bytes(data)
    out = workdir / "manifest.yaml"
    remove(out)
    argv = ["probe", "manifest", "--plan", str(plan), "--node-pool", "system", "-o", str(out)]
    result = run(argv)
    assert result.exit_code in (0, 2), result.stderr
    assert_no_partial_output(out, succeeded=result.exit_code == 0)


@fuzz_settings(800)
@given(data=st.one_of(mutated_bytes(SMALL), st.binary(max_size=100)))
def test_plan_bytes(workdir: Path, data: bytes) -> None:
    _manifest(workdir, data)


@st.composite
def plan_trees(draw: st.DrawFn) -> Any:
    tree = copy.deepcopy({**TREE, "checks": TREE["checks"][:4]})
    return mutate_tree(draw, tree, JSON_VALUES, draw(st.integers(1, 4)))


@fuzz_settings(800)
@given(tree=plan_trees())
def test_plan_structured(workdir: Path, tree: Any) -> None:
    _manifest(workdir, json.dumps(tree, ensure_ascii=False).encode("utf-8", "surrogatepass"))
