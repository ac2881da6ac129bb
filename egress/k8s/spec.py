"""What to render for the in-cluster probe: validated, frozen options and probe targets."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from egress.errors import UsageError

AGENT_POOL_LABEL = "kubernetes.azure.com/agentpool"
# Every Kubernetes object egress renders carries this label (probe objects and targets alike).
MANAGED_BY_LABEL = ("app.kubernetes.io/managed-by", "egress")
DEFAULT_NAMESPACE = "egress-probe"
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/egress/egress"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^[1-9][0-9]*(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
# An OCI image reference (distribution/reference grammar): [registry[:port]/]path[:tag][@digest].
_IMAGE_REF = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?)/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?\Z"
)
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_CRON_MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# A CronJob name leaves 11 characters for the Job suffix; "egress-report-" is the longest prefix.
_MAX_TARGET_NAME = 52 - len("egress-report-")


@dataclass(frozen=True, slots=True)
class Target:
    """One place the probe runs: a node pool or an arbitrary node selector."""

    name: str  # DNS label used in object names, unique within one rendering
    node_selector: tuple[tuple[str, str], ...]  # sorted (key, value) pairs; empty: any Linux node
    node_pool: str | None  # reported as EGRESS_NODE_POOL when known
    pod_labels: tuple[tuple[str, str], ...] = ()  # a workload's labels the probe pods carry


@dataclass(frozen=True, slots=True)
class ManifestSpec:
    """Everything `egress probe manifest` renders besides the plan itself."""

    version: str  # egress version, used in labels and the default image tag
    targets: tuple[Target, ...]
    namespace: str = DEFAULT_NAMESPACE
    image: str | None = None  # None: DEFAULT_IMAGE_REPOSITORY:<version>
    cluster: str | None = None
    schedule: str | None = None  # None: one-off Jobs; else CronJobs
    store_size: str | None = None  # None: no store; else one PVC per target of this size
    storage_class: str | None = None
    deadline_seconds: int = 120  # the probe's own whole-run deadline
    pushgateway: str | None = None  # push each run's metrics here
    alerts: bool = False  # also render a PrometheusRule with the probe's alerts
    stale_after_seconds: int | None = None  # None: derived from the schedule
    store_secret: str | None = None  # a Secret whose key `dsn` names the PostgreSQL store
    workload_identity_sa: str | None = None  # its Entra ID token is the database password

    @property
    def stale_after(self) -> int:
        """Seconds without a complete run before EgressProbeStale fires."""
        if self.stale_after_seconds is not None:
            return self.stale_after_seconds
        interval = schedule_interval(self.schedule) if self.schedule else None
        # Three missed runs (and at least the Job's own deadline) before calling it stale.
        return max(3 * (interval or 1200), self.deadline_seconds + 120)

    @property
    def image_ref(self) -> str:
        return self.image or f"{DEFAULT_IMAGE_REPOSITORY}:{self.version}"


def pool_target(pool: str) -> Target:
    """A target for one AKS node pool, selected by the agentpool label."""
    if not _DNS_LABEL.match(pool) or len(pool) > _MAX_TARGET_NAME:
        raise UsageError(
            f"--node-pool {pool!r} is not a valid node pool name; use the AKS pool name "
            f"(lowercase letters and digits, at most {_MAX_TARGET_NAME} characters)."
        )
    return Target(name=pool, node_selector=((AGENT_POOL_LABEL, pool),), node_pool=pool)


def selector_target(text: str) -> Target:
    """A target for `key=value[,key=value...]`; its name derives from the values."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not _valid_label_key(key) or not _LABEL_VALUE.match(value) or len(value) > 63:
            raise UsageError(
                f"--node-selector {text!r}: {item.strip()!r} is not a Kubernetes label "
                "selector term; write it as key=value, e.g. kubernetes.io/os=linux."
            )
        if key in pairs and pairs[key] != value:
            raise UsageError(f"--node-selector {text!r} gives label {key!r} two values.")
        pairs[key] = value
    selector = tuple(sorted(pairs.items()))
    pool = pairs.get(AGENT_POOL_LABEL) or pairs.get("agentpool")
    return Target(name=_selector_name(selector), node_selector=selector, node_pool=pool)


def any_node_target() -> Target:
    """The target when neither pools nor selectors are given: any Linux node."""
    return Target(name="any", node_selector=(), node_pool=None)


def check_unique(targets: tuple[Target, ...]) -> None:
    """Two targets may not render objects with the same name."""
    seen: dict[str, Target] = {}
    for target in targets:
        other = seen.setdefault(target.name, target)
        if other is not target:
            raise UsageError(
                f"node pool/selector name {target.name!r} is given twice; "
                "list each node pool or node selector once."
            )


def check_options(spec: ManifestSpec) -> None:
    """Validate the free-form options so a bad value fails here, not in `kubectl apply`."""
    if not _DNS_LABEL.match(spec.namespace) or len(spec.namespace) > 63:
        raise UsageError(
            f"--namespace {spec.namespace!r} is not a valid namespace name; "
            "use lowercase letters, digits and '-'."
        )
    if spec.store_size is not None and not _QUANTITY.match(spec.store_size):
        raise UsageError(
            f"--store-pvc {spec.store_size!r} is not a storage size; write e.g. 1Gi or 512Mi."
        )
    if spec.image is not None and (len(spec.image) > 255 or not _IMAGE_REF.match(spec.image)):
        raise UsageError(
            f"--image {spec.image!r} is not an image reference; write e.g. "
            "myregistry.azurecr.io/egress:0.1.0 (no spaces or upper-case path)."
        )
    if spec.storage_class is not None and not _DNS_LABEL.match(spec.storage_class):
        raise UsageError(f"--storage-class {spec.storage_class!r} is not a valid class name.")
    if spec.storage_class is not None and spec.store_size is None:
        raise UsageError("--storage-class needs --store-pvc SIZE; add it or drop the class.")
    if spec.schedule is not None:
        check_schedule(spec.schedule)
    if spec.cluster is not None and not spec.cluster.strip():
        raise UsageError("--cluster must not be empty; give the AKS cluster name.")
    if not 10 <= spec.deadline_seconds <= 3600:
        raise UsageError(
            f"--deadline {spec.deadline_seconds} is out of range; give 10 to 3600 seconds."
        )
    if spec.pushgateway is not None:
        from egress.metrics.delivery import check_gateway_url

        check_gateway_url(spec.pushgateway)
    if spec.stale_after_seconds is not None and not 60 <= spec.stale_after_seconds <= 7 * 86400:
        raise UsageError(
            f"--stale-after {spec.stale_after_seconds} is out of range; give 60 to 604800 seconds."
        )
    _check_fleet_store(spec)
    if not spec.targets:
        raise UsageError("no node pool or node selector to render a probe for.")
    check_unique(spec.targets)


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _check_fleet_store(spec: ManifestSpec) -> None:
    for flag, value in (
        ("--store-secret", spec.store_secret),
        ("--workload-identity-sa", spec.workload_identity_sa),
    ):
        if value is not None and (not _SUBDOMAIN.match(value) or len(value) > 253):
            raise UsageError(
                f"{flag} {value!r} is not a valid Kubernetes object name; use lowercase "
                "letters, digits, '-' and '.'."
            )
    if spec.workload_identity_sa is not None and spec.store_secret is None:
        raise UsageError(
            "--workload-identity-sa is the identity of the PostgreSQL store; add "
            "--store-secret NAME (the Secret with its DSN) or drop it."
        )


def check_schedule(schedule: str) -> None:
    """A five-field cron expression or one of the @-macros Kubernetes accepts."""
    fields = schedule.split()
    if len(fields) == 1 and fields[0] in _CRON_MACROS:
        return
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise UsageError(
            f"--schedule {schedule!r} is not a cron expression; "
            "give five fields, e.g. '*/5 * * * *' for every five minutes."
        )


def schedule_interval(schedule: str) -> int | None:
    """Seconds between runs for `*` and `*/N` minute schedules; None when not that simple."""
    fields = schedule.split()
    if len(fields) != 5 or any(f != "*" for f in fields[1:]):
        return None
    minute = fields[0]
    if minute == "*":
        return 60
    if minute.startswith("*/") and minute[2:].isdigit() and int(minute[2:]) > 0:
        return 60 * int(minute[2:])
    return None


def schedule_warnings(spec: ManifestSpec, job_deadline_seconds: int) -> list[str]:
    """Runs that outlast the interval get skipped (concurrencyPolicy Forbid); say so."""
    if spec.schedule is None:
        return []
    interval = schedule_interval(spec.schedule)
    if interval is None or job_deadline_seconds < interval:
        return []
    return [
        f"--schedule {spec.schedule!r} starts a run every {interval} s but a run may take up "
        f"to {job_deadline_seconds} s, so a slow run causes the next one to be skipped; "
        "lower --deadline or widen the schedule."
    ]


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not all(_DNS_LABEL.match(p) for p in prefix.split("."))):
        return False
    return bool(_LABEL_NAME.match(name)) and len(name) <= 63


def _selector_name(selector: tuple[tuple[str, str], ...]) -> str:
    """Readable from the values, with a short hash so different selectors never collide."""
    readable = "-".join(value for _, value in selector).lower()
    readable = re.sub(r"[^a-z0-9-]+", "-", readable).strip("-")
    digest = hashlib.sha256(repr(selector).encode()).hexdigest()[:6]
    stem = readable[: _MAX_TARGET_NAME - len(digest) - 1].strip("-") or "sel"
    return f"{stem}-{digest}"
