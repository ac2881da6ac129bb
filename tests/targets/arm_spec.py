"""JSON Schemas for REST bodies, built from the vendored ARM spec extract (tests/data/arm-spec).

Swagger 2.0 is close to JSON Schema but not the same: ``$ref``s point across files,
``allOf`` models inheritance, and polymorphism uses ``discriminator`` plus
``x-ms-discriminator-value``. This module inlines the ``$ref``s, flattens ``allOf``,
turns each discriminated base into a ``oneOf`` of its subtypes (each pinning its
discriminator value), drops read-only properties (a PUT body must not carry them) and
closes every object (``additionalProperties: false``) so a misspelt field fails.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).parents[1] / "data" / "arm-spec" / "2026-03-01"
_PASSTHROUGH = ("type", "enum", "minimum", "maximum", "minItems", "maxItems", "uniqueItems")


@cache
def _definitions(file: str) -> dict[str, Any]:
    document = json.loads((SPEC_DIR / file).read_text(encoding="utf-8"))
    definitions: dict[str, Any] = document["definitions"]
    return definitions


def _split_ref(ref: str, current: str) -> tuple[str, str]:
    target, _, pointer = ref.partition("#/definitions/")
    file = Path(target).name if target else current
    return file, pointer


def _subtypes(file: str, base: str) -> list[tuple[str, str, str]]:
    """(file, name, discriminator value) of every definition deriving from base."""
    found = []
    for name, definition in _definitions(file).items():
        for parent in definition.get("allOf", []):
            if _split_ref(parent["$ref"], file) == (file, base):
                found.append((file, name, definition["x-ms-discriminator-value"]))
    return sorted(found)


def _flatten(file: str, name: str) -> dict[str, Any]:
    """One definition with its allOf parents merged in (properties and required)."""
    definition = _definitions(file)[name]
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parent in definition.get("allOf", []):
        parent_file, parent_name = _split_ref(parent["$ref"], file)
        merged = _flatten(parent_file, parent_name)
        properties.update(merged["properties"])
        required.extend(merged["required"])
    for key, value in definition.get("properties", {}).items():
        properties[key] = (file, value)
    required.extend(definition.get("required", []))
    return {"properties": properties, "required": required, "raw": definition}


def _node(file: str, node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return schema_for(*_split_ref(node["$ref"], file))
    out = {key: node[key] for key in _PASSTHROUGH if key in node}
    if "items" in node:
        out["items"] = _node(file, node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _node(file, node["additionalProperties"])
    return out


def _object(file: str, name: str, pinned: tuple[str, str] | None = None) -> dict[str, Any]:
    flat = _flatten(file, name)
    if "x-egress-trimmed" in flat["raw"]:
        return {"type": "object"}
    properties = {
        key: _node(where, value)
        for key, (where, value) in flat["properties"].items()
        if not value.get("readOnly")
    }
    if pinned is not None:
        properties[pinned[0]] = {"const": pinned[1]}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if flat["required"]:
        schema["required"] = sorted(set(flat["required"]))
    return schema


@cache
def schema_for(file: str, name: str) -> dict[str, Any]:
    """A self-contained JSON Schema (draft 2020-12) for one spec definition."""
    definition = _definitions(file)[name]
    if "discriminator" in definition:
        key = definition["discriminator"]
        return {
            "oneOf": [
                _object(sub_file, sub_name, pinned=(key, value))
                for sub_file, sub_name, value in _subtypes(file, name)
            ]
        }
    if definition.get("type") == "object" or "properties" in definition or "allOf" in definition:
        return _object(file, name)
    return _node(file, definition)


def rule_collection_group_schema() -> dict[str, Any]:
    return schema_for("firewallPolicy.json", "FirewallPolicyRuleCollectionGroup")


def route_table_schema() -> dict[str, Any]:
    return schema_for("virtualNetwork.json", "RouteTable")
