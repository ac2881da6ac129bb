"""Build the metrics of one finished run into a fresh prometheus-client registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from egress.compliance import CheckStatus, RunStatus, Tally
from egress.probe_plan import Expectation
from egress.results import RunReport

JOB = "egress-probe"  # the Pushgateway job every probe pushes under
GROUP_LABELS = ("cluster", "node_pool")  # grouping key: one group per cluster and node pool
UNNAMED = "unnamed"  # label value when the run does not know its cluster or pool

CHECK_STATUS = "egress_check_status"
RUN_STATUS = "egress_run_status"
RUN_CHECKS = "egress_run_checks"
RUN_BLOCKED = "egress_run_blocked"
RUN_LEAKS = "egress_run_leaks"
RUN_FAILED_REQUIRED = "egress_run_failed_required"
RUN_UNPROVEN_REQUIRED = "egress_run_unproven_required"
RUN_DURATION = "egress_run_duration_seconds"
LAST_COMPLETE_RUN = "egress_last_complete_run_timestamp_seconds"


def grouping_key(run: RunReport) -> dict[str, str]:
    """The Pushgateway group of a run; also the labels every series carries."""
    return {
        "cluster": run.location.cluster or UNNAMED,
        "node_pool": run.location.node_pool or UNNAMED,
    }


def run_registry(run: RunReport, *, strict: bool = False) -> CollectorRegistry:
    """Every series for `run`; pushing it replaces the group's previous run as a whole."""
    registry = CollectorRegistry()
    group = grouping_key(run)
    base = list(GROUP_LABELS)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, [*base, *labels], registry=registry)

    checks = gauge(
        CHECK_STATUS,
        "1 for the status each check of the last run ended with.",
        ("check_id", "feature", "expectation", "status"),
    )
    for record in run.checks:
        checks.labels(
            **group,
            check_id=record.check_id,
            feature=record.feature,
            expectation=record.expectation.value,
            status=record.status.value,
        ).set(1)

    status = run.status(strict=strict)
    run_status = gauge(RUN_STATUS, "1 for the last run's status, 0 for the others.", ("status",))
    for candidate in RunStatus:
        run_status.labels(**group, status=candidate.value).set(int(candidate is status))

    tally = Tally.of((r.verdict, r.status, r.assurance, 1) for r in run.checks)
    counts = gauge(RUN_CHECKS, "Checks of the last run by status.", ("status",))
    for check_status, count in tally.by_status.items():
        counts.labels(**group, status=check_status.value).set(count)
    blocked = gauge(
        RUN_BLOCKED, "Blocked verdicts of the last run by how they are known.", ("assurance",)
    )
    for assurance, count in tally.blocked_by_assurance.items():
        blocked.labels(**group, assurance=assurance).set(count)

    required_allow = [r for r in run.checks if r.required and r.expectation is Expectation.ALLOW]
    scalars = (
        (RUN_LEAKS, "Deny checks of the last run that got through.", run.checks, CheckStatus.LEAK),
        (
            RUN_FAILED_REQUIRED,
            "Required endpoints the last run showed blocked.",
            required_allow,
            CheckStatus.FAIL,
        ),
        (
            RUN_UNPROVEN_REQUIRED,
            "Required endpoints the last run could not show reachable.",
            required_allow,
            CheckStatus.UNPROVEN,
        ),
    )
    for name, doc, records, wanted in scalars:
        gauge(name, doc).labels(**group).set(sum(1 for r in records if r.status is wanted))

    duration = (run.finished_at - run.started_at).total_seconds()
    gauge(RUN_DURATION, "Wall time of the last run.").labels(**group).set(duration)
    gauge(LAST_COMPLETE_RUN, "When the last complete run finished (Unix time).").labels(
        **group
    ).set(run.finished_at.timestamp())
    return registry
