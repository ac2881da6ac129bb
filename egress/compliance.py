"""The one compliance rule: a judged check becomes a status, and statuses become a run status.

Everything that says "compliant" (the probe's exit code, table, JSON lines, JUnit, report file,
the store's summaries and ``egress report``) derives its words from this module, so the rule
lives in exactly one place. The store persists the status computed here instead of repeating
the rule in SQL.

Check status, from (expectation, verdict, assurance, required, TLS inspection):

==========  ==============================  =============================================
expectation verdict                         status
==========  ==============================  =============================================
allow       reachable / unhealthy           pass (fail if inspected where forbidden)
allow       blocked                         fail
allow       inconclusive                    unproven (fail if inspected where forbidden)
deny        blocked, assurance >= minimum   pass
deny        blocked, weaker assurance       unproven
deny        reachable / unhealthy           leak (the path let it through)
deny        inconclusive                    unproven
any         unverifiable                    unverifiable (no pod can check it; listed apart)
==========  ==============================  =============================================

Run status: NON-COMPLIANT when any check is ``fail`` or ``leak``; otherwise NOT PROVEN when a
required allow check is ``unproven``, when no deny check was shown blocked ("nothing was shown
to be blocked"), or, with ``strict``, when any deny check is ``unproven``; otherwise COMPLIANT.
Only COMPLIANT exits 0. :func:`judge_run` gives the status with every reason that applies;
it depends only on which (status, expectation, required) combinations occur, so a report
judges a whole window of stored rows with it.

:func:`at_minimum` applies ``--require-assurance`` to a status already computed (the report
re-judges stored rows with it), and :class:`Tally` is the one place results are counted (by
verdict, by status, blocked verdicts by assurance) and the pass rate is defined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from egress.errors import ExitCode
from egress.probe_plan import Expectation, TlsInspection


class Verdict(StrEnum):
    """What the probe observed, judged only on evidence."""

    REACHABLE = "reachable"  # the real destination answered through the path
    BLOCKED = "blocked"  # evidence that a firewall stopped it (see Assurance for how strong)
    UNHEALTHY = "unhealthy"  # the path worked but the destination itself failed
    INCONCLUSIVE = "inconclusive"  # nothing proves either way (NXDOMAIN, TCP-only on 80/443)
    UNVERIFIABLE = "unverifiable"  # cannot be checked from a pod at all (e.g. UDP 1194)


class Assurance(StrEnum):
    """How a verdict is known. Every ``blocked`` verdict carries one."""

    SIGNATURE = "signature"  # a pattern a firewall deny produces, but so could a dead destination
    STATED = "stated"  # the firewall said so: HTTP 470 Action: Deny, EDE 15-18, ICMP admin-prohib.
    CONFIRMED = "confirmed"  # corroborated by the firewall's own log (egress firewall logs)


ASSURANCE_RANK: dict[Assurance, int] = {
    Assurance.SIGNATURE: 1,
    Assurance.STATED: 2,
    Assurance.CONFIRMED: 3,
}


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # an allow check shown blocked, or inspected where inspection is forbidden
    LEAK = "leak"  # a deny check got through: the most severe finding
    UNPROVEN = "unproven"  # neither way shown (or a block weaker than the required assurance)
    UNVERIFIABLE = "unverifiable"  # cannot be probed from a pod; never counts as proven

    @property
    def failing(self) -> bool:
        """A finding against the policy (``fail`` or ``leak``): the run is NON-COMPLIANT."""
        return self in FAILING_STATUSES

    @property
    def judged(self) -> bool:
        """Shown one way or the other; only judged results enter a pass rate."""
        return self in JUDGED_STATUSES


FAILING_STATUSES = frozenset({CheckStatus.FAIL, CheckStatus.LEAK})
JUDGED_STATUSES = frozenset({CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.LEAK})


class RunStatus(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non-compliant"
    NOT_PROVEN = "not-proven"

    @property
    def words(self) -> str:
        """The closing words every output uses for this status."""
        return _RUN_WORDS[self]

    @property
    def exit_code(self) -> ExitCode:
        """Only a compliant run or report exits 0."""
        return ExitCode.OK if self is RunStatus.COMPLIANT else ExitCode.NON_COMPLIANT


_RUN_WORDS = {
    RunStatus.COMPLIANT: "COMPLIANT",
    RunStatus.NON_COMPLIANT: "NON-COMPLIANT",
    RunStatus.NOT_PROVEN: "NOT PROVEN",
}


def meets(assurance: Assurance | None, minimum: Assurance | None) -> bool:
    """Whether `assurance` is at least `minimum` (no minimum: any assurance counts)."""
    if minimum is None:
        return True
    return assurance is not None and ASSURANCE_RANK[assurance] >= ASSURANCE_RANK[minimum]


def check_status(
    *,
    expectation: Expectation,
    verdict: Verdict,
    assurance: Assurance | None,
    inspected: bool = False,
    inspection: TlsInspection = TlsInspection.ALLOWED,
    minimum_assurance: Assurance | None = None,
) -> CheckStatus:
    """The status of one judged check (see the module table)."""
    if verdict is Verdict.UNVERIFIABLE:
        return CheckStatus.UNVERIFIABLE
    forbidden_inspection = inspected and inspection is TlsInspection.FORBIDDEN
    if expectation is Expectation.ALLOW and forbidden_inspection:
        return CheckStatus.FAIL  # seen re-signed, whatever else the attempt could show
    if verdict is Verdict.INCONCLUSIVE:
        return CheckStatus.UNPROVEN
    path_worked = verdict in (Verdict.REACHABLE, Verdict.UNHEALTHY)
    if expectation is Expectation.ALLOW:
        return CheckStatus.PASS if path_worked else CheckStatus.FAIL
    if path_worked:
        return CheckStatus.LEAK
    return at_minimum(CheckStatus.PASS, verdict, assurance, minimum_assurance)


def at_minimum(
    status: CheckStatus,
    verdict: Verdict,
    assurance: Assurance | None,
    minimum: Assurance | None,
) -> CheckStatus:
    """`status` under a minimum assurance: a pass that rests on a block weaker than the minimum
    is unproven. The report uses this to apply ``--require-assurance`` to stored statuses."""
    if status is CheckStatus.PASS and verdict is Verdict.BLOCKED and not meets(assurance, minimum):
        return CheckStatus.UNPROVEN
    return status


@dataclass(frozen=True, slots=True)
class StatusedCheck:
    """The three facts the run rule needs of each check."""

    status: CheckStatus
    expectation: Expectation
    required: bool


def withholds_proof(check: StatusedCheck, *, strict: bool) -> bool:
    """An unproven check that keeps its run from being COMPLIANT: a required allow check, or,
    with ``strict``, any deny check. Unverifiable checks never do (listed apart)."""
    if check.status is not CheckStatus.UNPROVEN:
        return False
    return check.required if check.expectation is Expectation.ALLOW else strict


# Why a run has its status, in the words every output prints after the status.
LEAK_REASON = "traffic that must be blocked got through"
FAIL_REASON = "an endpoint the policy allows was blocked or inspected where that is forbidden"
UNPROVEN_REQUIRED_REASON = "a required endpoint was not proven reachable"
NOTHING_BLOCKED_REASON = "nothing was shown to be blocked"
STRICT_REASON = "--strict: a deny check was not proven blocked"
COMPLIANT_REASON = "every required endpoint reachable and every judged deny check blocked"


@dataclass(frozen=True, slots=True)
class RunJudgement:
    """A run status and every reason that applies to it (most severe first)."""

    status: RunStatus
    reasons: tuple[str, ...]


def judge_run(checks: Iterable[StatusedCheck], *, strict: bool = False) -> RunJudgement:
    """The status of a run (or of any set of checks, e.g. a report window), with its reasons.

    It depends only on which (status, expectation, required) combinations occur, never on how
    often, so a report may pass one item per combination found in its window.
    """
    items = list(checks)
    failing = [
        reason
        for status, reason in ((CheckStatus.LEAK, LEAK_REASON), (CheckStatus.FAIL, FAIL_REASON))
        if any(c.status is status for c in items)
    ]
    if failing:
        return RunJudgement(RunStatus.NON_COMPLIANT, tuple(failing))
    unproven: list[str] = []
    withheld = [c for c in items if withholds_proof(c, strict=strict)]
    if any(c.expectation is Expectation.ALLOW for c in withheld):
        unproven.append(UNPROVEN_REQUIRED_REASON)
    if not any(c.status is CheckStatus.PASS and c.expectation is Expectation.DENY for c in items):
        unproven.append(NOTHING_BLOCKED_REASON)
    if any(c.expectation is Expectation.DENY for c in withheld):
        unproven.append(STRICT_REASON)
    if unproven:
        return RunJudgement(RunStatus.NOT_PROVEN, tuple(unproven))
    return RunJudgement(RunStatus.COMPLIANT, (COMPLIANT_REASON,))


def run_status(checks: Iterable[StatusedCheck], *, strict: bool = False) -> RunStatus:
    """The status of a run (or of any set of checks, e.g. a report window)."""
    return judge_run(checks, strict=strict).status


# Keys of the blocked-verdict counts: each assurance, and "none" for blocks stored before
# assurance existed (or judged without one).
NO_ASSURANCE = "none"
ASSURANCE_KEYS: tuple[str, ...] = (*(a.value for a in Assurance), NO_ASSURANCE)


_NO_VERDICTS = dict.fromkeys(Verdict, 0)
_NO_STATUSES = dict.fromkeys(CheckStatus, 0)
_NO_BLOCKS = dict.fromkeys(ASSURANCE_KEYS, 0)


@dataclass(frozen=True)
class Tally:
    """Results counted by verdict and by status, and blocked verdicts by assurance.

    The one place that counts: the probe's summary record, its table and the report all
    add up through here, and the pass rate is defined only here.
    """

    by_verdict: dict[Verdict, int]
    by_status: dict[CheckStatus, int]
    blocked_by_assurance: dict[str, int]

    @classmethod
    def of(cls, results: Iterable[tuple[Verdict, CheckStatus, Assurance | None, int]]) -> Tally:
        """Sum (verdict, status, assurance, how many) items; every key present, zeros too."""
        by_verdict = dict(_NO_VERDICTS)
        by_status = dict(_NO_STATUSES)
        blocked = dict(_NO_BLOCKS)
        for verdict, status, assurance, count in results:
            by_verdict[verdict] += count
            by_status[status] += count
            if verdict is Verdict.BLOCKED:
                blocked[NO_ASSURANCE if assurance is None else assurance.value] += count
        return cls(by_verdict, by_status, blocked)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def passed(self) -> int:
        return self.by_status[CheckStatus.PASS]

    @property
    def failed(self) -> int:
        """Failing results: ``fail`` and ``leak``."""
        return sum(n for status, n in self.by_status.items() if status.failing)

    @property
    def unjudged(self) -> int:
        """Results shown neither way: ``unproven`` and ``unverifiable``."""
        return sum(n for status, n in self.by_status.items() if not status.judged)

    @property
    def pass_rate(self) -> float | None:
        """``pass`` over judged results; unjudged results are neither passed nor counted."""
        judged = self.passed + self.failed
        return None if judged == 0 else self.passed / judged
