"""The Linux appliance target, proven by running it: pod -> appliance -> the test's internet.

The test compiles the eastus policy with the appliance target and starts nftables, squid
and dnsmasq from exactly the generated files inside a namespace, between a pod namespace
and an internet namespace the test creates (10.240.0.0/16 and 198.18.0.0/15, never routed
to a host interface). `egress probe run` runs in the pod namespace with the compiled plan:
every required check is reachable and every canary blocked. Then one allowance is removed
and the appliance recompiled: exactly its check fails. Every name is answered by the
test's own DNS (resolved locally, never contacted).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import trustme

from egress import api
from egress.compliance import CheckStatus
from egress.model import CompiledPolicy
from egress.probe_plan import Expectation
from egress.service_tags import load_service_tags
from egress.targets.appliance import CERTGEN
from egress.targets.base import RenderInputs

pytestmark = pytest.mark.netns

DATA = Path(__file__).parents[1] / "data" / "service_tags" / "ServiceTags_Public_20261123.json"
POD_IP, GATEWAY, FIREWALL_IP = "10.240.1.10", "10.240.1.1", "10.240.0.4"
OUTSIDE, INSIDE = "198.18.0.1", "198.18.0.2"
WEB, NTP, API, DNS = "198.18.0.10", "198.18.0.11", "198.18.90.10", "198.18.0.53"
API_SERVER = "lab-cluster.hcp.eastus.azmk8s.io"  # resolved locally, never contacted
POLICY = f"""schema_version: 1
cluster: {{node_subnets: [10.240.1.0/24]}}
firewall: {{private_ip: {FIREWALL_IP}}}
"""
TOOLS = ("ip", "nft", "squid", "dnsmasq", "ss")


@dataclass
class World:
    """Three namespaces, the appliance's folder, and the processes the test started."""

    tag: str
    root: Path
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    logs: dict[str, IO[str]] = field(default_factory=dict)

    @property
    def pod(self) -> str:
        return f"egress-pod-{self.tag}"

    @property
    def fw(self) -> str:
        return f"egress-fw-{self.tag}"

    @property
    def inet(self) -> str:
        return f"egress-inet-{self.tag}"

    @property
    def appliance(self) -> Path:
        return self.root / "appliance"

    def ip(self, netns: str, *args: str) -> None:
        subprocess.run(["ip", "-n", netns, *args], check=True)

    def run(self, netns: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *command], check=True, text=True, capture_output=True
        )

    def start(self, name: str, netns: str, *command: str, stdin: bool = False) -> None:
        self.logs[name] = (self.root / f"{name}.stderr").open("w")
        self.processes[name] = subprocess.Popen(
            ["ip", "netns", "exec", netns, *command],
            text=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stderr=self.logs[name],
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
        self.logs.pop(name).close()

    def wait_listening(self, netns: str, port: int, udp: bool = False) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listing = self.run(netns, "ss", "-lnuH" if udp else "-lntH").stdout
            if f":{port} " in listing:
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = (self.root / f"{name}.stderr").read_text()[-2000:]
                    raise AssertionError(f"{name} exited ({process.returncode}): {log}")
            time.sleep(0.1)
        raise AssertionError(f"nothing listens on {port} in {netns}")


def _veth(world: World, left: str, right: str) -> tuple[str, str]:
    a, b = f"ve{uuid.uuid4().hex[:10]}", f"ve{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    subprocess.run(["ip", "link", "set", a, "netns", left], check=True)
    subprocess.run(["ip", "link", "set", b, "netns", right], check=True)
    return a, b


@pytest.fixture
def world() -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces (CI runs the suite as root)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/apt-packages.txt installs them)")
    # squid's user must reach its folder: a 0755 directory, not pytest's 0700 tmp_path.
    root = Path(tempfile.mkdtemp(prefix="egress-appliance-"))
    root.chmod(0o755)
    world = World(uuid.uuid4().hex[:8], root)
    for netns in (world.pod, world.fw, world.inet):
        subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        for netns in (world.pod, world.fw, world.inet):
            world.ip(netns, "link", "set", "lo", "up")
        pod_if, fw_pod_if = _veth(world, world.pod, world.fw)
        fw_out_if, inet_if = _veth(world, world.fw, world.inet)
        world.ip(world.pod, "addr", "add", f"{POD_IP}/24", "dev", pod_if)
        world.ip(world.fw, "addr", "add", f"{GATEWAY}/24", "dev", fw_pod_if)
        world.ip(world.fw, "addr", "add", f"{FIREWALL_IP}/32", "dev", fw_pod_if)
        world.ip(world.fw, "addr", "add", f"{OUTSIDE}/24", "dev", fw_out_if)
        world.ip(world.inet, "addr", "add", f"{INSIDE}/24", "dev", inet_if)
        for address in (WEB, NTP, API, DNS):
            world.ip(world.inet, "addr", "add", f"{address}/32", "dev", inet_if)
        for netns, interface in (
            (world.pod, pod_if),
            (world.fw, fw_pod_if),
            (world.fw, fw_out_if),
            (world.inet, inet_if),
        ):
            world.ip(netns, "link", "set", interface, "up")
        world.ip(world.pod, "route", "add", "default", "via", GATEWAY)
        world.ip(world.fw, "route", "add", "default", "via", INSIDE)
        world.ip(world.inet, "route", "add", "198.18.0.0/15", "dev", inet_if)  # no default
        world.run(world.fw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield world
    finally:
        for name in list(world.processes):
            world.stop(name)
        for netns in (world.pod, world.fw, world.inet):
            subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(root, ignore_errors=True)


def compile_appliance(world: World, policy_text: str) -> tuple[CompiledPolicy, dict[str, str]]:
    path = world.root / "policy.yaml"
    path.write_text(policy_text)
    compiled = api.compile_egress(api.CompileRequest(region="eastus", policy_path=path))
    inputs = RenderInputs(
        service_tags=load_service_tags(DATA),
        appliance_dir=str(world.appliance),
        appliance_upstream_dns=DNS,
    )
    files = api.render(compiled, ["appliance"], inputs=inputs).files
    return compiled, files


def install(world: World, files: dict[str, str]) -> None:
    """Copy the generated appliance/ folder into place, byte for byte."""
    for relpath, text in files.items():
        target = world.root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    proxy = pwd.getpwnam("proxy")
    for path in (world.appliance, world.appliance / "errors"):
        path.chmod(0o755)
        os.chown(path, proxy.pw_uid, proxy.pw_gid)


def start_internet(world: World, names: list[str], ca: trustme.CA) -> None:
    cert = world.root / "internet.pem"
    ca.issue_cert(*names).private_key_and_cert_chain_pem.write_to_path(str(cert))
    dns = world.root / "internet-dns.conf"
    dns.write_text(
        "no-resolv\nno-hosts\nbind-interfaces\n"
        f"listen-address={DNS}\n"
        f"address=/ntp.ubuntu.com/{NTP}\n"
        f"address=/{API_SERVER}/{API}\n"
        f"address=/#/{WEB}\n"  # every other name: the web peer (canary names too)
    )
    world.start(
        "internet-dns",
        world.inet,
        "dnsmasq",
        "-k",
        "-C",
        str(dns),
        f"--pid-file={world.root}/internet-dns.pid",
        "--user=root",
    )
    config = world.root / "internet.json"
    tcp = [
        (WEB, 443, "tls"),
        (WEB, 80, "plain"),
        (WEB, 8443, "tls"),  # a leak on the wrong port would be served
        (WEB, 22, "plain"),
        (API, 443, "tls"),
        (API, 9000, "plain"),
    ]
    config.write_text(json.dumps({"cert": str(cert), "tcp": tcp, "ntp": [(NTP, 123)]}))
    script = Path(__file__).with_name("internet.py")
    world.start("internet", world.inet, sys.executable, str(script), str(config), stdin=True)
    process = world.processes["internet"]
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    world.wait_listening(world.inet, 53, udp=True)


def start_appliance(world: World, tls_ca: trustme.CA) -> None:
    tls_ca.issue_cert("egress-appliance").private_key_and_cert_chain_pem.write_to_path(
        str(world.appliance / "tls.pem")
    )
    ssl_db = world.appliance / "ssl_db"
    if not ssl_db.exists():  # the install step squid.conf's header names
        subprocess.run([CERTGEN, "-c", "-s", str(ssl_db), "-M", "4MB"], check=True)
        subprocess.run(["chown", "-R", "proxy:proxy", str(ssl_db)], check=True)
    world.run(world.fw, "nft", "-f", str(world.appliance / "nftables.nft"))
    world.start(
        "dnsmasq",
        world.fw,
        "dnsmasq",
        "-k",
        "-C",
        str(world.appliance / "dnsmasq.conf"),
        f"--pid-file={world.root}/dnsmasq.pid",
    )
    start_squid(world)
    world.wait_listening(world.fw, 53, udp=True)


def start_squid(world: World) -> None:
    world.start("squid", world.fw, "squid", "-N", "-f", str(world.appliance / "squid.conf"))
    world.wait_listening(world.fw, 3129)


def probe(world: World, plan: Path, ca: Path, report: Path) -> tuple[int, dict[str, Any]]:
    egress = Path(sys.executable).with_name("egress")
    command = [
        str(egress),
        "probe",
        "run",
        "--plan",
        str(plan),
        "--resolver",
        FIREWALL_IP,
        "--trust-store",
        str(ca),
        "--api-server",
        API_SERVER,
        "--format",
        "jsonl",
        "--report",
        str(report),
        "--timeout",
        "1.5",
        "--deadline",
        "60",
    ]
    done = subprocess.run(
        ["ip", "netns", "exec", world.pod, *command],
        check=False,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert report.exists(), done.stderr
    checks = {c["check_id"]: c for c in json.loads(report.read_text())["checks"]}
    return done.returncode, checks


@dataclass
class FirstRun:
    compiled: CompiledPolicy
    plan: Path
    bundle: Path
    statuses: dict[str, str]
    checks: dict[str, Any]


def run_policy(world: World, policy_text: str) -> FirstRun:
    """Compile, install and start the appliance and the internet, probe once, check it all."""
    compiled, files = compile_appliance(world, policy_text)
    install(world, files)
    plan = world.root / "probe-plan.json"
    plan.write_text(compiled.probe_plan.to_json())
    ca = trustme.CA()
    bundle = world.root / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    hosts = sorted({c.host for c in compiled.probe_plan.checks if c.host[0].isalpha()})
    names = [h for h in hosts if "." in h and not h.startswith("AzureCloud.")]
    start_internet(world, [*names, API_SERVER], ca)
    start_appliance(world, ca)

    code, checks = probe(world, plan, bundle, world.root / "run-1.json")
    statuses = {check_id: check["status"] for check_id, check in checks.items()}
    allow = [c.id for c in compiled.probe_plan.checks if c.expectation is Expectation.ALLOW]
    deny = [c.id for c in compiled.probe_plan.checks if c.expectation is Expectation.DENY]
    assert deny, "the plan has canaries"
    failing = {
        i: (statuses[i], checks[i]["verdict"], checks[i]["reason"])
        for i in allow + deny
        if statuses[i] not in (CheckStatus.PASS, CheckStatus.UNVERIFIABLE)
    }
    assert not failing, failing
    assert all(statuses[i] == CheckStatus.PASS for i in deny)
    http_deny = checks["canary/unlisted-fqdn-http"]
    assert http_deny["evidence"]["http"]["status"] == 470, http_deny["evidence"]
    assert code == 0  # an inconclusive canary fails only with --strict
    return FirstRun(compiled, plan, bundle, statuses, checks)


def test_appliance_enforces_the_compiled_policy_and_exactly_a_removed_allowance_fails(
    world: World,
) -> None:
    first = run_policy(world, POLICY)
    statuses, plan, bundle = first.statuses, first.plan, first.bundle
    allow = [c.id for c in first.compiled.probe_plan.checks if c.expectation is Expectation.ALLOW]
    reachable = [i for i in allow if statuses[i] == CheckStatus.PASS]
    assert "required/mcr/https-443" in reachable and "required/ntp/udp-123" in reachable
    assert "required/tunnel-tcp-9000/tcp-9000" in reachable  # through the expanded tag

    # Remove one allowance, recompile, reinstall: exactly its check fails.
    _, files = compile_appliance(world, POLICY + "exclude: [required/mcr]\n")
    assert files["appliance/squid.conf"] != (world.appliance / "squid.conf").read_text()
    install(world, files)
    world.run(world.fw, "nft", "-f", str(world.appliance / "nftables.nft"))
    world.stop("squid")
    start_squid(world)
    code, after = probe(world, plan, bundle, world.root / "run-2.json")
    changed = {i for i in statuses if after[i]["status"] != statuses[i]}
    assert changed == {"required/mcr/https-443"}, {i: after[i]["reason"] for i in changed}
    assert after["required/mcr/https-443"]["status"] == CheckStatus.FAIL
    assert code == 1


def test_appliance_allows_http_by_host_and_wildcards_by_sni(world: World) -> None:
    policy = (Path(__file__).parents[1] / "targets" / "policies" / "neutral.yaml").read_text()
    first = run_policy(world, policy)  # the same subnet and firewall address as this world
    assert first.statuses["policy/plain-mirror/http-80"] == CheckStatus.PASS
    evidence = first.checks["policy/plain-mirror/http-80"]["evidence"]
    assert evidence["http"]["status"] == 200  # served by the peer through squid's Host ACL
    assert first.statuses["policy/github-objects/https-443"] == CheckStatus.PASS  # regex SNI
    assert first.statuses["policy/github/https-443"] == CheckStatus.PASS
