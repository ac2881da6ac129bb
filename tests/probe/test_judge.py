"""The pure, firewall-aware judging rules: one table row per rule (docs/probe.md lists the same)."""

# ruff: noqa: E501  (one rule per table row reads better than wrapped rows)

from __future__ import annotations

import errno
from typing import Any

import pytest
from conftest import make_check

from egress.compliance import Assurance, CheckStatus, check_status
from egress.probe.judge import (
    NETWORK_TCP,
    NETWORK_UDP,
    Context,
    judge,
    judge_attempt,
    needed_witness,
    timeout_phase,
    witness_path,
)
from egress.probe_plan import CheckKind, Enforcement, Expectation, FirewallProfile
from egress.results import Phase, Verdict

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY
APP, NET, DNSP = Enforcement.APPLICATION_RULE, Enforcement.NETWORK_RULE, Enforcement.DNS_PROXY
STATED, SIG = Assurance.STATED, Assurance.SIGNATURE
PASS, FAIL, LEAK, UNPROVEN = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.LEAK,
    CheckStatus.UNPROVEN,
)
R, B, U, N = Verdict.REACHABLE, Verdict.BLOCKED, Verdict.UNHEALTHY, Verdict.INCONCLUSIVE
DNS_OK = Phase(name="dns", ok=True, duration_ms=1, detail={"outcome": "answers"})
TCP_OK = Phase(name="tcp", ok=True, duration_ms=0.4, detail={"outcome": "connected"})
TLS_OK = Phase(name="tls", ok=True, duration_ms=1, detail={"outcome": "complete", "verified": True})
INSPECTED = Phase(
    name="tls",
    ok=True,
    duration_ms=1,
    detail={"verified": False, "inspection": True, "inspecting_issuer": "CN=Proxy CA"},
)

AZ = Context()
GEN = Context(profile=FirewallProfile.GENERIC)
NET_WITNESSED = Context(witnesses={NETWORK_TCP: "w-tcp", NETWORK_UDP: "w-udp"})
GEN_WITNESSED = Context(profile=FirewallProfile.GENERIC, witnesses=NET_WITNESSED.witnesses)
SPLICED_30MS = Context(spliced_hello_ms=30.0, spliced_by="allowed-https")


def bad(name: str, **detail: Any) -> Phase:
    return Phase(name=name, ok=False, duration_ms=1, detail=detail)


def good(name: str, **detail: Any) -> Phase:
    return Phase(name=name, ok=True, duration_ms=1, detail=detail)


def cut(ms: float | None = None, sni: str | None = "a.test") -> Phase:
    timing = {} if ms is None else {"hello_to_end_ms": ms}
    return bad(
        "tls", outcome="cut-after-client-hello", sni=sni, error="EOF", bytes_from_server=0, **timing
    )


TIMEOUT = {"outcome": "timeout", "error": "no reply within 1s"}
REFUSED = {"outcome": "refused", "errno": errno.ECONNREFUSED, "errno_name": "ECONNREFUSED"}

Row = tuple[
    str,
    CheckKind,
    int,
    Enforcement | None,
    Expectation,
    tuple[Phase, ...],
    Context,
    Verdict,
    Assurance | None,
    CheckStatus,
]
ROWS: list[Row] = [
    # id, kind, port, enforcement (None: from the port), expectation, phases, context, verdict, assurance, status
    # --- stated: the firewall said so (both profiles)
    ("470 deny", CheckKind.HTTP, 80, None, DENY, (DNS_OK, TCP_OK, good("http", status=470, deny_signature=True)), AZ, B, STATED, PASS),
    ("470 deny generic", CheckKind.HTTP, 80, None, DENY, (DNS_OK, TCP_OK, good("http", status=470, deny_signature=True)), GEN, B, STATED, PASS),
    ("470 deny on allow", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, INSPECTED, good("http", status=470, deny_signature=True)), AZ, B, STATED, FAIL),
    ("470 without deny body", CheckKind.HTTP, 80, None, DENY, (DNS_OK, TCP_OK, good("http", status=470, deny_signature=False)), AZ, N, None, UNPROVEN),
    ("ede 15", CheckKind.HTTPS, 443, None, DENY, (bad("dns", outcome="refused", ede=[15]),), AZ, B, STATED, PASS),
    ("ede 18 generic", CheckKind.HTTPS, 443, None, DENY, (bad("dns", outcome="servfail", ede=[18]),), GEN, B, STATED, PASS),
    ("ede 22 is not policy", CheckKind.HTTPS, 443, None, DENY, (bad("dns", outcome="servfail", ede=[22]),), AZ, N, None, UNPROVEN),
    ("icmp unreachable generic", CheckKind.TCP, 8443, None, DENY, (bad("tcp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH"),), GEN, B, SIG, PASS),
    ("icmp unreachable azure", CheckKind.TCP, 8443, None, DENY, (bad("tcp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH"),), AZ, N, None, UNPROVEN),
    ("reject route EACCES", CheckKind.TLS, 443, None, DENY, (bad("tcp", outcome="error", errno=errno.EACCES, errno_name="EACCES"),), AZ, B, STATED, PASS),
    ("udp unreachable azure", CheckKind.NTP, 123, None, DENY, (bad("ntp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH"),), AZ, N, None, UNPROVEN),
    ("udp unreachable generic", CheckKind.NTP, 123, None, DENY, (bad("ntp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH"),), GEN, B, SIG, PASS),
    ("udp local reject EPERM", CheckKind.NTP, 123, None, DENY, (bad("ntp", outcome="error", errno=errno.EPERM, errno_name="EPERM"),), AZ, B, STATED, PASS),
    # --- application-rule ports: the proxy answers handshakes, cuts denied SNIs, splices the rest
    ("tcp only on 443", CheckKind.TCP, 443, None, ALLOW, (DNS_OK, TCP_OK), AZ, N, None, UNPROVEN),
    ("tcp only on 443 deny", CheckKind.TCP, 443, None, DENY, (DNS_OK, TCP_OK), AZ, N, None, UNPROVEN),
    ("tcp timeout on 443", CheckKind.TLS, 443, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, N, None, UNPROVEN),
    ("tcp refused on 443", CheckKind.TLS, 443, None, DENY, (DNS_OK, bad("tcp", **REFUSED)), AZ, N, None, UNPROVEN),
    ("cut, no timing reference", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, cut(0.3)), AZ, B, SIG, PASS),
    ("cut faster than a splice", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, cut(0.3)), SPLICED_30MS, B, SIG, PASS),
    ("cut as slow as the far end", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, cut(14.0)), SPLICED_30MS, N, None, UNPROVEN),
    ("cut on allow", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, cut(0.3)), SPLICED_30MS, B, SIG, FAIL),
    ("slow cut on allow", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, cut(20.0)), SPLICED_30MS, N, None, UNPROVEN),
    ("cut generic", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, cut(0.3)), GEN, N, None, UNPROVEN),
    ("cut without sni", CheckKind.TLS, 443, None, DENY, (TCP_OK, cut(0.3, sni=None)), AZ, N, None, UNPROVEN),
    ("tls stall after hello deny", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, bad("tls", sni="a.test", **TIMEOUT)), NET_WITNESSED, U, None, LEAK),
    ("tls stall after hello allow", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, bad("tls", sni="a.test", **TIMEOUT)), AZ, U, None, PASS),
    ("tls stall generic", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, bad("tls", sni="a.test", **TIMEOUT)), GEN_WITNESSED, N, None, UNPROVEN),
    ("tls stall without sni", CheckKind.TLS, 443, None, DENY, (TCP_OK, bad("tls", sni=None, **TIMEOUT)), AZ, N, None, UNPROVEN),
    ("http stall after the proxy took it", CheckKind.HTTP, 80, None, DENY, (DNS_OK, TCP_OK, bad("http", **TIMEOUT)), NET_WITNESSED, U, None, LEAK),
    ("http stall generic", CheckKind.HTTP, 80, None, DENY, (DNS_OK, TCP_OK, bad("http", **TIMEOUT)), GEN, N, None, UNPROVEN),
    ("http stall after verified tls", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, TLS_OK, bad("http", **TIMEOUT)), GEN, U, None, PASS),
    ("cut mid handshake", CheckKind.TLS, 443, None, DENY, (TCP_OK, bad("tls", outcome="cut-during-handshake", sni="a.test", bytes_from_server=90)), AZ, U, None, LEAK),
    ("cut mid handshake generic", CheckKind.TLS, 443, None, DENY, (TCP_OK, bad("tls", outcome="cut-during-handshake", sni="a.test", bytes_from_server=90)), GEN, N, None, UNPROVEN),
    ("tls alert", CheckKind.TLS, 443, None, DENY, (TCP_OK, bad("tls", outcome="alert", alert="TLSV1_ALERT_ACCESS_DENIED")), AZ, N, None, UNPROVEN),
    ("tls inspected, tls only", CheckKind.TLS, 443, None, ALLOW, (TCP_OK, INSPECTED), AZ, N, None, UNPROVEN),
    ("tls bad cert", CheckKind.TLS, 443, None, ALLOW, (TCP_OK, good("tls", verified=False, inspection=False)), AZ, U, None, PASS),
    ("https ok", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, TLS_OK, good("http", status=404)), AZ, R, None, PASS),
    ("https through inspection", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, INSPECTED, good("http", status=200)), AZ, R, None, PASS),
    ("5xx", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, TLS_OK, good("http", status=502)), AZ, U, None, PASS),
    ("5xx on deny leaks", CheckKind.HTTPS, 443, None, DENY, (DNS_OK, TCP_OK, TLS_OK, good("http", status=502)), AZ, U, None, LEAK),
    ("http garbage after tls", CheckKind.HTTPS, 443, None, ALLOW, (DNS_OK, TCP_OK, TLS_OK, bad("http", outcome="protocol-error")), AZ, U, None, PASS),
    ("plain http garbage", CheckKind.HTTP, 80, None, ALLOW, (DNS_OK, TCP_OK, bad("http", outcome="protocol-error")), AZ, N, None, UNPROVEN),
    # --- network-rule ports: silent drops; a refusal or a handshake came from beyond the firewall
    ("tcp timeout with network witness", CheckKind.TCP, 8443, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, N, None, UNPROVEN),
    ("tcp timeout to a canary server with witness", CheckKind.TCP, 8443, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, B, SIG, PASS),
    ("tcp timeout, udp witness only", CheckKind.TCP, 8443, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), Context(witnesses={NETWORK_UDP: "ntp"}), N, None, UNPROVEN),
    ("tcp timeout without witness", CheckKind.TCP, 22, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), AZ, N, None, UNPROVEN),
    ("tcp timeout to a canary server", CheckKind.TCP, 22, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), AZ, B, SIG, PASS),
    ("tcp timeout generic with witness", CheckKind.TCP, 8443, None, DENY, (DNS_OK, bad("tcp", **TIMEOUT)), GEN_WITNESSED, N, None, UNPROVEN),
    ("allow tcp timeout with witness", CheckKind.TCP, 9000, None, ALLOW, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, N, None, UNPROVEN),
    ("tcp refused beyond the firewall", CheckKind.TCP, 8443, None, DENY, (DNS_OK, bad("tcp", **REFUSED)), AZ, U, None, LEAK),
    ("allow tcp refused", CheckKind.TCP, 9000, None, ALLOW, (DNS_OK, bad("tcp", **REFUSED)), AZ, U, None, PASS),
    ("tcp refused generic", CheckKind.TCP, 8443, None, DENY, (DNS_OK, bad("tcp", **REFUSED)), GEN, N, None, UNPROVEN),
    ("net unreachable", CheckKind.TCP, 8443, None, DENY, (bad("tcp", outcome="error", errno=errno.ENETUNREACH),), AZ, N, None, UNPROVEN),
    ("tcp only on 9000", CheckKind.TCP, 9000, None, ALLOW, (DNS_OK, TCP_OK), GEN, R, None, PASS),
    ("tcp only on 9000 leaks", CheckKind.TCP, 9000, None, DENY, (DNS_OK, TCP_OK), AZ, R, None, LEAK),
    ("tls cut after a real handshake", CheckKind.TLS, 8443, NET, DENY, (DNS_OK, TCP_OK, cut(0.3)), AZ, U, None, LEAK),
    ("tls stall after a real handshake", CheckKind.TLS, 8443, NET, DENY, (DNS_OK, TCP_OK, bad("tls", sni="a.test", **TIMEOUT)), AZ, U, None, LEAK),
    ("tls stall after a real handshake generic", CheckKind.TLS, 8443, NET, DENY, (DNS_OK, TCP_OK, bad("tls", sni="a.test", **TIMEOUT)), GEN, N, None, UNPROVEN),
    ("tls cut after a real handshake generic", CheckKind.TLS, 8443, NET, DENY, (DNS_OK, TCP_OK, cut(0.3)), GEN, N, None, UNPROVEN),
    ("http failure after a real handshake", CheckKind.HTTP, 8080, NET, DENY, (DNS_OK, TCP_OK, bad("http", outcome="protocol-error", error="closed")), AZ, U, None, LEAK),
    ("ntp ok", CheckKind.NTP, 123, None, ALLOW, (DNS_OK, good("ntp", outcome="reply")), AZ, R, None, PASS),
    ("ntp invalid", CheckKind.NTP, 123, None, ALLOW, (DNS_OK, bad("ntp", outcome="invalid")), AZ, N, None, UNPROVEN),
    ("ntp timeout with udp witness", CheckKind.NTP, 123, None, DENY, (bad("ntp", **TIMEOUT),), NET_WITNESSED, N, None, UNPROVEN),
    ("ntp timeout to a canary server", CheckKind.NTP, 123, None, DENY, (bad("ntp", **TIMEOUT),), AZ, B, SIG, PASS),
    ("ntp timeout, tcp witness only", CheckKind.NTP, 123, None, DENY, (bad("ntp", **TIMEOUT),), Context(witnesses={NETWORK_TCP: "t"}), N, None, UNPROVEN),
    ("udp port unreachable", CheckKind.NTP, 123, None, DENY, (bad("ntp", **REFUSED),), AZ, U, None, LEAK),
    # --- DNS: names and outside resolvers
    ("nxdomain", CheckKind.HTTPS, 443, None, DENY, (bad("dns", outcome="nxdomain"),), NET_WITNESSED, N, None, UNPROVEN),
    ("refused without ede", CheckKind.HTTPS, 443, None, DENY, (bad("dns", outcome="refused", ede=[]),), AZ, N, None, UNPROVEN),
    ("resolver timeout is no deny", CheckKind.HTTPS, 443, None, DENY, (bad("dns", **TIMEOUT),), NET_WITNESSED, N, None, UNPROVEN),
    ("outside resolver answered", CheckKind.DNS, 53, None, DENY, (good("dns-query", rcode="NOERROR"),), AZ, R, None, LEAK),
    ("outside resolver silent, udp witness", CheckKind.DNS, 53, None, DENY, (bad("dns-query", **TIMEOUT),), NET_WITNESSED, N, None, UNPROVEN),
    ("outside resolver silent, canary server", CheckKind.DNS, 53, None, DENY, (bad("dns-query", **TIMEOUT),), AZ, B, SIG, PASS),
    ("outside resolver silent, no witness", CheckKind.DNS, 53, DNSP, DENY, (bad("dns-query", **TIMEOUT),), AZ, N, None, UNPROVEN),
    # --- nothing to judge
    ("host unknown", CheckKind.HTTPS, 443, None, ALLOW, (bad("host", outcome="unknown", error="no api server"),), AZ, N, None, UNPROVEN),
    ("not probed", CheckKind.HTTPS, 443, None, ALLOW, (), AZ, N, None, UNPROVEN),
]  # fmt: skip
CANARY_SERVER_ROWS = {
    "tcp timeout to a canary server",
    "tcp timeout to a canary server with witness",
    "ntp timeout to a canary server",
    "outside resolver silent, canary server",
}


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_judge_table(row: Row) -> None:
    name, kind, port, enforcement, expectation, phases, context, verdict, assurance, status = row
    extra: dict[str, Any] = {"enforcement": enforcement}
    if name in CANARY_SERVER_ROWS:
        extra["canary_server"] = True
    check = make_check("c", "a.test", port, kind=kind, expectation=expectation, **extra)
    judged = judge_attempt(check, phases, context)
    assert (judged.verdict, judged.assurance) == (verdict, assurance), judged.reason
    got = check_status(expectation=expectation, verdict=judged.verdict, assurance=judged.assurance)
    assert got is status
    assert judged.reason and judged.reason.strip() == judged.reason
    if judged.assurance is Assurance.SIGNATURE:  # every signature names what it assumes
        assert judged.assumption and len(judged.assumption.split()) > 8
    if judged.verdict is not Verdict.BLOCKED:
        assert judged.assurance is None


def test_enforcement_comes_from_the_port_when_the_plan_has_none() -> None:
    assert make_check("a", "a.test", 443, kind=CheckKind.TCP).enforced_by is APP
    assert make_check("a", "a.test", 1433, kind=CheckKind.TCP).enforced_by is APP
    assert make_check("a", "a.test", 8443, kind=CheckKind.TCP).enforced_by is NET
    assert make_check("a", "a.test", 443, kind=CheckKind.NTP).enforced_by is NET  # UDP
    assert make_check("a", "a.test", 53, kind=CheckKind.DNS).enforced_by is DNSP
    planned = make_check("a", "a.test", 8080, kind=CheckKind.HTTP, enforcement=APP)
    assert planned.enforced_by is APP


def test_a_proxied_handshake_never_witnesses_a_network_rule_port() -> None:
    on_443 = make_check("a", "a.test", 443, kind=CheckKind.TCP, enforcement=None)
    on_9000 = make_check("b", "a.test", 9000, kind=CheckKind.TCP)
    dns = make_check("d", "1.2.3.4", 53, kind=CheckKind.DNS)
    assert witness_path(on_443, "tcp") is None
    assert witness_path(on_443, "tls") is None
    assert witness_path(on_9000, "tcp") == NETWORK_TCP
    assert witness_path(dns, "dns-query") == NETWORK_UDP  # a query to its own address
    timed_out = (DNS_OK, bad("tcp", **TIMEOUT))
    assert needed_witness(on_9000, timed_out) == NETWORK_TCP
    assert needed_witness(on_443, timed_out) is None  # no witness can make it a drop


def test_timing_evidence_names_the_numbers_it_decided_on() -> None:
    check = make_check("c", "a.test", 443, expectation=DENY)
    fast = judge_attempt(check, (DNS_OK, TCP_OK, cut(0.3)), SPLICED_30MS)
    assert fast.evidence["timing"] == {
        "proxy_handshake_ms": 0.4,
        "hello_to_cut_ms": 0.3,
        "spliced_hello_ms": 30.0,
        "spliced_by": "allowed-https",
        "decided_by": "firewall",
    }
    assert (
        fast.assumption is not None and "0.3 ms" in fast.assumption and "30 ms" in fast.assumption
    )
    slow = judge_attempt(check, (DNS_OK, TCP_OK, cut(14.0)), SPLICED_30MS)
    assert slow.evidence["timing"]["decided_by"] == "far-end"
    unknown = judge_attempt(check, (DNS_OK, TCP_OK, cut(0.3)), AZ)
    assert unknown.evidence["timing"]["decided_by"] == "undecided"


def test_witnessed_drop_names_its_control() -> None:
    check = make_check(
        "c", "a.test", 8443, kind=CheckKind.TCP, expectation=DENY, canary_server=True
    )
    judged = judge_attempt(check, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED)
    assert judged.evidence["control"] == {"check_id": "w-tcp", "phase": "tcp", "path": NETWORK_TCP}


def test_unverifiable_is_never_compliant() -> None:
    check = make_check(
        "u", "a.test", 1194, kind=CheckKind.UNVERIFIABLE, unverifiable_reason="tunnel protocol"
    )
    for expectation in Expectation:
        verdict, compliant, reason = judge(
            check.model_copy(update={"expectation": expectation}), (), True
        )
        assert (verdict, compliant) == (Verdict.UNVERIFIABLE, None)
        assert "tunnel protocol" in reason


def test_timeout_phase_is_the_last_failed_phase() -> None:
    assert timeout_phase((DNS_OK, bad("tcp", outcome="timeout"))) == "tcp"
    assert timeout_phase((DNS_OK, bad("tcp", outcome="refused"))) is None
    assert timeout_phase((DNS_OK, TCP_OK)) is None
    assert timeout_phase(()) is None
