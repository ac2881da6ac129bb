"""`egress report ingest`: JSON lines and RunReport files in, every bad line reported."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from egress.cli import app
from egress.probe.output import render_jsonl
from egress.results import Verdict
from egress.store import ResultStore, ingest_files

from store.sample_runs import BASE, make_run

RUNNER = CliRunner()


def _lines(run_id: str, hour: int, **overrides: Verdict) -> list[str]:
    run = make_run(run_id, BASE + timedelta(hours=hour), overrides=overrides)
    return [check.model_dump_json() for check in run.checks]


def test_lines_are_grouped_into_runs_and_every_bad_line_is_named(tmp_path: Path) -> None:
    good_a = _lines("run-a", 0)
    good_b = _lines("run-b", 1, **{"mcr-443": Verdict.BLOCKED})
    truncated = good_b[2][: len(good_b[2]) // 2]
    wrong_field = good_a[0].replace('"port":443', '"port":"https"')
    conflicting = good_a[1].replace('"reason":"answered', '"reason":"different')
    lines = [
        good_a[0],
        "probe: 5 checks, 0 failed",  # 2: the human summary kubectl logs mixes in
        f"[pod/egress-probe-x/probe] {good_a[1]}",  # kubectl logs --prefix
        f"2026-11-20T00:00:01.123456789Z {good_a[2]}",  # kubectl logs --timestamps
        "",
        truncated,  # 6
        *good_a[3:],
        wrong_field,  # 9
        good_a[0],  # 10: the same line gathered twice is not an error
        conflicting,  # 11
        *good_b[:2],
        *good_b[3:],
        '{"hello": "world"}',  # 16
        "[1, 2]",  # 17
    ]
    source = tmp_path / "logs.jsonl"
    source.write_text("\n".join(lines) + "\n")
    store_path = tmp_path / "s.sqlite"
    result = RUNNER.invoke(app, ["report", "ingest", "--store", str(store_path), str(source)])
    assert result.exit_code == 2, result.output
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert [line.split(":")[2] for line in rejected] == ["2", "6", "9", "11", "16", "17"]
    assert "not a JSON record" in rejected[0]
    assert "invalid JSON" in rejected[1]
    assert "field 'port'" in rejected[2]
    assert f"already read at {source}:3" in rejected[3]
    assert "ingested 2 run(s) (9 results)" in result.stderr
    with ResultStore(store_path) as store:
        assert store.run_ids() == ["run-a", "run-b"]
        run_a = store.read_run("run-a")
        run_b = store.read_run("run-b")
    assert run_a == make_run("run-a", BASE).model_copy(update={"finished_at": run_a.finished_at})
    assert run_b is not None
    assert [c.check_id for c in run_b.checks] == [
        "mcr-443",
        "api-443",
        "nvidia-443",
        "canary-bing-443",
    ]
    assert run_b.checks[0].verdict is Verdict.BLOCKED


def test_run_report_files_and_repeated_ingest_dedupe_by_run_id(tmp_path: Path) -> None:
    report_file = tmp_path / "run.json"
    report_file.write_text(make_run("doc-1", BASE).model_dump_json(indent=2))
    lines_file = tmp_path / "same-run.jsonl"
    lines_file.write_text("\n".join(_lines("doc-1", 0)) + "\n")
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        first = ingest_files(store, [report_file, lines_file])
        again = ingest_files(store, [report_file])
        assert store.run_ids() == ["doc-1"]
        assert store.read_run("doc-1") == make_run("doc-1", BASE)
    assert (first.runs_added, first.runs_already_stored, first.rejected) == (1, 0, ())
    assert (again.runs_added, again.runs_already_stored) == (0, 1)
    result = RUNNER.invoke(app, ["report", "ingest", "--store", str(store_path), str(lines_file)])
    assert result.exit_code == 0, result.output
    assert "ingested 0 run(s) (0 results); 1 already stored; 0 line(s) rejected" in result.stderr


def test_non_json_noise_can_be_skipped_on_request(tmp_path: Path) -> None:
    source = tmp_path / "logs.txt"
    source.write_text("starting probe\n" + "\n".join(_lines("r", 0)) + "\nprobe done\n")
    store_path = tmp_path / "s.sqlite"
    args = ["report", "ingest", "--store", str(store_path), "--ignore-non-json", str(source)]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ingested 1 run(s) (5 results)" in result.stderr


def test_a_missing_input_file_is_a_usage_error_and_nothing_is_written(tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite"
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(_lines("r", 0)) + "\n")
    args = ["report", "ingest", "--store", str(store_path), str(good), str(tmp_path / "nope")]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2
    assert "no such file" in result.stderr
    with ResultStore(store_path) as store:
        assert store.run_ids() == []


def test_summary_lines_are_checked_against_the_check_lines_of_their_run(tmp_path: Path) -> None:
    whole = make_run("whole", BASE)
    lossy = make_run("lossy", BASE + timedelta(hours=1), overrides={"mcr-443": Verdict.BLOCKED})
    orphan = make_run("orphan", BASE + timedelta(hours=2))
    lossy_lines = render_jsonl(lossy).splitlines()
    lines = [
        *render_jsonl(whole).splitlines(),  # 1-6: five checks and their summary
        *[line for line in lossy_lines if '"check_id":"mcr-443"' not in line],  # 7-11
        render_jsonl(orphan).splitlines()[-1],  # 12: a summary whose checks were not gathered
    ]
    source = tmp_path / "logs.jsonl"
    source.write_text("\n".join(lines) + "\n")
    store_path = tmp_path / "s.sqlite"
    result = RUNNER.invoke(app, ["report", "ingest", "--store", str(store_path), str(source)])
    assert result.exit_code == 2, result.output
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert [line.split(":")[2] for line in rejected] == ["11", "12"]
    # the lost line was the failing one: the summary names every count that no longer adds up
    assert "the summary of run lossy disagrees with its 4 check record(s)" in rejected[0]
    assert "checks: the summary says 5, the check records make 4" in rejected[0]
    assert (
        "run_status: the summary says non-compliant, the check records make compliant"
        in (rejected[0])
    )
    assert "failures: the summary says ['mcr-443']" in rejected[0]
    assert "the summary of run orphan has no check lines" in rejected[1]
    with ResultStore(store_path) as store:
        assert store.read_run("whole") == whole  # the summary also restores the run's times
        assert store.run_ids() == ["whole", "lossy"]  # the lines that did arrive are kept


def test_a_summary_that_does_not_add_up_is_rejected_by_its_line(tmp_path: Path) -> None:
    lines = render_jsonl(make_run("edited", BASE)).splitlines()
    lines[-1] = lines[-1].replace('"words":"COMPLIANT"', '"words":"NOT PROVEN"')
    source = tmp_path / "logs.jsonl"
    source.write_text("\n".join(lines) + "\n")
    with ResultStore(tmp_path / "s.sqlite") as store:
        result = ingest_files(store, [source])
        assert store.run_ids() == ["edited"]  # the check lines are kept
    (rejected,) = result.rejected
    assert rejected.line == 6
    assert "words 'NOT PROVEN' do not name run_status compliant" in rejected.reason


def test_a_time_without_a_time_zone_is_rejected_by_its_line(tmp_path: Path) -> None:
    # Found by the fuzz suite: a naive finished_at crashed the run grouping (naive vs aware).
    lines = _lines("run-naive", 0)
    naive = lines[1].replace(
        '"finished_at":"2026-11-20T00:00:01.060000Z"', '"finished_at":"2026-11-20T00:00:01"'
    )
    assert naive != lines[1]
    source = tmp_path / "logs.jsonl"
    source.write_text("\n".join([lines[0], naive, *lines[2:]]) + "\n")
    result = RUNNER.invoke(
        app, ["report", "ingest", "--store", str(tmp_path / "s.sqlite"), str(source)]
    )
    assert result.exit_code == 2, result.output  # a rejected line is bad input, not a crash
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert [line.split(":")[2] for line in rejected] == ["2"]
    assert "finished_at" in rejected[0]
