"""Fuzz the catalog files (structured and byte-level) through `egress catalog` and `compile`."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from egress.catalog import default_catalog_dir

from fuzz_cli import assert_no_partial_output, fuzz_settings, remove, run, scratch
from fuzz_strategies import DUMPER, SMALL_YAML_VALUES, mutate_tree, mutated_bytes

BASE = (default_catalog_dir() / "AzureCloud.yaml").read_bytes()
TREE = yaml.safe_load(BASE)


@pytest.fixture(scope="module")
def catalog_dir() -> Iterator[Path]:
    with scratch("fuzz-catalog-") as folder:
        yield Path(folder)


def _use(catalog_dir: Path, data: bytes, command: str) -> None:
    (catalog_dir / "AzureCloud.yaml").write_bytes(data)
    if command == "catalog":
        result = run(["catalog", "--cloud", "AzureCloud", "--catalog-dir", str(catalog_dir)])
        assert result.exit_code in (0, 2), result.stderr
        if result.exit_code:
            assert result.stdout == ""  # validated before anything is listed
        return
    out = catalog_dir.parent / f"{catalog_dir.name}-out"
    remove(out)
    argv = ["compile", "--catalog-dir", str(catalog_dir), "--feature", "all", "-o", str(out)]
    result = run(argv)
    assert result.exit_code in (0, 2), result.stderr
    assert_no_partial_output(out, succeeded=result.exit_code == 0)


COMMANDS = st.sampled_from(["catalog", "compile"])


@fuzz_settings(600)
@given(data=mutated_bytes(BASE, max_edits=4), command=COMMANDS)
def test_catalog_bytes(catalog_dir: Path, data: bytes, command: str) -> None:
    _use(catalog_dir, data, command)


@st.composite
def catalog_trees(draw: st.DrawFn) -> Any:
    return mutate_tree(draw, copy.deepcopy(TREE), SMALL_YAML_VALUES, draw(st.integers(1, 3)))


@fuzz_settings(400)
@given(tree=catalog_trees(), command=COMMANDS)
def test_catalog_structured(catalog_dir: Path, tree: Any, command: str) -> None:
    text = yaml.dump(tree, Dumper=DUMPER, allow_unicode=True, sort_keys=False)
    _use(catalog_dir, text.encode("utf-8", "surrogatepass"), command)
