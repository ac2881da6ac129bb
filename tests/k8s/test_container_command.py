"""The probe container's command, run for real: store appended, report regenerated, exit code."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer.main

from egress.cli import app
from egress.k8s import render_objects
from egress.k8s.objects import PLAN_DIR, STORE_DIR
from egress.probe_plan import Check, CheckKind, Expectation, ProbePlan
from egress.results import RunStatus, Verdict, split_lines

from .cases import VARIANTS

EGRESS_BIN = Path(sys.executable).parent  # the venv that holds the `egress` script
# One check against a closed port on loopback: the run sends packets only to 127.0.0.1.
LOCAL_PLAN = ProbePlan(
    cloud="AzureCloud",
    region="eastus",
    generated_by="test",
    checks=(
        Check(
            id="loopback/9",
            host="127.0.0.1",
            port=9,
            transport="tcp",
            kind=CheckKind.TCP,
            expectation=Expectation.ALLOW,
            destination="127.0.0.1",
            rule="test/loopback",
            feature="optional",
            # optional: the closed port ends inconclusive, which would fail a required check
            required=False,
        ),
    ),
)


AZURE_DENY_BODY = b"Action: Deny. Reason: No rule matched. Proceeding with default action."


class _FirewallDeny(BaseHTTPRequestHandler):
    """Answers every request as Azure Firewall's application rules deny one (HTTP 470)."""

    def do_GET(self) -> None:
        self.send_response(470)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(AZURE_DENY_BODY)))
        self.end_headers()
        self.wfile.write(AZURE_DENY_BODY)

    def log_message(self, *_: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def deny_port() -> Iterator[int]:
    """A stand-in firewall deny on loopback, so the run shows something blocked."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FirewallDeny)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def with_deny_canary(port: int) -> ProbePlan:
    """LOCAL_PLAN plus a deny check the loopback stand-in firewall answers with a 470 deny: a
    run is only compliant when something was shown to be blocked."""
    canary = Check(
        id="canary/loopback-470",
        host="127.0.0.1",
        port=port,
        transport="tcp",
        kind=CheckKind.HTTP,
        expectation=Expectation.DENY,
        destination="127.0.0.1",
        rule="canary/loopback-470",
        feature="canary",
        required=False,
    )
    return LOCAL_PLAN.model_copy(update={"checks": (*LOCAL_PLAN.checks, canary)})


def container(variant: str) -> dict[str, Any]:
    objects = render_objects(LOCAL_PLAN, VARIANTS[variant])
    workload = next(o for o in objects if o["kind"] in {"Job", "CronJob"})
    spec = workload["spec"].get("jobTemplate", workload)["spec"]
    found: dict[str, Any] = spec["template"]["spec"]["containers"][0]
    return found


def pod_env(entry: dict[str, Any]) -> dict[str, str]:
    """What the kubelet would put in the environment (Downward API filled in)."""
    downward = {
        "spec.nodeName": "aks-user-12345-vmss000000",
        "metadata.name": "egress-probe-user-29000000-abcde",
        "metadata.namespace": "egress-probe",
        "status.hostIP": "10.224.0.4",
        "status.podIP": "10.244.1.7",
    }
    env = {"PATH": f"{EGRESS_BIN}{os.pathsep}/usr/bin:/bin", "HOME": "/tmp"}
    for item in entry["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = downward[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def run_container(entry: dict[str, Any], root: Path, path_prefix: Path | None = None) -> Any:
    """Run command+args as the kubelet would, with the volume paths mapped under `root`."""
    argv = [*entry["command"], *entry.get("args", [])]
    mapped = [
        a.replace(PLAN_DIR, str(root / "plan")).replace(STORE_DIR, str(root / "store"))
        for a in argv
    ]
    env = pod_env(entry)
    env["TMPDIR"] = str(root / "tmp")
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        mapped, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def pod_root(tmp_path: Path) -> Path:
    for folder in ("plan", "store", "tmp"):
        (tmp_path / folder).mkdir()
    (tmp_path / "plan" / "probe-plan.json").write_text(LOCAL_PLAN.to_json(), encoding="utf-8")
    return tmp_path


@pytest.fixture
def compliant_pod_root(pod_root: Path, deny_port: int) -> Path:
    plan = with_deny_canary(deny_port).to_json()
    (pod_root / "plan" / "probe-plan.json").write_text(plan, encoding="utf-8")
    return pod_root


def test_every_rendered_flag_is_accepted_by_the_real_commands() -> None:
    command = typer.main.get_command(app)
    entry = container("cronjob-two-pools-store")
    script = entry["args"][0]
    lines = [line.split(" >&2")[0].split() for line in script.splitlines()]
    invocations = [line[1:] for line in lines if line and line[0] == "egress"]
    invocations.append(container("job-one-pool")["args"])
    assert [i[0] for i in invocations] == ["probe", "report", "probe"]
    for invocation in invocations:
        group: Any = command
        argv = list(invocation)
        while argv[0] in getattr(group, "commands", {}):
            group, argv = group.commands[argv[0]], argv[1:]
        group.make_context(group.name, argv)  # raises on an unknown flag or bad value


def test_the_scheduled_command_appends_runs_and_regenerates_the_report(
    compliant_pod_root: Path,
) -> None:
    pod_root = compliant_pod_root
    entry = container("cronjob-two-pools-store")
    assert entry["command"] == ["/bin/sh", "-c"]
    for expected_runs in (1, 2):
        done = run_container(entry, pod_root)
        assert done.returncode == 0, done.stderr
        # stdout is pure JSON-lines (what Container Insights collects), one record per check.
        checks, (summary,) = split_lines(done.stdout.splitlines())
        records = {r.check_id: r for r in checks}
        assert len(checks) == 2 and set(records) == {"loopback/9", "canary/loopback-470"}
        assert summary.run_status is RunStatus.COMPLIANT
        assert records["canary/loopback-470"].verdict is Verdict.BLOCKED
        location = records["loopback/9"].location
        assert (location.cluster, location.node_pool) == ("aks-prod-eastus", "system")
        assert location.node == "aks-user-12345-vmss000000"
        with sqlite3.connect(pod_root / "store" / "results.db") as db:
            assert db.execute("SELECT count(*) FROM runs").fetchone() == (expected_runs,)
        # Regenerated after every run: it counts the run just appended, for this pool.
        report = (pod_root / "store" / "report.html").read_text(encoding="utf-8")
        assert report.lstrip().lower().startswith("<!doctype html")
        assert f"{expected_runs} runs," in report
        assert "system" in report


def test_the_one_off_job_runs_the_probe_without_a_shell(compliant_pod_root: Path) -> None:
    pod_root = compliant_pod_root
    entry = container("job-one-pool")
    assert entry["command"] == ["egress"]
    done = run_container(entry, pod_root)
    assert done.returncode == 0, done.stderr
    records, summaries = split_lines(done.stdout.splitlines())
    assert {r.location.node_pool for r in (*records, *summaries)} == {"system"}
    assert list((pod_root / "store").iterdir()) == []


STAND_IN = """#!/bin/sh
# Stand-in for `egress` that only exits with the codes the test asks for.
echo "$1" >> "$CALLS"
case "$1" in
  probe) echo '{"record": "check"}'; exit "$PROBE_EXIT" ;;
  report) echo "report summary"; exit "$REPORT_EXIT" ;;
esac
exit 99
"""


@pytest.mark.parametrize(
    ("probe_exit", "report_exit", "pod_exit"),
    [
        (0, 0, 0),  # compliant, report written
        (0, 1, 0),  # the window holds an older failure: still a passing run
        (1, 1, 1),  # non-compliant: the Job fails (and is not retried)
        (5, 0, 5),  # the probe could not run: retried by the Job
        (0, 5, 5),  # the report could not be written: surfaced, not hidden
        (1, 5, 1),  # the probe's verdict wins over a report failure
    ],
)
def test_the_probe_exit_code_reaches_the_job(
    pod_root: Path, probe_exit: int, report_exit: int, pod_exit: int
) -> None:
    bin_dir = pod_root / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "egress"
    stand_in.write_text(STAND_IN, encoding="utf-8")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    entry = container("cronjob-two-pools-store")
    entry["env"] += [
        {"name": "PROBE_EXIT", "value": str(probe_exit)},
        {"name": "REPORT_EXIT", "value": str(report_exit)},
        {"name": "CALLS", "value": str(pod_root / "calls")},
    ]
    done = run_container(entry, pod_root, path_prefix=bin_dir)
    assert done.returncode == pod_exit
    assert (pod_root / "calls").read_text().split() == ["probe", "report"]
    assert done.stdout == '{"record": "check"}\n'  # the report's own output stays off stdout
    assert "report summary" in done.stderr
    assert ("report regeneration failed" in done.stderr) is (report_exit > 1)
