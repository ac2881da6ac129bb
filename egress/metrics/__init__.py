"""Prometheus metrics of one probe run: what Pushgateway or a textfile carries, and the alerts.

Metric and label names live here once; the alert rules (``egress.metrics.alerts``) are written
in terms of them. Cardinality is bounded by the plan: one ``egress_check_status`` series per
check, one series per run status and per check status, and four scalar gauges, all labelled
with ``cluster`` and ``node_pool`` (the Pushgateway grouping key), nothing per attempt or host.
"""

from egress.metrics.registry import (
    CHECK_STATUS,
    GROUP_LABELS,
    JOB,
    LAST_COMPLETE_RUN,
    RUN_BLOCKED,
    RUN_CHECKS,
    RUN_DURATION,
    RUN_FAILED_REQUIRED,
    RUN_LEAKS,
    RUN_STATUS,
    RUN_UNPROVEN_REQUIRED,
    grouping_key,
    run_registry,
)

__all__ = [
    "CHECK_STATUS",
    "GROUP_LABELS",
    "JOB",
    "LAST_COMPLETE_RUN",
    "RUN_BLOCKED",
    "RUN_CHECKS",
    "RUN_DURATION",
    "RUN_FAILED_REQUIRED",
    "RUN_LEAKS",
    "RUN_STATUS",
    "RUN_UNPROVEN_REQUIRED",
    "grouping_key",
    "run_registry",
]
