"""The fleet view over a store of several clusters and regions, on both backends.

The store holds `fleet_history`: a planted leak on aks-west/user, a planted coverage gap on
aks-north/batch (it stopped reporting after two hourly runs), a pool last probed before the
window (aks-north/spot) and a clean cluster (aks-east). Every format must show the leak and
the gap in its matrix, byte for byte the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.report import FormatName
from egress.store import ResultStore

from store.conftest import store_location  # noqa: F401  (the fixture: one store per backend)
from store.sample_runs import BASE, fleet_history

RUNNER = CliRunner()
NOW = (BASE + timedelta(hours=7)).isoformat()
SUFFIX = {"terminal": "txt", "html": "html", "markdown": "md", "json": "json", "junit": "xml"}


@pytest.fixture
def fleet_store(store_location: str) -> str:  # noqa: F811
    with ResultStore(store_location) as store:
        for run in fleet_history():
            assert store.append_run(run)
    return store_location


def _report(store: str, *args: str) -> tuple[int, str, str]:
    result = RUNNER.invoke(app, ["report", "--store", store, "--now", NOW, "--days", "1", *args])
    return result.exit_code, result.stdout, result.stderr


def _json(store: str, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = _report(store, "--format", "json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def _cells(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{c['cluster']}/{p['node_pool']}": p for c in doc["fleet"]["clusters"] for p in c["pools"]
    }


def test_the_matrix_shows_the_planted_leak_and_gap(fleet_store: str) -> None:
    code, doc = _json(fleet_store)
    assert code == 1 and doc["status"] == "non-compliant"
    fleet = doc["fleet"]
    # leaks first, then by status: the leaking cluster, the one with the gap, the clean one
    assert [(c["cluster"], c["regions"], c["status"], c["leaks"]) for c in fleet["clusters"]] == [
        ("aks-west", ["westus"], "non-compliant", 1),
        ("aks-north", ["northeurope"], "not-proven", 0),
        ("aks-east", ["eastus"], "compliant", 0),
    ]
    assert fleet["node_pools"] == ["batch", "gpu", "spot", "system", "user"]
    cells = _cells(doc)
    assert {name: cell["status"] for name, cell in cells.items()} == {
        "aks-west/system": "compliant",
        "aks-west/user": "non-compliant",
        "aks-north/batch": "not-proven",
        "aks-north/spot": "not-proven",
        "aks-north/system": "compliant",
        "aks-east/gpu": "compliant",
        "aks-east/system": "compliant",
    }
    assert cells["aks-west/user"]["findings"] == [
        {"category": "leak", "check_id": "canary-bing-443"}
    ]
    assert cells["aks-west/user"]["gap"] is None and cells["aks-west/user"]["drift_changes"] == 1
    batch = cells["aks-north/batch"]
    # two runs an hour apart: stale after 3 x 1 h; silent from 01:50 to the window end 07:00
    assert batch["stale_after_seconds"] == 3 * 3600
    assert batch["gap"] == {"kind": "stopped-reporting", "silent_for_seconds": 5 * 3600 + 600}
    assert batch["reasons"] == ["coverage gap: the node pool stopped reporting"]
    assert batch["region"] == "northeurope" and batch["runs"] == 2
    spot = cells["aks-north/spot"]
    assert spot["gap"]["kind"] == "not-probed" and spot["runs"] == 0
    assert spot["reasons"][0] == "no probe run in this window"
    assert fleet["gaps"] == [
        {"cluster": "aks-north", "node_pool": "batch", "region": "northeurope"},
        {"cluster": "aks-north", "node_pool": "spot", "region": "northeurope"},
    ]
    assert cells["aks-east/system"]["gap"] is None
    assert cells["aks-east/system"]["stale_after_seconds"] == 3 * 3600
    assert fleet["filters"] == {"clusters": [], "regions": []}
    assert fleet["stale_after_seconds"] is None


@pytest.mark.parametrize("name", [n.value for n in FormatName])
def test_every_format_shows_the_leak_and_the_gap(fleet_store: str, golden, name: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = _report(fleet_store, "--format", name)
    assert code == 1
    # the same golden file for both backends: the store does not change the report
    golden(f"report/fleet.{SUFFIX[name]}", out)
    if name == "junit":
        root = ET.fromstring(out)
        fleet = next(s for s in root.iter("testsuite") if s.get("name") == "egress fleet")
        failures = {
            case.get("name"): case.find("failure").get("type")  # type: ignore[union-attr]
            for case in fleet.iter("testcase")
            if case.find("failure") is not None
        }
        assert failures == {
            "aks-west/user": "non-compliant",
            "aks-north/batch": "coverage-gap",
            "aks-north/spot": "coverage-gap",
        }
    elif name != "json":
        assert ("NON-COMPLIANT (1 leak)" if name != "terminal" else "(1 leak)") in out
        assert "GAP: stopped reporting, silent 5h 10m (stale after 3h)" in out
        assert "GAP: not probed in window" in out
        assert out.index("aks-west") < out.index("aks-north") < out.index("aks-east")


def test_html_matrix_links_to_each_cluster_and_pool(fleet_store: str) -> None:
    _, page, _ = _report(fleet_store, "--format", "html")
    for target in ("cluster-aks-north", "pool-aks-north-batch", "pool-aks-west-user"):
        assert f'href="#{target}"' in page and f'id="{target}"' in page
    leak = "finding-aks-west-user-canary-bing-443"
    assert f'href="#{leak}"' in page and f'id="{leak}"' in page


def test_cluster_filter_limits_every_count(fleet_store: str) -> None:
    code, doc = _json(fleet_store, "--cluster", "aks-east")
    # the leak is on another cluster: aks-east alone is compliant, and only its results count
    assert (code, doc["status"], doc["runs"]) == (0, "compliant", 12)
    assert doc["results"] == 12 * 5 and doc["leaks"] == []
    assert [c["cluster"] for c in doc["fleet"]["clusters"]] == ["aks-east"]
    assert {c["cluster"] for c in doc["coverage"]} == {"aks-east"}
    assert doc["fleet"]["filters"] == {"clusters": ["aks-east"], "regions": []}
    code, doc = _json(fleet_store, "--cluster", "aks-east", "--cluster", "aks-north")
    # aks-north has a pool that stopped reporting: a gap keeps the window from COMPLIANT too
    assert (code, doc["status"]) == (1, "not-proven")
    assert "coverage gap: the node pool stopped reporting" in doc["reasons"]
    assert doc["fleet"]["clusters"][0]["status"] == "not-proven"
    assert [c["cluster"] for c in doc["fleet"]["clusters"]] == ["aks-north", "aks-east"]


def test_region_filter_picks_the_clusters_that_ran_there(fleet_store: str) -> None:
    code, doc = _json(fleet_store, "--region", "westus")
    assert (code, doc["status"]) == (1, "non-compliant")
    assert [c["cluster"] for c in doc["fleet"]["clusters"]] == ["aks-west"]
    assert [f["node_pool"] for f in doc["leaks"]] == ["user"]
    _, doc = _json(fleet_store, "--region", "eastus", "--region", "northeurope")
    assert {c["cluster"] for c in doc["fleet"]["clusters"]} == {"aks-east", "aks-north"}
    assert doc["leaks"] == []
    code, doc = _json(fleet_store, "--region", "northeurope", "--cluster", "aks-north")
    assert [c["cluster"] for c in doc["fleet"]["clusters"]] == ["aks-north"]


def test_stale_after_sets_the_threshold(fleet_store: str) -> None:
    _, doc = _json(fleet_store, "--stale-after", "6h")
    cells = _cells(doc)
    assert doc["fleet"]["stale_after_seconds"] == 6 * 3600
    assert cells["aks-north/batch"]["gap"] is None  # silent 5h10m, under 6h
    assert cells["aks-north/batch"]["status"] == "compliant"
    assert cells["aks-north/spot"]["gap"]["kind"] == "not-probed"  # no run in the window at all
    _, doc = _json(fleet_store, "--stale-after", "2h")
    cells = _cells(doc)
    assert cells["aks-east/gpu"]["gap"] is None  # last run 05:10: silent 1h50m
    assert cells["aks-north/batch"]["gap"]["kind"] == "stopped-reporting"
    _, doc = _json(fleet_store, "--stale-after", "1h45m")
    gaps = {name for name, cell in _cells(doc).items() if cell["gap"]}
    assert gaps == {
        "aks-east/gpu",  # silent 1h50m
        "aks-east/system",  # 1h55m
        "aks-north/batch",
        "aks-north/spot",
    }  # aks-west (1h35m, 1h40m) and aks-north/system (1h20m) reported in time


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--cluster", "aks-nope"],
            "--cluster 'aks-nope' (the store holds clusters aks-east, aks-north, aks-west)",
        ),
        (
            ["--region", "mars", "--cluster", "aks-east"],
            "--region 'mars' (the store holds regions eastus, northeurope, westus)",
        ),
        (["--cluster", "aks-east", "--region", "westus"], "no cluster matches both"),
        (["--stale-after", "soon"], "--stale-after 'soon' is not a duration"),
        (["--stale-after", "0m"], "--stale-after '0m' must be longer than zero"),
    ],
)
def test_bad_filters_exit_2_with_one_sentence(
    fleet_store: str, args: list[str], words: str
) -> None:
    code, out, err = _report(fleet_store, *args)
    assert code == 2 and out == ""
    assert words in err and "Traceback" not in err
