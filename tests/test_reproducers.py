"""Issue 9's reproducers: each input that crashed or was silently accepted now gets the tool's
own one-sentence error with its documented exit code, and leaves no output behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.store import ResultStore

from store.sample_runs import fixed_history

NOT_UTF8 = b"\xe6\x08"


def _egress(*argv: str) -> list[str]:
    return [str(Path(sys.executable).with_name("egress")), *argv]


def _clean_error(result: object, code: int, *needles: str) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == code, stderr  # type: ignore[attr-defined]
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as result_store:
        for run in fixed_history():
            result_store.append_run(run)
    return path


@pytest.mark.parametrize("name", ["p.yaml", "p.toml"])
def test_a_policy_that_is_not_utf8(runner: CliRunner, tmp_path: Path, name: str) -> None:
    policy = tmp_path / name
    policy.write_bytes(NOT_UTF8)
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", "--policy", str(policy), "-o", str(out)])
    _clean_error(result, 2, str(policy), "not UTF-8", "line 1")
    assert not out.exists()


def test_a_probe_plan_that_is_not_utf8(runner: CliRunner, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(b'{"checks": []}\n' + NOT_UTF8)
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["probe", "run", "--plan", str(plan), "--report", str(report)])
    _clean_error(result, 2, str(plan), "not UTF-8", "line 2")
    assert not report.exists()


def test_a_catalog_that_is_not_utf8(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "AzureCloud.yaml").write_bytes(b"cloud: AzureCloud\n" + NOT_UTF8)
    result = runner.invoke(
        app, ["catalog", "--cloud", "AzureCloud", "--catalog-dir", str(tmp_path)]
    )
    _clean_error(result, 2, "AzureCloud.yaml", "not UTF-8")
    assert result.stdout == ""


@pytest.mark.parametrize("days", ["nan", "inf", "-inf", "1e9", "0", "-1", "36526"])
def test_report_days_outside_a_bounded_window(runner: CliRunner, store: Path, days: str) -> None:
    result = runner.invoke(app, ["report", "--store", str(store), "--days", days])
    _clean_error(result, 2, "--days")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "until", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31", "1900-01-01"]
)
def test_report_until_outside_the_supported_years(
    runner: CliRunner, store: Path, until: str
) -> None:
    result = runner.invoke(app, ["report", "--store", str(store), "--until", until])
    _clean_error(result, 2, "--until", "outside 1970-9000")


def test_prune_keep_days_is_bounded_and_deletes_nothing(runner: CliRunner, store: Path) -> None:
    before = store.read_bytes()
    result = runner.invoke(
        app, ["report", "prune", "--store", str(store), "--keep-days", "99999999"]
    )
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr and "--keep-days" in result.stderr
    assert store.read_bytes() == before


@pytest.mark.parametrize("shape", ["[", '{"a":['])
def test_deeply_nested_json_to_ingest_is_a_rejected_line(
    runner: CliRunner, tmp_path: Path, shape: str
) -> None:
    lines = tmp_path / "logs.jsonl"
    closing = "]" * 100_000 + ("}" if shape.startswith("{") else "")
    lines.write_text(shape + "[" * 100_000 + closing + "\n", encoding="utf-8")
    store = tmp_path / "s.sqlite"
    result = runner.invoke(app, ["report", "ingest", "--store", str(store), str(lines)])
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{lines}:1:" in result.stderr
    assert "ingested 0 run(s)" in result.stderr


def test_deeply_nested_json_as_a_probe_plan(runner: CliRunner, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    _clean_error(runner.invoke(app, ["probe", "run", "--plan", str(plan)]), 2, str(plan))


def test_compile_stdout_to_a_full_disk_is_exit_5() -> None:
    with Path("/dev/full").open("wb") as full:
        done = subprocess.run(
            _egress("compile", "--stdout", "probe-plan"),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "cannot write to standard output (No space left on device)" in done.stderr


def test_a_closed_stdout_pipe_is_exit_5_without_a_traceback() -> None:
    # `egress catalog | head -1`: the listing is larger than what the reader takes.
    with subprocess.Popen(
        _egress("catalog"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read()
        code = process.wait(timeout=60)
    assert code == 5, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert "the reading end closed the pipe" in stderr


def test_duplicate_yaml_keys_name_the_key_and_both_lines(runner: CliRunner, tmp_path: Path) -> None:
    policy = tmp_path / "dup.yaml"
    policy.write_text("firewall:\n  private_ip: 10.0.0.4\n  private_ip: 10.0.0.5\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", "--policy", str(policy), "-o", str(out)])
    _clean_error(result, 2, "duplicate key 'private_ip'", "line 2", "line 3")
    assert not out.exists()


def test_yaml_merge_keys_may_still_be_overridden(runner: CliRunner, tmp_path: Path) -> None:
    policy = tmp_path / "merge.yaml"
    policy.write_text(
        "x-ports: &p {ports: ['https:443'], purpose: shared}\n"
        "allow:\n  - <<: *p\n    fqdn: a.example.net\n    purpose: own\n"
    )
    result = runner.invoke(app, ["lint", "--policy", str(policy)])
    assert "duplicate key" not in result.stderr  # the merge is legal; the x- field is not
    assert result.exit_code == 2 and "x-ports" in result.stderr


@pytest.mark.parametrize("port", ["tcp:٤٤٣", "tcp:４４３", "tcp:4²", "https:44३"])
def test_ports_take_ascii_digits_only(runner: CliRunner, tmp_path: Path, port: str) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(f'allow:\n  - fqdn: a.example.net\n    ports: ["{port}"]\n', encoding="utf-8")
    result = runner.invoke(app, ["compile", "--policy", str(policy), "-o", str(tmp_path / "o")])
    _clean_error(result, 2, "allow[0].ports", "ASCII digits")


@pytest.mark.parametrize("extra", [["--target", "terraform"], ["-o", "somewhere"]])
def test_stdout_conflicts_with_target_and_output(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", "--stdout", "route-table", *extra])
    _clean_error(result, 2, "--stdout", "cannot be combined")
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_probe_host_outside_its_wildcard(runner: CliRunner, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        'allow:\n  - fqdn: "*.example.net"\n    ports: ["https:443"]\n'
        "    probe_host: www.example.org\n"
    )
    result = runner.invoke(app, ["compile", "--policy", str(policy), "-o", str(tmp_path / "o")])
    _clean_error(result, 2, "probe_host 'www.example.org' is not under *.example.net")
    policy.write_text(
        'allow:\n  - fqdn: "*.example.net"\n    ports: ["https:443"]\n'
        "    probe_host: www.example.net\n"
    )
    ok = runner.invoke(app, ["compile", "--policy", str(policy), "-o", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize("image", ["my image", "Registry.io/Egress:1", "a:b:c", "x@sha256:12"])
def test_an_image_name_that_is_not_a_reference(runner: CliRunner, image: str) -> None:
    argv = ["probe", "manifest", "--region", "eastus", "--node-pool", "system", "--image", image]
    result = runner.invoke(app, argv)
    _clean_error(result, 2, "--image")
    assert result.stdout == ""


def test_a_good_image_reference_is_kept(runner: CliRunner) -> None:
    image = "myregistry.azurecr.io:5000/team/egress:0.1.0@sha256:" + "a" * 64
    argv = ["probe", "manifest", "--region", "eastus", "--node-pool", "system", "--image", image]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.stderr
    assert f"image: {image}" in result.stdout


def test_version_and_completion(runner: CliRunner) -> None:
    from egress import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"egress {__version__}\n"
    shown = runner.invoke(
        app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"}, prog_name="egress"
    )
    assert shown.exit_code == 0, shown.output
    assert "_EGRESS_COMPLETE" in shown.stdout


def test_azure_sdk_logging_only_with_verbose(tmp_path: Path) -> None:
    # No credential in the environment and endpoints on a closed loopback port: the SDK's
    # DefaultAzureCredential fails without sending a packet anywhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env["AZURE_TOKEN_CREDENTIALS"] = "EnvironmentCredential"
    argv = ["plan", "--subscription", "00000000-0000-0000-0000-000000000001"]
    argv += ["--resource-group", "rg", "--firewall-policy", "fp"]
    argv += ["--arm-endpoint", "https://127.0.0.1:9", "--authority-host", "https://127.0.0.1:9"]

    def run(*pre: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _egress(*pre, *argv),
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    quiet, verbose = run(), run("--verbose")
    assert quiet.returncode == verbose.returncode == 4, quiet.stderr
    assert quiet.stderr.splitlines() == [
        line for line in quiet.stderr.splitlines() if line.startswith("error:")
    ]
    assert len(quiet.stderr.splitlines()) == 1, quiet.stderr
    assert "EnvironmentCredential" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == quiet.stderr.splitlines()[-1]


def test_a_long_but_bounded_window_still_reports(runner: CliRunner, store: Path) -> None:
    argv = ["report", "--store", str(store), "--format", "json", "--until", "2026-11-30"]
    result = runner.invoke(app, [*argv, "--days", "3652"])
    assert result.exit_code in (0, 1), result.stderr
    assert json.loads(result.stdout)["window"]["since"].startswith("2016-11-30")
    before_1970 = runner.invoke(app, [*argv, "--days", "30000"])
    _clean_error(before_1970, 2, "--days", "before 1970-01-01")
