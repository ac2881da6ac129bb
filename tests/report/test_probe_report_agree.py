"""Probe and report agree on every combination of the compliance rule, and both count right.

Each run below holds one or two kinds of check (every pair of 19 kinds: expectation, verdict,
assurance, required, and an allowed endpoint re-signed by a TLS-inspecting proxy where the
entry forbids it). The probe's view is the RunReport and its JSON-lines summary; the
report's view is `build_report` over a real SQLite store holding that run alone in its
window. Their run statuses must agree under every --strict and --require-assurance, and
every number is recounted here in plain Python from the CheckRecords, not by the store's SQL.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from egress.compliance import Assurance, CheckStatus, Verdict, check_status
from egress.probe_plan import CheckKind, Expectation, TlsInspection
from egress.report import build_report
from egress.report.model import Window
from egress.results import CheckRecord, Location, RunReport, RunSummary
from egress.store import ResultStore

from store.sample_runs import BASE, fixed_history, make_run

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY
Kind = tuple[Expectation, Verdict, Assurance | None, bool, bool]  # ..., required, inspected
_ALLOW_VERDICTS: list[tuple[Verdict, Assurance | None]] = [
    (Verdict.REACHABLE, None),
    (Verdict.UNHEALTHY, None),
    (Verdict.BLOCKED, Assurance.SIGNATURE),
    (Verdict.BLOCKED, Assurance.STATED),
    (Verdict.INCONCLUSIVE, None),
    (Verdict.UNVERIFIABLE, None),
]
_DENY_VERDICTS: list[tuple[Verdict, Assurance | None]] = [
    (Verdict.REACHABLE, None),
    (Verdict.BLOCKED, Assurance.SIGNATURE),
    (Verdict.BLOCKED, Assurance.STATED),
    (Verdict.BLOCKED, None),  # stored before assurance existed
    (Verdict.INCONCLUSIVE, None),
    (Verdict.UNVERIFIABLE, None),
]
KINDS: list[Kind] = [
    *[
        (ALLOW, verdict, assurance, required, False)
        for required in (True, False)
        for verdict, assurance in _ALLOW_VERDICTS
    ],
    (ALLOW, Verdict.REACHABLE, None, True, True),
    *[(DENY, verdict, assurance, False, False) for verdict, assurance in _DENY_VERDICTS],
]
RUNS: list[tuple[Kind, ...]] = [
    combo for size in (1, 2) for combo in itertools.combinations(KINDS, size)
]
LOCATION = Location(cluster="c", node_pool="p", node="n", pod="pod", namespace="ns")
MINIMUMS: tuple[Assurance | None, ...] = (None, Assurance.SIGNATURE, Assurance.STATED)


def _record(kind: Kind, index: int, run_id: str, minimum: Assurance | None) -> CheckRecord:
    expectation, verdict, assurance, required, inspected = kind
    started = BASE + timedelta(hours=int(run_id), seconds=index)
    return CheckRecord(
        run_id=run_id,
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=LOCATION,
        check_id=f"k{index}",
        host=f"h{index}.probe.test",  # data only, never contacted
        port=443,
        transport="tcp",
        kind=CheckKind.HTTPS,
        expectation=expectation,
        destination=f"h{index}.probe.test",
        rule="test/rule",
        feature="required" if required else "optional",
        required=required,
        verdict=verdict,
        # what the probe records: the rule at the probe's --require-assurance
        status=check_status(
            expectation=expectation,
            verdict=verdict,
            assurance=assurance,
            inspected=inspected,
            inspection=TlsInspection.FORBIDDEN if inspected else TlsInspection.ALLOWED,
            minimum_assurance=minimum,
        ),
        assurance=assurance,
        reason="test",
        evidence={"tls": {"inspection": inspected}},
        attempts=(),
        started_at=started,
        finished_at=started + timedelta(milliseconds=5),
    )


def _run(number: int, kinds: tuple[Kind, ...], minimum: Assurance | None) -> RunReport:
    run_id = str(number)
    start = BASE + timedelta(hours=number)
    return RunReport(
        run_id=run_id,
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=LOCATION,
        started_at=start,
        finished_at=start + timedelta(seconds=30),
        checks=tuple(_record(kind, KINDS.index(kind), run_id, minimum) for kind in kinds),
        require_assurance=minimum,
    )


def _recount(run: RunReport) -> tuple[dict[str, int], dict[str, int], int]:
    """Statuses and blocked verdicts by assurance, counted by hand from the records."""
    statuses = Counter(r.status.value for r in run.checks)
    blocked = Counter(
        (r.assurance.value if r.assurance else "none")
        for r in run.checks
        if r.verdict is Verdict.BLOCKED
    )
    passes = statuses["pass"]
    return dict(statuses), dict(blocked), passes


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[Assurance | None, ResultStore]:
    """One store per probe minimum; run n sits alone in hour n."""
    folder = Path(tmp_path_factory.mktemp("agree"))
    opened = {}
    for minimum in (None, Assurance.STATED):
        store = ResultStore(folder / f"{minimum}.sqlite")
        for number, kinds in enumerate(RUNS):
            assert store.append_run(_run(number, kinds, minimum))
        opened[minimum] = store
    return opened


def _window(number: int) -> Window:
    start = BASE + timedelta(hours=number)
    return Window(start, start + timedelta(hours=1))


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("minimum", MINIMUMS, ids=str)
def test_probe_and_report_agree_on_every_pair_of_kinds(
    stores: dict[Assurance | None, ResultStore], strict: bool, minimum: Assurance | None
) -> None:
    """The store holds statuses the probe judged without a minimum: the report re-judges them
    at `minimum` and must say what a probe run at `minimum` said."""
    for number, kinds in enumerate(RUNS):
        probe = _run(number, kinds, minimum).model_copy(update={"strict": strict})
        report = build_report(
            stores[None], _window(number), strict=strict, require_assurance=minimum
        )
        assert report.status is probe.status(), (kinds, strict, minimum)
        assert report.reasons == probe.judgement().reasons
        statuses, blocked, passes = _recount(probe)
        got_statuses = {s.value: n for s, n in report.tally.by_status.items() if n}
        got_blocked = {a: n for a, n in report.tally.blocked_by_assurance.items() if n}
        assert (got_statuses, got_blocked) == (statuses, blocked), kinds
        assert report.results == len(kinds) and report.tally.passed == passes
        summary = RunSummary.of(probe)
        assert summary.run_status is report.status
        assert {s.value: n for s, n in summary.by_status.items() if n} == statuses
        assert {a: n for a, n in summary.blocked_by_assurance.items() if n} == blocked
        assert summary.checks == len(kinds)
        assert set(summary.leaks) == {r.check_id for r in probe.checks if r.status.value == "leak"}
        assert set(summary.unproven) == {
            r.check_id for r in probe.checks if r.status.value == "unproven"
        }


@pytest.mark.parametrize("strict", [False, True])
def test_a_store_written_at_a_minimum_reports_as_the_probe_did(
    stores: dict[Assurance | None, ResultStore], strict: bool
) -> None:
    for number, kinds in enumerate(RUNS):
        probe = _run(number, kinds, Assurance.STATED).model_copy(update={"strict": strict})
        for again in (None, Assurance.STATED):  # re-applying the same minimum changes nothing
            report = build_report(
                stores[Assurance.STATED], _window(number), strict=strict, require_assurance=again
            )
            assert report.status is probe.status(), (kinds, strict)
            weak_passes = [
                r
                for r in probe.checks
                if r.verdict is Verdict.BLOCKED
                and r.expectation is DENY
                and r.assurance is not Assurance.STATED
            ]
            assert all(r.status is CheckStatus.UNPROVEN for r in weak_passes)


def test_the_report_numbers_match_a_recount_of_the_fixed_history(tmp_path: Path) -> None:
    runs = fixed_history()
    with ResultStore(tmp_path / "s.sqlite") as store:
        for run in runs:
            store.append_run(run)
        window = Window(BASE - timedelta(hours=1), BASE + timedelta(days=1))
        report = build_report(store, window)
    records = [(run.location.node_pool or "", r) for run in runs for r in run.checks]
    assert report.runs == len(runs) and report.results == len(records)
    overall = Counter(r.status.value for _, r in records)
    assert {s.value: n for s, n in report.tally.by_status.items() if n} == dict(overall)
    for endpoint in report.endpoints:
        mine = [
            r
            for pool, r in records
            if (pool, r.check_id) == (endpoint.node_pool, endpoint.check_id)
        ]
        passed = sum(r.status.value == "pass" for r in mine)
        failed = sum(r.status.value in ("fail", "leak") for r in mine)
        unjudged = len(mine) - passed - failed
        assert (endpoint.total, endpoint.passed, endpoint.failed, endpoint.unjudged) == (
            len(mine),
            passed,
            failed,
            unjudged,
        ), endpoint.check_id
    for finding in report.findings:
        mine = [
            r for pool, r in records if (pool, r.check_id) == (finding.node_pool, finding.check_id)
        ]
        passed = sum(r.status.value == "pass" for r in mine)
        failed = sum(r.status.value in ("fail", "leak") for r in mine)
        assert finding.pass_rate == passed / (passed + failed)
        failures = [r.started_at for r in mine if r.status.value in ("fail", "leak")]
        run_starts = {r.run_id: run.started_at for run in runs for r in run.checks}
        assert finding.last_failure == max(
            run_starts[r.run_id] for r in mine if r.status.value in ("fail", "leak")
        )
        assert failures


def test_unjudged_results_never_raise_the_pass_rate(tmp_path: Path) -> None:
    """A required endpoint: 2 passes, 2 failures and 4 inconclusive results. Its pass rate is
    2 / 4 = 50%; counting unjudged results as passed would give 75%, and counting them as
    judged would give 25%."""
    verdicts = [Verdict.REACHABLE] * 2 + [Verdict.BLOCKED] * 2 + [Verdict.INCONCLUSIVE] * 4
    with ResultStore(tmp_path / "s.sqlite") as store:
        for n, verdict in enumerate(verdicts):
            run = make_run(
                f"r{n}", BASE + timedelta(minutes=10 * n), overrides={"mcr-443": verdict}
            )
            store.append_run(run)
        report = build_report(store, Window(BASE, BASE + timedelta(hours=2)))
    (mcr,) = [f for f in report.findings if f.check_id == "mcr-443"]
    assert (mcr.passed, mcr.failed, mcr.unjudged, mcr.total) == (2, 2, 4, 8)
    assert mcr.pass_rate == 0.5
    assert report.status.value == "non-compliant"
