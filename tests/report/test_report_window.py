"""Window arithmetic: summary hours plus raw edge hours must count exactly [since, until)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from store.sample_runs import BASE, make_run

from egress.results import RunReport, Verdict
from egress.store import ResultStore
from egress.store.queries import endpoint_totals


def _history() -> list[RunReport]:
    runs = []
    for n in range(40):  # every 17 minutes, so runs fall on all sides of hour boundaries
        verdict = Verdict.BLOCKED if n % 3 == 0 else Verdict.REACHABLE
        runs.append(
            make_run(f"r{n}", BASE + timedelta(minutes=17 * n), overrides={"mcr-443": verdict})
        )
    return runs


def _expected(runs: list[RunReport], since: datetime, until: datetime) -> tuple[int, int, int]:
    inside = [r for r in runs if since <= r.started_at < until]
    mcr = [c for r in inside for c in r.checks if c.check_id == "mcr-443"]
    return len(mcr), sum(c.compliant is True for c in mcr), sum(c.compliant is False for c in mcr)


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
        (0, 40 * 17),  # everything
        (5, 700),  # both edges inside hours
        (60, 600),  # both edges on hour boundaries
        (17, 34),  # one run, inside one hour
        (34, 35),  # exactly one run at the window start
        (20, 50),  # within one hour, no run
        (59, 121),  # edges one minute either side of whole hours
        (0, 17 * 3),  # until is exclusive: the run at minute 51 is outside
    ],
)
def test_window_counts_match_a_brute_force_count(
    store: ResultStore, start_min: int, end_min: int
) -> None:
    since, until = BASE + timedelta(minutes=start_min), BASE + timedelta(minutes=end_min)
    totals = {t.check_id: t for t in endpoint_totals(store.connection, since, until)}
    mcr = totals.get("mcr-443")
    got = (mcr.total, mcr.passed, mcr.failed) if mcr else (0, 0, 0)
    assert got == _expected(_history(), since, until)
