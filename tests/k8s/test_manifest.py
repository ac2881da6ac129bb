"""Rendered manifests: golden files, Kubernetes schemas, the restricted profile, behaviour."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from egress.errors import UsageError
from egress.k8s import ManifestSpec, pool_target, render_manifest, render_objects
from egress.probe_plan import ProbePlan, parse_plan

from .cases import PLAN, VARIANTS, VERSION
from .restricted import pod_specs, violations

# Three recent minor versions the installed kubernetes-validate ships schemas for; AKS
# supports a window of about three minors at a time.
KUBERNETES_VERSIONS = ("1.34", "1.35", "1.36")

Obj = dict[str, Any]


def kinds(objects: list[Obj]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]


def pods(objects: list[Obj], component: str = "probe") -> list[Obj]:
    return [
        pod
        for obj in objects
        if obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
        for _, pod in pod_specs(obj)
    ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendering_matches_the_golden_file(
    variant: str, golden: Callable[[str, str], None]
) -> None:
    golden(f"k8s/{variant}.yaml", render_manifest(PLAN, VARIANTS[variant]))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendering_is_deterministic_and_the_yaml_is_the_objects(variant: str) -> None:
    text = render_manifest(PLAN, VARIANTS[variant])
    assert text == render_manifest(PLAN, VARIANTS[variant])
    assert list(yaml.safe_load_all(text)) == render_objects(PLAN, VARIANTS[variant])


def test_the_schema_versions_are_shipped_by_kubernetes_validate() -> None:
    shipped = {".".join(v.split(".")[:2]) for v in all_versions()}
    assert set(KUBERNETES_VERSIONS) <= shipped, sorted(shipped)


@pytest.mark.parametrize("k8s_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_is_valid_against_the_kubernetes_schema(
    variant: str, k8s_version: str
) -> None:
    objects = render_objects(PLAN, VARIANTS[variant])
    for obj in objects:
        kubernetes_validate.validate(obj, k8s_version, strict=True)


@pytest.mark.parametrize("k8s_version", KUBERNETES_VERSIONS)
def test_the_schema_check_catches_a_broken_object(k8s_version: str) -> None:
    job = next(o for o in render_objects(PLAN, VARIANTS["job-one-pool"]) if o["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["runAsNonroot"] = True  # misspelt: strict mode rejects it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, k8s_version, strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_pod_meets_the_restricted_profile(variant: str) -> None:
    objects = render_objects(PLAN, VARIANTS[variant])
    assert sum(len(pod_specs(o)) for o in objects) >= len(VARIANTS[variant].targets)
    for obj in objects:
        assert violations(obj) == [], obj["metadata"]["name"]


def test_the_namespace_enforces_the_restricted_profile() -> None:
    namespace = render_objects(PLAN, VARIANTS["job-one-pool"])[0]
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_objects_come_in_apply_order_one_workload_per_pool() -> None:
    objects = render_objects(PLAN, VARIANTS["cronjob-two-pools-store"])
    assert kinds(objects) == [
        "Namespace/egress-probe",
        "ServiceAccount/egress-probe",
        "ConfigMap/egress-probe-plan",
        "PersistentVolumeClaim/egress-results-system",
        "PersistentVolumeClaim/egress-results-user",
        "CronJob/egress-probe-system",
        "CronJob/egress-probe-user",
        "CronJob/egress-report-system",
        "CronJob/egress-report-user",
    ]
    assert all(o["metadata"].get("namespace", "egress-probe") == "egress-probe" for o in objects)


def test_each_pool_pod_is_pinned_to_its_pool_and_says_so() -> None:
    objects = render_objects(PLAN, VARIANTS["cronjob-two-pools-store"])
    for pool, pod in zip(("system", "user"), pods(objects), strict=True):
        assert pod["nodeSelector"] == {
            "kubernetes.azure.com/agentpool": pool,
            "kubernetes.io/os": "linux",
        }
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["EGRESS_NODE_POOL"]["value"] == pool
        assert env["EGRESS_CLUSTER"]["value"] == "aks-prod-eastus"
        downward = {
            n: env[n]["valueFrom"]["fieldRef"]["fieldPath"] for n in env if "valueFrom" in env[n]
        }
        assert downward == {
            "EGRESS_NODE_NAME": "spec.nodeName",
            "EGRESS_POD_NAME": "metadata.name",
            "EGRESS_POD_NAMESPACE": "metadata.namespace",
            "EGRESS_NODE_IP": "status.hostIP",  # joins records with firewall logs
            "EGRESS_POD_IP": "status.podIP",
        }


def test_probe_pods_ask_aks_for_the_api_server_fqdn_and_name_their_plan() -> None:
    objects = render_objects(PLAN, VARIANTS["job-one-pool"])
    job = next(o for o in objects if o["kind"] == "Job")
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubernetes.azure.com/set-kube-service-host-fqdn"] == "true"
    assert annotations["egress.probe/plan-sha256"] == PLAN.plan_hash


def test_the_config_map_holds_the_exact_plan() -> None:
    objects = render_objects(PLAN, VARIANTS["job-one-pool"])
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    assert parse_plan(config_map["data"]["probe-plan.json"], origin="configmap") == PLAN
    job = next(o for o in objects if o["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounted["plan"] + "/probe-plan.json" in container["args"]


def test_a_job_without_store_runs_the_probe_directly_with_bounded_lifetimes() -> None:
    job = next(o for o in render_objects(PLAN, VARIANTS["job-one-pool"]) if o["kind"] == "Job")
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["egress"]
    assert " ".join(container["args"]) == (
        "probe run --plan /etc/egress/probe-plan.json --format jsonl --deadline 120"
    )
    assert spec["activeDeadlineSeconds"] > 120  # the probe's own deadline comes first
    assert spec["backoffLimit"] >= 0
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    fail_fast = spec["podFailurePolicy"]["rules"][0]
    assert fail_fast["action"] == "FailJob"
    assert fail_fast["onExitCodes"]["values"] == [1, 2]  # verdicts are not retried
    assert not any(
        o["kind"] == "PersistentVolumeClaim" for o in render_objects(PLAN, VARIANTS["job-one-pool"])
    )


def test_cron_jobs_never_overlap_and_keep_bounded_history() -> None:
    objects = render_objects(PLAN, VARIANTS["cronjob-two-pools-store"])
    probes = [o for o in objects if o["kind"] == "CronJob" and "probe" in o["metadata"]["name"]]
    assert len(probes) == 2
    for cron in probes:
        spec = cron["spec"]
        assert spec["schedule"] == "*/5 * * * *"
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["successfulJobsHistoryLimit"] > 0
        assert spec["failedJobsHistoryLimit"] > 0
        assert 0 < spec["startingDeadlineSeconds"] < 300
        # A run must end before the next one is due, or Forbid would skip it.
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 300


def test_each_pool_writes_its_own_claim_and_the_reader_mounts_it_read_only() -> None:
    objects = render_objects(PLAN, VARIANTS["cronjob-two-pools-store"])
    claims = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolumeClaim"}
    assert {c["spec"]["accessModes"][0] for c in claims.values()} == {"ReadWriteOnce"}
    assert {c["spec"]["resources"]["requests"]["storage"] for c in claims.values()} == {"1Gi"}
    assert {c["spec"]["storageClassName"] for c in claims.values()} == {"managed-csi"}
    for pool in ("system", "user"):
        for component, read_only in (("probe", False), ("report", True)):
            (pod,) = [
                p
                for p in pods(objects, component)
                if p["nodeSelector"]["kubernetes.azure.com/agentpool"] == pool
            ]
            (store,) = [v for v in pod["volumes"] if v["name"] == "store"]
            assert store["persistentVolumeClaim"]["claimName"] == f"egress-results-{pool}"
            (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "store"]
            assert mount.get("readOnly", False) is read_only
            assert pod["securityContext"]["fsGroup"] == 10001  # the non-root user can write
    readers = [o for o in objects if o["metadata"]["name"].startswith("egress-report-")]
    assert all(r["spec"]["suspend"] is True for r in readers)


def test_the_default_image_is_tagged_with_the_version_and_overridable() -> None:
    (job,) = [o for o in render_objects(PLAN, VARIANTS["job-one-pool"]) if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"ghcr.io/egress/egress:{VERSION}"
    )
    (other,) = [
        o for o in render_objects(PLAN, VARIANTS["job-node-selector"]) if o["kind"] == "Job"
    ]
    assert other["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "myregistry.azurecr.io/egress:1.2.3"
    )


def test_a_node_selector_target_has_a_stable_unique_name_and_no_pool() -> None:
    objects = render_objects(PLAN, VARIANTS["job-node-selector"])
    (job,) = [o for o in objects if o["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/zone": "eastus-1",
        "workload": "batch",
    }
    assert job["metadata"]["name"].startswith("egress-probe-eastus-1-batch-")
    assert "EGRESS_NODE_POOL" not in {e["name"] for e in pod["containers"][0]["env"]}


def test_the_same_pool_twice_is_refused() -> None:
    spec = ManifestSpec(version=VERSION, targets=(pool_target("user"), pool_target("user")))
    with pytest.raises(UsageError, match="'user' is given twice"):
        render_objects(PLAN, spec)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "every 5 minutes"}, "not a cron expression"),
        ({"store_size": "lots"}, "not a storage size"),
        ({"storage_class": "managed-csi"}, "needs --store-pvc"),
        ({"namespace": "Egress_Probe"}, "not a valid namespace"),
        ({"deadline_seconds": 5}, "out of range"),
        ({"cluster": " "}, "--cluster must not be empty"),
    ],
)
def test_bad_options_fail_before_kubectl_would(change: dict[str, Any], message: str) -> None:
    spec = dataclasses.replace(VARIANTS["job-one-pool"], **change)
    with pytest.raises(UsageError, match=message):
        render_objects(PLAN, spec)


def test_a_plan_too_big_for_a_config_map_is_refused() -> None:
    check = PLAN.checks[1]
    # Names are data only (never contacted): rendering sends no packets.
    many = tuple(
        check.model_copy(update={"id": f"host-{i}.example/443", "host": f"host-{i}.example"})
        for i in range(4000)
    )
    huge = ProbePlan(cloud="AzureCloud", region="eastus", generated_by="t", checks=many)
    with pytest.raises(UsageError, match="more than a ConfigMap holds"):
        render_objects(huge, VARIANTS["job-one-pool"])
