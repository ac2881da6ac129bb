"""Load and validate the AKS egress catalog (one YAML file per cloud under fqdn_lists/)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

from egress.catalog.schema import Catalog, Entry, Feature, expand_region
from egress.errors import CatalogError, UsageError
from egress.inputs import load_yaml, read_text
from egress.model import Cloud

__all__ = [
    "Catalog",
    "Entry",
    "Feature",
    "closest",
    "default_catalog_dir",
    "expand_region",
    "load_catalog",
]


def default_catalog_dir() -> Path:
    """fqdn_lists/ of a source checkout, else the copy a wheel installs under share/egress."""
    checkout = Path(__file__).resolve().parents[2] / "fqdn_lists"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "egress" / "fqdn_lists"


def closest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """'did you mean' text listing the nearest valid names (or all when none is near)."""
    near = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    if near:
        return "did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
    return "valid names: " + ", ".join(choices)


def parse_cloud(cloud: str) -> Cloud:
    by_lower = {c.value.lower(): c for c in Cloud}
    if cloud.lower() in by_lower:
        return by_lower[cloud.lower()]
    raise UsageError(
        f"unknown cloud '{cloud}'; {closest(cloud, [c.value for c in Cloud])}",
    )


def load_catalog(cloud: str | Cloud, catalog_dir: Path | None = None) -> Catalog:
    """Read and validate fqdn_lists/<cloud>.yaml; errors name the file, entry, field and fix."""
    parsed = parse_cloud(str(cloud))
    path = (catalog_dir or default_catalog_dir()) / f"{parsed.value}.yaml"
    text = read_text(
        path,
        what="catalog",
        error=CatalogError,
        fix="pass --catalog-dir pointing at a folder with AzureCloud.yaml, "
        "AzureChinaCloud.yaml and AzureUSGovernment.yaml",
    )
    raw = load_yaml(text, origin=str(path), error=CatalogError)
    catalog = validate_catalog(raw, origin=str(path))
    if catalog.cloud is not parsed:
        raise CatalogError(
            f"{path}: says cloud '{catalog.cloud.value}' but the file is for '{parsed.value}'; "
            "fix the 'cloud' field or rename the file."
        )
    return catalog


def validate_catalog(raw: Any, *, origin: str) -> Catalog:
    """Validate parsed catalog data; `origin` names the file in error messages."""
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        raise CatalogError(f"{origin}: the catalog must be a YAML mapping (see docs/catalog.md).")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_where(raw, e['loc'])}: {_clean(e['msg'])}" for e in exc.errors()[:10]]
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise CatalogError(
            f"{origin}: {'; '.join(problems)}{more}; fix "
            f"{'that field' if len(problems) == 1 else 'those fields'} (format: docs/catalog.md)."
        ) from None


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _where(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into 'entry required/mcr field ports'."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "features" and isinstance(parts[1], int):
        features = raw.get("features") or []
        feature = features[parts[1]] if parts[1] < len(features) else {}
        fname = feature.get("name", f"#{parts[1] + 1}") if isinstance(feature, dict) else "?"
        if len(parts) >= 4 and parts[2] == "entries" and isinstance(parts[3], int):
            entries = feature.get("entries") or [] if isinstance(feature, dict) else []
            entry = entries[parts[3]] if parts[3] < len(entries) else {}
            eid = entry.get("id", f"#{parts[3] + 1}") if isinstance(entry, dict) else "?"
            field = ".".join(str(p) for p in parts[4:])
            return f"entry '{fname}/{eid}'" + (f" field '{field}'" if field else "")
        field = ".".join(str(p) for p in parts[2:]) or "(feature)"
        return f"feature '{fname}' field '{field}'"
    return f"field '{'.'.join(str(p) for p in parts) or '(top level)'}'"
