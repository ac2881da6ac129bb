"""The user policy file: YAML and TOML, defaults, and errors that name file, field and fix."""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
from pathlib import Path
from typing import Any

import pytest
import yaml

from egress.errors import PolicyError
from egress.model import NetworkPlugin
from egress.policy import load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_documented_example_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.cluster.network_plugin is NetworkPlugin.AZURE_CNI_OVERLAY
    assert policy.firewall.private_ip == "10.42.2.4"
    assert [a.name for a in policy.allow] == ["github", "github-objects", "postgres"]
    assert policy.dnat[0].selector == {"app": "store-front"}


def test_toml_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(
        'features = ["gpu"]\n[cluster]\nnetwork_plugin = "kubenet"\n'
        'node_subnets = ["10.1.0.0/24"]\n'
        '[firewall]\nprivate_ip = "10.1.9.4"\n',
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.cluster.network_plugin is NetworkPlugin.KUBENET
    assert policy.features == ("gpu",)


def test_empty_yaml_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_policy(path).fqdn_mode == "explicit"


BAD = [
    (
        "bad fqdn",
        {"allow": [{"name": "a", "fqdn": "bad..name.com", "ports": ["https:443"]}]},
        "field 'allow[0] (name 'a')'",
        "invalid label",
    ),
    (
        "wildcard in the wrong place",
        {"allow": [{"name": "w", "fqdn": "a.*.com", "ports": ["https:443"]}]},
        "allow[0]",
        "wrong place",
    ),
    (
        "wildcard on a network port",
        {"allow": [{"name": "w", "fqdn": "*.x.com", "ports": ["tcp:5432"]}]},
        "allow[0]",
        "only in application",
    ),
    (
        "port out of range",
        {"allow": [{"name": "p", "fqdn": "x.com", "ports": ["tcp:0"]}]},
        "allow[0] (name 'p').ports",
        "out of range",
    ),
    (
        "unknown protocol",
        {"allow": [{"name": "p", "fqdn": "x.com", "ports": ["sctp:9"]}]},
        "allow[0] (name 'p').ports",
        "unknown protocol 'sctp'",
    ),
    (
        "invalid cidr",
        {"cluster": {"node_subnets": ["10.0.0.1/24"]}},
        "cluster.node_subnets",
        "host bits set",
    ),
    (
        "duplicate allow names",
        {
            "allow": [
                {"name": "d", "fqdn": "a.com", "ports": ["https:443"]},
                {"name": "d", "fqdn": "b.com", "ports": ["https:443"]},
            ]
        },
        "(top level)",
        "duplicate names: d",
    ),
    ("unknown field", {"firewal": {}}, "field 'firewal'", "not a known field"),
    (
        "unknown plugin",
        {"cluster": {"network_plugin": "calico"}},
        "cluster.network_plugin",
        "kubenet",
    ),
    (
        "pod subnets with overlay",
        {"cluster": {"network_plugin": "azure-cni-overlay", "pod_subnets": ["10.9.0.0/16"]}},
        "cluster",
        "only used with network_plugin azure-cni-pod-subnet",
    ),
    (
        "dnat without public ip",
        {
            "dnat": [
                {
                    "name": "web",
                    "firewall_port": 80,
                    "internal_ip": "10.0.0.5",
                    "port": 80,
                    "selector": {"app": "web"},
                }
            ]
        },
        "(top level)",
        "firewall.public_ip",
    ),
    (
        "dnat to a public ip",
        {
            "firewall": {"public_ip": "20.1.1.1"},
            "dnat": [
                {
                    "name": "web",
                    "firewall_port": 80,
                    "internal_ip": "20.0.0.5",
                    "port": 80,
                    "selector": {"app": "web"},
                }
            ],
        },
        "dnat[0] (name 'web').internal_ip",
        "private address",
    ),
    (
        "priority out of range",
        {"rule_collection_groups": {"aks": {"priority": 99}}},
        "rule_collection_groups.aks.priority",
        "100",
    ),
]


@pytest.mark.parametrize(("data", "where", "what"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_policy_names_file_field_and_fix(
    tmp_path: Path, data: dict[str, Any], where: str, what: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert where in message
    assert what in message
    assert "fix" in message


def test_unknown_extension_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"unknown policy format '\.json'"):
        load_policy(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("cluster:\n  node_subnets: [10.0.0.0/24\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML at line"):
        load_policy(path)


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[cluster\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_top_level_list_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(path)
