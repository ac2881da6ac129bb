"""The one compliance rule against truth tables written out by hand.

Every combination of the check rule's inputs is enumerated and must match exactly one row of
the hand-written table below; the table is the specification in docs/probe.md, not a copy
of `egress.compliance`'s code, so a deliberate bug in the rule makes a row disagree. A
check's status does not depend on whether it is required: `required` enters the run status,
enumerated over every set of check kinds further down.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest

from egress.compliance import (
    Assurance,
    CheckStatus,
    RunStatus,
    StatusedCheck,
    Tally,
    Verdict,
    at_minimum,
    check_status,
    judge_run,
    run_status,
)
from egress.errors import ExitCode
from egress.probe_plan import Expectation, TlsInspection

ANY = "*"
# expectation  verdict        assurance  inspected  inspection  minimum    -> status
CHECK_TABLE = """
allow  reachable     *          no   *          *          pass
allow  reachable     *          yes  allowed    *          pass
allow  reachable     *          yes  forbidden  *          fail
allow  unhealthy     *          no   *          *          pass
allow  unhealthy     *          yes  allowed    *          pass
allow  unhealthy     *          yes  forbidden  *          fail
allow  blocked       *          *    *          *          fail
allow  inconclusive  *          no   *          *          unproven
allow  inconclusive  *          yes  allowed    *          unproven
allow  inconclusive  *          yes  forbidden  *          fail
allow  unverifiable  *          *    *          *          unverifiable
deny   reachable     *          *    *          *          leak
deny   unhealthy     *          *    *          *          leak
deny   inconclusive  *          *    *          *          unproven
deny   unverifiable  *          *    *          *          unverifiable
deny   blocked       none       *    *          none       pass
deny   blocked       none       *    *          signature  unproven
deny   blocked       none       *    *          stated     unproven
deny   blocked       none       *    *          confirmed  unproven
deny   blocked       signature  *    *          none       pass
deny   blocked       signature  *    *          signature  pass
deny   blocked       signature  *    *          stated     unproven
deny   blocked       signature  *    *          confirmed  unproven
deny   blocked       stated     *    *          none       pass
deny   blocked       stated     *    *          signature  pass
deny   blocked       stated     *    *          stated     pass
deny   blocked       stated     *    *          confirmed  unproven
deny   blocked       confirmed  *    *          none       pass
deny   blocked       confirmed  *    *          signature  pass
deny   blocked       confirmed  *    *          stated     pass
deny   blocked       confirmed  *    *          confirmed  pass
"""

ASSURANCES: tuple[Assurance | None, ...] = (None, *Assurance)


def _name(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _rows() -> list[tuple[list[str], str]]:
    rows = []
    for line in CHECK_TABLE.strip().splitlines():
        *pattern, status = line.split()
        rows.append((pattern, status))
    return rows


CHECK_COMBINATIONS = list(
    itertools.product(Expectation, Verdict, ASSURANCES, (False, True), TlsInspection, ASSURANCES)
)


def test_the_table_covers_every_combination_exactly_once() -> None:
    rows = _rows()
    for combination in CHECK_COMBINATIONS:
        names = [_name(v) for v in combination]
        matches = [
            status
            for pattern, status in rows
            if all(p in (ANY, n) for p, n in zip(pattern, names, strict=True))
        ]
        assert len(matches) == 1, (names, matches)


Combination = tuple[Expectation, Verdict, Assurance | None, bool, TlsInspection, Assurance | None]


@pytest.mark.parametrize(
    "combination", CHECK_COMBINATIONS, ids=lambda c: "-".join(_name(v) for v in c)
)
def test_check_status_follows_the_table(combination: Combination) -> None:
    expectation, verdict, assurance, inspected, inspection, minimum = combination
    names = [_name(v) for v in combination]
    (expected,) = [
        status
        for pattern, status in _rows()
        if all(p in (ANY, n) for p, n in zip(pattern, names, strict=True))
    ]
    got = check_status(
        expectation=expectation,
        verdict=verdict,
        assurance=assurance,
        inspected=inspected,
        inspection=inspection,
        minimum_assurance=minimum,
    )
    assert got.value == expected
    # the report re-judges a status stored without a minimum: it must land on the same status
    stored = check_status(
        expectation=expectation,
        verdict=verdict,
        assurance=assurance,
        inspected=inspected,
        inspection=inspection,
    )
    assert at_minimum(stored, verdict, assurance, minimum) is got


# ------------------------------------------------------------------------------ run status

# Every kind of check a run can hold: (status, expectation, required).
KINDS = [
    StatusedCheck(status, expectation, required)
    for status in CheckStatus
    for expectation in Expectation
    for required in (False, True)
]


def _spec(checks: Iterable[StatusedCheck], *, strict: bool) -> RunStatus:
    """docs/probe.md, "Run status", in its own words, checked in the order it lists them."""
    items = list(checks)
    # 1. "NON-COMPLIANT when any check is fail or leak"
    for c in items:
        if c.status.value in ("fail", "leak"):
            return RunStatus.NON_COMPLIANT
    # 2. "NOT PROVEN when a required allow check is unproven"
    for c in items:
        if c.status.value == "unproven" and c.expectation.value == "allow" and c.required:
            return RunStatus.NOT_PROVEN
    # 3. "NOT PROVEN when no deny check was shown blocked (nothing was shown to be blocked)"
    if not [c for c in items if c.expectation.value == "deny" and c.status.value == "pass"]:
        return RunStatus.NOT_PROVEN
    # 4. "with --strict, NOT PROVEN when any deny check is unproven"
    if strict and [
        c for c in items if c.expectation.value == "deny" and c.status.value == "unproven"
    ]:
        return RunStatus.NOT_PROVEN
    return RunStatus.COMPLIANT


RUN_SETS = [
    combo for size in range(4) for combo in itertools.combinations(KINDS, size)
]  # every set of up to three kinds (1351 sets)


@pytest.mark.parametrize("strict", [False, True])
def test_run_status_follows_the_spec_for_every_set_of_up_to_three_kinds(strict: bool) -> None:
    for combo in RUN_SETS:
        judged = judge_run(combo, strict=strict)
        assert judged.status is _spec(combo, strict=strict), (combo, strict)
        assert run_status(combo, strict=strict) is judged.status
        assert judged.reasons, combo  # a status is never given without a reason
        # how often a kind occurs never matters (a report passes one item per kind)
        assert judge_run([*combo, *combo], strict=strict) == judged
        expected_exit = ExitCode.OK if judged.status is RunStatus.COMPLIANT else 1
        assert judged.status.exit_code == expected_exit


ALLOW, DENY = Expectation.ALLOW, Expectation.DENY
P, F, L, U, V = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.LEAK,
    CheckStatus.UNPROVEN,
    CheckStatus.UNVERIFIABLE,
)


@pytest.mark.parametrize(
    ("checks", "strict", "status", "reasons"),
    [
        # the case: nothing reachable, nothing proven blocked
        (
            [(U, ALLOW, True), (U, DENY, False)],
            False,
            "not-proven",
            ["a required endpoint was not proven reachable", "nothing was shown to be blocked"],
        ),
        ([(P, ALLOW, True)], False, "not-proven", ["nothing was shown to be blocked"]),
        ([], False, "not-proven", ["nothing was shown to be blocked"]),
        ([(P, ALLOW, True), (P, DENY, False), (U, DENY, False)], False, "compliant", None),
        (
            [(P, ALLOW, True), (P, DENY, False), (U, DENY, False)],
            True,
            "not-proven",
            ["--strict: a deny check was not proven blocked"],
        ),
        ([(U, ALLOW, False), (P, DENY, False), (V, ALLOW, True)], True, "compliant", None),
        (
            [(F, ALLOW, False), (L, DENY, False)],
            False,
            "non-compliant",
            [
                "traffic that must be blocked got through",
                "an endpoint the policy allows was blocked or inspected where that is forbidden",
            ],
        ),
        ([(F, ALLOW, False), (P, DENY, False)], False, "non-compliant", None),
    ],
)
def test_named_runs(
    checks: list[tuple[CheckStatus, Expectation, bool]],
    strict: bool,
    status: str,
    reasons: list[str] | None,
) -> None:
    judged = judge_run([StatusedCheck(*c) for c in checks], strict=strict)
    assert judged.status.value == status
    if reasons is not None:
        assert list(judged.reasons) == reasons


def test_run_status_words() -> None:
    assert [s.words for s in RunStatus] == ["COMPLIANT", "NON-COMPLIANT", "NOT PROVEN"]


def test_the_pass_rate_counts_only_passes_over_judged_results() -> None:
    tally = Tally.of(
        [
            (Verdict.REACHABLE, P, None, 3),
            (Verdict.BLOCKED, F, Assurance.STATED, 1),
            (Verdict.INCONCLUSIVE, U, None, 4),
            (Verdict.UNVERIFIABLE, V, None, 2),
        ]
    )
    assert tally.pass_rate == 3 / 4  # not (3 + 6) / 10, not 3 / 10
    assert (tally.total, tally.passed, tally.failed, tally.unjudged) == (10, 3, 1, 6)
    assert tally.blocked_by_assurance == {"signature": 0, "stated": 1, "confirmed": 0, "none": 0}
    assert Tally.of([(Verdict.INCONCLUSIVE, U, None, 5)]).pass_rate is None
