"""`build_report`: read one window of the result store into a frozen ComplianceReport."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from egress.errors import UsageError
from egress.report.model import (
    Category,
    ComplianceReport,
    Coverage,
    Drift,
    DriftChange,
    EndpointResult,
    Evidence,
    Finding,
    HourPoint,
    Status,
    Window,
)
from egress.store import ResultStore
from egress.store import queries as q


def parse_moment(text: str, *, option: str) -> datetime:
    """An ISO 8601 date or time from the command line (no zone means UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. 2026-11-28 or "
            "2026-11-28T10:00:00Z."
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def resolve_window(
    now: datetime, *, days: float | None, since: datetime | None, until: datetime | None
) -> Window:
    """[since, until): explicit bounds win; otherwise the `days` (default 7) before until."""
    if days is not None and since is not None:
        raise UsageError("--days and --since both set the window start; give only one.")
    end = until or now
    if since is None:
        span = 7.0 if days is None else days
        if span <= 0:
            raise UsageError(f"--days {span:g} must be positive.")
        start = end - timedelta(days=span)
    else:
        start = since
    if start >= end:
        raise UsageError(
            f"the window start {start.isoformat()} is not before its end {end.isoformat()}; "
            "check --since/--until/--days."
        )
    return Window(start, end)


def _category(totals: q.EndpointTotals) -> Category | None:
    if totals.leaks:
        return Category.LEAK
    if totals.failed_required:
        return Category.FAILED_REQUIRED
    if totals.failed:
        return Category.FAILED_OPTIONAL
    return None


def _evidence(check: q.StoredCheck) -> Evidence:
    details = {"evidence": check.evidence, "attempts": check.attempts}
    return Evidence(
        run_id=check.run_id,
        node=check.node,
        pod=check.pod,
        run_started_at=check.run_started_at,
        verdict=check.verdict,
        reason=check.reason,
        duration_ms=check.duration_ms,
        details_json=json.dumps(details, indent=2, sort_keys=True),
    )


def _finding(
    totals: q.EndpointTotals,
    category: Category,
    latest: q.StoredCheck | None,
    hours: list[q.HourCounts],
) -> Finding:
    return Finding(
        cluster=totals.cluster,
        node_pool=totals.node_pool,
        check_id=totals.check_id,
        host=latest.host if latest else "",
        port=latest.port if latest else 0,
        transport=latest.transport if latest else "",
        kind=latest.kind if latest else "",
        expectation=latest.expectation if latest else "",
        destination=latest.destination if latest else "",
        rule=latest.rule if latest else "",
        feature=latest.feature if latest else "",
        required=latest.required if latest else False,
        category=category,
        total=totals.total,
        passed=totals.passed,
        failed=totals.failed,
        unjudged=totals.unjudged,
        first_failure=totals.first_failure,
        last_failure=totals.last_failure,
        latest=_evidence(latest) if latest else None,
        timeline=tuple(HourPoint(h.hour, h.total, h.passed, h.failed, h.unjudged) for h in hours),
    )


def _drift(store: ResultStore, pool: Coverage, window: Window) -> Drift | None:
    runs = q.last_two_runs(
        store.connection, (pool.cluster, pool.node_pool), window.since, window.until
    )
    if len(runs) < 2:
        return None
    latest, previous = runs
    changes = []
    for check_id in sorted(latest.verdicts.keys() | previous.verdicts.keys()):
        before = previous.verdicts.get(check_id, (None, None))
        after = latest.verdicts.get(check_id, (None, None))
        if before != after:
            changes.append(DriftChange(check_id, before[0], after[0], before[1], after[1]))
    return Drift(
        pool.cluster,
        pool.node_pool,
        previous.run_id,
        previous.started_at,
        latest.run_id,
        latest.started_at,
        tuple(changes),
    )


def build_report(
    store: ResultStore, window: Window, *, now: datetime | None = None
) -> ComplianceReport:
    """Read the window's aggregates, failures and coverage; no output, no side effects.

    `now` is when the report says it was made (default: the window end), injected so the
    output is reproducible.
    """
    conn = store.connection
    totals = q.endpoint_totals(conn, window.since, window.until)
    categories = {t.key: _category(t) for t in totals}
    failing = [t for t in totals if categories[t.key] is not None]
    hours = q.hourly_counts(conn, window.since, window.until, [t.key for t in failing])
    findings: dict[Category, list[Finding]] = {c: [] for c in Category}
    for t in failing:
        category = categories[t.key]
        assert category is not None  # filtered above
        latest = q.failing_check_at(conn, t.key, t.last_failure) if t.last_failure else None
        findings[category].append(_finding(t, category, latest, hours[t.key]))
    coverage = tuple(
        Coverage(c.cluster, c.node_pool, c.runs, c.nodes, c.first_run, c.last_run)
        for c in q.coverage(conn, window.since, window.until)
    )
    drift = tuple(
        d for pool in coverage if pool.runs > 1 and (d := _drift(store, pool, window)) is not None
    )
    runs = sum(c.runs for c in coverage)
    if findings[Category.LEAK]:
        status = Status.LEAK
    elif findings[Category.FAILED_REQUIRED]:
        status = Status.FAIL
    else:
        status = Status.PASS if runs else Status.NO_DATA
    return ComplianceReport(
        generated_at=now or window.until,
        window=window,
        status=status,
        runs=runs,
        results=sum(t.total for t in totals),
        unjudged=sum(t.unjudged for t in totals),
        leaks=tuple(findings[Category.LEAK]),
        failed_required=tuple(findings[Category.FAILED_REQUIRED]),
        failed_optional=tuple(findings[Category.FAILED_OPTIONAL]),
        coverage=coverage,
        drift=drift,
        endpoints=tuple(
            EndpointResult(
                t.cluster,
                t.node_pool,
                t.check_id,
                t.total,
                t.passed,
                t.failed,
                t.unjudged,
                categories[t.key],
            )
            for t in totals
        ),
    )
