"""The test hub in the emulator (policy, vnet, subnet) and SDK/CLI wiring to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.identity import ClientSecretCredential
from emulator import ArmEmulator
from typer.testing import CliRunner

from egress.azure.boundary import RetrySettings
from egress.azure.cloud import Connection, endpoints_for
from egress.cli import app

SUB = "11111111-1111-4111-8111-111111111111"
RG = "rg-hub"
POLICY = "fp-hub"
TABLE = "rt-aks"
VNET = "vnet-aks"
SUBNET = "aks-subnet"
NET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network"
POLICY_ID = f"{NET}/firewallPolicies/{POLICY}"
TABLE_ID = f"{NET}/routeTables/{TABLE}"
VNET_ID = f"{NET}/virtualNetworks/{VNET}"
SUBNET_ID = f"{VNET_ID}/subnets/{SUBNET}"
NSG_ID = f"{NET}/networkSecurityGroups/nsg-aks"

SUBNET_PROPERTIES: dict[str, Any] = {
    "addressPrefix": "10.42.1.0/24",
    "networkSecurityGroup": {"id": NSG_ID},
    "serviceEndpoints": [{"service": "Microsoft.Storage", "locations": ["eastus"]}],
    "delegations": [
        {
            "name": "aci",
            "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"},
        }
    ],
    "privateEndpointNetworkPolicies": "Disabled",
}
FAST_RETRY = RetrySettings(
    attempts=3, backoff_seconds=0.05, max_wait_seconds=2.0, conflict_attempts=15
)


AKS_TABLE = "aks-agentpool-12345678-routetable"
AKS_TABLE_ID = f"{NET}/routeTables/{AKS_TABLE}"


def rcg_id(name: str) -> str:
    return f"{POLICY_ID}/ruleCollectionGroups/{name}"


def seed_hub(arm: ArmEmulator, *, dns_proxy: bool = True) -> None:
    arm.add_resource_group(SUB, RG)
    arm.seed(
        POLICY_ID,
        {
            "location": "eastus",
            "properties": {"sku": {"tier": "Standard"}, "dnsSettings": {"enableProxy": dns_proxy}},
        },
    )
    arm.seed(
        VNET_ID,
        {
            "location": "eastus",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.42.0.0/16"]},
                "subnets": [{"name": SUBNET, "properties": SUBNET_PROPERTIES}],
            },
        },
    )


def connection(arm: ArmEmulator, subscription: str = SUB) -> Connection:
    credential = ClientSecretCredential(
        "tenant-1",
        "client-1",
        "secret-1",
        authority=arm.url,
        disable_instance_discovery=True,
        connection_verify=str(arm.ca_path),
    )
    return Connection(
        subscription_id=subscription,
        endpoints=endpoints_for("AzureCloud", arm_endpoint=arm.url, authority_host=arm.url),
        credential=credential,
        connection_verify=str(arm.ca_path),
        polling_interval=0.01,
        retry=FAST_RETRY,
    )


@dataclass
class Cli:
    """Runs `egress ...` in-process with a real DefaultAzureCredential aimed at the emulator."""

    arm: ArmEmulator
    runner: CliRunner

    def scope(self, *, table: str = TABLE, subnet: bool = True) -> list[str]:
        args = ["--subscription", SUB, "--resource-group", RG, "--firewall-policy", POLICY]
        args += ["--route-table", table]
        return args + (["--subnet-id", SUBNET_ID] if subnet else [])

    def endpoints(self) -> list[str]:
        return ["--arm-endpoint", self.arm.url, "--authority-host", self.arm.url]

    def run(self, *args: str, scope: bool = True, stdin: str | None = None) -> Any:
        argv = [*args, *(self.scope() if scope else []), *self.endpoints()]
        return self.runner.invoke(app, [*argv, "--poll-interval", "0.01"], input=stdin)


def seed_kubenet_table(arm: ArmEmulator) -> list[dict[str, Any]]:
    """AKS's kubenet route table (one route per node pod CIDR), associated with the subnet."""
    routes = [
        {
            "name": f"aks-nodepool1-{i}",
            "properties": {
                "addressPrefix": f"10.244.{i}.0/24",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": f"10.42.1.{4 + i}",
            },
        }
        for i in range(3)
    ]
    arm.seed(
        AKS_TABLE_ID,
        {
            "location": "eastus",
            "tags": {"aks-managed-cluster-name": "aks1"},
            "properties": {"routes": routes},
        },
    )
    arm.seed(SUBNET_ID, {"properties": {**SUBNET_PROPERTIES, "routeTable": {"id": AKS_TABLE_ID}}})
    return [arm.resource(f"{AKS_TABLE_ID}/routes/{r['name']}") or {} for r in routes]
