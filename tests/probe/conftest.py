"""Fixtures for the probe tests: one lab of real peers on 127.0.0.0/8, plans, and netns helpers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from egress.probe import DnspythonResolver, ProbeRun, ProbeSettings
from egress.probe_plan import Check, CheckKind, Enforcement, Expectation, ProbePlan
from egress.results import Location, RunReport

from probe_peers import (
    AZURE_DENY_BODY,
    DnsPeer,
    DnsZone,
    NtpPeer,
    PeerLoop,
    TcpPeer,
    always,
    closed_port,
    start_dns,
    start_udp,
)

DNS_HOST = "127.53.0.1"
TCP_PEERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # name: (address, behaviour, options)
    # the internet is farther away than the firewall: good answers its ClientHello 100 ms late
    "good": ("127.10.0.1", "serve", {"tls": "trusted", "delay": 0.1}),
    "unhealthy": ("127.10.0.2", "serve", {"tls": "trusted", "status": 503}),
    "garbage": ("127.10.0.3", "garbage", {"tls": "trusted"}),
    "inspected": ("127.10.0.4", "serve", {"tls": "other-ca"}),
    "cut": ("127.10.0.5", "cut", {}),
    "reset": ("127.10.0.6", "reset", {}),
    "deny470": ("127.10.0.7", "http", {"status": 470, "body": AZURE_DENY_BODY}),
    "plain": ("127.10.0.8", "http", {}),
    "hang": ("127.10.0.9", "hang", {}),
    "expired": ("127.10.0.11", "serve", {"tls": "expired"}),
}
CLOSED_HOST = "127.10.0.10"
PROXIED_KINDS = frozenset({CheckKind.HTTPS, CheckKind.HTTP, CheckKind.TLS})


def make_check(
    check_id: str,
    host: str,
    port: int,
    kind: CheckKind = CheckKind.HTTPS,
    expectation: Expectation = Expectation.ALLOW,
    **extra: Any,
) -> Check:
    transport = "udp" if kind in (CheckKind.NTP, CheckKind.DNS) else "tcp"
    fields: dict[str, Any] = {
        "id": check_id,
        "host": host,
        "port": port,
        "transport": transport,
        "kind": kind,
        "expectation": expectation,
        "destination": host,
        "rule": "canary/test" if expectation is Expectation.DENY else "test/allow/rule",
        "feature": "canary" if expectation is Expectation.DENY else "required",
        "required": expectation is Expectation.ALLOW,
    }
    if kind in PROXIED_KINDS:  # the lab's random ports stand for 80/443 behind the proxy
        fields["enforcement"] = Enforcement.APPLICATION_RULE
    fields.update(extra)
    return Check(**fields)


def make_plan(*checks: Check) -> ProbePlan:
    return ProbePlan(cloud="AzureCloud", region="eastus", generated_by="tests", checks=checks)


@dataclass
class Lab:
    loop: PeerLoop
    trust_store: Path
    dns: DnsPeer
    dns_port: int
    peers: dict[str, TcpPeer]
    ntp_port: int
    ntp_bad_port: int
    udp_silent_port: int
    closed_port: int
    tmp: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def resolver(self) -> DnspythonResolver:
        return DnspythonResolver(DNS_HOST, self.dns_port)

    def settings(self, **overrides: Any) -> ProbeSettings:
        values: dict[str, Any] = {
            "trust_store": self.trust_store,
            "phase_timeout": 0.8,
            "retries": 0,
            "retry_delay": 0.05,
            "deadline": 20.0,
        }
        values.update(overrides)
        return ProbeSettings(**values)

    def port(self, name: str) -> int:
        return self.peers[name].port

    def check(self, name: str, **kw: Any) -> Check:
        """An HTTPS (or given kind) check against a named peer, by its DNS name."""
        return make_check(kw.pop("id", name), f"{name}.probe.test", self.port(name), **kw)

    async def run(self, plan: ProbePlan, **settings: Any) -> RunReport:
        api_server = settings.pop("api_server", None)
        probe = ProbeRun(
            plan=plan,
            settings=self.settings(**settings),
            resolver=self.resolver(),
            location=Location(cluster="lab"),
            api_server=api_server,
        )
        return await probe.execute()


def _server_context(ca: trustme.CA, *names: str, **cert: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **cert).configure_cert(context)
    return context


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("probe-lab")
    ca, other_ca = trustme.CA(), trustme.CA(organization_name="Inspecting Proxy CA")
    trust_store = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(trust_store))
    zone = DnsZone(
        nxdomain={"nx.probe.test."},
        refused_ede={"blockeddns.probe.test.": 15},
        silent={"slowdns.probe.test."},
    )
    for name, (address, _, _) in TCP_PEERS.items():
        zone.records[f"{name}.probe.test."] = [address]
    zone.records["good.probe.test."].append("::1")
    zone.records["mcr.microsoft.com."] = ["127.10.0.1"]  # resolved locally, never contacted
    zone.records["closed.probe.test."] = [CLOSED_HOST]
    zone.records["ntp.probe.test."] = ["127.12.0.1"]
    zone.records["ntp-bad.probe.test."] = ["127.12.0.2"]
    zone.records["ntp-silent.probe.test."] = ["127.12.0.3"]
    loop = PeerLoop()

    async def build() -> Lab:
        dns_peer, dns_port = await start_dns(DNS_HOST, zone, loop.resources)
        peers: dict[str, TcpPeer] = {}
        for name, (address, behaviour, options) in TCP_PEERS.items():
            names = (f"{name}.probe.test", "mcr.microsoft.com")  # resolved locally
            tls = options.get("tls")
            context = None
            if tls == "trusted":
                context = _server_context(ca, *names)
            elif tls == "other-ca":
                context = _server_context(other_ca, *names)
            elif tls == "expired":
                past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
                context = _server_context(ca, *names, not_before=past, not_after=past)
            peer = TcpPeer(
                address,
                always(behaviour),
                tls=context,
                status=options.get("status", 200),
                body=options.get("body", b"hello from the test peer"),
                delay=options.get("delay", 0.0),
            )
            peers[name] = await peer.start(loop.resources)
        return Lab(
            loop=loop,
            trust_store=trust_store,
            dns=dns_peer,
            dns_port=dns_port,
            peers=peers,
            ntp_port=await start_udp("127.12.0.1", NtpPeer(), loop.resources),
            ntp_bad_port=await start_udp("127.12.0.2", NtpPeer(echo=False), loop.resources),
            udp_silent_port=await start_udp("127.12.0.3", NtpPeer(silent=True), loop.resources),
            closed_port=closed_port(CLOSED_HOST),
            tmp=tmp,
            extra={"ca": ca, "other_ca": other_ca},
        )

    built = loop.call(build())
    yield built
    loop.close()


# --------------------------------------------------------------------------- netns


@dataclass
class Netns:
    name: str

    def run(self, *command: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *command], check=True)

    def nft(self, ruleset: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "nft", "-f", "-"],
            input=ruleset,
            text=True,
            check=True,
        )


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A fresh network namespace with only loopback up; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace (CI runs the suite as root)")
    if shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.skip("needs iproute2 and nftables (.ci/apt-packages.txt installs them)")
    name = f"egress-probe-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield Netns(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
