"""The lab itself behaves like the firewall it stands for; measured from the pod namespace."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import subprocess
import time
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from firewall_lab import (
    BLACKHOLE,
    CANARY,
    CLOSED_RESOLVER,
    DOWN,
    HEALTHY,
    OPEN_RESOLVER,
    REFUSES,
    Lab,
    LabConfigs,
    Policy,
    default_ruleset,
    default_squid_conf,
    lab_unavailable,
    running_lab,
)
from lab_logs import decisions, dns_queries

pytestmark = pytest.mark.netns


async def connect_ms(address: str, port: int, limit: float = 1.0) -> tuple[float, str]:
    """Milliseconds to a TCP connect and its outcome (ok, timeout or the errno name)."""
    began = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), limit)
    except TimeoutError:
        return (time.perf_counter() - began) * 1000, "timeout"
    except OSError as exc:
        return (time.perf_counter() - began) * 1000, errno.errorcode.get(exc.errno or 0, "?")
    writer.close()
    return (time.perf_counter() - began) * 1000, "ok"


async def tls_get(lab: Lab, address: str, sni: str, port: int = 443) -> dict[str, Any]:
    """One HTTPS GET; what came back (or how it failed) and when."""
    context = ssl.create_default_context(cafile=str(lab.trust_store))
    began = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=context, server_hostname=sni), 2
        )
        writer.write(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        body = await asyncio.wait_for(reader.read(), 2)
        writer.close()
        return {"ok": True, "ms": (time.perf_counter() - began) * 1000, "body": body}
    except ssl.SSLCertVerificationError as exc:
        return {"ok": False, "ms": (time.perf_counter() - began) * 1000, "verify": exc}
    except (OSError, TimeoutError) as exc:
        return {"ok": False, "ms": (time.perf_counter() - began) * 1000, "error": exc}


async def http_get(address: str, host: str) -> bytes:
    reader, writer = await asyncio.open_connection(address, 80)
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 2)  # Connection: close, so until EOF
    writer.close()
    return data


def test_the_internet_is_farther_than_the_firewall(firewall_lab: Lab) -> None:
    """The proxy answers handshakes at once; the internet is a measured round trip away."""

    async def measure() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"proxy": [], "internet": []}
        for _ in range(3):
            times["proxy"].append((await connect_ms(HEALTHY.address, 443))[0])
            times["internet"].append((await connect_ms(HEALTHY.address, 8443))[0])
        return times

    times = firewall_lab.in_pod(measure)
    rtt = 2 * firewall_lab.delay_ms
    # Minima: CPU load on a shared machine only ever adds time, the delay is a floor.
    assert min(times["internet"]) >= 0.9 * rtt, times
    assert min(times["proxy"]) < firewall_lab.delay_ms / 2, times


def test_squid_splices_bumps_or_terminates_by_sni(firewall_lab: Lab) -> None:
    lab = firewall_lab

    async def scenario() -> dict[str, dict[str, Any]]:
        return {
            name: await tls_get(lab, HEALTHY.address, f"{name}.lab.test")
            for name in ("healthy", "unlisted", "inspected")
        }

    got = lab.in_pod(scenario)
    assert got["healthy"]["ok"] and b"200 OK" in got["healthy"]["body"]
    # Terminated before any server byte, and the destination never saw it (below).
    assert isinstance(got["unlisted"]["error"], ConnectionError), got["unlisted"]
    # Bumped: re-signed by the firewall's own CA, which the pod does not trust.
    assert "self-signed certificate in certificate chain" in str(got["inspected"]["verify"])
    time.sleep(0.2)  # squid writes a tunnel's line when it closes
    sni_served = {s["sni"] for s in lab.served() if s["port"] == 443}
    assert {"healthy.lab.test", "inspected.lab.test"} <= sni_served
    assert "unlisted.lab.test" not in sni_served
    modes = {(r["sni"], r["bump_mode"]) for r in lab.squid_log()}
    assert {
        ("healthy.lab.test", "splice"),
        ("unlisted.lab.test", "terminate"),
        ("inspected.lab.test", "bump"),
    } <= modes


def test_http_host_acls_answer_with_azure_firewalls_470(firewall_lab: Lab) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        allowed = await http_get(HEALTHY.address, "web.lab.test")
        denied = await http_get(HEALTHY.address, "unlisted.lab.test")
        return allowed, denied

    allowed, denied = firewall_lab.in_pod(scenario)
    assert allowed.startswith(b"HTTP/1.1 200") and b"hello from 198.19.1.1:80" in allowed
    assert denied.startswith(b"HTTP/1.1 470")
    assert b"Action: Deny. Reason: No rule matched" in denied
    statuses = {(r["url"], r["status"], r["squid_status"]) for r in firewall_lab.squid_log()}
    assert ("http://unlisted.lab.test/", "470", "TCP_DENIED") in statuses


def test_network_rules_drop_by_default_with_counters_and_a_trace_log(firewall_lab: Lab) -> None:
    lab = firewall_lab
    before = lab.counters()

    async def scenario() -> dict[str, tuple[float, str]]:
        return {
            "allowed": await connect_ms(HEALTHY.address, 8443),
            "dropped": await connect_ms(HEALTHY.address, 9000, limit=0.3),
        }

    got = lab.in_pod(scenario)
    assert got["allowed"][1] == "ok" and got["dropped"][1] == "timeout"
    after = lab.counters()
    assert after["net/tls-8443"] > before["net/tls-8443"]
    assert after["default/deny"] > before["default/deny"]
    time.sleep(0.1)
    trace = lab.nft_log.read_text(encoding="utf-8")
    assert "tcp dport 9000" in trace and 'comment "default/deny" (verdict drop)' in trace
    stamp = trace.splitlines()[0].split()[0]
    assert abs(float(stamp) - time.time()) < 600  # each line carries the time it was seen


def test_destinations_refuse_blackhole_or_are_down_behind_an_allowing_rule(
    firewall_lab: Lab,
) -> None:
    async def scenario() -> dict[str, tuple[float, str]]:
        return {
            "refuses": await connect_ms(REFUSES.address, 8443),
            "blackhole": await connect_ms(BLACKHOLE.address, 8443, limit=0.4),
            "down": await connect_ms(DOWN.address, 8443),
            "canary": await connect_ms(CANARY.address, 8443),
        }

    got = firewall_lab.in_pod(scenario)
    rtt = 2 * firewall_lab.delay_ms
    assert got["refuses"][1] == "ECONNREFUSED" and got["refuses"][0] >= 0.9 * rtt
    assert got["blackhole"][1] == "timeout"
    assert got["down"][1] == "EHOSTUNREACH" and got["down"][0] >= 0.9 * rtt
    assert got["canary"][1] == "ok"  # a canary server answers on every port


def test_the_dns_proxy_answers_lab_names_only_and_outside_resolvers_follow_the_rules(
    firewall_lab: Lab,
) -> None:
    lab = firewall_lab
    server, port = lab.resolver

    async def ask(name: str, where: str, limit: float = 1.0) -> dns.message.Message | None:
        query = dns.message.make_query(name, "A")
        try:
            return await dns.asyncquery.udp(query, where, port=53, timeout=limit)
        except dns.exception.Timeout:
            return None

    async def scenario() -> dict[str, dns.message.Message | None]:
        return {
            "lab": await ask("healthy.lab.test.", server),
            "nx": await ask("nx.lab.test.", server),
            "world": await ask("example.com.", server),  # resolved locally, never contacted
            "open": await ask(".", OPEN_RESOLVER.address),
            "closed": await ask(".", CLOSED_RESOLVER.address, limit=0.3),
        }

    got = lab.in_pod(scenario)
    assert port == 53
    lab_answer = got["lab"]
    assert lab_answer is not None
    assert [r.to_text() for rr in lab_answer.answer for r in rr] == [HEALTHY.address]
    assert got["nx"] is not None and got["nx"].rcode() == dns.rcode.NXDOMAIN
    assert got["world"] is not None and got["world"].rcode() == dns.rcode.NXDOMAIN
    assert got["open"] is not None and got["closed"] is None
    # The proxy's log: squid's own lookups come from 127.0.0.1, the pod's from its address.
    from_pod = {
        (q.name, q.qtype, q.answer)
        for q in dns_queries(lab.dnsmasq_log)
        if q.source_ip == lab.topology.pod_ip
    }
    assert ("healthy.lab.test", "A", HEALTHY.address) in from_pod
    assert ("nx.lab.test", "A", "NXDOMAIN") in from_pod
    resolvers = {s["address"] for s in lab.served() if s["kind"] == "dns"}
    assert OPEN_RESOLVER.address in resolvers and CLOSED_RESOLVER.address not in resolvers


def test_a_lab_runs_the_configs_its_caller_supplies() -> None:
    """Issue 11's closed loop starts the firewall from generated files: the lab runs them."""
    if reason := lab_unavailable():
        pytest.skip(reason)
    policy = Policy(
        tls_allowed=("unlisted.lab.test",),
        inspect=(),
        http_allowed=(),
        network_rules=(("net/only-9000", f"ip daddr {HEALTHY.address} tcp dport 9000"),),
    )

    def configure(lab: Lab) -> LabConfigs:
        return LabConfigs(
            squid_conf=default_squid_conf(lab.topology, lab.paths, policy),
            # Generated rule sets often start by flushing everything; the lab's trace survives.
            nft_ruleset="flush ruleset\n" + default_ruleset(lab.topology, policy),
        )

    with running_lab(configure, delay_ms=5.0) as custom:

        async def scenario() -> dict[str, Any]:
            return {
                "9000": await connect_ms(HEALTHY.address, 9000, limit=0.5),
                "8443": await connect_ms(HEALTHY.address, 8443, limit=0.3),
                "unlisted": await tls_get(custom, HEALTHY.address, "unlisted.lab.test"),
                "healthy": await tls_get(custom, HEALTHY.address, "healthy.lab.test"),
            }

        began = time.time()
        got = custom.in_pod(scenario)
        ruleset = custom.paths.nft_ruleset.read_text(encoding="utf-8")
        time.sleep(0.1)
        network = {
            (d.destination_port, d.action, d.rule)
            for d in decisions(custom, began - 5, time.time())
            if d.source == "network-rule"
        }
    assert "net/only-9000" in ruleset
    assert got["9000"][1] == "ECONNREFUSED"  # the caller's rule let it reach the host
    assert got["8443"][1] == "timeout"  # the default policy's 8443 rule is not there
    assert got["unlisted"]["ok"] and not got["healthy"]["ok"]
    assert {(9000, "allow", "net/only-9000"), (8443, "deny", "default/deny")} <= network


def test_the_firewalls_decisions_read_back_from_its_logs(firewall_lab: Lab) -> None:
    """squid's access log and the nft trace give one decision per flow, keyed by source port."""
    lab = firewall_lab
    began = time.time()
    context = ssl.create_default_context(cafile=str(lab.trust_store))

    async def flow(port: int, sni: str | None = None, host: str | None = None) -> int:
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((lab.topology.pod_ip, 0))
        source_port = int(sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (HEALTHY.address, port)), 0.3)
            tls = {"ssl": context, "server_hostname": sni} if sni else {}
            reader, writer = await asyncio.open_connection(sock=sock, **tls)  # type: ignore[arg-type]
            if host:
                writer.write(
                    f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                await asyncio.wait_for(reader.read(), 2)
            writer.close()
        except (OSError, TimeoutError):
            sock.close()
        return source_port

    async def scenario() -> dict[str, int]:
        return {
            "splice": await flow(443, sni="healthy.lab.test", host="healthy.lab.test"),
            "terminate": await flow(443, sni="unlisted.lab.test"),
            "http-allow": await flow(80, host="web.lab.test"),
            "http-deny": await flow(80, host="unlisted.lab.test"),
            "net-allow": await flow(8443),
            "net-drop": await flow(9000),
        }

    ports = lab.in_pod(scenario)
    time.sleep(0.3)
    by_port = {d.source_port: d for d in decisions(lab, began, time.time())}
    seen = {
        name: (by_port[port].source, by_port[port].target, by_port[port].action, by_port[port].rule)
        for name, port in ports.items()
        if port in by_port
    }
    assert seen == {
        "splice": ("application-rule", "healthy.lab.test", "allow", "splice"),
        "terminate": ("application-rule", "unlisted.lab.test", "deny", "terminate"),
        "http-allow": ("application-rule", "web.lab.test", "allow", "TCP_MISS"),
        "http-deny": ("application-rule", "unlisted.lab.test", "deny", "TCP_DENIED"),
        "net-allow": ("network-rule", None, "allow", "net/tls-8443"),
        "net-drop": ("network-rule", None, "deny", "default/deny"),
    }
    for name, port in ports.items():
        decision = by_port[port]
        assert decision.source_ip == lab.topology.pod_ip, name
        assert decision.destination_ip == HEALTHY.address, name


def test_the_lab_is_sealed_from_the_host(firewall_lab: Lab) -> None:
    """Only the lab's own links and prefixes: no namespace routes anywhere else."""
    topo = firewall_lab.topology
    lab_links = {"lo", topo.pod_if, topo.firewall_pod_if, topo.firewall_tun, topo.internet_tun}
    for netns in (topo.pod_ns, topo.firewall_ns, topo.internet_ns):
        links = subprocess.run(
            ["ip", "-n", netns, "-o", "link", "show"], capture_output=True, text=True, check=True
        ).stdout
        names = {line.split(": ")[1].split("@")[0] for line in links.splitlines()}
        assert names <= lab_links, (netns, names)
        routes = subprocess.run(
            ["ip", "-n", netns, "route", "show"], capture_output=True, text=True, check=True
        ).stdout
        for route in routes.splitlines():
            if route.startswith("default"):
                assert netns == topo.pod_ns and f"via {topo.firewall_ip}" in route, route
