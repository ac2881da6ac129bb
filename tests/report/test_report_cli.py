"""`egress report`: golden output per format from a fixed store, and its exit codes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.report import FORMATS, FormatName
from egress.results import RunReport, Verdict
from egress.store import ResultStore

from store.sample_runs import BASE, clean_history, fixed_history, make_run

RUNNER = CliRunner()
NOW = (BASE + timedelta(hours=7)).isoformat()
GOLDEN_SUFFIX = {
    "terminal": "txt",
    "html": "html",
    "markdown": "md",
    "json": "json",
    "junit": "xml",
}


def _store(path: Path, runs: list[RunReport]) -> Path:
    with ResultStore(path) as store:
        for run in runs:
            store.append_run(run)
    return path


def _report(store: Path, *args: str) -> tuple[int, str, str]:
    result = RUNNER.invoke(app, ["report", "--store", str(store), "--now", NOW, *args])
    return result.exit_code, result.stdout, result.stderr


def test_every_format_is_registered_once() -> None:
    assert set(FORMATS) == set(FormatName)
    assert {cls.name for cls in FORMATS.values()} == {name.value for name in FormatName}


@pytest.mark.parametrize("name", [n.value for n in FormatName])
def test_golden_output_per_format(tmp_path: Path, golden, name: str) -> None:  # type: ignore[no-untyped-def]
    store = _store(tmp_path / "s.sqlite", fixed_history())
    code, out, _ = _report(store, "--days", "1", "--format", name)
    assert code == 1
    golden(f"report/fixed.{GOLDEN_SUFFIX[name]}", out)


def test_the_fixed_history_is_judged_as_documented(tmp_path: Path) -> None:
    import json

    store = _store(tmp_path / "s.sqlite", fixed_history())
    code, out, _ = _report(store, "--days", "1", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "non-compliant" and doc["compliant"] is False
    assert doc["reasons"][0] == "traffic that must be blocked got through"
    assert [(f["node_pool"], f["check_id"]) for f in doc["leaks"]] == [("gpu", "canary-bing-443")]
    mcr = doc["failed_required"][0]
    assert (mcr["check_id"], mcr["failed"], mcr["passed"], mcr["flapping"]) == (
        "mcr-443",
        2,
        4,
        True,
    )
    assert mcr["first_failure"] == "2026-11-20T02:05:00Z"
    assert mcr["last_failure"] == "2026-11-20T04:05:00Z"
    assert mcr["latest_failure"]["run_id"] == "sys-4"
    assert mcr["latest_failure"]["evidence"]["status"] == 470
    assert [f["check_id"] for f in doc["failed_optional"]] == ["nvidia-443"]
    gpu_drift = next(d for d in doc["drift"] if d["node_pool"] == "gpu")
    assert [(c["check_id"], c["before"], c["after"]) for c in gpu_drift["changes"]] == [
        ("canary-bing-443", "blocked", "reachable")
    ]
    assert {c["node_pool"]: c["last_run"] for c in doc["coverage"]} == {
        "gpu": "2026-11-20T05:35:00Z",
        "system": "2026-11-20T05:05:00Z",
    }


def test_an_optional_failure_fails_the_window_as_it_fails_the_probe(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite", fixed_history())
    window = ["--since", "2026-11-20T00:00Z", "--until", "2026-11-20T02:00Z"]
    code, out, _ = _report(store, *window, "--format", "markdown")
    # no leak and no failed required endpoint here, but gpu's optional endpoint was blocked:
    # the probe run that saw it exited NON-COMPLIANT, so the report says so too
    assert code == 1, out
    assert "**NON-COMPLIANT: an endpoint the policy allows was blocked" in out
    assert "nvidia-443" in out and "canary-bing-443" not in out.split("## Leaks")[1][:200]


def test_a_window_without_the_failures_is_clean(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite", fixed_history())
    window = ["--since", "2026-11-20T00:00Z", "--until", "2026-11-20T00:30Z"]  # system run only
    code, out, _ = _report(store, *window, "--format", "markdown")
    assert code == 0, out
    assert "**COMPLIANT: " in out


def test_exit_codes_leak_failed_required_clean(tmp_path: Path) -> None:
    leak = _store(
        tmp_path / "leak.sqlite",
        [make_run("l", BASE, overrides={"canary-bing-443": Verdict.REACHABLE})],
    )
    failed = _store(
        tmp_path / "failed.sqlite", [make_run("f", BASE, overrides={"api-443": Verdict.BLOCKED})]
    )
    clean = _store(tmp_path / "clean.sqlite", clean_history())
    assert _report(leak, "--format", "json")[0] == 1
    assert _report(failed, "--format", "json")[0] == 1
    soon = (BASE + timedelta(hours=3)).isoformat()  # before the hourly pool goes stale
    result = RUNNER.invoke(
        app, ["report", "--store", str(clean), "--now", soon, "--format", "json"]
    )
    assert result.exit_code == 0
    assert '"status": "compliant"' in result.stdout
    # five hours without a run from an hourly pool: a coverage gap, so nothing is proven now
    assert _report(clean, "--format", "json")[0] == 1


def test_an_empty_window_is_not_proven_and_exits_one(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite", clean_history())
    code, out, _ = _report(store, "--since", "2026-01-01", "--until", "2026-01-02")
    assert code == 1
    assert "NOT PROVEN: no probe run in this window; nothing was shown to be blocked" in out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite", clean_history())
    assert _report(store, "--days", "3", "--since", "2026-11-01")[0] == 2
    assert _report(store, "--since", "yesterday")[0] == 2
    assert _report(store, "--since", "2026-11-22", "--until", "2026-11-21")[0] == 2
    assert _report(store, "--format", "pdf")[0] == 2
    assert RUNNER.invoke(app, ["report", "--now", NOW]).exit_code == 2  # no --store


def test_an_unreadable_store_exits_5(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x00not sqlite\x00" * 100)
    code, _, err = _report(garbage)
    assert code == 5 and "cannot be read" in err
    assert _report(tmp_path / "missing.sqlite")[0] == 5


def test_output_file_is_written_whole_and_summary_goes_to_stderr(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.sqlite", fixed_history())
    target = tmp_path / "out" / "report.html"
    code, out, err = _report(store, "--days", "1", "--format", "html", "--output", str(target))
    assert code == 1 and out == ""
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert "egress report: NON-COMPLIANT: traffic that must be blocked got through" in err
    assert "1 leaking, 1 failed required, 0 unproven" in err
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temp file left


def test_html_is_self_contained(tmp_path: Path) -> None:
    import re

    store = _store(tmp_path / "s.sqlite", fixed_history())
    _, page, _ = _report(store, "--days", "1", "--format", "html")
    assert "<svg" in page and "<style>" in page
    for forbidden in ("<script", "<link", " src=", "url(", "@import"):
        assert forbidden not in page
    # links only to anchors on the page itself (matrix -> drill-down -> finding)
    targets = re.findall(r' href="([^"]*)"', page)
    assert targets and all(t.startswith("#") for t in targets)
    ids = set(re.findall(r' id="([^"]*)"', page))
    assert {t[1:] for t in targets} <= ids
    assert set(re.findall(r"https?://[^\"' <]+", page)) == {"http://www.w3.org/2000/svg"}


def test_junit_fails_every_finding_that_keeps_the_window_from_compliant(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    store = _store(tmp_path / "s.sqlite", fixed_history())
    _, xml_text, _ = _report(store, "--days", "1", "--format", "junit")
    root = ET.fromstring(xml_text)
    failures = {
        (case.get("classname"), case.get("name")): case.find("failure").get("type")  # type: ignore[union-attr]
        for case in root.iter("testcase")
        if case.find("failure") is not None
    }
    assert failures == {
        ("egress.aks-prod/gpu", "canary-bing-443"): "leak",
        ("egress.aks-prod/system", "mcr-443"): "failed-required",
        ("egress.aks-prod/gpu", "nvidia-443"): "failed-optional",
        ("egress.report", "status"): "non-compliant",
        ("egress.fleet", "aks-prod/gpu"): "non-compliant",
        ("egress.fleet", "aks-prod/system"): "non-compliant",
    }
    assert root.get("tests") == "13" and root.get("failures") == "6"


def test_a_pool_probed_only_before_the_window_is_a_coverage_gap(tmp_path: Path) -> None:
    import json

    runs = [
        make_run("old-gpu", BASE - timedelta(days=3), node_pool="gpu"),
        *clean_history(),
    ]
    store = _store(tmp_path / "s.sqlite", runs)
    doc = json.loads(_report(store, "--days", "1", "--format", "json")[1])
    gpu = next(c for c in doc["coverage"] if c["node_pool"] == "gpu")
    assert gpu == {
        "cluster": "aks-prod",
        "node_pool": "gpu",
        "runs": 0,
        "nodes": 0,
        "first_run": None,
        "probed_in_window": False,
        "last_run": "2026-11-17T00:00:00Z",
    }
    # a pool that stopped reporting keeps the whole window from being compliant
    assert doc["status"] == "not-proven" and "coverage gap" in " ".join(doc["reasons"])
    assert doc["drift"][0]["node_pool"] == "system"
    markdown = _report(store, "--days", "1", "--format", "markdown")[1]
    row = "| aks-prod/gpu | 0: NOT PROBED in this window | 0 | - | 2026-11-17 00:00 UTC |"
    assert row in markdown


def test_no_data_is_not_called_compliant(tmp_path: Path) -> None:
    import json

    store = _store(tmp_path / "s.sqlite", clean_history())
    code, out, _ = _report(
        store, "--since", "2026-01-01", "--until", "2026-01-02", "--format", "json"
    )
    doc = json.loads(out)
    assert (code, doc["status"], doc["compliant"], doc["runs"]) == (1, "not-proven", False, 0)
    assert doc["reasons"] == ["no probe run in this window", "nothing was shown to be blocked"]


def test_strict_and_require_assurance_re_judge_the_window(tmp_path: Path) -> None:
    """An inconclusive canary beside a blocked one: COMPLIANT, NOT PROVEN with --strict; the
    blocks are stated, so --require-assurance stated keeps them and confirmed does not."""
    runs = [make_run("r", BASE, overrides={}), make_run("nx", BASE + timedelta(minutes=5))]
    canary_nx = make_run(
        "c", BASE + timedelta(minutes=10), overrides={"canary-bing-443": Verdict.INCONCLUSIVE}
    )
    store = _store(tmp_path / "s.sqlite", [*runs, canary_nx])
    # until 00:20: the pool (every 5 min) is not yet stale at the window end
    window = ["--since", "2026-11-20T00:00Z", "--until", "2026-11-20T00:20Z", "--format", "json"]
    import json

    plain, strict = _report(store, *window), _report(store, *window, "--strict")
    assert (plain[0], json.loads(plain[1])["status"]) == (0, "compliant")
    doc = json.loads(strict[1])
    assert (strict[0], doc["status"], doc["strict"]) == (1, "not-proven", True)
    assert [f["check_id"] for f in doc["unproven"]] == ["canary-bing-443"]
    stated = _report(store, *window, "--require-assurance", "stated")
    assert (stated[0], json.loads(stated[1])["require_assurance"]) == (0, "stated")
    confirmed = json.loads(_report(store, *window, "--require-assurance", "confirmed")[1])
    assert confirmed["status"] == "not-proven"
    assert confirmed["reasons"] == ["nothing was shown to be blocked"]
    assert confirmed["counts"]["by_status"]["pass"] == 12  # the allow checks still pass
    assert _report(store, *window, "--require-assurance", "maybe")[0] == 2
