"""A firewall lab from real parts: pod -> firewall -> internet, in namespaces the test creates.

Topology (all names random, all addresses the lab's own; nothing is routed to a host
interface)::

    pod netns                firewall netns                         internet netns
    10.240.0.10/16 --veth-- 10.240.0.1/16                            198.19.x.y (servers, lo)
                             squid-openssl (intercept 80/443,         |
                               ssl_bump peek -> splice/bump/terminate) |
                             nftables (redirect, network rules,       |
                               default drop, counters, trace log)     |
                             dnsmasq (DNS proxy, hosts file only)     |
                             198.18.0.1 ==== TUN wire (userspace, delay_ms each way) ==== 198.18.0.2

The internet side runs ``internet.py`` (the delaying wire plus HTTPS/HTTP/TLS/NTP/DNS servers
under a trustme CA). Every config the firewall runs (squid.conf, the nft ruleset, dnsmasq's
conf and hosts file) can be supplied by the caller, e.g. from a compiler's generated files;
the defaults below describe the lab's own policy (:class:`Policy`).

Logs another test can read:

* ``Lab.squid_access_log``: squid's access log in the ``egress_lab`` logformat (see
  :data:`SQUID_LOGFORMAT`), one line per HTTP request or TLS decision;
* ``Lab.nft_log``: ``nft monitor trace`` output of every new flow's first packet, each line
  prefixed with the UNIX time it was read (nftables traces carry no time). The verdict
  line of a flow names the deciding rule, whose ``comment`` is ``<collection>/<rule>``.
  Kernel ``log`` statements are not used: the kernel drops them in a non-initial
  namespace unless the host-wide ``nf_log_all_netns`` sysctl is set;
* ``Lab.dnsmasq_log``: dnsmasq's query log;
* ``Lab.served_log``: what really reached an internet server (the ground truth).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trustme

from lab_configs import (
    API_SERVER,
    AZFW_DENY_BODY,
    BLACKHOLE,
    CANARY,
    CERTGEN,
    CLOSED_RESOLVER,
    DNSMASQ,
    DOWN,
    HEALTHY,
    INTERNET,
    LAB_ZONE,
    NAMES,
    OPEN_RESOLVER,
    REFUSES,
    SQUID,
    SQUID_LOG_FIELDS,
    SQUID_LOGFORMAT,
    SQUID_TEMPLATES,
    Host,
    Paths,
    Policy,
    Topology,
    default_dnsmasq_conf,
    default_hosts,
    default_ruleset,
    default_squid_conf,
    dnsmasq_runtime_conf,
    internet_ruleset,
    squid_runtime_conf,
    trace_ruleset,
)

__all__ = [
    "API_SERVER",
    "AZFW_DENY_BODY",
    "BLACKHOLE",
    "CANARY",
    "CERTGEN",
    "CLOSED_RESOLVER",
    "DNSMASQ",
    "DOWN",
    "HEALTHY",
    "INTERNET",
    "LAB_ZONE",
    "NAMES",
    "OPEN_RESOLVER",
    "REFUSES",
    "SQUID",
    "SQUID_LOGFORMAT",
    "SQUID_LOG_FIELDS",
    "SQUID_TEMPLATES",
    "Host",
    "Lab",
    "LabConfigs",
    "Paths",
    "Policy",
    "Topology",
    "default_dnsmasq_conf",
    "default_hosts",
    "default_ruleset",
    "default_squid_conf",
    "dnsmasq_runtime_conf",
    "internet_ruleset",
    "lab_unavailable",
    "prepare",
    "run_in_netns",
    "running_lab",
    "squid_runtime_conf",
    "start_lab",
    "tools_missing",
]
T = TypeVar("T")
HERE = Path(__file__).resolve().parent
CLONE_NEWNET = 0x40000000


def lab_unavailable() -> str | None:
    """Why the lab cannot run here (a sentence for pytest.skip), or None."""
    if os.geteuid() != 0:
        return "the firewall lab needs root to create network namespaces (CI runs as root)"
    missing = tools_missing()
    if missing:
        return f"the firewall lab needs {', '.join(missing)} (.ci/apt-packages.txt lists them)"
    return None


def tools_missing() -> list[str]:
    """The lab's binaries that are not installed (see .ci/apt-packages.txt)."""
    needed = {"ip": "iproute2", "nft": "nftables", "ss": "iproute2"}
    missing = [pkg for tool, pkg in needed.items() if shutil.which(tool) is None]
    for path, pkg in (
        (SQUID, "squid-openssl"),
        (CERTGEN, "squid-openssl"),
        (DNSMASQ, "dnsmasq-base"),
    ):
        if not Path(path).exists():
            missing.append(pkg)
    if not Path("/dev/net/tun").exists():
        missing.append("/dev/net/tun")
    return sorted(set(missing))


# --------------------------------------------------------------------------- namespaces


def enter_netns(name: str) -> None:
    """Move the calling thread into a named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def run_in_netns(name: str, factory: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
    """Run a coroutine on a fresh event loop in a thread that entered the namespace."""
    result: list[T] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            enter_netns(name)

            async def wrapper() -> T:
                return await factory()

            result.append(asyncio.run(wrapper()))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=main, name=f"lab-{name}")
    thread.start()
    thread.join(timeout)
    if failure:
        raise failure[0]
    if not result:
        raise TimeoutError(f"nothing returned from namespace {name} within {timeout:g}s")
    return result[0]


def _run(*command: str, stdin: str | None = None) -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def _listening(netns: str) -> set[tuple[str, int]]:
    out = _run("ip", "netns", "exec", netns, "ss", "-Hlntu")
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5:
            proto, local = parts[0], parts[4]
            found.add((proto, int(local.rsplit(":", 1)[1])))
    return found


# --------------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """The running lab. Build with :func:`start_lab`; stop with :meth:`stop`."""

    topology: Topology
    paths: Paths
    policy: Policy
    hosts: tuple[Host, ...]
    delay_ms: float
    ca: trustme.CA
    names: dict[str, str] = field(default_factory=dict)  # the DNS proxy's hosts: name -> address
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    _trace_thread: threading.Thread | None = None

    # ---- what tests read

    @property
    def trust_store(self) -> Path:
        return self.paths.trust_store

    @property
    def squid_access_log(self) -> Path:
        return self.paths.squid_access_log

    @property
    def nft_log(self) -> Path:
        return self.paths.nft_log

    @property
    def dnsmasq_log(self) -> Path:
        return self.paths.dnsmasq_log

    @property
    def served_log(self) -> Path:
        return self.paths.served_log

    @property
    def resolver(self) -> tuple[str, int]:
        """The DNS proxy the pod uses: dnsmasq on the firewall."""
        return self.topology.firewall_ip, 53

    def address(self, name: str) -> str:
        return next(h.address for h in self.hosts if h.name == name)

    def in_pod(self, factory: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
        """Run a coroutine from inside the pod namespace."""
        return run_in_netns(self.topology.pod_ns, factory, timeout)

    def in_firewall(self, factory: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        return run_in_netns(self.topology.firewall_ns, factory, timeout)

    def served(self) -> list[dict[str, Any]]:
        """Every connection or datagram an internet server received (ground truth)."""
        text = self.paths.served_log.read_text(encoding="utf-8") if self.served_log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def squid_log(self) -> list[dict[str, str]]:
        """squid's access log, parsed by :data:`SQUID_LOG_FIELDS`."""
        if not self.squid_access_log.exists():
            return []
        lines = self.squid_access_log.read_text(encoding="utf-8").splitlines()
        return [dict(zip(SQUID_LOG_FIELDS, line.split(), strict=False)) for line in lines]

    def counters(self) -> dict[str, int]:
        """Packet counters of the firewall's rules that carry a comment, by comment."""
        listing = json.loads(self.nft("-j", "list", "ruleset"))
        found: dict[str, int] = {}
        for item in listing.get("nftables", []):
            rule = item.get("rule")
            if not rule or "comment" not in rule:
                continue
            for expr in rule.get("expr", []):
                if "counter" in expr:
                    found[rule["comment"]] = int(expr["counter"]["packets"])
        return found

    def nft(self, *args: str, stdin: str | None = None) -> str:
        """Run nft inside the firewall namespace."""
        return _run("ip", "netns", "exec", self.topology.firewall_ns, "nft", *args, stdin=stdin)

    # ---- lifecycle

    def stop(self) -> None:
        for name in ("squid", "dnsmasq", "nft-trace", "internet"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for process in self.processes.values():
            if process.stdout is not None:
                process.stdout.close()
        if self._trace_thread is not None:
            self._trace_thread.join(5)
        topo = self.topology
        for netns in (topo.pod_ns, topo.firewall_ns, topo.internet_ns):
            subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)


@dataclass(frozen=True)
class LabConfigs:
    """What the firewall runs. Any left None is rendered from the lab's :class:`Policy`."""

    squid_conf: str | None = None
    nft_ruleset: str | None = None
    dnsmasq_conf: str | None = None
    hosts: str | None = None


def prepare(
    *,
    root: Path | None = None,
    policy: Policy | None = None,
    hosts: tuple[Host, ...] = INTERNET,
    names: dict[str, str] | None = None,
    delay_ms: float = 25.0,
) -> Lab:
    """Choose names and write the CA and certificates; nothing runs yet.

    Callers that bring their own configs read ``lab.topology`` and ``lab.paths`` to render
    them, then call :func:`start_lab`.
    """
    base = Path(tempfile.mkdtemp(prefix="egress-lab-", dir=root))
    base.chmod(0o755)
    paths = Paths(base)
    paths.squid_dir.mkdir()
    ca = trustme.CA(organization_name="Egress Lab Test CA")
    ca.cert_pem.write_to_path(str(paths.trust_store))
    lab = Lab(
        topology=Topology.random(),
        paths=paths,
        policy=policy or Policy(),
        hosts=hosts,
        delay_ms=delay_ms,
        ca=ca,
        names=dict(NAMES if names is None else names),
    )
    lab_names = lab.names
    server = ca.issue_cert(*sorted(lab_names), *(h.address for h in hosts))
    server.cert_chain_pems[0].write_to_path(str(base / "server.pem"))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(base / "server.pem"), append=True)
    server.private_key_pem.write_to_path(str(base / "server.key"))
    inspecting = trustme.CA(organization_name="Lab Inspecting Firewall CA")
    inspecting.cert_pem.write_to_path(str(paths.inspecting_ca))
    inspecting.private_key_pem.write_to_path(str(paths.inspecting_ca), append=True)
    return lab


def start_lab(lab: Lab, configs: LabConfigs | None = None) -> Lab:
    """Build the namespaces and start the internet, nftables, dnsmasq and squid."""
    configs = configs or LabConfigs()
    topo, paths = lab.topology, lab.paths
    try:
        _build_namespaces(topo)
        _start_internet(lab)
        ruleset = configs.nft_ruleset or default_ruleset(topo, lab.policy)
        paths.nft_ruleset.write_text(ruleset, encoding="utf-8")
        lab.nft("-f", str(paths.nft_ruleset))
        lab.nft("-f", "-", stdin=trace_ruleset(topo))  # after: a rule set may flush everything
        _start_trace(lab)
        paths.hosts.write_text(
            configs.hosts or default_hosts(lab.names),
            encoding="utf-8",
        )
        paths.dnsmasq_conf.write_text(
            configs.dnsmasq_conf or default_dnsmasq_conf(topo, paths), encoding="utf-8"
        )
        _start_dnsmasq(lab)
        paths.squid_conf.write_text(
            configs.squid_conf or default_squid_conf(topo, paths, lab.policy), encoding="utf-8"
        )
        _start_squid(lab)
    except BaseException:
        lab.stop()
        raise
    return lab


Configure = Callable[[Lab], LabConfigs]


@contextlib.contextmanager
def running_lab(configure: Configure | None = None, **prepare_args: Any) -> Iterator[Lab]:
    """A started lab, stopped and removed on exit.

    `configure` gets the prepared lab (its random interface names in ``lab.topology``, its
    file locations in ``lab.paths``) and returns the configs to run instead of the defaults.
    """
    lab = prepare(**prepare_args)
    start_lab(lab, configure(lab) if configure else None)
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(lab.paths.root, ignore_errors=True)


def _build_namespaces(topo: Topology) -> None:
    for netns in (topo.pod_ns, topo.firewall_ns, topo.internet_ns):
        _run("ip", "netns", "add", netns)
        _run("ip", "-n", netns, "link", "set", "lo", "up")
    pod, fw, inet = topo.pod_ns, topo.firewall_ns, topo.internet_ns
    # The veth pair is created inside the pod namespace, then one end moves to the firewall.
    _run(
        "ip",
        "-n",
        pod,
        "link",
        "add",
        topo.pod_if,
        "type",
        "veth",
        "peer",
        "name",
        topo.firewall_pod_if,
        "netns",
        fw,
    )
    _run("ip", "-n", pod, "addr", "add", f"{topo.pod_ip}/16", "dev", topo.pod_if)
    _run("ip", "-n", pod, "link", "set", topo.pod_if, "up")
    _run("ip", "-n", pod, "route", "add", "default", "via", topo.firewall_ip)
    _run("ip", "-n", fw, "addr", "add", f"{topo.firewall_ip}/16", "dev", topo.firewall_pod_if)
    _run("ip", "-n", fw, "link", "set", topo.firewall_pod_if, "up")
    # The wire: one persistent TUN device per side; internet.py moves the packets between them.
    for netns, dev, local, peer in (
        (fw, topo.firewall_tun, topo.firewall_wire_ip, topo.internet_wire_ip),
        (inet, topo.internet_tun, topo.internet_wire_ip, topo.firewall_wire_ip),
    ):
        _run("ip", "-n", netns, "tuntap", "add", "dev", dev, "mode", "tun")
        _run("ip", "-n", netns, "addr", "add", local, "peer", f"{peer}/32", "dev", dev)
        _run("ip", "-n", netns, "link", "set", dev, "up")
    _run("ip", "-n", fw, "route", "add", topo.internet_prefix, "dev", topo.firewall_tun)
    _run("ip", "-n", inet, "route", "add", topo.pod_prefix, "dev", topo.internet_tun)
    _run("ip", "netns", "exec", fw, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def _spawn(lab: Lab, name: str, argv: list[str], stdout: int = subprocess.DEVNULL) -> Any:
    """Start one of the lab's processes; its stderr goes to <root>/<name>.err."""
    with (lab.paths.root / f"{name}.err").open("w", encoding="utf-8") as err:
        process = subprocess.Popen(argv, stdout=stdout, stderr=err, text=True)
    lab.processes[name] = process
    return process


def _start_internet(lab: Lab) -> None:
    topo, paths = lab.topology, lab.paths
    for host in lab.hosts:
        _run("ip", "-n", topo.internet_ns, "addr", "add", f"{host.address}/32", "dev", "lo")
    _run(
        "ip", "netns", "exec", topo.internet_ns, "nft", "-f", "-", stdin=internet_ruleset(lab.hosts)
    )
    config = {
        "wire": {
            "firewall_netns": topo.firewall_ns,
            "firewall_tun": topo.firewall_tun,
            "internet_tun": topo.internet_tun,
            "delay_ms": lab.delay_ms,
        },
        "hosts": [
            {"address": h.address, "tcp": h.tcp, "udp": h.udp}
            for h in lab.hosts
            if h.fate == "serve"
        ],
        "cert": str(paths.root / "server.pem"),
        "key": str(paths.root / "server.key"),
        "served_log": str(paths.served_log),
        "dns_zone": {f"{n}.": a for n, a in lab.names.items()},
    }
    paths.internet_conf.write_text(json.dumps(config, indent=2), encoding="utf-8")
    process = _spawn(
        lab,
        "internet",
        [
            "ip",
            "netns",
            "exec",
            topo.internet_ns,
            sys.executable,
            str(HERE / "internet.py"),
            str(paths.internet_conf),
        ],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "ready":
        err = (paths.root / "internet.err").read_text(encoding="utf-8")
        raise RuntimeError(f"the lab's internet did not start: {err[-2000:]}")


def _start_trace(lab: Lab) -> None:
    """``nft monitor trace``, each line stamped with the time it was read."""
    process = _spawn(
        lab,
        "nft-trace",
        ["ip", "netns", "exec", lab.topology.firewall_ns, "nft", "monitor", "trace"],
        stdout=subprocess.PIPE,
    )
    log = lab.paths.nft_log.open("w", encoding="utf-8", buffering=1)

    def pump() -> None:
        assert process.stdout is not None
        with log:
            for line in process.stdout:
                log.write(f"{time.time():.6f} {line}")

    lab._trace_thread = threading.Thread(target=pump, daemon=True, name="lab-nft-trace")
    lab._trace_thread.start()
    time.sleep(0.1)  # the monitor subscribes before traffic flows


def _wait_listening(lab: Lab, netns: str, wanted: set[tuple[str, int]], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for name, process in lab.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while starting")
        if wanted <= _listening(netns):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on {sorted(wanted)}")


def _start_dnsmasq(lab: Lab) -> None:
    _spawn(
        lab,
        "dnsmasq",
        [
            "ip",
            "netns",
            "exec",
            lab.topology.firewall_ns,
            DNSMASQ,
            "--keep-in-foreground",
            f"--conf-file={lab.paths.dnsmasq_conf}",
        ],
    )
    _wait_listening(lab, lab.topology.firewall_ns, {("udp", 53)}, "dnsmasq")


def _squid_ports(conf: str) -> set[tuple[str, int]]:
    ports = re.findall(r"^\s*https?_port\s+(?:\S+:)?(\d+)", conf, flags=re.MULTILINE)
    return {("tcp", int(p)) for p in ports}


def _start_squid(lab: Lab) -> None:
    paths = lab.paths
    paths.squid_errors.mkdir(exist_ok=True)
    for template in SQUID_TEMPLATES.iterdir():
        shutil.copy(template, paths.squid_errors / template.name)
    (paths.squid_errors / "ERR_AZFW_DENY").write_text(AZFW_DENY_BODY, encoding="utf-8")
    if not paths.squid_ssl_db.exists():
        _run(CERTGEN, "-c", "-s", str(paths.squid_ssl_db), "-M", "4MB")
    _run("chown", "-R", "proxy:proxy", str(paths.squid_dir))
    conf = paths.squid_conf.read_text(encoding="utf-8")
    _spawn(
        lab,
        "squid",
        ["ip", "netns", "exec", lab.topology.firewall_ns, SQUID, "-N", "-f", str(paths.squid_conf)],
    )
    _wait_listening(lab, lab.topology.firewall_ns, _squid_ports(conf), "squid")
