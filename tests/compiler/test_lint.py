"""Preflight lint: AKS address plan, firewall addresses, group clashes, shadowing and limits."""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
from pathlib import Path
from typing import Any

import pytest

from egress.compiler import CompileRequest
from egress.compiler.lint import LintReport, Severity, lint
from egress.errors import CompileError
from egress.policy import validate_policy

from .helpers import compile_with, write_policy


def _codes(data: dict[str, Any]) -> dict[str, Severity]:
    report = lint(validate_policy(data, origin="test"))
    return {f.code: f.severity for f in report.findings}


@pytest.mark.parametrize(
    ("cluster", "code"),
    [
        ({"service_cidr": "169.254.0.0/20"}, "AKS001"),
        ({"service_cidr": "172.16.0.0/12"}, "AKS001"),  # includes 172.30/16 and 172.31/16
        ({"pod_cidr": "192.0.2.0/25"}, "AKS001"),
        ({"service_cidr": "10.0.0.0/12"}, "AKS002"),
        ({"service_cidr": "10.0.0.0/16", "pod_cidr": "10.0.128.0/17"}, "AKS003"),
        ({"service_cidr": "10.0.0.0/16", "node_subnets": ["10.0.4.0/24"]}, "AKS003"),
        ({"service_cidr": "10.0.0.0/16", "dns_service_ip": "10.1.0.10"}, "AKS004"),
        ({"service_cidr": "10.0.0.0/16", "dns_service_ip": "10.0.0.1"}, "AKS005"),
        ({"service_cidr": "10.0.0.0/16", "dns_service_ip": "10.0.0.0"}, "AKS005"),
    ],
)
def test_address_plan_errors(cluster: dict[str, Any], code: str) -> None:
    assert _codes({"cluster": cluster}).get(code) is Severity.ERROR


def test_a_sound_address_plan_is_clean() -> None:
    data = {
        "cluster": {
            "service_cidr": "10.0.0.0/16",
            "pod_cidr": "10.244.0.0/16",
            "dns_service_ip": "10.0.0.10",
            "node_subnets": ["10.42.1.0/24"],
        },
        "firewall": {"private_ip": "10.42.2.4", "public_ip": "20.1.2.3"},
    }
    assert lint(validate_policy(data, origin="t")).findings == ()


def test_dns_ip_without_service_cidr_is_a_warning() -> None:
    assert _codes({"cluster": {"dns_service_ip": "10.0.0.10"}})["AKS006"] is Severity.WARNING


@pytest.mark.parametrize(
    ("firewall", "code"),
    [({"private_ip": "20.1.2.3"}, "FW001"), ({"public_ip": "10.1.2.3"}, "FW002")],
)
def test_firewall_addresses(firewall: dict[str, Any], code: str) -> None:
    assert _codes({"firewall": firewall})[code] is Severity.ERROR


def test_firewall_inside_node_subnet() -> None:
    data = {"cluster": {"node_subnets": ["10.42.0.0/16"]}, "firewall": {"private_ip": "10.42.2.4"}}
    assert _codes(data)["FW003"] is Severity.ERROR


def test_group_priority_and_name_clashes() -> None:
    groups = {
        "aks": {"name": "egress-x", "priority": 300},
        "user": {"name": "egress-x", "priority": 300},
    }
    codes = _codes({"rule_collection_groups": groups})
    assert codes["RCG001"] is Severity.ERROR
    assert codes["RCG002"] is Severity.ERROR


def test_group_outside_the_managed_prefix() -> None:
    codes = _codes({"rule_collection_groups": {"aks": {"name": "prod-aks", "priority": 300}}})
    assert codes["RCG003"] is Severity.ERROR


def test_compile_raises_all_lint_errors_in_one_message(tmp_path: Path) -> None:
    data = {
        "cluster": {"service_cidr": "172.31.0.0/16", "dns_service_ip": "10.9.0.10"},
        "firewall": {"private_ip": "8.8.4.4"},  # data only: never contacted
        "rule_collection_groups": {"aks": {"priority": 500}},
    }
    with pytest.raises(CompileError) as caught:
        compile_with(tmp_path, data)
    message = str(caught.value)
    assert str(tmp_path / "policy.yaml") in message
    for code in ("AKS001", "AKS004", "FW001", "RCG001"):
        assert code in message


def test_shadowed_allowance_is_a_warning_in_the_compiled_policy(tmp_path: Path) -> None:
    data = {
        "cluster": {"node_subnets": ["10.42.1.0/24"]},
        "firewall": {"private_ip": "10.42.2.4"},
        "allow": [{"name": "mcr", "fqdn": "eastus.data.mcr.microsoft.com", "ports": ["https:443"]}],
    }
    policy = compile_with(tmp_path, data)
    assert any("SHD001" in w and "*.data.mcr.microsoft.com" in w for w in policy.warnings)


def test_open_cidr_allowance_warns(tmp_path: Path) -> None:
    data = {"allow": [{"name": "all", "cidr": "0.0.0.0/0", "ports": ["tcp:22"]}]}
    assert _codes(data)["ALW001"] is Severity.WARNING


def test_network_fqdn_limit(tmp_path: Path) -> None:
    allow = [{"fqdn": f"h{i}.contoso.com", "ports": ["tcp:5432"]} for i in range(1001)]
    request = CompileRequest(policy_path=write_policy(tmp_path, {"allow": allow}))
    report = lint(request)
    assert isinstance(report, LintReport)
    assert [f.code for f in report.errors] == ["LIM003"]
    with pytest.raises(CompileError, match="LIM003"):
        compile_with(tmp_path, {"allow": allow})


def test_dnat_destination_limit(tmp_path: Path) -> None:
    dnat = [
        {
            "name": f"svc{i}",
            "firewall_port": 1000 + i,
            "internal_ip": "10.42.1.10",
            "port": 80,
            "selector": {"app": f"svc{i}"},
        }
        for i in range(250)
    ]
    data = {"firewall": {"private_ip": "10.42.2.4", "public_ip": "20.1.2.3"}, "dnat": dnat}
    with pytest.raises(CompileError, match="LIM004"):
        compile_with(tmp_path, data)
    data["dnat"] = dnat[:249]
    assert len(compile_with(tmp_path, data).services) == 249


def test_narrower_cidr_inside_a_broader_one_warns(tmp_path: Path) -> None:
    data = {
        "allow": [
            {"name": "wide", "cidr": "10.50.0.0/16", "ports": ["tcp:5432"]},
            {"name": "narrow", "cidr": "10.50.3.0/24", "ports": ["tcp:5432"]},
            {"name": "other-port", "cidr": "10.50.4.0/24", "ports": ["tcp:6379"]},
        ]
    }
    policy = compile_with(tmp_path, data)
    shadowed = [w for w in policy.warnings if "SHD002" in w]
    assert len(shadowed) == 1
    assert "10.50.3.0/24 on TCP/5432 is inside 10.50.0.0/16" in shadowed[0]


def test_fqdn_tag_outside_public_cloud_warns(tmp_path: Path) -> None:
    policy = compile_with(
        tmp_path, {"fqdn_mode": "tag"}, cloud="AzureUSGovernment", region="usgovtexas"
    )
    assert any("TAG001" in w for w in policy.warnings)
    public = compile_with(tmp_path, {"fqdn_mode": "tag"})
    assert not any("TAG001" in w for w in public.warnings)


def test_lint_errors_are_kept_when_the_compile_also_fails(tmp_path: Path) -> None:
    data = {"cluster": {"service_cidr": "10.0.0.0/8"}, "firewall": {"dns_proxy": False}}
    with pytest.raises(CompileError) as caught:
        compile_with(tmp_path, data)
    message = str(caught.value)
    assert "AKS002" in message
    assert "firewall.dns_proxy: true" in message
