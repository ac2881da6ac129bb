"""Rendered alerts in a real Prometheus scraping a real Pushgateway: they fire and resolve."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from egress.cli import app
from egress.metrics.alerts import alert_rules, prometheus_rule_groups
from egress.metrics.delivery import deliver
from egress.results import Verdict

from metrics.servers import binary, monitoring, wait_until
from store.sample_runs import make_run

pytestmark = pytest.mark.slow
ALERT_WAIT_SECONDS = 40.0


def rendered_rule_groups(tmp_path: Path) -> list[dict[str, Any]]:
    """The PrometheusRule exactly as `egress probe manifest --alerts` renders it."""
    result = CliRunner().invoke(
        app,
        ["probe", "manifest", "--region", "eastus", "--alerts", "--schedule", "*/5 * * * *"],
    )
    assert result.exit_code == 0, result.output
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    (rule,) = [d for d in documents if d["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rendered_rule_groups(tmp_path)}))
    done = subprocess.run(
        [binary("promtool"), "check", "rules", str(rules)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 rules found" in done.stdout


def test_azure_rule_group_holds_the_same_alerts(tmp_path: Path) -> None:
    target = tmp_path / "alerts.json"
    result = CliRunner().invoke(
        app, ["probe", "manifest", "--region", "eastus", "--azure-alerts", str(target)]
    )
    assert result.exit_code == 0, result.output
    template = json.loads(target.read_text())
    (resource,) = template["resources"]
    assert resource["type"] == "Microsoft.AlertsManagement/prometheusRuleGroups"
    azure = {r["alert"]: r["expression"] for r in resource["properties"]["rules"]}
    prometheus = {r["alert"]: r["expr"] for g in rendered_rule_groups(tmp_path) for r in g["rules"]}
    assert azure.keys() == prometheus.keys()
    # Same expressions except the stale threshold, which follows the schedule when given.
    for name in azure.keys() - {"EgressProbeStale"}:
        assert azure[name] == prometheus[name]
    assert all(0 <= r["severity"] <= 4 for r in resource["properties"]["rules"])


def test_a_leak_fires_the_alert_and_a_compliant_run_resolves_it(tmp_path: Path) -> None:
    cluster = f"c-{uuid.uuid4().hex[:8]}"  # only this test's series count
    with monitoring(tmp_path, rendered_rule_groups(tmp_path)) as stack:
        now = datetime.now(UTC).replace(microsecond=0)
        leaking = make_run(
            "leak-1",
            now - timedelta(seconds=10),
            cluster=cluster,
            overrides={"canary-bing-443": Verdict.REACHABLE},
        )
        deliver(leaking, pushgateway=stack.pushgateway, textfile=None)
        wait_until(
            lambda: bool(stack.firing("EgressLeak", cluster)),
            seconds=ALERT_WAIT_SECONDS,
            what="EgressLeak firing",
        )
        (alert,) = stack.firing("EgressLeak", cluster)
        assert alert["labels"]["node_pool"] == "system"
        assert alert["labels"]["severity"] == "critical"
        assert float(alert["value"]) == 1.0

        compliant = make_run("ok-1", now - timedelta(seconds=5), cluster=cluster)
        deliver(compliant, pushgateway=stack.pushgateway, textfile=None)
        wait_until(
            lambda: not stack.firing("EgressLeak", cluster),
            seconds=ALERT_WAIT_SECONDS,
            what="EgressLeak resolving",
        )
        assert not stack.firing("EgressProbeStale", cluster)


def test_a_probe_that_stopped_reporting_fires_the_stale_alert(tmp_path: Path) -> None:
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    rules = prometheus_rule_groups(alert_rules(stale_after_seconds=60))
    with monitoring(tmp_path, rules) as stack:
        old = make_run(
            "old-1", datetime.now(UTC) - timedelta(minutes=10), cluster=cluster, node_pool="user"
        )
        deliver(old, pushgateway=stack.pushgateway, textfile=None)
        wait_until(
            lambda: bool(stack.firing("EgressProbeStale", cluster)),
            seconds=ALERT_WAIT_SECONDS,
            what="EgressProbeStale firing",
        )
        (alert,) = stack.firing("EgressProbeStale", cluster)
        assert alert["labels"]["node_pool"] == "user"
        assert not stack.firing("EgressLeak", cluster)
        fresh = make_run(
            "new-1", datetime.now(UTC) - timedelta(seconds=8), cluster=cluster, node_pool="user"
        )
        deliver(fresh, pushgateway=stack.pushgateway, textfile=None)
        wait_until(
            lambda: not stack.firing("EgressProbeStale", cluster),
            seconds=ALERT_WAIT_SECONDS,
            what="EgressProbeStale resolving",
        )
