"""`egress reconcile` against the ARM emulator's AKS outboundNetworkDependenciesEndpoints."""

from __future__ import annotations

import json
from typing import Any

from emulator import ArmEmulator

from egress.cli import app

from azure_hub import SUB, Cli

AKS_RG = "rg-aks"
CLUSTER = "aks-1"
DOC = "https://learn.microsoft.com/azure/aks/outbound-rules-control-egress"


def _endpoint(domain: str, port: int, protocol: str, description: str = "") -> dict[str, Any]:
    return {
        "domainName": domain,
        "endpointDetails": [{"port": port, "protocol": protocol, "description": description}],
    }


# AKS's answer for an eastus cluster, in the REST spec example's shape and categories. Planted
# drift: mcrprod.azurecr.io (in no doc) is listed; packages.microsoft.com is listed on Http:80;
# acs-mirror.azureedge.net (being replaced by packages.aks.azure.com) is no longer listed.
AKS_LIST: list[dict[str, Any]] = [
    {
        "category": "apiserver",
        "endpoints": [_endpoint("*.hcp.eastus.azmk8s.io", 443, "Https", "apiserver")],
    },
    {
        "category": "images",
        "endpoints": [
            _endpoint("mcr.microsoft.com", 443, "Https", "mcr"),
            _endpoint("*.data.mcr.microsoft.com", 443, "Https", "mcr cdn"),
            _endpoint("mcrprod.azurecr.io", 443, "Https", "mcr storage"),
        ],
    },
    {
        "category": "artifacts",
        "endpoints": [
            _endpoint("packages.microsoft.com", 80, "Http", "packages"),
            _endpoint("packages.aks.azure.com", 443, "Https", "binaries"),
        ],
    },
    {
        "category": "azure-resource-management",
        "endpoints": [
            _endpoint("management.azure.com", 443, "Https", "arm"),
            _endpoint("login.microsoftonline.com", 443, "Https", "entra"),
        ],
    },
    {"category": "time-sync", "endpoints": [_endpoint("ntp.ubuntu.com", 123, "UDP", "ntp")]},
]


def reconcile(cli: Cli, *extra: str) -> Any:
    args = [
        "reconcile",
        "--subscription",
        SUB,
        "--resource-group",
        AKS_RG,
        "--cluster",
        CLUSTER,
        "--region",
        "eastus",
        *extra,
        *cli.endpoints(),
    ]
    return cli.runner.invoke(app, args)


def test_reconcile_reports_planted_drift_through_paged_answers(arm: ArmEmulator, cli: Cli) -> None:
    arm.add_resource_group(SUB, AKS_RG)
    arm.add_managed_cluster(SUB, AKS_RG, CLUSTER, AKS_LIST)
    result = reconcile(cli, "--format", "json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["aks_endpoints"] == 9  # all three pages (page size 2) were read
    pages = [e.path for e in arm.log if e.path.endswith("outboundNetworkDependenciesEndpoints")]
    assert len(pages) == 3
    drifts = {(d["kind"], d["domain"]): d for d in report["drifts"]}
    assert ("missing", "mcrprod.azurecr.io") in drifts
    assert drifts[("missing", "mcrprod.azurecr.io")]["category"] == "images"
    port = drifts[("port", "packages.microsoft.com")]
    assert port["aks"] == "http:80 (category artifacts)"
    assert port["egress"] == "https:443 (required/packages)"
    extra = drifts[("extra", "acs-mirror.azureedge.net")]
    assert extra["doc"].startswith(DOC)
    # What both sides list is not drift.
    for agreed in ("mcr.microsoft.com", "ntp.ubuntu.com", "*.hcp.eastus.azmk8s.io"):
        assert not any(d["domain"] == agreed for d in report["drifts"]), agreed


def test_reconcile_with_the_fqdn_tag_says_what_the_tag_does_not_cover(
    arm: ArmEmulator, cli: Cli, tmp_path: Any
) -> None:
    arm.add_resource_group(SUB, AKS_RG)
    arm.add_managed_cluster(SUB, AKS_RG, CLUSTER, AKS_LIST)
    policy = tmp_path / "policy.yaml"
    policy.write_text("fqdn_mode: tag\nfeatures: [azure-policy]\n")
    result = reconcile(cli, "--policy", str(policy))
    assert result.exit_code == 3, result.output
    assert "uses the AzureKubernetesService FQDN tag" in result.stdout
    assert "not add-ons or extensions" in result.stdout
    assert "data.policy.core.windows.net (azure-policy/policy-data)" in result.stdout
    assert "mcr.microsoft.com (required/" not in result.stdout.split("FQDN tag")[1]


def test_reconcile_needs_the_endpoints_read_permission(arm: ArmEmulator, cli: Cli) -> None:
    arm.add_resource_group(SUB, AKS_RG)
    arm.add_managed_cluster(SUB, AKS_RG, CLUSTER, AKS_LIST)
    arm.denied_actions.add(
        "Microsoft.ContainerService/managedClusters/outboundNetworkDependenciesEndpoints/read"
    )
    result = reconcile(cli)
    assert result.exit_code == 4
    assert "outboundNetworkDependenciesEndpoints/read" in result.output
    assert "Traceback" not in result.output


def test_reconcile_of_an_unknown_cluster_is_not_found(arm: ArmEmulator, cli: Cli) -> None:
    arm.add_resource_group(SUB, AKS_RG)
    result = reconcile(cli)
    assert result.exit_code == 4
    assert "aks-1" in result.output and "not found" in result.output
