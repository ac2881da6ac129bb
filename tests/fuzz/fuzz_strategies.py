"""Hypothesis strategies for the fuzz tests: plausible values, junk, and byte-level mutations."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Values a user might plausibly write (valid and almost valid), mixed with junk below.
PLAUSIBLE_TEXT = st.sampled_from(
    [
        "10.42.1.0/24", "10.42.2.4", "203.0.113.7", "::1", "fd00::/8", "0.0.0.0/0", "10.0.0.0/33",
        "a.example.net", "*.example.net", "*.", "*", "example", "xn--bcher-kva.example",
        "bücher.example", "AzureCloud.eastus", "AzureKubernetesService",
        "https:443", "http:80", "tcp:9000", "udp:123", "tcp:1-65535", "tcp:٤٤٣", "tcp:0",
        "https:64001", "tcp:443-80", "ftp:21", "tcp:", ":443", "tcp:+1", "tcp: 1",
        "eastus", "westeurope", "AzureCloud", "AzureChinaCloud", "required", "gpu", "all",
        "00000000-0000-0000-0000-000000000000", "sub-1", "egress", "Egress", "-x", "",
        " ", "\x00", "\u202e", "true", "null", "~", "1e9", "nan", "inf", "-1", "65536",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
        "Microsoft.Network/virtualNetworks/v/subnets/s",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    PLAUSIBLE_TEXT,
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (nested lists and objects of scalars)."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**64), max_value=2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        PLAUSIBLE_TEXT,
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def yaml_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Values YAML can hold (adds NaN/inf floats and odd keys to JSON's)."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.text(max_size=12), PLAUSIBLE_TEXT), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


# Built once: Hypothesis recomputes a fresh recursive strategy's properties on every draw.
JSON_VALUES = json_values()
SMALL_JSON_VALUES = json_values(6)
YAML_VALUES = yaml_values()
SMALL_YAML_VALUES = yaml_values(6)
KEYS = st.one_of(st.text(max_size=10), PLAUSIBLE_TEXT)


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes, *, max_edits: int = 6) -> bytes:
    """`base` with a few random byte edits (replace, insert, delete, duplicate a slice)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(min_value=1, max_value=max_edits))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        operation = draw(st.sampled_from(["replace", "insert", "delete", "duplicate", "cut"]))
        if operation == "replace" and position < len(data):
            data[position] = draw(st.integers(min_value=0, max_value=255))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=16))]
        elif operation == "duplicate":
            end = position + draw(st.integers(min_value=1, max_value=64))
            data[position:position] = data[position:end]
        elif operation == "cut":
            del data[position:]
    return bytes(data)


def mutate_tree(draw: st.DrawFn, tree: Any, values: st.SearchStrategy[Any], edits: int) -> Any:
    """Replace, delete or add a few nodes anywhere in a parsed JSON/YAML document."""
    for _ in range(edits):
        path: list[Any] = []
        node = tree
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)) > 0:
            key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else
                                       range(len(node))))  # fmt: skip
            path.append(key)
            node = node[key]
        value = draw(values)
        if not path:
            if isinstance(tree, dict):
                tree[draw(KEYS)] = value
            continue
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "wrap"]))
        if action == "replace":
            parent[path[-1]] = value
        elif action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return tree
