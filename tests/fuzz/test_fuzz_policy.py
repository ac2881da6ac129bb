"""Fuzz the policy file (YAML and TOML; structured and byte-level) through `egress compile`."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml
from hypothesis import given
from hypothesis import strategies as st

from egress.output import MARKER

from fuzz_cli import assert_no_partial_output, fuzz_settings, remove, run, scratch
from fuzz_strategies import DUMPER, PLAUSIBLE_TEXT, YAML_VALUES, mutate_tree, mutated_bytes

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "examples" / "policy.yaml").read_bytes()
FULL = (REPO / "tests" / "targets" / "policies" / "full.yaml").read_bytes()
FULL_TREE = yaml.safe_load(FULL)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with scratch("fuzz-policy-") as folder:
        yield Path(folder)


def _compile(workdir: Path, name: str, data: bytes, *extra: str) -> None:
    policy = workdir / name
    policy.write_bytes(data)
    out = workdir / "out"
    remove(out)
    result = run(["compile", "--policy", str(policy), "-o", str(out), *extra])
    assert result.exit_code in (0, 2), result.stderr
    assert_no_partial_output(out, succeeded=result.exit_code == 0)
    if result.exit_code == 0:
        assert (out / MARKER).is_file() and (out / "probe-plan.json").is_file()


@fuzz_settings(700)
@given(data=st.one_of(mutated_bytes(EXAMPLE), mutated_bytes(FULL), st.binary(max_size=200)))
def test_policy_bytes(workdir: Path, data: bytes) -> None:
    _compile(workdir, "policy.yaml", data)


@fuzz_settings(300)
@given(data=st.one_of(mutated_bytes(b'[cluster]\nnode_subnets = ["10.42.1.0/24"]\n'),
                      st.binary(max_size=120)))  # fmt: skip
def test_policy_toml_bytes(workdir: Path, data: bytes) -> None:
    _compile(workdir, "policy.toml", data)


@st.composite
def policy_trees(draw: st.DrawFn) -> Any:
    tree = copy.deepcopy(FULL_TREE)
    return mutate_tree(draw, tree, YAML_VALUES, draw(st.integers(1, 4)))


@fuzz_settings(500)
@given(tree=policy_trees(), feature=st.lists(PLAUSIBLE_TEXT, max_size=2))
def test_policy_structured_yaml(workdir: Path, tree: Any, feature: list[str]) -> None:
    text = yaml.dump(tree, Dumper=DUMPER, allow_unicode=True)
    extra = [arg for name in feature for arg in ("--feature", name)]
    _compile(workdir, "policy.yaml", text.encode("utf-8", "surrogatepass"), *extra)


def _tomlable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _tomlable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_tomlable(v) for v in value if v is not None]
    return value


@fuzz_settings(300)
@given(tree=policy_trees())
def test_policy_structured_toml(workdir: Path, tree: Any) -> None:
    try:
        text = tomli_w.dumps(_tomlable(tree) if isinstance(tree, dict) else {"x": 1})
    except (TypeError, ValueError):
        text = "x = 1\n"  # not expressible in TOML (huge int): any file will do
    _compile(workdir, "policy.toml", text.encode("utf-8", "surrogatepass"))
