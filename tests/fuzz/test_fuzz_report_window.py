"""Fuzz the report window and retention flags (--days, --since, --until, --now, --keep-days)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.report import FormatName
from egress.store import ResultStore

from fuzz_cli import assert_no_partial_output, fuzz_settings, remove, run, scratch
from store.sample_runs import fixed_history

ZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-24 * 60 + 1, 24 * 60 - 1)
)
MOMENTS = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), ZONES)).map(datetime.isoformat),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1970-01-01",
                     "2026-11-20T00:00:00Z", "2026-11-20 10:00", "2026-13-01", "now", ""]),
    st.text(max_size=30),
)  # fmt: skip
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e9", "1e-300", "0", "-0", "7", "36525", "0x10", ""]),
    st.text(max_size=12),
)


@pytest.fixture(scope="module")
def store() -> Iterator[Path]:
    with scratch("fuzz-report-") as folder:
        path = Path(folder) / "store.sqlite"
        with ResultStore(path) as result_store:
            for report in fixed_history():
                result_store.append_run(report)
        yield path


@fuzz_settings(1700)
@given(
    days=st.one_of(st.none(), NUMBERS),
    since=st.one_of(st.none(), MOMENTS),
    until=st.one_of(st.none(), MOMENTS),
    now=st.one_of(st.none(), MOMENTS),
    fmt=st.sampled_from([f.value for f in FormatName]),
    to_file=st.booleans(),
)
def test_report_window(
    store: Path,
    *,
    days: str | None,
    since: str | None,
    until: str | None,
    now: str | None,
    fmt: str,
    to_file: bool,
) -> None:
    argv = ["report", "--store", str(store), "--format", fmt]
    for flag, value in (("--days", days), ("--since", since), ("--until", until), ("--now", now)):
        if value is not None:
            argv.append(f"{flag}={value}")
    out = store.parent / "report.out"
    remove(out)
    if to_file:
        argv += ["-o", str(out)]
    result = run(argv)
    assert result.exit_code in (0, 1, 2), result.stderr
    if to_file:
        assert_no_partial_output(out, succeeded=result.exit_code in (0, 1))
    if result.exit_code == 2:
        assert result.stdout == ""


@fuzz_settings(500)
@given(keep=NUMBERS, now=st.one_of(st.none(), MOMENTS))
def test_prune_keep_days(store: Path, keep: str, now: str | None) -> None:
    argv = ["report", "prune", "--store", str(store), f"--keep-days={keep}"]
    result = run([*argv, *([f"--now={now}"] if now is not None else [])])
    assert result.exit_code in (0, 2), result.stderr
