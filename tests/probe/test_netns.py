"""Silent drops and ICMP rejects, made real with nftables inside a namespace the test creates."""

from __future__ import annotations

import errno
import ssl
from typing import Any

import pytest
import trustme
from conftest import Netns, make_check, make_plan

from egress.probe import DnspythonResolver, ProbeRun, ProbeSettings
from egress.probe_plan import CheckKind, Expectation, ProbePlan
from egress.results import Location, RunReport, Verdict

from probe_peers import NtpPeer, TcpPeer, always, close_all, run_in_netns, start_udp

pytestmark = pytest.mark.netns

DROPPED, PROHIBITED = "127.66.0.1", "127.66.0.2"
RULES = f"""
table inet egress_probe_test {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {DROPPED} drop
    ip daddr {PROHIBITED} meta l4proto tcp reject with icmp type admin-prohibited
  }}
}}
"""


def probe_in(netns: Netns, plan_for: Any, tmp_path: Any) -> RunReport:
    """Start a trusted TLS control peer and an NTP peer in the namespace, then probe there."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    async def scenario() -> RunReport:
        keep: list[Any] = []
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.5").configure_cert(server)
        control = await TcpPeer("127.0.0.5", always("serve"), tls=server).start(keep)
        ntp_port = await start_udp("127.0.0.6", NtpPeer(), keep)
        try:
            probe = ProbeRun(
                plan=plan_for(control.port, ntp_port),
                settings=ProbeSettings(trust_store=bundle, phase_timeout=1.0, retries=0),
                resolver=DnspythonResolver("127.0.0.53", 53),  # unused: every host is an IP
                location=Location(),
            )
            return await probe.execute()
        finally:
            await close_all(keep)

    return run_in_netns(netns.name, scenario)


def test_silent_drop_is_blocked_only_with_a_control(netns: Netns, tmp_path: Any) -> None:
    netns.nft(RULES)

    def plan(control_port: int, ntp_port: int) -> ProbePlan:
        return make_plan(
            make_check("control", "127.0.0.5", control_port, kind=CheckKind.TLS),
            make_check("ntp", "127.0.0.6", ntp_port, kind=CheckKind.NTP),
            make_check("drop-tcp", DROPPED, 443, kind=CheckKind.TLS, expectation=Expectation.DENY),
            make_check("drop-ntp", DROPPED, 123, kind=CheckKind.NTP, expectation=Expectation.DENY),
        )

    run = probe_in(netns, plan, tmp_path)
    by_id = {r.check_id: r for r in run.checks}
    assert by_id["control"].verdict is Verdict.REACHABLE
    assert by_id["ntp"].verdict is Verdict.REACHABLE
    tcp = by_id["drop-tcp"]
    assert tcp.verdict is Verdict.BLOCKED and tcp.compliant is True, tcp.reason
    assert tcp.evidence["tcp"]["outcome"] == "timeout"
    assert tcp.evidence["control"] == {"check_id": "control", "phase": "tcp"}
    udp = by_id["drop-ntp"]
    assert udp.verdict is Verdict.BLOCKED, udp.reason
    assert udp.evidence["control"] == {"check_id": "ntp", "phase": "ntp"}


def test_silent_drop_without_control_is_inconclusive(netns: Netns, tmp_path: Any) -> None:
    netns.nft(RULES)

    def plan(_control_port: int, _ntp_port: int) -> ProbePlan:
        return make_plan(
            make_check("drop-tcp", DROPPED, 443, kind=CheckKind.TLS, expectation=Expectation.DENY)
        )

    record = probe_in(netns, plan, tmp_path).checks[0]
    assert record.verdict is Verdict.INCONCLUSIVE and record.compliant is None
    assert "no control check passed tcp" in record.reason


def test_icmp_admin_prohibited_is_blocked_with_errno(netns: Netns, tmp_path: Any) -> None:
    netns.nft(RULES)

    def plan(_control_port: int, _ntp_port: int) -> ProbePlan:
        return make_plan(
            make_check("reject", PROHIBITED, 443, kind=CheckKind.TLS, expectation=Expectation.DENY)
        )

    record = probe_in(netns, plan, tmp_path).checks[0]
    assert record.verdict is Verdict.BLOCKED, record.reason
    assert record.evidence["tcp"]["errno"] == errno.EHOSTUNREACH
    assert record.evidence["tcp"]["errno_name"] == "EHOSTUNREACH"
