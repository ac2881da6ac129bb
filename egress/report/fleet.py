"""The fleet view: each cluster and node pool judged on its own, and coverage gaps.

Every status here is `egress.compliance.judge_run` over the results of one pool (a matrix
cell) or one cluster (a matrix row), exactly as the window's status is over all of them. The
one thing the fleet adds is coverage: a pool whose last run is older than its stale threshold
at the window end has a gap, and a gap keeps its pool and cluster from being COMPLIANT (it
is NOT PROVEN; a NON-COMPLIANT one stays NON-COMPLIANT and names the gap as well).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta

from egress.compliance import RunJudgement, RunStatus, StatusedCheck, judge_run
from egress.errors import UsageError
from egress.report.model import (
    DEFAULT_STALE_AFTER,
    GAP_REASON,
    NO_RUNS_REASON,
    STALE_INTERVALS,
    ClusterView,
    Coverage,
    CoverageGap,
    Drift,
    Finding,
    Fleet,
    GapKind,
    PoolCell,
    ScopeFilter,
    Window,
)
from egress.store import queries as q

Scope = tuple[str, str]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str, *, option: str) -> timedelta:
    """A duration such as 90m, 2h, 1h30m or 1d (s, m, h, d), positive."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise UsageError(f"{option} {text!r} is not a duration; write e.g. 90m, 2h, 1h30m or 1d.")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"{option} {text!r} must be longer than zero.")
    return timedelta(seconds=seconds)


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values))) or "none"


def select_clusters(stored: list[q.StoredScope], scope: ScopeFilter) -> tuple[str, ...] | None:
    """The clusters `scope` picks (None: no filter); unknown names are one usage error."""
    if not scope.clusters and not scope.regions:
        return None
    clusters = {s.cluster for s in stored}
    regions = {s.region for s in stored}
    unknown = [
        f"{option} {', '.join(repr(v) for v in bad)} (the store holds {what} {_names(known)})"
        for option, values, known, what in (
            ("--cluster", scope.clusters, clusters, "clusters"),
            ("--region", scope.regions, regions, "regions"),
        )
        if (bad := [v for v in values if v not in known])
    ]
    if unknown:
        raise UsageError(f"not in the store: {' and '.join(unknown)}; give names it holds.")
    picked = tuple(
        sorted(
            {
                s.cluster
                for s in stored
                if (not scope.clusters or s.cluster in scope.clusters)
                and (not scope.regions or s.region in scope.regions)
            }
        )
    )
    if not picked:
        where = _names(f"{s.cluster} in {s.region}" for s in stored if s.cluster in scope.clusters)
        raise UsageError(
            f"no cluster matches both --cluster and --region (the store has {where}); "
            "drop one filter or change it."
        )
    return picked


def stale_threshold(pool: Coverage, stale_after: timedelta | None) -> timedelta:
    """--stale-after, or STALE_INTERVALS x the pool's mean interval between its runs in the
    window (span / (runs - 1)), or DEFAULT_STALE_AFTER with fewer than two distinct times."""
    if stale_after is not None:
        return stale_after
    if pool.runs >= 2 and pool.first_run is not None and pool.last_run > pool.first_run:
        return STALE_INTERVALS * (pool.last_run - pool.first_run) / (pool.runs - 1)
    return DEFAULT_STALE_AFTER


def _gap(pool: Coverage, window: Window, threshold: timedelta) -> CoverageGap | None:
    silent = window.until - pool.last_run
    if pool.runs == 0:
        return CoverageGap(GapKind.NOT_PROBED, pool.last_run, silent, threshold)
    if silent > threshold:
        return CoverageGap(GapKind.STOPPED, pool.last_run, silent, threshold)
    return None


def with_gaps(verdict: RunJudgement, gaps: int) -> tuple[RunStatus, tuple[str, ...]]:
    """A coverage gap keeps a pool, a cluster or the whole report from being COMPLIANT."""
    if not gaps:
        return verdict.status, verdict.reasons
    if verdict.status is RunStatus.COMPLIANT:
        return RunStatus.NOT_PROVEN, (GAP_REASON,)
    return verdict.status, (*verdict.reasons, GAP_REASON)


def _judged(
    checks: list[StatusedCheck], *, runs: int, gap: bool, strict: bool
) -> tuple[RunStatus, tuple[str, ...]]:
    status, reasons = with_gaps(judge_run(checks, strict=strict), int(gap))
    return status, reasons if runs else (NO_RUNS_REASON, *reasons)


_ORDER = {RunStatus.NON_COMPLIANT: 0, RunStatus.NOT_PROVEN: 1, RunStatus.COMPLIANT: 2}


def build_fleet(
    *,
    window: Window,
    scope: ScopeFilter,
    stale_after: timedelta | None,
    strict: bool,
    stored: list[q.StoredScope],
    coverage: tuple[Coverage, ...],
    checks: Mapping[Scope, list[StatusedCheck]],
    findings: tuple[Finding, ...],
    drift: tuple[Drift, ...],
) -> Fleet:
    """The matrix rows (clusters with a leak first, then by status and name) and cells."""
    regions: dict[Scope, set[str]] = defaultdict(set)
    for s in stored:
        regions[(s.cluster, s.node_pool)].add(s.region)
    by_pool: dict[Scope, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_pool[(finding.cluster, finding.node_pool)].append(finding)
    drift_of = {(d.cluster, d.node_pool): d for d in drift}
    pools_of: dict[str, list[PoolCell]] = defaultdict(list)
    for pool in coverage:
        key = (pool.cluster, pool.node_pool)
        threshold = stale_threshold(pool, stale_after)
        gap = _gap(pool, window, threshold)
        status, reasons = _judged(
            checks.get(key, []), runs=pool.runs, gap=gap is not None, strict=strict
        )
        pools_of[pool.cluster].append(
            PoolCell(
                cluster=pool.cluster,
                node_pool=pool.node_pool,
                region=", ".join(sorted(regions[key])) or "?",
                status=status,
                reasons=reasons,
                runs=pool.runs,
                nodes=pool.nodes,
                last_run=pool.last_run,
                stale_after=threshold,
                gap=gap,
                findings=tuple(by_pool[key]),
                drift=drift_of.get(key),
            )
        )
    clusters = []
    for cluster, pools in pools_of.items():
        status, reasons = _judged(
            [c for p in pools for c in checks.get((cluster, p.node_pool), [])],
            runs=sum(p.runs for p in pools),
            gap=any(p.gap for p in pools),
            strict=strict,
        )
        clusters.append(
            ClusterView(
                cluster,
                tuple(sorted({r for p in pools for r in regions[(cluster, p.node_pool)]})),
                status,
                reasons,
                tuple(pools),
            )
        )
    clusters.sort(key=lambda c: (c.leaks == 0, _ORDER[c.status], c.cluster))
    return Fleet(scope, stale_after, tuple(clusters))
