"""Every required entry of Microsoft's tables reaches the compiled rules, for each cloud.

The expected strings are copied from the reference tables (aks-outbound-rules.md §1-2 and
the Learn page it cites), not read from the catalog, so a missing catalog entry fails here.
"""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
from pathlib import Path

import pytest

from .helpers import app_allowed, compile_with, net_allowed

FACTS = {
    "cluster": {
        "node_subnets": ["10.42.1.0/24"],
        "custom_dns_servers": ["10.42.0.53"],
        "api_server_ip": "20.81.1.10",
    },
    "firewall": {"private_ip": "10.42.2.4"},
}

# (cloud, region, network rules: (destination, protocol, port), FQDN rules on HTTPS:443)
REFERENCE = {
    "AzureCloud": (
        "eastus",
        [
            ("AzureCloud.<Region>", "udp", 1194),
            ("AzureCloud.<Region>", "tcp", 9000),
            ("ntp.ubuntu.com", "udp", 123),
            ("CustomDNSIP", "udp", 53),
            ("APIServerPublicIP", "tcp", 443),
        ],
        [
            "*.hcp.<location>.azmk8s.io",
            "mcr.microsoft.com",
            "*.data.mcr.microsoft.com",
            "mcr-0001.mcr-msedge.net",
            "management.azure.com",
            "login.microsoftonline.com",
            "packages.microsoft.com",
            "acs-mirror.azureedge.net",
            "packages.aks.azure.com",
        ],
    ),
    "AzureChinaCloud": (
        "chinaeast2",
        [
            ("AzureCloud.<Region>", "udp", 1194),
            ("AzureCloud.<Region>", "tcp", 9000),
            ("AzureCloud.<Region>", "tcp", 22),
            ("ntp.ubuntu.com", "udp", 123),
            ("CustomDNSIP", "udp", 53),
            ("APIServerPublicIP", "tcp", 443),
        ],
        [
            "*.hcp.<location>.cx.prod.service.azk8s.cn",
            "*.tun.<location>.cx.prod.service.azk8s.cn",
            "mcr.microsoft.com",
            "*.data.mcr.microsoft.com",
            "management.chinacloudapi.cn",
            "login.chinacloudapi.cn",
            "packages.microsoft.com",
            "*.azk8s.cn",
            "mcr.azure.cn",
            "*.data.mcr.azure.cn",
        ],
    ),
    "AzureUSGovernment": (
        "usgovvirginia",
        [
            ("AzureCloud.<Region>", "udp", 1194),
            ("AzureCloud.<Region>", "tcp", 9000),
            ("ntp.ubuntu.com", "udp", 123),
            ("CustomDNSIP", "udp", 53),
            ("APIServerPublicIP", "tcp", 443),
        ],
        [
            "*.hcp.<location>.cx.aks.containerservice.azure.us",
            "mcr.microsoft.com",
            "*.data.mcr.microsoft.com",
            "management.usgovcloudapi.net",
            "login.microsoftonline.us",
            "packages.microsoft.com",
            "acs-mirror.azureedge.net",
            "packages.aks.azure.com",
        ],
    ),
}


def _concrete(text: str, region: str) -> str:
    return (
        text.replace("<Region>", region)
        .replace("<location>", region)
        .replace("CustomDNSIP", "10.42.0.53")
        .replace("APIServerPublicIP", "20.81.1.10")
    )


@pytest.mark.parametrize("cloud", sorted(REFERENCE))
def test_every_required_entry_is_allowed(cloud: str, tmp_path: Path) -> None:
    region, network, fqdns = REFERENCE[cloud]
    policy = compile_with(tmp_path, FACTS, cloud=cloud, region=region)
    missing = [
        f"{dest}:{proto}/{port}"
        for dest, proto, port in network
        if not net_allowed(policy, _concrete(dest, region), proto, port)
    ]
    missing += [f for f in fqdns if not app_allowed(policy, _concrete(f, region), "https", 443)]
    assert missing == []
    assert policy.skipped == ()


@pytest.mark.parametrize("cloud", sorted(REFERENCE))
def test_required_fqdns_each_have_a_probe_check(cloud: str, tmp_path: Path) -> None:
    region, _, fqdns = REFERENCE[cloud]
    policy = compile_with(tmp_path, FACTS, cloud=cloud, region=region)
    destinations = {c.destination for c in policy.probe_plan.checks if c.required}
    assert {_concrete(f, region) for f in fqdns} <= destinations


OPTIONAL_PUBLIC = [
    ("security.ubuntu.com", "http", 80),
    ("azure.archive.ubuntu.com", "http", 80),
    ("changelogs.ubuntu.com", "http", 80),
    ("snapshot.ubuntu.com", "https", 443),
    ("nvidia.github.io", "https", 443),
    ("us.download.nvidia.com", "https", 443),
    ("download.docker.com", "https", 443),
    ("onegetcdn.azureedge.net", "https", 443),
    ("go.microsoft.com", "https", 443),
    ("*.mp.microsoft.com", "http", 80),
    ("www.msftconnecttest.com", "http", 80),
    ("ctldl.windowsupdate.com", "http", 80),
    ("*.ods.opinsights.azure.com", "https", 443),
    ("*.oms.opinsights.azure.com", "https", 443),
    ("*.cloud.defender.microsoft.com", "https", 443),
    ("vault.azure.net", "https", 443),
    ("dc.services.visualstudio.com", "https", 443),
    ("*.in.applicationinsights.azure.com", "https", 443),
    ("*.monitoring.azure.com", "https", 443),
    ("global.handler.control.monitor.azure.com", "https", 443),
    ("*.ingest.monitor.azure.com", "https", 443),
    ("*.metrics.ingest.monitor.azure.com", "https", 443),
    ("westeurope.handler.control.monitor.azure.com", "https", 443),
    ("data.policy.core.windows.net", "https", 443),
    ("store.policy.core.windows.net", "https", 443),
    ("westeurope.dp.kubernetesconfiguration.azure.com", "https", 443),
    ("arcmktplaceprod.azurecr.io", "https", 443),
    ("arcmktplaceprod.centralindia.data.azurecr.io", "https", 443),
    ("arcmktplaceprod.japaneast.data.azurecr.io", "https", 443),
    ("arcmktplaceprod.westus2.data.azurecr.io", "https", 443),
    ("arcmktplaceprod.westeurope.data.azurecr.io", "https", 443),
    ("arcmktplaceprod.eastus.data.azurecr.io", "https", 443),
    ("*.ingestion.msftcloudes.com", "https", 443),
    ("*.microsoftmetrics.com", "https", 443),
    ("marketplaceapi.microsoft.com", "https", 443),
]


def test_every_optional_public_entry_is_allowed_with_all_features(tmp_path: Path) -> None:
    policy = compile_with(tmp_path, FACTS, region="westeurope", features=("all",))
    missing = [f"{f} {p}:{n}" for f, p, n in OPTIONAL_PUBLIC if not app_allowed(policy, f, p, n)]
    assert missing == []
    assert net_allowed(policy, "AzureMonitor", "tcp", 443)


@pytest.mark.parametrize(
    ("cloud", "region", "fqdns"),
    [
        (
            "AzureChinaCloud",
            "chinanorth3",
            [
                "login.microsoftonline.cn",
                "*.ods.opinsights.azure.cn",
                "global.handler.control.monitor.azure.cn",
                "*.metrics.ingest.monitor.azure.cn",
                "chinanorth3.handler.control.monitor.azure.cn",
                "data.policy.azure.cn",
                "store.policy.azure.cn",
            ],
        ),
        (
            "AzureUSGovernment",
            "usgovtexas",
            [
                "*.vault.usgovcloudapi.net",
                "*.oms.opinsights.azure.us",
                "global.handler.control.monitor.azure.us",
                "usgovtexas.handler.control.monitor.azure.us",
                "data.policy.azure.us",
                "store.policy.azure.us",
                "usgovtexas.dp.kubernetesconfiguration.azure.us",
                "management.usgovcloudapi.net",
            ],
        ),
    ],
)
def test_sovereign_optional_variants(
    cloud: str, region: str, fqdns: list[str], tmp_path: Path
) -> None:
    policy = compile_with(tmp_path, FACTS, cloud=cloud, region=region, features=("all",))
    assert [f for f in fqdns if not app_allowed(policy, f, "https", 443)] == []
