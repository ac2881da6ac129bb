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
allow       inconclusive                    unproven
deny        blocked, assurance >= minimum   pass
deny        blocked, weaker assurance       unproven
deny        reachable / unhealthy           leak (the path let it through)
deny        inconclusive                    unproven
any         unverifiable                    unverifiable (no pod can check it; listed apart)
==========  ==============================  =============================================

Run status: NON-COMPLIANT when any check is ``fail`` or ``leak``; otherwise NOT PROVEN when a
required allow check is ``unproven``, when no deny check was shown blocked ("nothing was shown
to be blocked"), or, with ``strict``, when any deny check is ``unproven``; otherwise COMPLIANT.
Only COMPLIANT exits 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

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


class RunStatus(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non-compliant"
    NOT_PROVEN = "not-proven"

    @property
    def words(self) -> str:
        """The closing words every output uses for this status."""
        return _RUN_WORDS[self]


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
    if verdict is Verdict.INCONCLUSIVE:
        return CheckStatus.UNPROVEN
    path_worked = verdict in (Verdict.REACHABLE, Verdict.UNHEALTHY)
    if expectation is Expectation.ALLOW:
        if not path_worked:
            return CheckStatus.FAIL
        if inspected and inspection is TlsInspection.FORBIDDEN:
            return CheckStatus.FAIL
        return CheckStatus.PASS
    if path_worked:
        return CheckStatus.LEAK
    return CheckStatus.PASS if meets(assurance, minimum_assurance) else CheckStatus.UNPROVEN


@dataclass(frozen=True, slots=True)
class StatusedCheck:
    """The three facts the run rule needs of each check."""

    status: CheckStatus
    expectation: Expectation
    required: bool


def run_status(checks: Iterable[StatusedCheck], *, strict: bool = False) -> RunStatus:
    """The status of a run (or of any set of checks, e.g. a report window)."""
    items = list(checks)
    if any(c.status in (CheckStatus.FAIL, CheckStatus.LEAK) for c in items):
        return RunStatus.NON_COMPLIANT
    if any(
        c.status is CheckStatus.UNPROVEN and c.expectation is Expectation.ALLOW and c.required
        for c in items
    ):
        return RunStatus.NOT_PROVEN
    denies = [c for c in items if c.expectation is Expectation.DENY]
    if not any(c.status is CheckStatus.PASS for c in denies):
        return RunStatus.NOT_PROVEN  # nothing was shown to be blocked
    if strict and any(c.status is CheckStatus.UNPROVEN for c in denies):
        return RunStatus.NOT_PROVEN
    return RunStatus.COMPLIANT
