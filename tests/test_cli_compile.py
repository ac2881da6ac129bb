"""`egress compile`, `egress catalog` and `egress lint` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.output import MARKER
from egress.targets import TARGETS

POLICIES = Path(__file__).parent / "targets" / "policies"
ALL_FILES = {
    "azuredeploy.json",
    "egress.tf",
    "probe-plan.json",
    "role-definition.json",
    "route-table.json",
    "rule-collection-groups.json",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_default_compile_writes_every_target(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "egress-out"
    result = runner.invoke(app, ["compile", "--region", "eastus", "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert {p.name for p in out.iterdir()} == {*ALL_FILES, MARKER}
    assert "egress: AzureCloud eastus" in result.stderr
    assert "DNS proxy:" in result.stderr
    assert f"wrote 6 files to {out}" in result.stderr


def test_compile_with_dnat_policy_also_writes_services(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "o"
    args = ["compile", "--policy", str(POLICIES / "full.yaml"), "--output", str(out)]
    result = runner.invoke(app, [*args, "--target", "k8s-services", "--target", "role"])
    assert result.exit_code == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"k8s-services.yaml", "role-definition.json", MARKER}


def test_stdout_writes_only_that_target(runner: CliRunner, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", "--stdout", "route-table"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["properties"]["routes"][0]["properties"] == {
        "addressPrefix": "0.0.0.0/0",
        "nextHopIpAddress": "10.42.2.4",
        "nextHopType": "VirtualAppliance",
    }
    assert list(tmp_path.iterdir()) == []  # no output folder


def test_stdout_takes_exactly_one_target(runner: CliRunner, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", "--stdout", "all"])
    assert result.exit_code == 2
    assert "--stdout takes one target name" in result.stderr
    assert result.stdout == ""


def test_stdout_of_an_empty_target_is_an_error(runner: CliRunner, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", "--stdout", "k8s-services"])
    assert result.exit_code == 2
    assert "k8s-services needs a DNAT publication" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["--region", "eastsu"], "did you mean 'eastus'"),
        (["--feature", "gpuu"], "did you mean 'gpu'"),
        (["--target", "terraformm"], "did you mean 'terraform'"),
        (["--stdout", "arm-template"], "'arm'"),
    ],
)
def test_unknown_names_exit_2_with_suggestion_and_no_output(
    runner: CliRunner, tmp_path: Path, args: list[str], suggestion: str
):
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", *args, "--output", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown")
    assert suggestion in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_a_failing_target_leaves_no_partial_output(runner: CliRunner, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schema_version: 1\n"
        "firewall: {private_ip: 10.42.2.4, public_ip: 20.10.10.10}\n"
        "dnat:\n"
        "  - {name: high, firewall_port: 65000, internal_ip: 10.42.1.9, port: 80,"
        " selector: {app: a}}\n"
        "  - {name: higher, firewall_port: 65001, internal_ip: 10.42.1.10, port: 80,"
        " selector: {app: b}}\n"
    )
    out = tmp_path / "out"
    args = ["compile", "--policy", str(policy), "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "target 'terraform' (egress.tf) cannot express 2 entries" in result.stderr
    assert "rule 'high" in result.stderr
    assert "rule 'higher" in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["policy.yaml"]
    # An existing output stays exactly as it was.
    assert runner.invoke(app, ["compile", "--output", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert runner.invoke(app, args).exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Leaving the target out makes the same policy compile.
    targets = [
        arg
        for name, target in TARGETS.items()
        if target.on_by_default and name != "terraform"
        for arg in ("--target", name)
    ]
    assert runner.invoke(app, [*args, *targets]).exit_code == 0
    assert "egress.tf" not in {p.name for p in out.iterdir()}


def test_output_into_a_foreign_folder_is_refused(runner: CliRunner, tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["compile", "--output", str(tmp_path)])
    assert result.exit_code == 5
    assert "was not written by egress" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_catalog_lists_clouds_regions_features_and_entries(runner: CliRunner):
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 0, result.stderr
    for cloud in ("AzureCloud", "AzureChinaCloud", "AzureUSGovernment"):
        assert cloud in result.stdout
    assert "usgovvirginia" in result.stdout
    filtered = runner.invoke(app, ["catalog", "--cloud", "AzureCloud", "--feature", "gpu"])
    assert "nvidia.github.io" in filtered.stdout
    assert "mcr.microsoft.com" not in filtered.stdout  # data only, never contacted
    expanded = runner.invoke(app, ["catalog", "--cloud", "AzureCloud", "--region", "westus2"])
    assert "*.hcp.westus2.azmk8s.io" in expanded.stdout


def test_catalog_unknown_feature_exits_2(runner: CliRunner):
    result = runner.invoke(app, ["catalog", "--cloud", "AzureCloud", "--feature", "windwos"])
    assert result.exit_code == 2
    assert "did you mean 'windows'" in result.stderr


def test_lint_passes_the_example_and_fails_bad_address_plans(runner: CliRunner, tmp_path: Path):
    good = runner.invoke(app, ["lint", "--policy", str(POLICIES / "full.yaml")])
    assert good.exit_code == 0, good.stderr
    assert "0 errors" in good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schema_version: 1\ncluster: {service_cidr: 169.254.0.0/16, dns_service_ip: 169.254.0.1}\n"
    )
    result = runner.invoke(app, ["lint", "--policy", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.stderr
    assert "169.254.0.0/16" in result.stderr
