"""Kubernetes objects for the in-cluster probe, built as plain dicts from a ManifestSpec.

Every pod meets the Pod Security Standard "restricted" profile; the namespace enforces it,
so anything else a user starts there (the report reader included) must meet it too.
"""

from __future__ import annotations

import shlex
from typing import Any

from egress.k8s.spec import MANAGED_BY_LABEL, ManifestSpec, Target
from egress.targets.probe_plan import ProbePlanTarget

Obj = dict[str, Any]

RUN_AS_UID = 10001  # the non-root user the Dockerfile creates
PLAN_DIR = "/etc/egress"
(PLAN_FILE,) = ProbePlanTarget.files
STORE_DIR = "/var/lib/egress"
STORE_FILE = f"{STORE_DIR}/results.db"
REPORT_FILE = f"{STORE_DIR}/report.html"
PENDING_FILE = "pending.jsonl"  # runs the fleet store could not take yet (on the volume)
STORE_SECRET_DIR = "/var/run/secrets/egress-store"
STORE_SECRET_DSN_KEY = "dsn"
STORE_SECRET_PASSWORD_KEY = "password"  # optional; the DSN or Entra ID may supply it
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
CONTAINER = "probe"
SERVICE_ACCOUNT = "egress-probe"
CONFIG_MAP = "egress-probe-plan"
PLAN_HASH_ANNOTATION = "egress.probe/plan-sha256"
TARGET_LABEL = "egress.probe/target"
# Margin between the probe's own --deadline and the Job's hard activeDeadlineSeconds, for
# image pull, volume attach and report regeneration; the probe always finishes on its own.
DEADLINE_MARGIN_SECONDS = 120
JOB_TTL_SECONDS = 86400  # finished Jobs (and their logs) stay for a day
BACKOFF_LIMIT = 2  # only environment failures are retried; verdicts fail the Job at once
# Exit codes that are verdicts or bad input (ExitCode.NON_COMPLIANT, ExitCode.USAGE): a retry
# would only repeat them, so they fail the Job immediately (podFailurePolicy).
VERDICT_EXIT_CODES = (1, 2)
REPORT_READER_SCHEDULE = "0 0 1 1 *"  # never used: the reader CronJob stays suspended


def job_deadline_seconds(spec: ManifestSpec) -> int:
    return spec.deadline_seconds + DEADLINE_MARGIN_SECONDS


def labels(spec: ManifestSpec, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "egress-probe",
        "app.kubernetes.io/part-of": "egress",
        "app.kubernetes.io/component": component,
        MANAGED_BY_LABEL[0]: MANAGED_BY_LABEL[1],
        "app.kubernetes.io/version": spec.version,
    }


def target_labels(spec: ManifestSpec, component: str, target: Target | None) -> dict[str, str]:
    found = labels(spec, component)
    if target is not None:
        found[TARGET_LABEL] = target.name
    return found


def metadata(spec: ManifestSpec, name: str, component: str, target: Target | None = None) -> Obj:
    """Metadata of a namespaced object."""
    return {
        "name": name,
        "namespace": spec.namespace,
        "labels": target_labels(spec, component, target),
    }


def namespace(spec: ManifestSpec) -> Obj:
    meta: Obj = {"name": spec.namespace, "labels": labels(spec, "namespace")}
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        }
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def service_account(spec: ManifestSpec) -> Obj:
    # The probe never talks to the Kubernetes API, so no token is mounted at all.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(spec, SERVICE_ACCOUNT, "probe"),
        "automountServiceAccountToken": False,
    }


def plan_config_map(spec: ManifestSpec, plan_json: str, plan_hash: str) -> Obj:
    meta = metadata(spec, CONFIG_MAP, "plan")
    meta["annotations"] = {PLAN_HASH_ANNOTATION: plan_hash}
    data = {PLAN_FILE: plan_json}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def store_claim_name(target: Target) -> str:
    return f"egress-results-{target.name}"


def store_claim(spec: ManifestSpec, target: Target) -> Obj:
    """One ReadWriteOnce claim per target: only one pool's pod may write one disk at a time."""
    claim_spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.store_size}},
    }
    if spec.storage_class is not None:
        claim_spec["storageClassName"] = spec.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(spec, store_claim_name(target), "store", target),
        "spec": claim_spec,
    }


def probe_job(spec: ManifestSpec, target: Target, plan_hash: str) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(spec, f"egress-probe-{target.name}", "probe", target),
        "spec": _job_spec(spec, target, plan_hash),
    }


def probe_cron_job(spec: ManifestSpec, target: Target, plan_hash: str) -> Obj:
    assert spec.schedule is not None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(spec, f"egress-probe-{target.name}", "probe", target),
        "spec": {
            "schedule": spec.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 120,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": target_labels(spec, "probe", target)},
                "spec": _job_spec(spec, target, plan_hash),
            },
        },
    }


def report_reader(spec: ManifestSpec, target: Target) -> Obj:
    """A suspended CronJob used only as a template: `kubectl create job --from=cronjob/...`.

    Its pod mounts the target's store and prints the latest report to its log, so a user
    gets the report with kubectl alone and nothing keeps the ReadWriteOnce disk attached.
    """
    container = _container(
        spec,
        target,
        ["cat", REPORT_FILE],
        mounts=[{"name": "store", "mountPath": STORE_DIR, "readOnly": True}],
        env=False,
    )
    container["name"] = "report"
    volumes: list[Obj] = [_store_volume(target), _tmp_volume()]
    pod = _pod_spec(target, container, volumes)
    job_spec: Obj = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 3600,
        "template": {"metadata": {"labels": target_labels(spec, "report", target)}, "spec": pod},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(spec, f"egress-report-{target.name}", "report", target),
        "spec": {
            "schedule": REPORT_READER_SCHEDULE,
            "suspend": True,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": job_spec},
        },
    }


def probe_command(spec: ManifestSpec) -> tuple[list[str], list[str]]:
    """(command, args) for the probe container; with a store, also regenerate the report."""
    probe = [
        "egress",
        "probe",
        "run",
        "--plan",
        f"{PLAN_DIR}/{PLAN_FILE}",
        "--format",
        "jsonl",
        "--deadline",
        str(spec.deadline_seconds),
    ]
    if spec.pushgateway is not None:
        probe += ["--pushgateway", spec.pushgateway]
    if spec.store_secret is not None:  # the fleet store: EGRESS_STORE comes from the Secret
        folder = STORE_DIR if spec.store_size is not None else "/tmp"
        probe += ["--pending", f"{folder}/{PENDING_FILE}"]
        return probe[:1], probe[1:]
    if spec.store_size is None:
        return probe[:1], probe[1:]
    probe += ["--store", STORE_FILE]
    report = ["egress", "report", "--store", STORE_FILE, "--format", "html"]
    report += ["--output", REPORT_FILE]
    # stdout stays pure JSON-lines for Container Insights, so the report's own output goes to
    # stderr. The probe's exit code is the pod's, unless the probe passed and the report could
    # not be written (exit > 1; exit 1 only means the window holds a failure).
    script = "\n".join(
        [
            shlex.join(probe),
            "status=$?",
            f"{shlex.join(report)} >&2",
            "report_status=$?",
            'if [ "$report_status" -gt 1 ]; then',
            '  echo "egress: report regeneration failed with exit code $report_status" >&2',
            '  if [ "$status" -eq 0 ]; then status=$report_status; fi',
            "fi",
            'exit "$status"',
        ]
    )
    return ["/bin/sh", "-c"], [script + "\n"]


def _job_spec(spec: ManifestSpec, target: Target, plan_hash: str) -> Obj:
    command, args = probe_command(spec)
    mounts: list[Obj] = [{"name": "plan", "mountPath": PLAN_DIR, "readOnly": True}]
    volumes: list[Obj] = [
        {"name": "plan", "configMap": {"name": CONFIG_MAP, "defaultMode": 0o444}},
        _tmp_volume(),
    ]
    if spec.store_size is not None:
        mounts.append({"name": "store", "mountPath": STORE_DIR})
        volumes.append(_store_volume(target))
    if spec.store_secret is not None and spec.workload_identity_sa is None:
        mounts.append({"name": "store-secret", "mountPath": STORE_SECRET_DIR, "readOnly": True})
        volumes.append(_store_secret_volume(spec.store_secret))
    container = _container(spec, target, command, mounts=mounts, env=True)
    container["env"] = container["env"] + _fleet_store_env(spec)
    container["args"] = args
    # A workload's own labels first: the egress labels must stay egress's.
    pod_labels = {**dict(target.pod_labels), **target_labels(spec, "probe", target)}
    if spec.workload_identity_sa is not None:  # the AKS webhook then projects its token
        pod_labels[WORKLOAD_IDENTITY_LABEL] = "true"
    pod_meta: Obj = {
        "labels": pod_labels,
        "annotations": {
            # AKS then sets KUBERNETES_SERVICE_HOST to the API server FQDN, which is what the
            # firewall sees and what the api-server check must probe.
            "kubernetes.azure.com/set-kube-service-host-fqdn": "true",
            PLAN_HASH_ANNOTATION: plan_hash,
        },
    }
    return {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": job_deadline_seconds(spec),
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "In",
                        "values": list(VERDICT_EXIT_CODES),
                    },
                },
                {
                    "action": "Ignore",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                },
            ]
        },
        "template": {
            "metadata": pod_meta,
            "spec": _pod_spec(
                target, container, volumes, spec.workload_identity_sa or SERVICE_ACCOUNT
            ),
        },
    }


def _container(
    spec: ManifestSpec, target: Target, command: list[str], *, mounts: list[Obj], env: bool
) -> Obj:
    container: Obj = {
        "name": CONTAINER,
        "image": spec.image_ref,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": [{"name": "TMPDIR", "value": "/tmp"}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
            "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "256Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_UID,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
    }
    if env:
        container["env"] = _location_env(spec, target) + container["env"]
    return container


def _location_env(spec: ManifestSpec, target: Target) -> list[Obj]:
    """Where each record was measured: Downward API fields plus the literals we know."""

    def field(name: str, path: str) -> Obj:
        return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}

    env = [
        field("EGRESS_NODE_NAME", "spec.nodeName"),
        field("EGRESS_POD_NAME", "metadata.name"),
        field("EGRESS_POD_NAMESPACE", "metadata.namespace"),
        field("EGRESS_NODE_IP", "status.hostIP"),  # the source firewall logs show once SNATed
        field("EGRESS_POD_IP", "status.podIP"),
    ]
    if target.node_pool is not None:
        env.append({"name": "EGRESS_NODE_POOL", "value": target.node_pool})
    if spec.cluster is not None:
        env.append({"name": "EGRESS_CLUSTER", "value": spec.cluster})
    return env


def _pod_spec(
    target: Target, container: Obj, volumes: list[Obj], account: str = SERVICE_ACCOUNT
) -> Obj:
    return {
        "serviceAccountName": account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "nodeSelector": {"kubernetes.io/os": "linux", **dict(target.node_selector)},
        # System pools are often tainted CriticalAddonsOnly; the probe must run there too.
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_UID,
            "fsGroup": RUN_AS_UID,  # so the non-root user can write the store volume
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }


def _fleet_store_env(spec: ManifestSpec) -> list[Obj]:
    """The DSN from the Secret, and where the password comes from."""
    if spec.store_secret is None:
        return []
    dsn = {"secretKeyRef": {"name": spec.store_secret, "key": STORE_SECRET_DSN_KEY}}
    env: list[Obj] = [{"name": "EGRESS_STORE", "valueFrom": dsn}]
    if spec.workload_identity_sa is not None:
        env.append({"name": "EGRESS_STORE_AUTH", "value": "entra"})
    else:
        password = f"{STORE_SECRET_DIR}/{STORE_SECRET_PASSWORD_KEY}"
        env.append({"name": "EGRESS_STORE_PASSWORD_FILE", "value": password})
    return env


def _store_secret_volume(secret: str) -> Obj:
    # A file, not an env var, so a rotated password reaches the next connect; optional, as
    # the DSN itself may carry the password.
    return {
        "name": "store-secret",
        "secret": {
            "secretName": secret,
            "items": [{"key": STORE_SECRET_PASSWORD_KEY, "path": STORE_SECRET_PASSWORD_KEY}],
            "defaultMode": 0o440,
            "optional": True,
        },
    }


def _tmp_volume() -> Obj:
    return {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}


def _store_volume(target: Target) -> Obj:
    return {"name": "store", "persistentVolumeClaim": {"claimName": store_claim_name(target)}}


def alert_rule(spec: ManifestSpec) -> Obj:
    """The probe's alerts as a prometheus-operator PrometheusRule (egress.metrics.alerts)."""
    from egress.metrics.alerts import alert_rules, prometheus_rule

    rules = alert_rules(stale_after_seconds=spec.stale_after)
    return prometheus_rule(rules, namespace=spec.namespace, labels=labels(spec, "alerts"))
