"""A small fixed probe plan and the manifest variants the golden files cover."""

from __future__ import annotations

from egress.k8s import ManifestSpec, pool_target, selector_target
from egress.probe_plan import Check, CheckKind, Expectation, HostSource, ProbePlan

VERSION = "1.2.3"  # injected so golden files do not change with the installed version

# Real-world names here are data only: rendering manifests sends no packets (never contacted).
PLAN = ProbePlan(
    cloud="AzureCloud",
    region="eastus",
    generated_by="egress 1.2.3",
    checks=(
        Check(
            id="api-server/443",
            host="kubernetes.default.svc",
            host_source=HostSource.API_SERVER,
            port=443,
            transport="tcp",
            kind=CheckKind.HTTPS,
            expectation=Expectation.ALLOW,
            destination="*.hcp.eastus.azmk8s.io",
            rule="aks-required/network/apitcp",
            feature="required",
            required=True,
        ),
        Check(
            id="mcr.microsoft.com/443",
            host="mcr.microsoft.com",
            port=443,
            transport="tcp",
            kind=CheckKind.HTTPS,
            expectation=Expectation.ALLOW,
            destination="mcr.microsoft.com",
            rule="aks-required/application/mcr",
            feature="required",
            required=True,
            purpose="Microsoft Container Registry",
        ),
        Check(
            id="canary/github.com/443",
            host="github.com",
            port=443,
            transport="tcp",
            kind=CheckKind.HTTPS,
            expectation=Expectation.DENY,
            destination="github.com",
            rule="canary/github",
            feature="canary",
            required=False,
        ),
    ),
)

VARIANTS: dict[str, ManifestSpec] = {
    "job-one-pool": ManifestSpec(version=VERSION, targets=(pool_target("system"),)),
    "cronjob-two-pools-store": ManifestSpec(
        version=VERSION,
        targets=(pool_target("system"), pool_target("user")),
        cluster="aks-prod-eastus",
        schedule="*/5 * * * *",
        store_size="1Gi",
        storage_class="managed-csi",
    ),
    "cronjob-fleet-postgres": ManifestSpec(
        version=VERSION,
        targets=(pool_target("system"), pool_target("user")),
        cluster="aks-prod-eastus",
        schedule="*/15 * * * *",
        store_size="1Gi",
        store_secret="egress-fleet-store",
        workload_identity_sa="egress-fleet-writer",
    ),
    "job-fleet-postgres-password": ManifestSpec(
        version=VERSION,
        targets=(pool_target("system"),),
        cluster="aks-dev-westeurope",
        store_secret="egress-fleet-store",
    ),
    "job-node-selector": ManifestSpec(
        version=VERSION,
        targets=(selector_target("topology.kubernetes.io/zone=eastus-1,workload=batch"),),
        namespace="netcheck",
        image="myregistry.azurecr.io/egress:1.2.3",
        deadline_seconds=60,
    ),
}
