"""The restricted-profile helper itself: every rule it checks fails on a mutated object."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from egress.k8s import render_objects

from .cases import PLAN, VARIANTS
from .restricted import violations

Obj = dict[str, Any]


def rendered(kind: str, variant: str) -> Obj:
    objects = render_objects(PLAN, VARIANTS[variant])
    return copy.deepcopy(next(o for o in objects if o["kind"] == kind))


def job_pod(obj: Obj) -> Obj:
    pod: Obj = obj["spec"]["template"]["spec"]
    return pod


def container_context(obj: Obj) -> Obj:
    context: Obj = job_pod(obj)["containers"][0]["securityContext"]
    return context


MUTATIONS: dict[str, tuple[Callable[[Obj], None], str]] = {
    "privileged": (lambda o: container_context(o).update(privileged=True), "privileged"),
    "escalation": (
        lambda o: container_context(o).update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation must be false",
    ),
    "escalation-unset": (
        lambda o: container_context(o).pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation must be false",
    ),
    "root": (
        lambda o: [
            container_context(o).pop("runAsNonRoot"),
            job_pod(o)["securityContext"].pop("runAsNonRoot"),
        ],
        "runAsNonRoot must be true",
    ),
    "uid-0": (lambda o: container_context(o).update(runAsUser=0), "runAsUser must be 10001"),
    "caps-kept": (
        lambda o: container_context(o).update(capabilities={"drop": ["NET_RAW"]}),
        "capabilities must drop ALL",
    ),
    "caps-added": (
        lambda o: container_context(o)["capabilities"].update(add=["NET_ADMIN"]),
        "capabilities add ['NET_ADMIN']",
    ),
    "seccomp-unconfined": (
        lambda o: [
            container_context(o).update(seccompProfile={"type": "Unconfined"}),
        ],
        "seccompProfile must be RuntimeDefault",
    ),
    "seccomp-missing": (
        lambda o: [
            container_context(o).pop("seccompProfile"),
            job_pod(o)["securityContext"].pop("seccompProfile"),
        ],
        "seccompProfile must be RuntimeDefault",
    ),
    "writable-root": (
        lambda o: container_context(o).update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem must be true",
    ),
    "host-network": (lambda o: job_pod(o).update(hostNetwork=True), "hostNetwork must not be true"),
    "host-path": (
        lambda o: job_pod(o)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "volume h uses ['hostPath']",
    ),
    "host-port": (
        lambda o: job_pod(o)["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "hostPort must not be set",
    ),
    "token": (
        lambda o: job_pod(o).pop("automountServiceAccountToken"),
        "automountServiceAccountToken must be false",
    ),
    "no-limits": (
        lambda o: job_pod(o)["containers"][0]["resources"].pop("limits"),
        "resources.limits.memory must be set",
    ),
    "unsafe-sysctl": (
        lambda o: job_pod(o)["securityContext"].update(
            sysctls=[{"name": "net.core.somaxconn", "value": "1"}]
        ),
        "sysctl net.core.somaxconn is not allowed",
    ),
    "proc-mount": (
        lambda o: container_context(o).update(procMount="Unmasked"),
        "procMount must be Default",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_mutated_job_fails_the_helper(name: str) -> None:
    mutate, expected = MUTATIONS[name]
    job = rendered("Job", "job-one-pool")
    assert violations(job) == []
    mutate(job)
    found = violations(job)
    assert any(expected in line for line in found), found


def test_the_helper_walks_into_cron_job_templates_and_init_containers() -> None:
    cron = rendered("CronJob", "cronjob-two-pools-store")
    assert violations(cron) == []
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["initContainers"] = [{"name": "setup", "image": "busybox"}]
    found = violations(cron)
    assert any("container setup: allowPrivilegeEscalation" in line for line in found), found
    assert found[0].startswith("CronJob/egress-probe-system: ")
