"""Pod Security Standard "restricted" (plus egress's own hardening), checked field by field.

`violations(obj)` walks every pod spec an object holds (Pod, Job, CronJob) and returns one
readable line per broken rule; an empty list means the object passes.
Rules follow https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline +
restricted), then egress's additions: read-only root filesystem, the fixed uid, no service
account token, resource requests and limits.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

RUN_AS_UID = 10001
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)


def pod_specs(obj: Obj) -> list[tuple[str, Obj]]:
    """(where, pod spec) for every pod template inside an object."""
    kind, spec = obj.get("kind"), obj.get("spec", {})
    name = f"{kind}/{obj.get('metadata', {}).get('name')}"
    if kind == "Pod":
        return [(name, spec)]
    if kind in {"Job", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"}:
        return [(name, spec["template"]["spec"])]
    if kind == "CronJob":
        return [(name, spec["jobTemplate"]["spec"]["template"]["spec"])]
    return []


def violations(obj: Obj) -> list[str]:
    found: list[str] = []
    for where, pod in pod_specs(obj):
        found += [f"{where}: {problem}" for problem in _pod_problems(pod)]
    return found


def _pod_problems(pod: Obj) -> list[str]:
    problems: list[str] = []
    pod_context: Obj = pod.get("securityContext") or {}
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host_field):
            problems.append(f"{host_field} must not be true")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken must be false")
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runAsUser must not be 0")
    if pod_context.get("runAsGroup") == 0:
        problems.append("pod runAsGroup must not be 0")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not allowed")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        problems.append(f"pod seccompProfile {pod_seccomp} is not allowed")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')} uses {sorted(kinds)}")
    containers = [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]
    if not pod.get("containers"):
        problems.append("no containers")
    for container in containers:
        problems += [
            f"container {container.get('name')}: {p}"
            for p in _container_problems(container, pod_context, pod_seccomp)
        ]
    return problems


def _container_problems(container: Obj, pod_context: Obj, pod_seccomp: str | None) -> list[str]:
    problems: list[str] = []
    context: Obj = container.get("securityContext") or {}

    def effective(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    if context.get("privileged"):
        problems.append("privileged must not be true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot must be true")
    if effective("runAsUser") != RUN_AS_UID:
        problems.append(f"runAsUser must be {RUN_AS_UID}")
    if context.get("runAsGroup") == 0:
        problems.append("runAsGroup must not be 0")
    capabilities: Obj = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities must drop ALL")
    added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"capabilities add {sorted(added)}")
    seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
    if seccomp not in ALLOWED_SECCOMP:
        problems.append("seccompProfile must be RuntimeDefault or Localhost")
    if context.get("procMount", "Default") != "Default":
        problems.append("procMount must be Default")
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor == "Unconfined":
        problems.append("appArmorProfile must not be Unconfined")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem must be true")
    for port in container.get("ports") or []:
        if port.get("hostPort"):
            problems.append("hostPort must not be set")
    resources: Obj = container.get("resources") or {}
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(bound) or {}):
                problems.append(f"resources.{bound}.{resource} must be set")
    return problems
