"""`build_report`: read one window of the result store into a frozen ComplianceReport."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from egress.compliance import (
    Assurance,
    CheckStatus,
    StatusedCheck,
    Tally,
    Verdict,
    at_minimum,
    judge_run,
    withholds_proof,
)
from egress.errors import UsageError
from egress.report.fleet import build_fleet, select_clusters, with_gaps
from egress.report.model import (
    NO_RUNS_REASON,
    Category,
    ComplianceReport,
    Coverage,
    Drift,
    DriftChange,
    EndpointResult,
    Evidence,
    Finding,
    HourPoint,
    ScopeFilter,
    Window,
)
from egress.store import ResultStore
from egress.store import queries as q

# Windows and retention are bounded: 100 years covers any store, and every bound stays
# far from datetime's year-1/year-9999 limits after time-zone conversion.
MAX_DAYS = 36_525
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_moment(text: str, *, option: str) -> datetime:
    """An ISO 8601 date or time from the command line (no zone means UTC), 1970 to 9000."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. 2026-11-28 or "
            "2026-11-28T10:00:00Z."
        ) from None
    try:
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        moment = LATEST + timedelta(days=1)
    if not EARLIEST <= moment <= LATEST:
        raise UsageError(
            f"{option} {text!r} is outside {EARLIEST.year}-{LATEST.year}; give a time in between."
        )
    return moment


def days_before(moment: datetime, days: float, *, option: str) -> datetime:
    """`moment` minus `days` days, for a finite positive count of at most MAX_DAYS."""
    if not (math.isfinite(days) and 0 < days <= MAX_DAYS):
        raise UsageError(f"{option} {days:g} must be a number of days from 0 to {MAX_DAYS:,}.")
    start = moment - timedelta(days=days)
    if start < EARLIEST:
        raise UsageError(
            f"{option} {days:g} reaches back before {EARLIEST.date()}; give fewer days."
        )
    return start


def resolve_window(
    now: datetime, *, days: float | None, since: datetime | None, until: datetime | None
) -> Window:
    """[since, until): explicit bounds win; otherwise the `days` (default 7) before until."""
    if days is not None and since is not None:
        raise UsageError("--days and --since both set the window start; give only one.")
    end = until or now
    start = since or days_before(end, 7.0 if days is None else days, option="--days")
    if start >= end:
        raise UsageError(
            f"the window start {start.isoformat()} is not before its end {end.isoformat()}; "
            "check --since/--until/--days."
        )
    return Window(start, end)


def now_from_flag(now: str | None) -> datetime:
    """--now as given, else the current time (UTC)."""
    return parse_moment(now, option="--now") if now else datetime.now(UTC)


def window_from_flags(
    moment: datetime, *, days: float | None, since: str | None, until: str | None
) -> Window:
    """The window the --days/--since/--until flags of a command name, relative to `moment`."""
    return resolve_window(
        moment,
        days=days,
        since=parse_moment(since, option="--since") if since else None,
        until=parse_moment(until, option="--until") if until else None,
    )


@dataclass(frozen=True)
class _Judged:
    """A stored count with the status the report gives it (after --require-assurance)."""

    stored: q.StatusCount
    status: CheckStatus

    @property
    def statused(self) -> StatusedCheck:
        return StatusedCheck(self.status, self.stored.expectation, self.stored.required)

    @property
    def counted(self) -> tuple[Verdict, CheckStatus, Assurance | None, int]:
        return (self.stored.verdict, self.status, self.stored.assurance, self.stored.results)


def _judge(counts: list[q.StatusCount], minimum: Assurance | None) -> list[_Judged]:
    return [_Judged(c, at_minimum(c.status, c.verdict, c.assurance, minimum)) for c in counts]


def _category(groups: list[_Judged], *, strict: bool) -> Category | None:
    statuses = {g.status for g in groups}
    if CheckStatus.LEAK in statuses:
        return Category.LEAK
    if CheckStatus.FAIL in statuses:
        required = any(g.stored.required for g in groups if g.status is CheckStatus.FAIL)
        return Category.FAILED_REQUIRED if required else Category.FAILED_OPTIONAL
    if any(withholds_proof(g.statused, strict=strict) for g in groups):
        return Category.UNPROVEN
    return None


def _of_category(groups: list[_Judged], category: Category, *, strict: bool) -> list[_Judged]:
    """The results that make an endpoint a finding of `category`."""
    if category is Category.UNPROVEN:
        return [g for g in groups if withholds_proof(g.statused, strict=strict)]
    return [g for g in groups if g.status.failing]


def _evidence(check: q.StoredCheck, status: CheckStatus) -> Evidence:
    details = {"evidence": check.evidence, "attempts": check.attempts}
    return Evidence(
        run_id=check.run_id,
        node=check.node,
        pod=check.pod,
        run_started_at=check.run_started_at,
        verdict=check.verdict,
        status=status,
        assurance=check.assurance,
        assumption=check.assumption,
        reason=check.reason,
        duration_ms=check.duration_ms,
        details_json=json.dumps(details, indent=2, sort_keys=True),
    )


@lru_cache(maxsize=4096)
def _hour_counts(
    results: tuple[tuple[Verdict, CheckStatus, Assurance | None, int], ...],
    minimum: Assurance | None,
) -> tuple[int, int, int, int]:
    """(total, passed, failed, unjudged) of one hour's stored results under `minimum`,
    counted by `Tally`. Most hours of a long window hold the same few results (e.g. four
    passing runs), so each distinct hour is judged and counted once, however many hours and
    findings share it."""
    tally = Tally.of((v, at_minimum(s, v, a, minimum), a, n) for v, s, a, n in results)
    return tally.total, tally.passed, tally.failed, tally.unjudged


def _timeline(hours: list[q.HourCount], minimum: Assurance | None) -> tuple[HourPoint, ...]:
    by_hour: dict[datetime, list[tuple[Verdict, CheckStatus, Assurance | None, int]]] = defaultdict(
        list
    )
    for h in hours:
        by_hour[h.hour].append((h.verdict, h.status, h.assurance, h.results))
    return tuple(
        HourPoint(hour, *_hour_counts(tuple(results), minimum))
        for hour, results in sorted(by_hour.items())
    )


def _newest(groups: list[_Judged], category: Category, *, strict: bool) -> _Judged:
    """The latest result that makes an endpoint a finding of `category` (its evidence)."""
    return max(_of_category(groups, category, strict=strict), key=lambda g: g.stored.last_at)


def _finding(
    groups: list[_Judged],
    category: Category,
    hours: list[q.HourCount],
    latest: q.StoredCheck | None,
    *,
    strict: bool,
    minimum: Assurance | None,
) -> Finding:
    first = groups[0].stored
    relevant = _of_category(groups, category, strict=strict)
    newest = _newest(groups, category, strict=strict)
    return Finding(
        cluster=first.cluster,
        node_pool=first.node_pool,
        check_id=first.check_id,
        host=latest.host if latest else "",
        port=latest.port if latest else 0,
        transport=latest.transport if latest else "",
        kind=latest.kind if latest else "",
        expectation=first.expectation.value,
        destination=latest.destination if latest else "",
        rule=latest.rule if latest else "",
        feature=latest.feature if latest else "",
        required=any(g.stored.required for g in groups),
        category=category,
        tally=Tally.of(g.counted for g in groups),
        first_failure=min(g.stored.first_at for g in relevant),
        last_failure=newest.stored.last_at,
        latest=_evidence(latest, newest.status) if latest else None,
        timeline=_timeline(hours, minimum),
    )


def _drift(pool: Coverage, runs: list[q.RunVerdicts], minimum: Assurance | None) -> Drift | None:
    if len(runs) < 2:
        return None
    latest, previous = runs

    def seen(run: q.RunVerdicts, check_id: str) -> tuple[str, CheckStatus] | None:
        found = run.verdicts.get(check_id)
        if found is None:
            return None
        verdict, status, assurance = found
        return verdict.value, at_minimum(status, verdict, assurance, minimum)

    changes = []
    for check_id in sorted(latest.verdicts.keys() | previous.verdicts.keys()):
        before, after = seen(previous, check_id), seen(latest, check_id)
        if before != after:
            changes.append(
                DriftChange(
                    check_id,
                    before[0] if before else None,
                    after[0] if after else None,
                    before[1] if before else None,
                    after[1] if after else None,
                )
            )
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
    store: ResultStore,
    window: Window,
    *,
    now: datetime | None = None,
    strict: bool = False,
    require_assurance: Assurance | None = None,
    scope: ScopeFilter | None = None,
    stale_after: timedelta | None = None,
) -> ComplianceReport:
    """Read the window's counts, findings and coverage; no output, no side effects.

    The window's status is `egress.compliance.judge_run` over every stored result in it, so a
    report over one run says what that run's probe said. `require_assurance` re-judges the
    stored statuses (a pass resting on a weaker block is unproven); `now` is when the report
    says it was made (default: the window end), injected so the output is reproducible.
    `scope` limits every query to the clusters it names or that ran in the regions it
    names (an unknown name is a UsageError); `stale_after` is the fleet view's threshold.
    """
    scope = scope or ScopeFilter()
    conn = store.connection
    stored = q.scopes(conn)
    clusters = select_clusters(stored, scope)
    judged = _judge(q.status_counts(conn, window.since, window.until, clusters), require_assurance)
    by_endpoint: dict[q.EndpointKey, list[_Judged]] = defaultdict(list)
    for group in judged:
        by_endpoint[group.stored.key].append(group)
    categories = {key: _category(groups, strict=strict) for key, groups in by_endpoint.items()}
    findings_keys = [key for key in by_endpoint if categories[key] is not None]
    hours = q.hourly_counts(conn, window.since, window.until, findings_keys)
    newest = [
        _newest(by_endpoint[key], category, strict=strict)
        for key in findings_keys
        if (category := categories[key]) is not None
    ]
    latest = q.checks_at(conn, [(g.stored, g.stored.last_at) for g in newest])
    findings: dict[Category, list[Finding]] = {c: [] for c in Category}
    for key, check in zip(findings_keys, latest, strict=True):
        category = categories[key]
        assert category is not None  # filtered above
        findings[category].append(
            _finding(
                by_endpoint[key],
                category,
                hours[key],
                check,
                strict=strict,
                minimum=require_assurance,
            )
        )
    coverage = tuple(
        Coverage(c.cluster, c.node_pool, c.runs, c.nodes, c.first_run, c.last_run)
        for c in q.coverage(
            conn, window.since, window.until, [(s.cluster, s.node_pool) for s in stored], clusters
        )
    )
    probed = [(pool.cluster, pool.node_pool) for pool in coverage if pool.runs > 1]
    last_runs = q.last_two_runs(conn, probed, window.since, window.until)
    drift = tuple(
        d
        for pool in coverage
        if pool.runs > 1
        and (d := _drift(pool, last_runs[(pool.cluster, pool.node_pool)], require_assurance))
        is not None
    )
    runs = sum(c.runs for c in coverage)
    verdict = judge_run((g.statused for g in judged), strict=strict)
    by_pool: dict[tuple[str, str], list[StatusedCheck]] = defaultdict(list)
    for group in judged:
        by_pool[(group.stored.cluster, group.stored.node_pool)].append(group.statused)
    every_finding = tuple(f for c in Category for f in findings[c])
    fleet = build_fleet(
        window=window,
        scope=scope,
        stale_after=stale_after,
        strict=strict,
        stored=[s for s in stored if clusters is None or s.cluster in clusters],
        coverage=coverage,
        checks=by_pool,
        findings=every_finding,
        drift=drift,
    )
    status, reasons = with_gaps(verdict, len(fleet.gaps))
    reasons = reasons if runs else (NO_RUNS_REASON, *reasons)
    return ComplianceReport(
        generated_at=now or window.until,
        window=window,
        status=status,
        reasons=reasons,
        strict=strict,
        require_assurance=require_assurance,
        runs=runs,
        tally=Tally.of(g.counted for g in judged),
        leaks=tuple(findings[Category.LEAK]),
        failed_required=tuple(findings[Category.FAILED_REQUIRED]),
        failed_optional=tuple(findings[Category.FAILED_OPTIONAL]),
        unproven=tuple(findings[Category.UNPROVEN]),
        coverage=coverage,
        drift=drift,
        endpoints=tuple(
            EndpointResult(
                key[0],
                key[1],
                key[2],
                Tally.of(g.counted for g in by_endpoint[key]),
                categories[key],
            )
            for key in sorted(by_endpoint)
        ),
        fleet=fleet,
    )
