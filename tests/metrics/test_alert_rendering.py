"""The alert renderings, byte for byte, and how the manifest wires the probe to a gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from k8s.cases import PLAN, VERSION
from typer.testing import CliRunner

from egress.cli import app
from egress.errors import UsageError
from egress.k8s import ManifestSpec, pool_target, render_objects
from egress.k8s.spec import check_options
from egress.metrics.alerts import alert_rules, azure_rule_group_template, prometheus_rule_groups


def test_prometheus_rule_groups_golden(golden: object) -> None:
    groups = prometheus_rule_groups(alert_rules(stale_after_seconds=900))
    golden("metrics/prometheus-rules.yaml", yaml.safe_dump({"groups": groups}, sort_keys=True))  # type: ignore[operator]


def test_azure_rule_group_golden(golden: object) -> None:
    template = azure_rule_group_template(alert_rules(stale_after_seconds=900), cluster="aks-prod")
    golden("metrics/azure-rule-group.json", json.dumps(template, indent=2, sort_keys=True) + "\n")  # type: ignore[operator]


def test_the_stale_threshold_follows_the_schedule() -> None:
    every_five = ManifestSpec(
        version=VERSION, targets=(pool_target("system"),), schedule="*/5 * * * *"
    )
    assert every_five.stale_after == 900  # three missed runs
    hourly = ManifestSpec(version=VERSION, targets=(pool_target("system"),), schedule="0 * * * *")
    assert hourly.stale_after == 3600  # not a */N schedule: the default of 3 x 20 min
    explicit = ManifestSpec(
        version=VERSION, targets=(pool_target("system"),), stale_after_seconds=120
    )
    assert explicit.stale_after == 120  # the user's own threshold wins


def test_the_probe_pushes_to_the_gateway_and_the_rule_joins_the_stream() -> None:
    spec = ManifestSpec(
        version=VERSION,
        targets=(pool_target("system"),),
        pushgateway="http://pushgateway.monitoring:9091",
        alerts=True,
    )
    objects = render_objects(PLAN, spec)
    (job,) = [o for o in objects if o["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--pushgateway") + 1] == "http://pushgateway.monitoring:9091"
    assert objects[-1]["kind"] == "PrometheusRule"
    assert objects[-1]["metadata"]["namespace"] == spec.namespace


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"pushgateway": "gateway:9091"}, "--pushgateway"),
        ({"stale_after_seconds": 5}, "--stale-after"),
    ],
)
def test_bad_metrics_options_are_usage_errors(change: dict[str, object], flag: str) -> None:
    spec = ManifestSpec(version=VERSION, targets=(pool_target("system"),), **change)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=flag):
        check_options(spec)


def test_an_unwritable_azure_alerts_file_leaves_no_manifest(tmp_path: Path) -> None:
    (tmp_path / "no").write_text("a file, not a folder")
    result = CliRunner().invoke(
        app,
        [
            "probe",
            "manifest",
            "--region",
            "eastus",
            "--azure-alerts",
            str(tmp_path / "no" / "a.json"),
        ],
    )
    assert result.exit_code == 5
    assert "Traceback" not in result.output
    assert "kind: Job" not in result.stdout
