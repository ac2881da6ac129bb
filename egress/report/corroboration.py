"""The firewall's word in the report: per-check corroboration of the window's runs.

Built from the same join `egress firewall verify` runs (egress.firewall_logs.corroborate); the
statuses it holds were computed there by egress.compliance, and the window's status here is
egress.compliance.judge_run over them (after --require-assurance), so a canary the firewall
allowed is a leak by the one rule, never restated here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from egress.compliance import (
    Assurance,
    CheckStatus,
    RunJudgement,
    StatusedCheck,
    Tally,
    at_minimum,
    judge_run,
)
from egress.report.model import ComplianceReport

if TYPE_CHECKING:
    from egress.firewall_logs.corroborate import Corroborated, CorroborationResult

JUDGED_WITH_LOGS = "judged with the firewall's logs (see Firewall corroboration)"
# Contradictions named per check (the counts hold them all; a month may hold thousands).
CONTRADICTIONS_SHOWN = 5


@dataclass(frozen=True)
class Contradiction:
    """One run in which the firewall logged the opposite of what the probe concluded."""

    run_id: str
    status: CheckStatus  # after corroboration
    rule: str  # the rule (or default action) that allowed or denied it
    explanation: str


@dataclass(frozen=True)
class CheckCorroboration:
    """One check of the window: how often the firewall confirmed, contradicted or missed it."""

    check_id: str
    host: str
    port: int
    expectation: str
    confirmed: int
    contradicted: int
    unmatched: int
    tally: Tally  # statuses after corroboration
    contradictions: tuple[Contradiction, ...]  # the first CONTRADICTIONS_SHOWN


@dataclass(frozen=True)
class ReportCorroboration:
    """What the firewall's logs say about the window's runs."""

    source: str
    watermark: datetime | None  # the logs are in up to here
    runs: int
    pending_runs: tuple[str, ...]  # runs whose logs have not arrived
    checks: tuple[CheckCorroboration, ...]
    judgement: RunJudgement  # the window after corroboration
    notes: tuple[str, ...]
    records_read: int

    @property
    def confirmed(self) -> int:
        return sum(c.confirmed for c in self.checks)

    @property
    def contradicted(self) -> int:
        return sum(c.contradicted for c in self.checks)

    @property
    def unmatched(self) -> int:
        return sum(c.unmatched for c in self.checks)


def _status(check: Corroborated, minimum: Assurance | None) -> CheckStatus:
    return at_minimum(check.status, check.verdict, check.assurance, minimum)


def summarize(
    result: CorroborationResult, *, strict: bool, minimum: Assurance | None
) -> ReportCorroboration:
    """Per-check counts and contradictions, and the window judged on corroborated statuses."""
    from egress.firewall_logs.corroborate import Outcome

    by_check: dict[str, list[tuple[str, Corroborated]]] = defaultdict(list)
    statused: set[StatusedCheck] = set()  # judge_run needs each combination once
    for run in result.runs:
        for check in run.checks:
            by_check[check.observed.check_id].append((run.run_id, check))
            observed = check.observed
            statused.add(
                StatusedCheck(_status(check, minimum), observed.expectation, observed.required)
            )
    checks = []
    for check_id in sorted(by_check):
        seen = by_check[check_id]
        first = seen[-1][1].observed  # the latest run's view of the check
        outcomes = {o: 0 for o in Outcome}
        contradictions: list[Contradiction] = []
        for run_id, check in seen:
            outcomes[check.outcome] += 1
            if check.outcome is Outcome.CONTRADICTED and len(contradictions) < CONTRADICTIONS_SHOWN:
                contradictions.append(
                    Contradiction(
                        run_id, _status(check, minimum), check.rule or "?", check.explanation
                    )
                )
        checks.append(
            CheckCorroboration(
                check_id=check_id,
                host=first.host,
                port=first.port,
                expectation=first.expectation.value,
                confirmed=outcomes[Outcome.CONFIRMED],
                contradicted=outcomes[Outcome.CONTRADICTED],
                unmatched=outcomes[Outcome.UNMATCHED],
                tally=Tally.of((c.verdict, _status(c, minimum), c.assurance, 1) for _, c in seen),
                contradictions=tuple(contradictions),
            )
        )
    return ReportCorroboration(
        source=result.source,
        watermark=result.watermark,
        runs=len(result.runs),
        pending_runs=tuple(r.run_id for r in result.runs if not r.logs_arrived),
        checks=tuple(checks),
        judgement=judge_run(sorted(statused, key=_order), strict=strict),
        notes=result.notes,
        records_read=result.records_read,
    )


def _order(check: StatusedCheck) -> tuple[str, str, bool]:
    return (check.status.value, check.expectation.value, check.required)


def pending_text(corroboration: ReportCorroboration, shown: int = 10) -> str:
    """Runs whose firewall logs have not arrived, for the text formats."""
    pending = corroboration.pending_runs
    if not pending:
        return "every run's firewall logs have arrived"
    listed = ", ".join(pending[:shown])
    more = f" and {len(pending) - shown} more" if len(pending) > shown else ""
    return f"logs not arrived for {len(pending)} run(s): {listed}{more}"


def totals_text(corroboration: ReportCorroboration) -> str:
    c = corroboration
    seen = "none yet" if c.watermark is None else c.watermark.isoformat()
    return (
        f"{c.confirmed} confirmed, {c.contradicted} contradicted, {c.unmatched} unmatched "
        f"over {c.runs} run(s), from {c.source} ({c.records_read} records; logs up to {seen})"
    )


def corroborated(report: ComplianceReport, corroboration: ReportCorroboration) -> ComplianceReport:
    """The report with the firewall's word: its status and reasons judged on it (and on the
    window's coverage gaps, by the fleet's rule)."""
    if not corroboration.runs:
        return replace(report, corroboration=corroboration)
    from egress.report.fleet import with_gaps  # a coverage gap counts as it does without logs

    status, reasons = with_gaps(corroboration.judgement, len(report.fleet.gaps))
    return replace(
        report,
        status=status,
        reasons=(*reasons, JUDGED_WITH_LOGS),
        corroboration=corroboration,
    )


CHECK_COLUMNS = [
    "check",
    "endpoint",
    "expects",
    "confirmed",
    "contradicted",
    "unmatched",
    "statuses after",
    "contradicted by",
]


def contradiction_text(contradiction: Contradiction) -> str:
    return f"run {contradiction.run_id}: {contradiction.status.value} by {contradiction.rule}"


def check_rows(corroboration: ReportCorroboration) -> list[list[str]]:
    """One row per check for the tabular formats (the statuses counted as the report counts)."""
    from egress.report.formats.base import status_counts_text

    return [
        [
            c.check_id,
            f"{c.host}:{c.port}",
            c.expectation,
            str(c.confirmed),
            str(c.contradicted),
            str(c.unmatched),
            status_counts_text(c.tally),
            "; ".join(contradiction_text(x) for x in c.contradictions) or "-",
        ]
        for c in corroboration.checks
    ]
