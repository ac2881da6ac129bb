"""The catalog files load for every cloud, and every malformed entry names file, entry and fix."""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from egress.catalog import default_catalog_dir, load_catalog
from egress.errors import CatalogError, UsageError
from egress.model import Cloud


@pytest.mark.parametrize("cloud", list(Cloud))
def test_each_cloud_loads(cloud: Cloud) -> None:
    catalog = load_catalog(cloud)
    assert catalog.cloud is cloud
    assert "required" in catalog.feature_names
    assert catalog.regions == tuple(sorted(catalog.regions))


def test_cloud_names_are_case_insensitive() -> None:
    assert load_catalog("azurechinacloud").cloud is Cloud.AZURE_CHINA_CLOUD


def test_unknown_cloud_suggests_the_closest() -> None:
    with pytest.raises(UsageError, match="did you mean 'AzureCloud'"):
        load_catalog("AzureCloudd")


def _broken_catalog(tmp_path: Path, edit: Any) -> Path:
    """Copy AzureCloud.yaml, apply `edit` to the parsed data, write it back."""
    shutil.copy(default_catalog_dir() / "AzureCloud.yaml", tmp_path / "AzureCloud.yaml")
    path = tmp_path / "AzureCloud.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return tmp_path


def _entry(data: dict[str, Any], entry_id: str) -> dict[str, Any]:
    for feature in data["features"]:
        for entry in feature["entries"]:
            if entry["id"] == entry_id:
                return entry
    raise KeyError(entry_id)


BAD_ENTRIES = [
    ("bad fqdn", "mcr", {"destination": "mcr..microsoft.com"}, "destination|invalid label"),
    ("wildcard in the middle", "mcr", {"destination": "mcr.*.microsoft.com"}, "wrong place"),
    ("wildcard in a plain fqdn", "mcr", {"destination": "*.microsoft.com"}, "wildcard"),
    ("port out of range", "mcr", {"ports": ["https:70000"]}, "out of range"),
    ("unknown protocol", "mcr", {"ports": ["quic:443"]}, "unknown protocol 'quic'"),
    (
        "invalid cidr",
        "mcr",
        {"type": "cidr", "destination": "10.0.0.300/24", "ports": ["tcp:1"]},
        "not a valid IP",
    ),
    (
        "unknown placeholder",
        "custom-dns",
        {"destination": "dns_ip"},
        "placeholder 'dns_ip' is unknown",
    ),
    ("wildcard in a network rule", "mcr-data", {"ports": ["tcp:443"]}, "only with http/https"),
    ("probe not under wildcard", "mcr-data", {"probe": "mcr.microsoft.com"}, "not under"),
    (
        "unknown region placeholder",
        "hcp",
        {"destination": "*.hcp.{zone}.azmk8s.io"},
        "unknown placeholder",
    ),
    ("unknown condition", "hcp", {"conditions": ["not_on_tuesdays"]}, "conditions"),
    ("unknown field", "mcr", {"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(
    ("entry_id", "change", "expected"),
    [case[1:] for case in BAD_ENTRIES],
    ids=[case[0] for case in BAD_ENTRIES],
)
def test_bad_entry_names_file_entry_field_and_fix(
    tmp_path: Path, entry_id: str, change: dict[str, Any], expected: str
) -> None:
    catalog_dir = _broken_catalog(tmp_path, lambda data: _entry(data, entry_id).update(change))
    with pytest.raises(CatalogError) as caught:
        load_catalog("AzureCloud", catalog_dir)
    message = str(caught.value)
    assert str(catalog_dir / "AzureCloud.yaml") in message
    assert f"/{entry_id}'" in message
    assert "fix" in message
    assert any(part in message for part in expected.split("|")), message


def test_wildcard_without_probe_hint_is_rejected(tmp_path: Path) -> None:
    catalog_dir = _broken_catalog(tmp_path, lambda data: _entry(data, "mcr-data").pop("probe"))
    with pytest.raises(CatalogError, match=r"'required/mcr-data'.*probe hint"):
        load_catalog("AzureCloud", catalog_dir)


def test_duplicate_entry_ids_are_named(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        _entry(data, "arm")["id"] = "mcr"

    with pytest.raises(CatalogError, match="duplicate entry ids: mcr"):
        load_catalog("AzureCloud", _broken_catalog(tmp_path, edit))


def test_duplicate_feature_names_are_named(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["features"][2]["name"] = "gpu"
        data["features"][3]["name"] = "gpu"

    with pytest.raises(CatalogError, match="duplicate feature names: gpu"):
        load_catalog("AzureCloud", _broken_catalog(tmp_path, edit))


def test_duplicate_regions_are_named(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["regions"].append("eastus")

    with pytest.raises(CatalogError, match=r"field 'regions'.*eastus"):
        load_catalog("AzureCloud", _broken_catalog(tmp_path, edit))


def test_cloud_field_must_match_the_file_name(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["cloud"] = "AzureUSGovernment"

    with pytest.raises(CatalogError, match="says cloud 'AzureUSGovernment'"):
        load_catalog("AzureCloud", _broken_catalog(tmp_path, edit))


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    (tmp_path / "AzureCloud.yaml").write_text("schema_version: 1\nfeatures: [\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML at line"):
        load_catalog("AzureCloud", tmp_path)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"cannot read the catalog.*--catalog-dir"):
        load_catalog("AzureCloud", tmp_path)


def test_reserved_feature_names_are_rejected(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["features"][1]["name"] = "canary"

    with pytest.raises(CatalogError, match="feature name canary is reserved"):
        load_catalog("AzureCloud", _broken_catalog(tmp_path, edit))


@pytest.mark.parametrize("cloud", list(Cloud))
def test_every_region_compiles_with_every_feature(cloud: Cloud) -> None:
    from egress.compiler import CompileRequest, compile_request
    from egress.model import ApplicationRule

    for region in load_catalog(cloud).regions:
        policy = compile_request(
            CompileRequest(cloud=cloud.value, region=region, features=("all",))
        )
        fqdns = {
            f for r in policy.all_rules() if isinstance(r, ApplicationRule) for f in r.target_fqdns
        }
        regional = [f for f in fqdns if region in f]
        assert regional, region  # the {location} placeholders were expanded for this region
        assert not any("{" in f for f in fqdns)
        assert f"AzureCloud.{region}" in {
            a for r in policy.all_rules() for a in getattr(r, "destination_addresses", ())
        }
