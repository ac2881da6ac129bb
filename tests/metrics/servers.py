"""Real Prometheus and Pushgateway servers on 127.0.0.1 for the metrics tests."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"needs {name} (Debian package; .ci/apt-packages.txt installs it)")
    return found


def http_get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # local: 127.0.0.1 only
        return json.loads(response.read() or b"null")


def wait_until(predicate: Callable[[], bool], *, seconds: float, what: str) -> None:
    """Poll a bounded number of times; fail with what never happened."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {seconds:g} s")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # local: 127.0.0.1 only
            return True
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def _server(command: list[str], ready_url: str, log: Path) -> Iterator[None]:
    """Run a server until the block ends; fail if it died (e.g. another process took its port)."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_until(
                lambda: process.poll() is not None or _ready(ready_url),
                seconds=STARTUP_SECONDS,
                what=f"{command[0]} start",
            )
            time.sleep(0.3)  # a failed bind exits at once; don't talk to a stranger's server
            if process.poll() is not None:
                raise PortTakenError(log.read_text(errors="replace")[-500:])
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class PortTakenError(Exception):
    """The server exited during start-up, most likely because its port was taken meanwhile."""


@dataclass
class Monitoring:
    """A Pushgateway scraped every second by a Prometheus that evaluates the given rules."""

    pushgateway: str
    prometheus: str

    def alerts(self) -> list[dict[str, Any]]:
        body = http_get(f"{self.prometheus}/api/v1/alerts")
        return list(body["data"]["alerts"])

    def firing(self, name: str, cluster: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.alerts()
            if a["labels"]["alertname"] == name
            and a["labels"].get("cluster") == cluster
            and a["state"] == "firing"
        ]

    def query(self, expression: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        body = http_get(f"{self.prometheus}/api/v1/query?query={quote(expression)}")
        return list(body["data"]["result"])


@contextmanager
def monitoring(tmp: Path, rule_groups: list[dict[str, Any]]) -> Iterator[Monitoring]:
    """Both servers on fresh ports; retried a bounded number of times if a port was taken."""
    for attempt in range(5):
        try:
            with _monitoring(tmp / f"try-{attempt}", rule_groups) as stack:
                yield stack
                return
        except PortTakenError:
            continue
    pytest.fail("could not start Pushgateway and Prometheus on free ports in 5 tries")


@contextmanager
def _monitoring(tmp: Path, rule_groups: list[dict[str, Any]]) -> Iterator[Monitoring]:
    tmp.mkdir(parents=True)
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    rules = tmp / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups}))
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "pushgateway",
                        "honor_labels": True,
                        "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}],
                    }
                ],
            }
        )
    )
    gateway_cmd = [
        binary("prometheus-pushgateway"),
        f"--web.listen-address=127.0.0.1:{gateway_port}",
    ]
    prometheus_cmd = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    with (
        _server(gateway_cmd, f"{gateway}/-/ready", tmp / "pushgateway.log"),
        _server(prometheus_cmd, f"{prometheus}/-/ready", tmp / "prometheus.log"),
    ):
        yield Monitoring(pushgateway=gateway, prometheus=prometheus)
