"""Load the optional user policy file (YAML or TOML) and resolve its defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from egress.errors import PolicyError
from egress.inputs import load_yaml, read_text
from egress.policy.schema import (
    DOC_FIREWALL_PRIVATE_IP,
    DOC_NODE_SUBNET,
    Allow,
    Cluster,
    Firewall,
    Policy,
    Publication,
)

__all__ = [
    "DOC_FIREWALL_PRIVATE_IP",
    "DOC_NODE_SUBNET",
    "Allow",
    "Cluster",
    "Firewall",
    "Policy",
    "Publication",
    "load_policy",
    "validate_policy",
]


def load_policy(path: Path) -> Policy:
    """Read a .yaml/.yml/.toml policy file; errors name the file, field and fix."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise PolicyError(f"{path}: unknown policy format '{suffix}'; use .yaml, .yml or .toml.")
    text = read_text(path, what="policy file", error=PolicyError)
    return validate_policy(_parse(text, suffix, path), origin=str(path))


def _parse(text: str, suffix: str, path: Path) -> Any:
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: not valid TOML ({exc}); fix the syntax there.") from None
    data = load_yaml(text, origin=str(path), error=PolicyError)
    return {} if data is None else data


def validate_policy(raw: Any, *, origin: str) -> Policy:
    """Validate parsed policy data; `origin` names the file in error messages."""
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        raise PolicyError(f"{origin}: the policy must be a mapping of fields (see docs/policy.md).")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:10]:
            msg = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                msg = "is not a known field; check the spelling against docs/policy.md"
            problems.append(f"{_where(raw, error['loc'])}: {msg}")
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise PolicyError(
            f"{origin}: {'; '.join(problems)}{more}; fix "
            f"{'that field' if len(problems) == 1 else 'those fields'} (see docs/policy.md)."
        ) from None


def _where(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """'field allow[2] (name db).ports[0]' from a pydantic location."""
    text = ""
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                text += f" (name '{node['name']}')"
        else:
            text += ("." if text else "") + part
            node = node.get(part) if isinstance(node, dict) else None
    return f"field '{text}'" if text else "(top level)"
