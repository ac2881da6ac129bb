"""`egress probe manifest` on the command line: the README command, plan input, errors."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from egress import __version__
from egress.cli import app
from egress.compiler import CompileRequest, compile_request
from egress.k8s import ManifestSpec, pool_target, render_manifest
from egress.probe_plan import parse_plan

from .cases import PLAN
from .restricted import violations
from .test_manifest import KUBERNETES_VERSIONS

RUNNER = CliRunner()
README_COMMAND = [
    "probe",
    "manifest",
    "--region",
    "eastus",
    "--node-pool",
    "system",
    "--node-pool",
    "user",
    "--schedule",
    "*/5 * * * *",
    "--store-pvc",
    "1Gi",
]


def test_the_readme_command_renders_valid_restricted_cron_jobs_for_two_pools() -> None:
    result = RUNNER.invoke(app, README_COMMAND)
    assert result.exit_code == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    for obj in objects:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        assert violations(obj) == []
    probes = [o["metadata"]["name"] for o in objects if o["kind"] == "CronJob"]
    assert probes == [
        "egress-probe-system",
        "egress-probe-user",
        "egress-report-system",
        "egress-report-user",
    ]
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    shipped = parse_plan(config_map["data"]["probe-plan.json"], origin="configmap")
    assert shipped == compile_request(CompileRequest(region="eastus")).probe_plan
    assert "2 CronJob(s) in namespace egress-probe for system, user" in result.stderr


def test_without_pools_one_job_runs_on_any_linux_node(tmp_path: Path) -> None:
    plan_file = tmp_path / "probe-plan.json"
    plan_file.write_text(PLAN.to_json(), encoding="utf-8")
    result = RUNNER.invoke(app, ["probe", "manifest", "--plan", str(plan_file)])
    assert result.exit_code == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    (job,) = [o for o in objects if o["kind"] == "Job"]
    assert job["metadata"]["name"] == "egress-probe-any"
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_output_goes_to_a_file_when_asked(tmp_path: Path) -> None:
    plan_file = tmp_path / "probe-plan.json"
    plan_file.write_text(PLAN.to_json(), encoding="utf-8")
    target = tmp_path / "probe.yaml"
    args = ["probe", "manifest", "--plan", str(plan_file), "--node-pool", "user"]
    result = RUNNER.invoke(app, [*args, "--output", str(target)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    expected = render_manifest(
        PLAN, ManifestSpec(version=__version__, targets=(pool_target("user"),))
    )
    assert target.read_text(encoding="utf-8") == expected
    assert [p.name for p in tmp_path.iterdir()] == sorted(["probe-plan.json", "probe.yaml"])


def test_an_unwritable_output_is_an_environment_error(tmp_path: Path) -> None:
    plan_file = tmp_path / "probe-plan.json"
    plan_file.write_text(PLAN.to_json(), encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    unwritable = blocker / "probe.yaml"  # its parent is a file: no folder can be made there
    result = RUNNER.invoke(
        app, ["probe", "manifest", "--plan", str(plan_file), "-o", str(unwritable)]
    )
    assert result.exit_code == 5
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plan", "p.json", "--region", "eastus"], "cannot be combined"),
        ([], "pass --plan PATH, or --region"),
        (["--plan", "missing.json"], "cannot read the probe plan"),
        (["--region", "eastus", "--node-pool", "Sys_Pool"], "not a valid node pool name"),
        (["--region", "eastus", "--node-selector", "zone"], "not a Kubernetes label selector"),
        (["--region", "nowhere", "--schedule", "5 minutes"], "not a cron expression"),
        (["--region", "eastus", "--store-pvc", "1 GB"], "not a storage size"),
        (["--region", "eastus", "--node-pool", "a", "--node-pool", "a"], "given twice"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.json").write_text(PLAN.to_json(), encoding="utf-8")
    result = RUNNER.invoke(app, ["probe", "manifest", *args])
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("schedule", "deadline", "warned"),
    [
        ("*/2 * * * *", "120", True),  # Job may run 240 s, longer than the 120 s interval
        ("*/5 * * * *", "120", False),
        ("*/5 * * * *", "200", True),
        ("0 * * * *", "3000", False),  # hourly: not a simple every-N-minutes schedule
    ],
)
def test_a_schedule_shorter_than_a_run_is_warned_about(
    schedule: str, deadline: str, warned: bool, tmp_path: Path
) -> None:
    plan_file = tmp_path / "probe-plan.json"
    plan_file.write_text(PLAN.to_json(), encoding="utf-8")
    args = ["--plan", str(plan_file), "--schedule", schedule, "--deadline", deadline]
    result = RUNNER.invoke(app, ["probe", "manifest", *args])
    assert result.exit_code == 0, result.stderr
    assert ("warning: --schedule" in result.stderr) is warned
