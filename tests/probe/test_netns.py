"""Silent drops and ICMP rejects, made real with nftables inside a namespace the test creates."""

from __future__ import annotations

import errno
import ssl
from typing import Any

import pytest
import trustme
from conftest import Netns, make_check, make_plan

from egress.compliance import Assurance, CheckStatus
from egress.probe import DnspythonResolver, ProbeRun, ProbeSettings
from egress.probe.judge import NETWORK_TCP, NETWORK_UDP
from egress.probe_plan import CheckKind, Expectation, FirewallProfile, ProbePlan
from egress.results import Location, RunReport, Verdict

from probe_peers import NtpPeer, TcpPeer, always, close_all, run_in_netns, start_udp

pytestmark = pytest.mark.netns

DENY = Expectation.DENY
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


def probe_in(netns: Netns, plan_for: Any, tmp_path: Any, **settings: Any) -> RunReport:
    """Start a trusted TLS peer, a plain TCP peer and an NTP peer in the namespace, then probe."""
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
                settings=ProbeSettings(
                    trust_store=bundle, phase_timeout=0.6, retries=0, **settings
                ),
                resolver=DnspythonResolver("127.0.0.53", 53),  # unused: every host is an IP
                location=Location(),
            )
            return await probe.execute()
        finally:
            await close_all(keep)

    return run_in_netns(netns.name, scenario)


def test_a_silent_drop_is_a_signature_only_to_a_destination_known_to_answer(
    netns: Netns, tmp_path: Any
) -> None:
    netns.nft(RULES)

    def plan(control_port: int, ntp_port: int) -> ProbePlan:
        return make_plan(
            make_check("proxied", "127.0.0.5", control_port, kind=CheckKind.TLS),  # app rule
            make_check("network-tcp", "127.0.0.5", control_port, kind=CheckKind.TCP),
            make_check("ntp", "127.0.0.6", ntp_port, kind=CheckKind.NTP),
            make_check(
                "drop-tcp", DROPPED, 8443, kind=CheckKind.TCP, expectation=DENY, canary_server=True
            ),
            make_check(
                "drop-ntp", DROPPED, 123, kind=CheckKind.NTP, expectation=DENY, canary_server=True
            ),
            make_check("drop-plain", DROPPED, 8443, kind=CheckKind.TCP, expectation=DENY),
            make_check("drop-443", DROPPED, 443, kind=CheckKind.TLS, expectation=DENY),
        )

    run = probe_in(netns, plan, tmp_path)
    by_id = {r.check_id: r for r in run.checks}
    assert by_id["proxied"].verdict is Verdict.REACHABLE
    assert by_id["network-tcp"].verdict is Verdict.REACHABLE
    tcp = by_id["drop-tcp"]
    assert tcp.verdict is Verdict.BLOCKED and tcp.assurance is Assurance.SIGNATURE, tcp.reason
    assert tcp.status is CheckStatus.PASS and tcp.assumption
    assert tcp.evidence["tcp"]["outcome"] == "timeout"
    assert tcp.evidence["control"] == {
        "check_id": "network-tcp",
        "phase": "tcp",
        "path": NETWORK_TCP,
    }
    # re-probed once to rule out a lost packet; each attempt names its own source port
    assert [a.verdict for a in tcp.attempts] == [Verdict.BLOCKED, Verdict.BLOCKED]
    ports = {a.local_port for a in tcp.attempts}
    assert len(ports) == 2 and all(a.local_address == "127.0.0.1" for a in tcp.attempts)
    udp = by_id["drop-ntp"]
    assert udp.verdict is Verdict.BLOCKED and udp.assurance is Assurance.SIGNATURE, udp.reason
    assert udp.evidence["control"] == {"check_id": "ntp", "phase": "ntp", "path": NETWORK_UDP}
    plain = by_id["drop-plain"]  # a witness alone cannot tell a drop from a dead destination
    assert plain.verdict is Verdict.INCONCLUSIVE and plain.status is CheckStatus.UNPROVEN
    proxied_port = by_id["drop-443"]  # the proxy would have answered: a timeout is no deny of it
    assert proxied_port.verdict is Verdict.INCONCLUSIVE, proxied_port.reason


def test_a_proxied_handshake_never_witnesses_a_drop(netns: Netns, tmp_path: Any) -> None:
    netns.nft(RULES)

    def plan(control_port: int, _ntp_port: int) -> ProbePlan:
        return make_plan(
            make_check("proxied", "127.0.0.5", control_port, kind=CheckKind.TLS),
            make_check("drop-tcp", DROPPED, 8443, kind=CheckKind.TCP, expectation=DENY),
            make_check(
                "canary-server",
                DROPPED,
                22,
                kind=CheckKind.TCP,
                expectation=DENY,
                canary_server=True,
            ),
        )

    by_id = {r.check_id: r for r in probe_in(netns, plan, tmp_path).checks}
    record = by_id["drop-tcp"]
    assert by_id["proxied"].verdict is Verdict.REACHABLE
    assert record.verdict is Verdict.INCONCLUSIVE and record.status is CheckStatus.UNPROVEN
    assert "cannot be told from a destination that is down" in record.reason
    server = by_id["canary-server"]  # a declared canary server answers on every port
    assert server.verdict is Verdict.BLOCKED and server.assurance is Assurance.SIGNATURE
    assert server.assumption and "declared canary_server" in server.assumption


def test_the_generic_profile_counts_only_stated_evidence(netns: Netns, tmp_path: Any) -> None:
    netns.nft(RULES)

    def plan(control_port: int, _ntp_port: int) -> ProbePlan:
        return make_plan(
            make_check("network-tcp", "127.0.0.5", control_port, kind=CheckKind.TCP),
            make_check("drop-tcp", DROPPED, 8443, kind=CheckKind.TCP, expectation=DENY),
            make_check("reject", PROHIBITED, 443, kind=CheckKind.TLS, expectation=DENY),
        )

    run = probe_in(netns, plan, tmp_path, firewall_profile=FirewallProfile.GENERIC)
    by_id = {r.check_id: r for r in run.checks}
    assert by_id["drop-tcp"].verdict is Verdict.INCONCLUSIVE
    assert len(by_id["drop-tcp"].attempts) == 1  # retries=0 and nothing blocked to confirm
    reject = by_id["reject"]  # Linux reports admin-prohibited and host-unreachable alike
    assert reject.verdict is Verdict.BLOCKED and reject.assurance is Assurance.SIGNATURE
    assert reject.assumption and "administratively-prohibited" in reject.assumption
    assert reject.evidence["tcp"]["errno"] == errno.EHOSTUNREACH
    assert reject.evidence["tcp"]["errno_name"] == "EHOSTUNREACH"
