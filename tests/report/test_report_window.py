"""Window arithmetic: summary days and hours plus raw edges must count exactly [since, until)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from egress.compliance import CheckStatus
from egress.results import RunReport, Verdict
from egress.store import ResultStore
from egress.store.queries import status_counts

from store.sample_runs import BASE, make_run

STEP, STEPS = 37, 130  # about 3.3 days


def _history() -> list[RunReport]:
    runs = []
    for n in range(STEPS):  # runs fall on all sides of hour and day boundaries
        verdict = Verdict.BLOCKED if n % 3 == 0 else Verdict.REACHABLE
        runs.append(
            make_run(f"r{n}", BASE + timedelta(minutes=STEP * n), overrides={"mcr-443": verdict})
        )
    return runs


def _expected(runs: list[RunReport], since: datetime, until: datetime) -> tuple[object, ...]:
    inside = [r for r in runs if since <= r.started_at < until]
    mcr = [(r.started_at, c) for r in inside for c in r.checks if c.check_id == "mcr-443"]
    failures = [moment for moment, c in mcr if c.status in (CheckStatus.FAIL, CheckStatus.LEAK)]
    return (
        len(mcr),
        sum(c.status is CheckStatus.PASS for _, c in mcr),
        len(failures),
        min(failures, default=None),
        max(failures, default=None),
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultStore:
    path = Path(tmp_path_factory.mktemp("window")) / "s.sqlite"
    store = ResultStore(path)
    for run in _history():
        store.append_run(run)
    return store


@pytest.mark.parametrize(
    ("start_min", "end_min"),
    [
        (0, STEP * STEPS),  # everything
        (5, 700),  # both edges inside hours
        (60, 600),  # both edges on hour boundaries
        (37, 74),  # exactly one run at the window start, until exclusive
        (38, 50),  # within one hour, no run
        (59, 121),  # edges one minute either side of whole hours
        (1440, 2880),  # exactly one day
        (1439, 2881),  # a whole day plus a minute either side
        (700, 4000),  # partial day, two whole days, partial day
        (1500, 2000),  # whole hours inside one day
    ],
)
def test_window_counts_match_a_brute_force_count(
    store: ResultStore, start_min: int, end_min: int
) -> None:
    since, until = BASE + timedelta(minutes=start_min), BASE + timedelta(minutes=end_min)
    mcr = [g for g in status_counts(store.connection, since, until) if g.check_id == "mcr-443"]
    failing = [g for g in mcr if g.status in (CheckStatus.FAIL, CheckStatus.LEAK)]
    got = (
        sum(g.results for g in mcr),
        sum(g.results for g in mcr if g.status is CheckStatus.PASS),
        sum(g.results for g in failing),
        min((g.first_at for g in failing), default=None),
        max((g.last_at for g in failing), default=None),
    )
    assert got == _expected(_history(), since, until)
