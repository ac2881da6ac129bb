"""The compliance report as frozen values: what every output format renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from egress.compliance import Assurance, CheckStatus, RunStatus, Tally
from egress.errors import ExitCode

if TYPE_CHECKING:
    from egress.report.corroboration import ReportCorroboration

REPORT_SCHEMA_VERSION = 3  # 2: run status, statuses, assurance counts; 3: the fleet object

NO_RUNS_REASON = "no probe run in this window"
GAP_REASON = "coverage gap: the node pool stopped reporting"

# A pool's default stale threshold: this many of its mean intervals between runs in the
# window, or DEFAULT_STALE_AFTER when it has fewer than two runs there.
STALE_INTERVALS = 3
DEFAULT_STALE_AFTER = timedelta(hours=1)


class Category(StrEnum):
    """Why an endpoint appears as a finding."""

    LEAK = "leak"
    FAILED_REQUIRED = "failed-required"
    FAILED_OPTIONAL = "failed-optional"
    UNPROVEN = "unproven"  # results that keep the window from being proven (see build)


@dataclass(frozen=True)
class Window:
    """The half-open time range [since, until) the report covers (UTC)."""

    since: datetime
    until: datetime


@dataclass(frozen=True)
class HourPoint:
    """Counts for one endpoint in one clock hour, for its timeline."""

    hour: datetime
    total: int
    passed: int
    failed: int
    unjudged: int


@dataclass(frozen=True)
class Evidence:
    """The latest failing result of an endpoint: where, when, and what the probe saw."""

    run_id: str
    node: str | None
    pod: str | None
    run_started_at: datetime
    verdict: str
    status: CheckStatus  # as the report judged it (after --require-assurance)
    assurance: Assurance | None
    assumption: str | None
    reason: str
    duration_ms: float
    details_json: str  # {"evidence": ..., "attempts": [...]} as sorted, indented JSON


@dataclass(frozen=True)
class Finding:
    """One endpoint on one node pool that failed at least once in the window."""

    cluster: str
    node_pool: str
    check_id: str
    host: str
    port: int
    transport: str
    kind: str
    expectation: str
    destination: str
    rule: str
    feature: str
    required: bool
    category: Category
    tally: Tally
    first_failure: datetime | None  # first and last result of the finding's kind
    last_failure: datetime | None
    latest: Evidence | None
    timeline: tuple[HourPoint, ...]

    @property
    def total(self) -> int:
        return self.tally.total

    @property
    def passed(self) -> int:
        return self.tally.passed

    @property
    def failed(self) -> int:
        return self.tally.failed

    @property
    def unjudged(self) -> int:
        return self.tally.unjudged

    @property
    def unproven(self) -> int:
        return self.tally.by_status[CheckStatus.UNPROVEN]

    @property
    def pass_rate(self) -> float | None:
        """``pass`` over judged results (unjudged ones are neither passed nor counted)."""
        return self.tally.pass_rate

    @property
    def flapping(self) -> bool:
        return self.passed > 0 and self.failed > 0


@dataclass(frozen=True)
class EndpointResult:
    """Counts for every endpoint probed in the window (failing or not)."""

    cluster: str
    node_pool: str
    check_id: str
    tally: Tally
    category: Category | None  # None: not a finding in the window

    @property
    def total(self) -> int:
        return self.tally.total

    @property
    def passed(self) -> int:
        return self.tally.passed

    @property
    def failed(self) -> int:
        return self.tally.failed

    @property
    def unjudged(self) -> int:
        return self.tally.unjudged


@dataclass(frozen=True)
class Coverage:
    """When a node pool was probed in the window (runs == 0: only before it)."""

    cluster: str
    node_pool: str
    runs: int
    nodes: int
    first_run: datetime | None  # None when the pool has no run in the window
    last_run: datetime  # the last probe, in the window or (runs == 0) before it


@dataclass(frozen=True)
class DriftChange:
    """A check whose result differs between a pool's last two runs (None: absent)."""

    check_id: str
    before: str | None
    after: str | None
    before_status: CheckStatus | None
    after_status: CheckStatus | None


@dataclass(frozen=True)
class Drift:
    """The changes between the last two runs of one node pool."""

    cluster: str
    node_pool: str
    previous_run_id: str
    previous_at: datetime
    latest_run_id: str
    latest_at: datetime
    changes: tuple[DriftChange, ...]


@dataclass(frozen=True)
class ScopeFilter:
    """`--cluster` and `--region`: which clusters a report covers (empty: no limit)."""

    clusters: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()


class GapKind(StrEnum):
    """How a node pool went silent, measured at the window end."""

    STOPPED = "stopped-reporting"  # probed in the window, but not for longer than allowed
    NOT_PROBED = "not-probed"  # last probed before the window started


@dataclass(frozen=True)
class CoverageGap:
    """A node pool whose last run is older than its stale threshold at the window end."""

    kind: GapKind
    last_run: datetime
    silent_for: timedelta  # from its last run to the window end
    stale_after: timedelta


@dataclass(frozen=True)
class PoolCell:
    """One cell of the fleet matrix: a node pool's status over the window."""

    cluster: str
    node_pool: str
    region: str
    status: RunStatus  # judge_run over the pool's results; a gap makes COMPLIANT NOT PROVEN
    reasons: tuple[str, ...]
    runs: int
    nodes: int
    last_run: datetime
    stale_after: timedelta
    gap: CoverageGap | None
    findings: tuple[Finding, ...]  # leaks first, as in the report
    drift: Drift | None


@dataclass(frozen=True)
class ClusterView:
    """A row of the fleet matrix and its drill-down: one cluster and its node pools."""

    cluster: str
    regions: tuple[str, ...]
    status: RunStatus  # judge_run over the cluster's results; a gap makes COMPLIANT NOT PROVEN
    reasons: tuple[str, ...]
    pools: tuple[PoolCell, ...]

    @property
    def leaks(self) -> int:
        return sum(1 for p in self.pools for f in p.findings if f.category is Category.LEAK)

    @property
    def gaps(self) -> tuple[PoolCell, ...]:
        return tuple(p for p in self.pools if p.gap is not None)


@dataclass(frozen=True)
class Fleet:
    """The fleet view: clusters (leaks first) x node pools, with coverage gaps."""

    scope: ScopeFilter
    stale_after: timedelta | None  # --stale-after; None: each pool's default threshold
    clusters: tuple[ClusterView, ...]

    @property
    def node_pools(self) -> tuple[str, ...]:
        """The matrix columns: every node pool name any shown cluster has, sorted."""
        return tuple(sorted({p.node_pool for c in self.clusters for p in c.pools}))

    @property
    def gaps(self) -> tuple[PoolCell, ...]:
        return tuple(p for c in self.clusters for p in c.gaps)


@dataclass(frozen=True)
class ComplianceReport:
    """Everything the report says about one window of the result store."""

    generated_at: datetime
    window: Window
    status: RunStatus  # egress.compliance.judge_run over every result in the window
    reasons: tuple[str, ...]  # why, in the words the compliance module gives
    strict: bool
    require_assurance: Assurance | None
    runs: int
    tally: Tally  # every result in the window
    leaks: tuple[Finding, ...]
    failed_required: tuple[Finding, ...]
    failed_optional: tuple[Finding, ...]
    unproven: tuple[Finding, ...]
    coverage: tuple[Coverage, ...]
    drift: tuple[Drift, ...]
    endpoints: tuple[EndpointResult, ...]
    fleet: Fleet
    # --firewall-logs: the firewall's word; status and reasons are then judged on it
    corroboration: ReportCorroboration | None = None

    @property
    def results(self) -> int:
        return self.tally.total

    @property
    def unjudged(self) -> int:
        return self.tally.unjudged

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding: leaks, failed required, failed optional, then unproven endpoints."""
        return self.leaks + self.failed_required + self.failed_optional + self.unproven

    @property
    def flapping(self) -> tuple[Finding, ...]:
        """Failing endpoints that also passed in the window, lowest pass rate first."""
        flapping = [f for f in self.findings if f.flapping]
        return tuple(sorted(flapping, key=lambda f: (f.pass_rate or 0.0, _key(f))))

    @property
    def exit_code(self) -> ExitCode:
        """Only a COMPLIANT window exits 0."""
        return self.status.exit_code


def _key(finding: Finding) -> tuple[str, str, str]:
    return (finding.cluster, finding.node_pool, finding.check_id)


def region_text(regions: tuple[str, ...]) -> str:
    return ", ".join(regions) or "?"


def scope_name(cluster: str, node_pool: str) -> str:
    """How a (cluster, node pool) pair is shown; "?" where the probe did not know it."""
    return f"{cluster or '?'}/{node_pool or '?'}"
