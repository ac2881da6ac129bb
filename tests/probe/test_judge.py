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
    compliance,
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


# --------------------------------------------------------------------------- what each rule says
# One row per rule of docs/probe.md's table: beyond verdict and assurance, the words a user reads
# in the reason, the assumption (None: the verdict assumes nothing) and the exact evidence.
SRC = {"address": "10.1.0.1", "port": 8443}
HELLO_CUT = {
    "outcome": "cut-after-client-hello",
    "sni": "a.test",
    "error": "EOF",
    "bytes_from_server": 0,
}


def spliced(ms: float) -> Context:
    return Context(spliced_hello_ms=ms, spliced_by="allowed-https")


def timing(
    cut_ms: float | None, decided_by: str, ref: float | None = 30.0, tcp_ms: float | None = 0.4
) -> dict[str, Any]:
    return {
        "timing": {
            "proxy_handshake_ms": tcp_ms,
            "hello_to_cut_ms": cut_ms,
            "spliced_hello_ms": ref,
            "spliced_by": "allowed-https" if ref else None,
            "decided_by": decided_by,
        }
    }


def control(check_id: str, phase: str, path: str) -> dict[str, Any]:
    return {"control": {"check_id": check_id, "phase": phase, "path": path}}


TLS_STALL = bad("tls", sni="a.test", **TIMEOUT)
SAYS: list[tuple[str, dict[str, Any], tuple[Phase, ...], Context, Verdict, Assurance | None, str | tuple[str, ...], tuple[str, ...] | None, dict[str, Any]]] = [
    # id, check (kind, port, enforcement, canary_server), phases, context, verdict, assurance, reason words (a str: the whole reason), assumption words, evidence
    # --- timeouts
    ("resolver timeout", {}, (bad("dns", **TIMEOUT),), AZ, N, None, ("the resolver did not answer for a.test (no reply within 1s); a DNS proxy forwards every query", "a silent resolver is not a firewall deny"), None, {}),
    ("tcp timeout on an app port", {"kind": CheckKind.TLS}, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, N, None, ("TCP connect to port 443 timed out; the firewall's proxy completes handshakes on application-rule ports itself", "no deny"), None, {}),
    ("tcp timeout generic", {"kind": CheckKind.TCP, "port": 8443, "canary_server": True}, (DNS_OK, bad("tcp", **TIMEOUT)), GEN_WITNESSED, N, None, ("tcp to port 8443 timed out; the generic profile counts only what a firewall states, and a silent drop states nothing",), None, {}),
    ("tcp timeout, witness, no canary", {"kind": CheckKind.TCP, "port": 8443}, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, N, None, ("tcp to a.test port 8443 timed out; allow check w-tcp got through a network rule on the same path, but that does not show a.test answers: a silent drop cannot be told from a destination that is down", "declare the destination a canary server (canary_server: true) if it answers"), None, {}),
    ("tcp timeout, no witness, no canary", {"kind": CheckKind.TCP, "port": 22}, (DNS_OK, bad("tcp", **TIMEOUT)), AZ, N, None, ("tcp to a.test port 22 timed out: a silent drop cannot be told from a destination that is down",), None, {}),
    ("tcp timeout to a canary, witnessed", {"kind": CheckKind.TCP, "port": 8443, "canary_server": True}, (DNS_OK, bad("tcp", **TIMEOUT)), NET_WITNESSED, B, SIG, ("tcp to the canary server a.test port 8443 timed out",), ("a.test answers on port 8443 whenever the path lets the connection through (declared canary_server), so only the firewall can have dropped it",), control("w-tcp", "tcp", NETWORK_TCP)),
    ("tcp timeout to a canary, no witness", {"kind": CheckKind.TCP, "port": 22, "canary_server": True}, (DNS_OK, bad("tcp", **TIMEOUT)), AZ, B, SIG, ("tcp to the canary server a.test port 22 timed out",), ("lets the connection through",), {}),
    ("ntp timeout to a canary, witnessed", {"kind": CheckKind.NTP, "port": 123, "canary_server": True}, (bad("ntp", **TIMEOUT),), NET_WITNESSED, B, SIG, ("ntp to the canary server a.test port 123 timed out",), ("whenever the path lets the request through",), control("w-udp", "ntp", NETWORK_UDP)),
    ("ntp timeout to a canary, tcp witness only", {"kind": CheckKind.NTP, "port": 123, "canary_server": True}, (bad("ntp", **TIMEOUT),), Context(witnesses={NETWORK_TCP: "t"}), B, SIG, ("ntp to the canary server a.test port 123 timed out",), ("lets the request through",), {}),
    # --- stalls after the TCP handshake
    ("net tls stall", {"kind": CheckKind.TLS, "port": 8443, "enforcement": NET}, (DNS_OK, TCP_OK, TLS_STALL), AZ, U, None, ("TCP connected to port 8443 through a network rule, then tls stalled (no reply within 1s): the destination failed, not the path",), None, {}),
    ("net http stall", {"kind": CheckKind.HTTP, "port": 8080, "enforcement": NET}, (DNS_OK, TCP_OK, bad("http", **TIMEOUT)), AZ, U, None, ("port 8080 through a network rule, then http stalled",), None, {}),
    ("net tls stall generic", {"kind": CheckKind.TLS, "port": 8443, "enforcement": NET}, (DNS_OK, TCP_OK, TLS_STALL), GEN, N, None, ("TCP connected to port 8443, then tls stalled (no reply within 1s); the generic profile cannot rule out a firewall that filters beyond TCP",), None, {}),
    ("http stall after verified tls", {}, (DNS_OK, TCP_OK, TLS_OK, bad("http", **TIMEOUT)), AZ, U, None, ("TLS completed with the destination's trusted certificate, then HTTP stalled (no reply within 1s)",), None, {}),
    ("http stall after inspected tls", {}, (DNS_OK, TCP_OK, good("tls", sni="a.test", verified=False, inspection=True), bad("http", **TIMEOUT)), AZ, U, None, ("the firewall's proxy took the HTTP request for a.test and did not deny it, then http stalled (no reply within 1s): it let the connection through to a destination that did not answer",), ("denies on an application-rule port at once (HTTP 470, or a cut right after the ClientHello), never by stalling",), {}),
    ("plain http stall names the host", {"kind": CheckKind.HTTP, "port": 80}, (DNS_OK, TCP_OK, bad("http", **TIMEOUT)), AZ, U, None, ("took the HTTP request for a.test and did not deny it",), ("never by stalling",), {}),
    ("tls stall with its timing", {}, (DNS_OK, TCP_OK, bad("tls", sni="a.test", hello_to_end_ms=5000, **TIMEOUT)), AZ, U, None, ("the firewall's proxy took the ClientHello for a.test and did not deny it, then tls stalled",), ("Azure Firewall denies on an application-rule port at once",), {"timing": {"hello_to_end_ms": 5000}}),
    ("tls stall without sni", {"kind": CheckKind.TLS}, (TCP_OK, bad("tls", sni=None, **TIMEOUT)), AZ, N, None, ("the TLS handshake without SNI timed out (no reply within 1s); the proxy cannot match a name it was not sent",), None, {}),
    ("tls stall generic", {}, (DNS_OK, TCP_OK, TLS_STALL), GEN, N, None, ("tls stalled after the TCP handshake (no reply within 1s); the generic profile cannot tell a forwarding proxy from a stalling one",), None, {}),
    # --- DNS failures
    ("ede names each blocking code", {}, (bad("dns", outcome="refused", resolver="10.0.0.10:53", ede=[15, 22, 17, "16"]),), AZ, B, STATED, ("resolver 10.0.0.10:53 refused the name with EDE 15 Blocked, 17 Filtered",), None, {}),
    ("ede 16 censored", {}, (bad("dns", outcome="refused", resolver="10.0.0.10:53", ede=[16, 18]),), GEN, B, STATED, ("EDE 16 Censored, 18 Prohibited",), None, {}),
    ("ede not a list", {}, (bad("dns", outcome="refused", resolver="10.0.0.10:53", ede=15, error="REFUSED"),), AZ, N, None, ("DNS lookup via 10.0.0.10:53 failed: REFUSED",), None, {}),
    ("nxdomain", {}, (bad("dns", outcome="nxdomain", resolver="10.0.0.10:53"),), AZ, N, None, ("resolver 10.0.0.10:53 answered NXDOMAIN; a missing name is not proof of a block",), None, {}),
    ("nodata", {}, (bad("dns", outcome="nodata", resolver="10.0.0.10:53"),), AZ, N, None, ("resolver 10.0.0.10:53 returned no A or AAAA records",), None, {}),
    ("servfail without error", {}, (bad("dns", outcome="servfail", resolver="10.0.0.10:53"),), AZ, N, None, ("DNS lookup via 10.0.0.10:53 failed: servfail",), None, {}),
    # --- connect failures
    ("local reject", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", outcome="error", errno=errno.EPERM, errno_name="EPERM", **SRC),), AZ, B, STATED, ("connect to 10.1.0.1:8443 was rejected locally with EPERM (a reject rule)",), None, {}),
    ("local reject without errno name", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", outcome="error", errno=errno.EACCES, **SRC),), AZ, B, STATED, ("rejected locally with error (a reject rule)",), None, {}),
    ("icmp unreachable azure", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH", **SRC),), AZ, N, None, ("connect to 10.1.0.1:8443 failed with EHOSTUNREACH; Azure Firewall drops denied flows silently and sends no ICMP, so the unreachable came from elsewhere",), None, {}),
    ("icmp unreachable generic", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH", **SRC),), GEN, B, SIG, ("connect to 10.1.0.1:8443 failed with EHOSTUNREACH (an ICMP unreachable)",), ("the ICMP unreachable is a firewall's administratively-prohibited answer, not a far-end router's host-unreachable; the socket reports both as EHOSTUNREACH",), {}),
    ("other connect error", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", outcome="error", errno=errno.ENETUNREACH, errno_name="ENETUNREACH", error="Network is unreachable", **SRC),), AZ, N, None, ("connect to 10.1.0.1:8443 failed with ENETUNREACH: Network is unreachable",), None, {}),
    ("refused on an app port", {"kind": CheckKind.TLS}, (bad("tcp", **REFUSED, address="10.1.0.1", port=443),), AZ, N, None, ("connect to 10.1.0.1:443 was refused (RST or ICMP port unreachable): a closed port or a rejecting device, not proof of a block",), None, {}),
    ("refused generic", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", **REFUSED, **SRC),), GEN, N, None, ("a closed port or a rejecting device",), None, {}),
    ("refused beyond the firewall", {"kind": CheckKind.TCP, "port": 8443}, (bad("tcp", **REFUSED, **SRC),), AZ, U, None, ("connect to 10.1.0.1:8443 was refused (RST or ICMP port unreachable): the firewall let it through and the destination refused",), ("Azure Firewall's network rules drop denied packets silently and never refuse, so a refusal came from beyond the firewall",), {}),
    # --- TLS failures
    ("net tls failure", {"kind": CheckKind.TLS, "port": 8443, "enforcement": NET}, (TCP_OK, bad("tls", outcome="verify-failed", error="certificate expired")), AZ, U, None, ("TCP connected to port 8443 through a network rule, then the TLS handshake failed (verify-failed: certificate expired): the destination failed, not the path",), None, {}),
    ("net tls failure generic", {"kind": CheckKind.TLS, "port": 8443, "enforcement": NET}, (TCP_OK, bad("tls", outcome="verify-failed")), GEN, N, None, ("the TLS handshake failed: verify-failed",), None, {}),
    ("tls alert", {"kind": CheckKind.TLS}, (TCP_OK, bad("tls", outcome="alert", alert="ACCESS_DENIED")), AZ, N, None, ("the TLS peer answered with alert ACCESS_DENIED; firewall and server cannot be told apart",), None, {}),
    ("server bytes before the cut", {"kind": CheckKind.TLS}, (TCP_OK, bad("tls", outcome="cut-during-handshake", sni="a.test", bytes_from_server=90, error="ECONNRESET")), AZ, U, None, ("the server had sent 90 bytes of the handshake before the cut (ECONNRESET): the proxy let it through and the destination failed",), ("Azure Firewall without TLS inspection sends no handshake bytes of its own, so they came from the destination",), {}),
    ("server bytes before the cut generic", {"kind": CheckKind.TLS}, (TCP_OK, bad("tls", outcome="cut-during-handshake", sni="a.test", bytes_from_server=90, error="ECONNRESET")), GEN, N, None, ("the TLS handshake failed: ECONNRESET",), None, {}),
    ("other tls error", {"kind": CheckKind.TLS}, (TCP_OK, bad("tls", outcome="error", sni="a.test")), AZ, N, None, ("the TLS handshake failed: error",), None, {}),
    ("cut without sni", {"kind": CheckKind.TLS}, (TCP_OK, bad("tls", **{**HELLO_CUT, "sni": None})), SPLICED_30MS, N, None, ("the TLS handshake without SNI was cut (EOF); the proxy cannot match a name it was not sent",), None, {}),
    ("cut generic", {}, (DNS_OK, TCP_OK, cut(0.3)), GEN, N, None, ("the TLS handshake was cut (EOF) right after a ClientHello with SNI a.test; the generic profile does not read a cut as a firewall's statement",), None, {}),
    ("cut, no reference", {}, (DNS_OK, TCP_OK, cut(0.3)), AZ, B, SIG, ("the TLS handshake was cut (EOF) right after a ClientHello with SNI a.test, before any server byte",), ("a cut right after the ClientHello is the firewall's proxy refusing a.test, not a destination that refused a spliced connection (no spliced handshake in this run to compare its timing with)",), timing(0.3, "undecided", ref=None)),
    ("cut without its own timing", {}, (DNS_OK, TCP_OK, cut()), SPLICED_30MS, B, SIG, ("before any server byte",), ("no spliced handshake in this run",), timing(None, "undecided")),
    ("cut without a tcp phase", {"kind": CheckKind.TLS}, (cut(0.3),), AZ, B, SIG, ("right after a ClientHello with SNI a.test",), ("the firewall's proxy refusing a.test",), timing(0.3, "undecided", ref=None, tcp_ms=None)),
    ("cut sooner than a third of a splice", {}, (DNS_OK, TCP_OK, cut(9.9)), SPLICED_30MS, B, SIG, ("right after a ClientHello with SNI a.test, 9.9 ms after it, before any server byte",), ("a cut 9.9 ms after the ClientHello, far sooner than the 30 ms a spliced handshake took in this run (allowed-https), came from the firewall's proxy itself and not from a destination behind it",), timing(9.9, "firewall")),
    ("cut at a third of a splice", {}, (DNS_OK, TCP_OK, cut(10.0)), SPLICED_30MS, N, None, ("right after a ClientHello with SNI a.test, but 10 ms after it: time enough for a round trip to the far end (a spliced handshake took 30 ms), so the proxy may have let it through to a destination that refused",), None, timing(10.0, "far-end")),
    ("cut later than a third of a fast splice", {}, (DNS_OK, TCP_OK, cut(2.0)), spliced(3.0), N, None, ("but 2 ms after it", "(a spliced handshake took 3 ms)"), None, timing(2.0, "far-end", ref=3.0)),
    # --- UDP failures
    ("udp local reject", {"kind": CheckKind.NTP, "port": 123}, (bad("ntp", outcome="error", errno=errno.EACCES, errno_name="EACCES"),), GEN, B, STATED, ("the UDP exchange was rejected locally with EACCES",), None, {}),
    ("udp unreachable azure", {"kind": CheckKind.NTP, "port": 123}, (bad("ntp", outcome="error", errno=errno.EHOSTUNREACH),), AZ, N, None, ("the UDP exchange failed with EHOSTUNREACH; Azure Firewall drops denied flows silently",), None, {}),
    ("udp unreachable generic", {"kind": CheckKind.DNS, "port": 53}, (bad("dns-query", outcome="error", errno=errno.EHOSTUNREACH),), GEN, B, SIG, ("the UDP exchange failed with EHOSTUNREACH (an ICMP unreachable)",), ("administratively-prohibited answer",), {}),
    ("ntp reply not valid", {"kind": CheckKind.NTP, "port": 123}, (bad("ntp", outcome="invalid", error="origin not echoed"),), AZ, N, None, ("a reply came but was not valid: origin not echoed",), None, {}),
    ("udp refused beyond the firewall", {"kind": CheckKind.NTP, "port": 123}, (bad("ntp", **REFUSED),), AZ, U, None, ("the UDP request was refused (ICMP port unreachable): the firewall let it through and the destination refused",), ("never refuse",), {}),
    ("udp refused generic", {"kind": CheckKind.NTP, "port": 123}, (bad("ntp", **REFUSED, error="Connection refused"),), GEN, N, None, ("the UDP exchange failed: Connection refused",), None, {}),
    ("udp error", {"kind": CheckKind.NTP, "port": 123}, (bad("ntp", outcome="error", errno=errno.ENETUNREACH, error="Network is unreachable"),), AZ, N, None, ("the UDP exchange failed: Network is unreachable",), None, {}),
    # --- HTTP failures
    ("http failure after verified tls", {}, (DNS_OK, TCP_OK, TLS_OK, bad("http", outcome="protocol-error", error="closed")), GEN, U, None, ("TLS completed but the HTTP exchange failed: closed",), None, {}),
    ("http failure after inspected tls", {}, (DNS_OK, TCP_OK, INSPECTED, bad("http", outcome="protocol-error", error="closed")), AZ, U, None, ("TLS completed but the HTTP exchange failed: closed",), None, {}),
    ("http failure after inspected tls generic", {}, (DNS_OK, TCP_OK, INSPECTED, bad("http", outcome="protocol-error", error="closed")), GEN, N, None, ("the HTTP exchange failed: closed",), None, {}),
    ("net http failure", {"kind": CheckKind.HTTP, "port": 8080, "enforcement": NET}, (DNS_OK, TCP_OK, bad("http", outcome="protocol-error", error="closed")), AZ, U, None, ("TCP connected to port 8080 through a network rule, but the HTTP exchange failed: closed",), None, {}),
    ("net http failure generic", {"kind": CheckKind.HTTP, "port": 8080, "enforcement": NET}, (DNS_OK, TCP_OK, bad("http", outcome="protocol-error", error="closed")), GEN, N, None, ("the HTTP exchange failed: closed",), None, {}),
    # --- successes
    ("tcp on an app port", {"kind": CheckKind.TCP}, (DNS_OK, TCP_OK), AZ, N, None, ("TCP connect to port 443 succeeded, but the firewall's proxy completes handshakes on application-rule ports (80/443/1433) itself",), None, {}),
    ("tcp on a net port", {"kind": CheckKind.TCP, "port": 9000}, (DNS_OK, good("tcp", address="10.1.0.1")), AZ, R, None, ("TCP connect to 10.1.0.1:9000 succeeded",), None, {}),
    ("tls trusted", {"kind": CheckKind.TLS}, (TCP_OK, TLS_OK), AZ, R, None, "TLS with SNI completed with a publicly trusted certificate", None, {}),
    ("tls inspected", {"kind": CheckKind.TLS}, (TCP_OK, INSPECTED), AZ, N, None, ("TLS was intercepted by an inspecting proxy (issuer CN=Proxy CA); the handshake does not prove the destination was reached",), None, {}),
    ("tls invalid certificate", {"kind": CheckKind.TLS}, (TCP_OK, good("tls", verify_error="certificate has expired")), AZ, U, None, ("TLS completed but the destination's certificate is invalid: certificate has expired",), None, {}),
    ("470 deny", {"kind": CheckKind.HTTP, "port": 80}, (DNS_OK, TCP_OK, good("http", status=470, deny_signature=True)), AZ, B, STATED, "HTTP 470 with 'Action: Deny': Azure Firewall application-rule deny", None, {}),
    ("470 without the body", {"kind": CheckKind.HTTP, "port": 80}, (DNS_OK, TCP_OK, good("http", status=470)), AZ, N, None, "HTTP 470 without the 'Action: Deny' body is not a known deny", None, {}),
    ("https with an invalid certificate", {}, (DNS_OK, TCP_OK, good("tls", verify_error="self-signed"), good("http", status=200)), AZ, U, None, ("the certificate is invalid: self-signed",), None, {}),
    ("https through inspection", {}, (DNS_OK, TCP_OK, INSPECTED, good("http", status=200)), AZ, R, None, ("the destination answered HTTP 200 through a TLS-inspecting proxy (issuer CN=Proxy CA)",), None, {}),
    ("5xx through inspection", {}, (DNS_OK, TCP_OK, INSPECTED, good("http", status=500)), AZ, U, None, ("the path worked through a TLS-inspecting proxy (issuer CN=Proxy CA) but the server answered HTTP 500",), None, {}),
    ("499 is an answer", {"kind": CheckKind.HTTP, "port": 80}, (DNS_OK, TCP_OK, good("http", status=499)), AZ, R, None, ("the destination answered HTTP 499",), None, {}),
    ("ntp reply", {"kind": CheckKind.NTP, "port": 123}, (good("ntp", outcome="reply"),), AZ, R, None, "a valid NTP mode-4 reply echoed the request's transmit time", None, {}),
    ("outside resolver answered", {"kind": CheckKind.DNS, "port": 53}, (good("dns-query", rcode="NXDOMAIN"),), AZ, R, None, ("the outside resolver answered (NXDOMAIN): DNS to it gets out",), None, {}),
    ("ladder stopped early", {}, (DNS_OK,), AZ, N, None, ("the ladder stopped after dns without a conclusion",), None, {}),
    # --- nothing to judge
    ("host unknown", {}, (bad("host", outcome="unknown", error="no api server"),), AZ, N, None, ("no api server",), None, {}),
    ("host unknown, no error", {}, (bad("host", outcome="unknown"),), AZ, N, None, "the host to probe is unknown", None, {}),
    ("unknown phase failed", {}, (bad("probe"),), AZ, N, None, "probe failed", None, {}),
    ("unknown phase failed, with its error", {}, (bad("probe", error="disk full"),), AZ, N, None, "disk full", None, {}),
    ("not probed", {}, (), AZ, N, None, "the check was not probed", None, {}),
]  # fmt: skip


@pytest.mark.parametrize("row", SAYS, ids=[row[0] for row in SAYS])
def test_judge_says_why(row: tuple[Any, ...]) -> None:
    _, spec, phases, context, verdict, assurance, words, assumed, evidence = row
    fields: dict[str, Any] = {"kind": CheckKind.HTTPS, "port": 443, "enforcement": None, **spec}
    kind, port = fields.pop("kind"), fields.pop("port")
    check = make_check("c", "a.test", port, kind=kind, expectation=DENY, **fields)
    judged = judge_attempt(check, phases, context)
    assert (judged.verdict, judged.assurance) == (verdict, assurance), judged.reason
    if isinstance(words, str):  # a fixed sentence: the whole reason
        assert judged.reason == words
    for said in (words,) if isinstance(words, str) else words:
        assert said in judged.reason, judged.reason
    if assumed is None:
        assert judged.assumption is None, judged.assumption
    else:
        assert judged.assumption is not None
        for said in assumed:
            assert said in judged.assumption, judged.assumption
    assert judged.evidence == evidence


def test_legacy_view_passes_fails_or_withholds() -> None:
    """`judge`'s tri-state: True for pass, False for fail and leak, None for everything else."""
    canary = make_check("c", "a.test", 22, kind=CheckKind.TCP, expectation=DENY, canary_server=True)
    timed_out = (DNS_OK, bad("tcp", **TIMEOUT))
    assert judge(canary, timed_out, True)[:2] == (B, True)
    assert judge(canary, timed_out, False)[:2] == (B, True)  # a canary server needs no witness
    leak = make_check("l", "a.test", 9000, kind=CheckKind.TCP, expectation=DENY)
    verdict, compliant, reason = judge(leak, (DNS_OK, good("tcp", address="10.1.0.1")), False)
    assert (verdict, compliant) == (R, False) and "10.1.0.1:9000 succeeded" in reason
    allowed = leak.model_copy(update={"expectation": ALLOW})
    assert judge(allowed, (DNS_OK, good("tcp", address="10.1.0.1")), False)[:2] == (R, True)
    assert compliance(ALLOW, R) is True
    assert compliance(ALLOW, U) is True
    assert compliance(ALLOW, B) is False
    assert compliance(DENY, U) is False  # a leak
    assert compliance(DENY, N) is None
    assert compliance(ALLOW, N) is None
    assert compliance(DENY, Verdict.UNVERIFIABLE) is None


def test_only_a_network_rule_path_is_witnessed() -> None:
    ntp = make_check("n", "a.test", 123, kind=CheckKind.NTP)
    on_app_rule = make_check("p", "a.test", 8080, kind=CheckKind.TCP, enforcement=APP)
    assert witness_path(ntp, "ntp") == NETWORK_UDP
    assert witness_path(ntp, "tcp") == NETWORK_TCP
    assert witness_path(ntp.model_copy(update={"enforcement": APP}), "ntp") is None
    assert witness_path(on_app_rule, "tcp") is None
    assert witness_path(on_app_rule, "http") is None
    assert needed_witness(ntp, (bad("ntp", **TIMEOUT),)) == NETWORK_UDP
    assert needed_witness(ntp, (bad("ntp", **REFUSED),)) is None  # not a timeout
    assert needed_witness(ntp, ()) is None
    assert timeout_phase((good("tcp", outcome="timeout"),)) is None  # passed phases never time out


@pytest.mark.parametrize(
    "phases",
    [
        (bad("dns", outcome="timeout"),),
        (DNS_OK, TCP_OK, bad("tls", outcome="timeout", sni="a.test")),
        (DNS_OK, TCP_OK, bad("tls", outcome="timeout", sni=None)),
    ],
    ids=["dns", "tls", "tls without sni"],
)
def test_a_timeout_without_an_error_text_never_prints_none(phases: tuple[Phase, ...]) -> None:
    for enforcement in (APP, NET):
        check = make_check("c", "a.test", 443, expectation=DENY, enforcement=enforcement)
        for context in (AZ, GEN):
            judged = judge_attempt(check, phases, context)
            assert "None" not in judged.reason, judged.reason
