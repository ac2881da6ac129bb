"""`egress probe run --pushgateway`: a real run's metrics land in a real Pushgateway."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from conftest import DNS_HOST, Lab, make_check, make_plan
from prometheus_client.parser import text_string_to_metric_families
from test_cli import probe, write_plan

from egress.probe_plan import CheckKind, Expectation

from metrics.servers import binary, free_port, wait_until


def gateway_samples(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:  # local: 127.0.0.1
        text = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("egress_run_") and sample.labels.get("node_pool") == "p1":
                key = sample.name + "".join(
                    f",{sample.labels[k]}" for k in ("status",) if k in sample.labels
                )
                found[key] = sample.value
    return found


def test_a_leaking_run_is_pushed_with_its_leak(lab: Lab, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = subprocess.Popen(
        [binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _up(url), seconds=20, what="pushgateway start")
        plan = make_plan(
            lab.check("good"),
            make_check(
                "canary-dns",
                DNS_HOST,
                lab.dns_port,
                kind=CheckKind.DNS,
                expectation=Expectation.DENY,
            ),
        )
        code, _, stderr = probe(
            lab,
            "--plan",
            str(write_plan(tmp_path, plan)),
            "--pushgateway",
            url,
            "--cluster",
            "c1",
            "--node-pool",
            "p1",
        )
        assert code == 1, stderr  # the leak, not the delivery, decides the exit code
        found = gateway_samples(url)
        assert found["egress_run_leaks"] == 1
        assert found["egress_run_status,non-compliant"] == 1
        assert found["egress_run_checks,pass"] == 1
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)


def test_a_compliant_run_whose_metrics_cannot_be_pushed_exits_5(lab: Lab, tmp_path: Path) -> None:
    plan = make_plan(
        lab.check("good"), lab.check("deny470", kind=CheckKind.HTTP, expectation=Expectation.DENY)
    )
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, stdout, stderr = probe(
        lab, "--plan", str(write_plan(tmp_path, plan)), "--pushgateway", url
    )
    assert code == 5
    assert "cannot push metrics" in stderr and "Traceback" not in stderr
    assert len(stdout.splitlines()) >= 2  # the run's own records still went out


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2):  # local: 127.0.0.1
            return True
    except OSError:
        return False
