"""The metrics of one run: counted by hand from the run's planted outcomes, not by the code."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from egress.errors import MetricsError, UsageError
from egress.metrics import run_registry
from egress.metrics.delivery import check_gateway_url, deliver
from egress.results import RunReport, Verdict

from store.sample_runs import BASE, make_run


def samples(run: RunReport) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(run_registry(run)).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    group = {"cluster": "aks-prod", "node_pool": "system"}
    return found[(name, frozenset({**group, **labels}.items()))]


def test_a_leak_and_a_blocked_required_endpoint_are_counted() -> None:
    # Planted: the canary got through (leak), mcr is blocked (a required endpoint failed),
    # the API server is inconclusive (required, unproven). Everything else behaves.
    run = make_run(
        "r1",
        BASE,
        overrides={
            "canary-bing-443": Verdict.REACHABLE,
            "mcr-443": Verdict.BLOCKED,
            "api-443": Verdict.INCONCLUSIVE,
        },
    )
    found = samples(run)
    assert value(found, "egress_run_leaks") == 1
    assert value(found, "egress_run_failed_required") == 1
    assert value(found, "egress_run_unproven_required") == 1
    assert value(found, "egress_run_status", status="non-compliant") == 1
    assert value(found, "egress_run_status", status="compliant") == 0
    assert value(found, "egress_run_status", status="not-proven") == 0
    assert value(found, "egress_run_checks", status="leak") == 1
    assert value(found, "egress_run_checks", status="fail") == 1
    assert value(found, "egress_run_checks", status="unproven") == 1
    assert value(found, "egress_run_checks", status="pass") == 2  # ntp and nvidia
    leak = value(
        found,
        "egress_check_status",
        check_id="canary-bing-443",
        feature="canary",
        expectation="deny",
        status="leak",
    )
    assert leak == 1
    assert value(found, "egress_last_complete_run_timestamp_seconds") == run.finished_at.timestamp()
    assert value(found, "egress_run_duration_seconds") == 6.0  # five checks, one second apart, +1


def test_a_compliant_run_has_nothing_to_alert_on() -> None:
    found = samples(make_run("r2", BASE))
    assert value(found, "egress_run_leaks") == 0
    assert value(found, "egress_run_failed_required") == 0
    assert value(found, "egress_run_unproven_required") == 0
    assert value(found, "egress_run_status", status="compliant") == 1


def test_cardinality_is_one_series_per_check_plus_a_fixed_run_set() -> None:
    run = make_run("r3", BASE)
    found = samples(run)
    per_check = [key for key in found if key[0] == "egress_check_status"]
    assert len(per_check) == len(run.checks)
    # 3 run statuses + 5 check statuses + 4 assurance levels (none included) + leaks, failed,
    # unproven, duration, last run.
    assert len(found) - len(per_check) == 3 + 5 + 4 + 5


def test_textfile_is_written_and_an_unwritable_one_is_a_clean_error(tmp_path: Path) -> None:
    run = make_run("r4", BASE + timedelta(hours=1))
    target = tmp_path / "egress.prom"
    assert deliver(run, pushgateway=None, textfile=target) == [str(target)]
    assert "egress_run_leaks" in target.read_text()
    with pytest.raises(MetricsError, match="cannot write the metrics file"):
        deliver(run, pushgateway=None, textfile=tmp_path / "missing" / "egress.prom")


def test_a_gateway_that_is_down_is_a_clean_error() -> None:
    from metrics.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(MetricsError, match="cannot push metrics"):
        deliver(make_run("r5", BASE), pushgateway=url, textfile=None)


@pytest.mark.parametrize("url", ["pushgateway:9091", "ftp://x", "http://"])
def test_a_bad_gateway_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="--pushgateway"):
        check_gateway_url(url)
