"""The pure judging rules, one table row per rule."""

# ruff: noqa: E501  (one rule per table row reads better than wrapped rows)

from __future__ import annotations

import errno
from typing import Any

import pytest
from conftest import make_check

from egress.probe.judge import compliance, judge, timeout_phase
from egress.probe_plan import CheckKind, Expectation
from egress.results import Phase, Verdict

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY
DNS_OK = Phase(name="dns", ok=True, duration_ms=1, detail={"outcome": "answers"})
TCP_OK = Phase(name="tcp", ok=True, duration_ms=1, detail={"outcome": "connected"})
TLS_OK = Phase(name="tls", ok=True, duration_ms=1, detail={"outcome": "complete", "verified": True})


def bad(name: str, **detail: Any) -> Phase:
    return Phase(name=name, ok=False, duration_ms=1, detail=detail)


def good(name: str, **detail: Any) -> Phase:
    return Phase(name=name, ok=True, duration_ms=1, detail=detail)


ROWS: list[tuple[str, CheckKind, int, Expectation, tuple[Phase, ...], bool, Verdict, bool | None]] = [
    # id, kind, port, expectation, phases, control_ok, verdict, compliant
    ("https ok", CheckKind.HTTPS, 443, ALLOW, (DNS_OK, TCP_OK, TLS_OK, good("http", status=404)),
     False, Verdict.REACHABLE, True),
    ("470 deny", CheckKind.HTTP, 80, DENY, (DNS_OK, TCP_OK, good("http", status=470, deny_signature=True)),
     False, Verdict.BLOCKED, True),
    ("470 no body", CheckKind.HTTP, 80, DENY, (DNS_OK, TCP_OK, good("http", status=470, deny_signature=False)),
     False, Verdict.INCONCLUSIVE, None),
    ("5xx", CheckKind.HTTPS, 443, ALLOW, (DNS_OK, TCP_OK, TLS_OK, good("http", status=502)),
     False, Verdict.UNHEALTHY, True),
    ("5xx on deny leaks", CheckKind.HTTPS, 443, DENY, (DNS_OK, TCP_OK, TLS_OK, good("http", status=502)),
     False, Verdict.UNHEALTHY, False),
    ("http garbage after tls", CheckKind.HTTPS, 443, ALLOW, (DNS_OK, TCP_OK, TLS_OK, bad("http", outcome="protocol-error")),
     False, Verdict.UNHEALTHY, True),
    ("plain http garbage", CheckKind.HTTP, 80, ALLOW, (DNS_OK, TCP_OK, bad("http", outcome="protocol-error")),
     False, Verdict.INCONCLUSIVE, None),
    ("tls cut with sni", CheckKind.TLS, 443, DENY, (DNS_OK, TCP_OK, bad("tls", outcome="cut-after-client-hello", sni="a.test")),
     False, Verdict.BLOCKED, True),
    ("tls cut without sni", CheckKind.TLS, 443, DENY, (TCP_OK, bad("tls", outcome="cut-after-client-hello", sni=None)),
     False, Verdict.INCONCLUSIVE, None),
    ("tls cut mid handshake", CheckKind.TLS, 443, DENY, (TCP_OK, bad("tls", outcome="cut-during-handshake", sni="a.test")),
     False, Verdict.INCONCLUSIVE, None),
    ("tls alert", CheckKind.TLS, 443, DENY, (TCP_OK, bad("tls", outcome="alert", alert="TLSV1_ALERT_ACCESS_DENIED")),
     False, Verdict.INCONCLUSIVE, None),
    ("tls inspected", CheckKind.TLS, 443, ALLOW, (TCP_OK, good("tls", verified=False, inspection=True)),
     False, Verdict.INCONCLUSIVE, None),
    ("tls bad cert", CheckKind.TLS, 443, ALLOW, (TCP_OK, good("tls", verified=False, inspection=False)),
     False, Verdict.UNHEALTHY, True),
    ("tcp timeout with control", CheckKind.TLS, 443, DENY, (DNS_OK, bad("tcp", outcome="timeout")),
     True, Verdict.BLOCKED, True),
    ("tcp timeout without control", CheckKind.TLS, 443, DENY, (DNS_OK, bad("tcp", outcome="timeout")),
     False, Verdict.INCONCLUSIVE, None),
    ("allow tcp timeout with control", CheckKind.TLS, 443, ALLOW, (DNS_OK, bad("tcp", outcome="timeout")),
     True, Verdict.BLOCKED, False),
    ("rst", CheckKind.TLS, 443, DENY, (DNS_OK, bad("tcp", outcome="refused", errno=errno.ECONNREFUSED)),
     True, Verdict.INCONCLUSIVE, None),
    ("icmp prohibited", CheckKind.TLS, 443, DENY, (bad("tcp", outcome="error", errno=errno.EHOSTUNREACH, errno_name="EHOSTUNREACH"),),
     False, Verdict.BLOCKED, True),
    ("net unreachable", CheckKind.TLS, 443, DENY, (bad("tcp", outcome="error", errno=errno.ENETUNREACH),),
     False, Verdict.INCONCLUSIVE, None),
    ("tcp only on 443", CheckKind.TCP, 443, ALLOW, (DNS_OK, TCP_OK), False, Verdict.INCONCLUSIVE, None),
    ("tcp only on 9000", CheckKind.TCP, 9000, ALLOW, (DNS_OK, TCP_OK), False, Verdict.REACHABLE, True),
    ("tcp only on 9000 leaks", CheckKind.TCP, 9000, DENY, (DNS_OK, TCP_OK), False, Verdict.REACHABLE, False),
    ("nxdomain", CheckKind.HTTPS, 443, DENY, (bad("dns", outcome="nxdomain"),), True, Verdict.INCONCLUSIVE, None),
    ("ede 15", CheckKind.HTTPS, 443, DENY, (bad("dns", outcome="refused", ede=[15]),), False, Verdict.BLOCKED, True),
    ("ede 18", CheckKind.HTTPS, 443, DENY, (bad("dns", outcome="servfail", ede=[18]),), False, Verdict.BLOCKED, True),
    ("ede 22 is not policy", CheckKind.HTTPS, 443, DENY, (bad("dns", outcome="servfail", ede=[22]),), False, Verdict.INCONCLUSIVE, None),
    ("refused no ede", CheckKind.HTTPS, 443, DENY, (bad("dns", outcome="refused", ede=[]),), False, Verdict.INCONCLUSIVE, None),
    ("dns timeout with control", CheckKind.HTTPS, 443, DENY, (bad("dns", outcome="timeout"),), True, Verdict.BLOCKED, True),
    ("ntp ok", CheckKind.NTP, 123, ALLOW, (DNS_OK, good("ntp", outcome="reply")), False, Verdict.REACHABLE, True),
    ("ntp invalid", CheckKind.NTP, 123, ALLOW, (DNS_OK, bad("ntp", outcome="invalid")), False, Verdict.INCONCLUSIVE, None),
    ("ntp timeout with control", CheckKind.NTP, 123, DENY, (bad("ntp", outcome="timeout"),), True, Verdict.BLOCKED, True),
    ("dns canary answered", CheckKind.DNS, 53, DENY, (good("dns-query", rcode="NOERROR"),), False, Verdict.REACHABLE, False),
    ("dns canary silent", CheckKind.DNS, 53, DENY, (bad("dns-query", outcome="timeout"),), False, Verdict.INCONCLUSIVE, None),
    ("host unknown", CheckKind.HTTPS, 443, ALLOW, (bad("host", outcome="unknown", error="no api server"),), False, Verdict.INCONCLUSIVE, None),
    ("not probed", CheckKind.HTTPS, 443, ALLOW, (), False, Verdict.INCONCLUSIVE, None),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_judge_table(row: tuple[Any, ...]) -> None:
    _, kind, port, expectation, phases, control_ok, verdict, compliant = row
    check = make_check("c", "a.test", port, kind=kind, expectation=expectation)
    got_verdict, got_compliant, reason = judge(check, phases, control_ok)
    assert (got_verdict, got_compliant) == (verdict, compliant), reason
    assert reason and reason.strip() == reason


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


def test_compliance_matrix() -> None:
    assert compliance(ALLOW, Verdict.REACHABLE) is True
    assert compliance(ALLOW, Verdict.BLOCKED) is False
    assert compliance(DENY, Verdict.BLOCKED) is True
    assert compliance(DENY, Verdict.REACHABLE) is False
    for expectation in Expectation:
        assert compliance(expectation, Verdict.INCONCLUSIVE) is None
        assert compliance(expectation, Verdict.UNVERIFIABLE) is None


def test_timeout_phase_is_the_last_failed_phase() -> None:
    assert timeout_phase((DNS_OK, bad("tcp", outcome="timeout"))) == "tcp"
    assert timeout_phase((DNS_OK, bad("tcp", outcome="refused"))) is None
    assert timeout_phase((DNS_OK, TCP_OK)) is None
    assert timeout_phase(()) is None
