"""Every verdict path of the ladder against real peers on 127.0.0.0/8."""

from __future__ import annotations

import errno

import pytest
from conftest import Lab, make_check, make_plan

from egress.probe_plan import CheckKind, Expectation
from egress.results import CheckRecord, RunReport, Verdict

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY


def only(run: RunReport) -> CheckRecord:
    assert len(run.checks) == 1
    return run.checks[0]


async def test_https_reachable_with_sni_and_public_certificate(lab: Lab) -> None:
    before, connections = len(lab.peers["good"].sni), lab.peers["good"].connections
    record = only(await lab.run(make_plan(lab.check("good"))))
    assert record.verdict is Verdict.REACHABLE, record.reason
    assert record.compliant is True
    dns = record.evidence["dns"]
    assert dns["name"] == "good.probe.test."  # trailing dot: no search-list expansion
    assert dns["resolver"] == f"127.53.0.1:{lab.dns_port}"
    assert dns["answers"] == {"A": ["127.10.0.1"], "AAAA": ["::1"]}
    assert dns["rcode"] == {"A": "NOERROR", "AAAA": "NOERROR"}
    tls = record.evidence["tls"]
    assert tls["outcome"] == "complete" and tls["verified"] is True and tls["inspection"] is False
    assert "good.probe.test" in tls["certificate"]["dns_names"]
    assert record.evidence["http"]["status"] == 200
    # one connection: SNI = the FQDN, and the HTTP request travelled on that verified session
    assert lab.peers["good"].sni[before:] == ["good.probe.test"]
    assert lab.peers["good"].connections == connections + 1
    request = lab.peers["good"].requests[-1].decode()
    assert request.startswith("GET / HTTP/1.1\r\n")
    assert "host: good.probe.test" in request.lower()
    assert "authorization" not in request.lower() and "cookie" not in request.lower()


async def test_real_world_name_is_resolved_by_the_injected_resolver(lab: Lab) -> None:
    # mcr.microsoft.com is resolved locally by the test DNS server, never contacted
    check = make_check("mcr", "mcr.microsoft.com", lab.port("good"))  # resolved locally
    record = only(await lab.run(make_plan(check)))
    assert record.verdict is Verdict.REACHABLE
    assert record.evidence["dns"]["address"] == "127.10.0.1"


async def test_tls_cut_right_after_client_hello_is_blocked(lab: Lab) -> None:
    for name, error in (("cut", "EOF"), ("reset", "ConnectionResetError")):
        record = only(await lab.run(make_plan(lab.check(name, expectation=DENY))))
        assert record.verdict is Verdict.BLOCKED, record.reason
        assert record.compliant is True
        tls = record.evidence["tls"]
        assert tls["outcome"] == "cut-after-client-hello"
        assert tls["bytes_from_server"] == 0
        assert tls["sni"] == f"{name}.probe.test"
        assert error in tls["error"]
        assert lab.peers[name].first_bytes[-1][:1] == b"\x16"  # a TLS handshake record arrived


async def test_required_endpoint_cut_by_the_firewall_is_non_compliant(lab: Lab) -> None:
    record = only(await lab.run(make_plan(lab.check("cut"))))
    assert record.verdict is Verdict.BLOCKED
    assert record.compliant is False and record.is_failed_required


async def test_http_470_deny_body_is_an_application_rule_deny(lab: Lab) -> None:
    check = lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY)
    record = only(await lab.run(make_plan(check)))
    assert record.verdict is Verdict.BLOCKED, record.reason
    http = record.evidence["http"]
    assert http["status"] == 470 and http["deny_signature"] is True
    assert "Action: Deny. Reason: No rule matched" in http["body_excerpt"]


async def test_plain_http_answer_is_reachable(lab: Lab) -> None:
    record = only(await lab.run(make_plan(lab.check("plain", kind=CheckKind.HTTP))))
    assert record.verdict is Verdict.REACHABLE and record.evidence["http"]["status"] == 200


async def test_unhealthy_destination_after_tls(lab: Lab) -> None:
    for name in ("unhealthy", "garbage"):
        record = only(await lab.run(make_plan(lab.check(name))))
        assert record.verdict is Verdict.UNHEALTHY, (name, record.reason)
        assert record.evidence["tls"]["verified"] is True
    assert "503" in record.reason or "HTTP" in record.reason


async def test_expired_certificate_from_the_destination_is_unhealthy(lab: Lab) -> None:
    record = only(await lab.run(make_plan(lab.check("expired", kind=CheckKind.TLS))))
    assert record.verdict is Verdict.UNHEALTHY, record.reason
    assert record.evidence["tls"]["verify_code"] == 10  # certificate has expired
    assert record.evidence["tls"]["inspection"] is False


async def test_tls_inspection_is_reported(lab: Lab) -> None:
    tls_only = only(await lab.run(make_plan(lab.check("inspected", kind=CheckKind.TLS))))
    assert tls_only.verdict is Verdict.INCONCLUSIVE
    assert tls_only.compliant is None
    tls = tls_only.evidence["tls"]
    assert tls["inspection"] is True and tls["verified"] is False
    assert "Inspecting Proxy CA" in tls["certificate"]["issuer"]
    https = only(await lab.run(make_plan(lab.check("inspected"))))
    assert https.verdict is Verdict.REACHABLE
    assert "TLS-inspecting proxy" in https.reason
    assert https.evidence["tls"]["inspection"] is True


async def test_closed_port_is_inconclusive_with_errno(lab: Lab) -> None:
    check = make_check("closed", "closed.probe.test", lab.closed_port, expectation=DENY)
    record = only(await lab.run(make_plan(check)))
    assert record.verdict is Verdict.INCONCLUSIVE
    assert record.compliant is None  # a closed port never passes a must-be-blocked check
    assert record.evidence["tcp"]["errno"] == errno.ECONNREFUSED
    assert record.evidence["tcp"]["errno_name"] == "ECONNREFUSED"


async def test_a_refusal_on_a_network_rule_port_came_from_beyond_the_firewall(lab: Lab) -> None:
    from egress.compliance import CheckStatus
    from egress.probe_plan import FirewallProfile

    deny = make_check("closed", "closed.probe.test", lab.closed_port, CheckKind.TCP, DENY)
    record = only(await lab.run(make_plan(deny)))
    # Azure Firewall drops denied packets silently: a refusal means the SYN got through
    assert record.verdict is Verdict.UNHEALTHY and record.status is CheckStatus.LEAK
    assert record.assumption and "never refuse" in record.assumption
    generic = only(await lab.run(make_plan(deny), firewall_profile=FirewallProfile.GENERIC))
    assert generic.verdict is Verdict.INCONCLUSIVE and generic.status is CheckStatus.UNPROVEN
    allow = make_check("closed-allow", "closed.probe.test", lab.closed_port, CheckKind.TCP)
    down = only(await lab.run(make_plan(allow)))
    assert down.verdict is Verdict.UNHEALTHY and down.status is CheckStatus.PASS  # not "blocked"


async def test_dns_verdicts(lab: Lab) -> None:
    nx = only(await lab.run(make_plan(make_check("nx", "nx.probe.test", 443, expectation=DENY))))
    assert nx.verdict is Verdict.INCONCLUSIVE and nx.compliant is None
    assert nx.evidence["dns"]["rcode"]["A"] == "NXDOMAIN"
    ede = only(
        await lab.run(make_plan(make_check("ede", "blockeddns.probe.test", 443, expectation=DENY)))
    )
    assert ede.verdict is Verdict.BLOCKED and ede.compliant is True
    assert ede.evidence["dns"]["ede"] == [15]
    assert ede.evidence["dns"]["rcode"]["A"] == "REFUSED"


async def test_tcp_only_success_is_reachable_only_off_the_proxy_ports(lab: Lab) -> None:
    high = only(await lab.run(make_plan(lab.check("plain", kind=CheckKind.TCP))))
    assert high.verdict is Verdict.REACHABLE
    assert high.evidence["tcp"]["outcome"] == "connected"


async def test_ntp_reply_must_echo_the_transmit_timestamp(lab: Lab) -> None:
    good = make_check("ntp", "ntp.probe.test", lab.ntp_port, kind=CheckKind.NTP)
    bad = make_check("ntp-bad", "ntp-bad.probe.test", lab.ntp_bad_port, kind=CheckKind.NTP)
    run = await lab.run(make_plan(good, bad))
    by_id = {r.check_id: r for r in run.checks}
    assert by_id["ntp"].verdict is Verdict.REACHABLE
    assert by_id["ntp"].evidence["ntp"]["mode"] == 4
    assert by_id["ntp"].evidence["ntp"]["request_bytes"] == 48
    assert by_id["ntp-bad"].verdict is Verdict.INCONCLUSIVE
    assert "origin timestamp" in by_id["ntp-bad"].evidence["ntp"]["invalid_replies"][0]


async def test_reachable_dns_canary_is_a_leak(lab: Lab) -> None:
    canary = make_check(
        "canary-dns",
        "127.53.0.1",
        lab.dns_port,
        kind=CheckKind.DNS,
        expectation=DENY,
        dns_query_name="exfil.probe.test",
    )
    record = only(await lab.run(make_plan(canary)))
    assert record.verdict is Verdict.REACHABLE
    assert record.is_leak and record.compliant is False
    assert record.evidence["dns-query"]["qname"] == "exfil.probe.test."
    assert ("exfil.probe.test.", "A") in lab.dns.queries


async def test_unverifiable_is_never_passed(lab: Lab) -> None:
    check = make_check(
        "tunnel",
        "tunnel.probe.test",
        1194,
        kind=CheckKind.UNVERIFIABLE,
        unverifiable_reason="the UDP 1194 tunnel needs its own protocol",
    )
    record = only(await lab.run(make_plan(check)))
    assert record.verdict is Verdict.UNVERIFIABLE and record.compliant is None
    assert record.attempts[0].phases == ()
    assert "1194" in record.reason


async def test_tcp_only_success_on_443_is_inconclusive(lab: Lab) -> None:
    import random

    from probe_peers import TcpPeer, always

    # a random loopback address: other worktrees' suites may hold port 443 on a fixed one
    address = f"127.10.{random.randint(100, 250)}.{random.randint(1, 250)}"
    try:
        peer = lab.loop.call(TcpPeer(address, always("hang")).start(lab.loop.resources, 443))
    except PermissionError:
        pytest.skip("binding port 443 needs root (CI runs the suite as root)")
    check = make_check("tcp443", address, peer.port, kind=CheckKind.TCP)
    record = only(await lab.run(make_plan(check)))
    assert record.evidence["tcp"]["outcome"] == "connected"
    assert record.verdict is Verdict.INCONCLUSIVE and record.compliant is None
    assert "80/443/1433" in record.reason


async def test_a_silent_resolver_is_never_a_block(lab: Lab) -> None:
    silent = make_check("slow", "slowdns.probe.test", 443, expectation=DENY)
    run = await lab.run(make_plan(silent, lab.check("good")), phase_timeout=0.4)
    record = next(r for r in run.checks if r.check_id == "slow")
    assert record.evidence["dns"]["outcome"] == "timeout"
    assert record.verdict is Verdict.INCONCLUSIVE  # a DNS proxy forwards every query
    assert "not a firewall deny" in record.reason


async def test_inspection_fails_an_entry_that_forbids_it_and_names_the_issuer(lab: Lab) -> None:
    from egress.compliance import CheckStatus
    from egress.probe_plan import TlsInspection

    forbidden = lab.check("inspected", id="api", tls_inspection=TlsInspection.FORBIDDEN)
    allowed = lab.check("inspected", id="registry")
    run = await lab.run(make_plan(forbidden, allowed))
    by_id = {r.check_id: r for r in run.checks}
    api = by_id["api"]
    assert api.verdict is Verdict.REACHABLE and api.status is CheckStatus.FAIL
    issuer = api.evidence["tls"]["inspecting_issuer"]
    assert "Inspecting Proxy CA" in issuer and issuer in api.reason
    assert api.reason.startswith("TLS inspection is forbidden")
    assert by_id["registry"].status is CheckStatus.PASS
    assert by_id["registry"].evidence["tls"]["inspection"] is True
