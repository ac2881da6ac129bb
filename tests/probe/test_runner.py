"""Runner behaviour: asymmetric retries, the control rule, bounds, the deadline, host sources."""

from __future__ import annotations

import time

import pytest
from conftest import Lab, make_check, make_plan

from egress.compliance import Assurance, CheckStatus
from egress.probe.judge import NETWORK_UDP
from egress.probe.settings import api_server_host, location_from_env
from egress.probe_plan import CheckKind, Expectation, FirewallProfile, HostSource
from egress.results import Location, Verdict

from probe_peers import TcpPeer

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY
GENERIC = FirewallProfile.GENERIC


def dedicated_peer(lab: Lab, address: str, names: list[str], **options: object) -> TcpPeer:
    """A fresh peer on its own address, with DNS names pointing at it."""
    peer: TcpPeer = lab.loop.call(TcpPeer(address, **options).start(lab.loop.resources))  # type: ignore[arg-type]
    for name in names:
        lab.dns.zone.records[f"{name}."] = [address]
    return peer


async def test_allow_failures_are_retried_and_every_attempt_is_kept(lab: Lab) -> None:
    check = make_check("closed", "closed.probe.test", lab.closed_port)
    record = (await lab.run(make_plan(check), retries=2)).checks[0]
    assert len(record.attempts) == 3
    assert [a.verdict for a in record.attempts] == [Verdict.INCONCLUSIVE] * 3
    assert record.evidence["attempts"] == 3
    starts = [a.started_at for a in record.attempts]
    assert starts == sorted(starts)


async def test_expected_results_are_not_retried(lab: Lab) -> None:
    deny = lab.check("deny470", kind=CheckKind.HTTP, expectation=DENY)
    allow = lab.check("good")
    run = await lab.run(make_plan(deny, allow), retries=2)
    assert [len(r.attempts) for r in run.checks] == [1, 1]


async def test_reprobe_until_observed_matches_expected(lab: Lab) -> None:
    context = lab.extra["ca"]
    import ssl

    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.issue_cert("flaky.probe.test").configure_cert(server)
    peer = dedicated_peer(
        lab,
        "127.10.1.1",
        ["flaky.probe.test"],
        behaviour=lambda n: "cut" if n == 1 else "serve",
        tls=server,
    )
    check = make_check("flaky", "flaky.probe.test", peer.port)
    record = (await lab.run(make_plan(check), retries=2)).checks[0]
    assert len(record.attempts) == 2
    assert record.attempts[0].phases[-1].detail["outcome"] == "cut-after-client-hello"
    assert record.attempts[-1].verdict is Verdict.REACHABLE
    assert record.verdict is Verdict.REACHABLE and record.status is CheckStatus.PASS


async def test_tls_stall_after_the_proxy_took_the_hello_is_never_blocked(lab: Lab) -> None:
    deny = lab.check("hang", kind=CheckKind.TLS, expectation=DENY)
    control = lab.check("good", id="control")
    run = await lab.run(make_plan(deny, control), phase_timeout=0.4)
    record = next(r for r in run.checks if r.check_id == "hang")
    assert record.evidence["tls"]["outcome"] == "timeout"
    assert record.evidence["tls"]["hello_to_end_ms"] >= 400
    # the proxy took the ClientHello and did not cut it: it let the connection through
    assert record.verdict is Verdict.UNHEALTHY and record.status is CheckStatus.LEAK
    assert (
        record.assurance is None and record.assumption and "never by stalling" in record.assumption
    )
    generic = await lab.run(make_plan(deny, control), phase_timeout=0.4, firewall_profile=GENERIC)
    record = next(r for r in generic.checks if r.check_id == "hang")
    assert record.verdict is Verdict.INCONCLUSIVE and record.status is CheckStatus.UNPROVEN
    assert record.evidence["profile"] == "generic"


async def test_a_deny_blocked_on_a_timeout_is_re_probed_once(lab: Lab) -> None:
    witness = make_check("ntp", "ntp.probe.test", lab.ntp_port, kind=CheckKind.NTP)
    silent = make_check(
        "silent",
        "ntp-silent.probe.test",
        lab.udp_silent_port,
        kind=CheckKind.NTP,
        expectation=DENY,
        canary_server=True,
    )
    run = await lab.run(make_plan(witness, silent), phase_timeout=0.3, retries=0)
    record = next(r for r in run.checks if r.check_id == "silent")
    assert [a.verdict for a in record.attempts] == [Verdict.BLOCKED, Verdict.BLOCKED]
    assert record.verdict is Verdict.BLOCKED and record.assurance is Assurance.SIGNATURE
    assert record.status is CheckStatus.PASS
    assert record.evidence["control"] == {"check_id": "ntp", "phase": "ntp", "path": NETWORK_UDP}
    assert record.evidence["attempts"] == 2


async def test_a_timeout_that_was_a_transient_loss_is_a_leak(lab: Lab) -> None:
    from probe_peers import NtpPeer, start_udp

    port = lab.loop.call(start_udp("127.12.0.9", NtpPeer(silent_first=1), lab.loop.resources))
    lab.dns.zone.records["lossy.probe.test."] = ["127.12.0.9"]
    witness = make_check("ntp", "ntp.probe.test", lab.ntp_port, kind=CheckKind.NTP)
    lossy = make_check(
        "lossy", "lossy.probe.test", port, kind=CheckKind.NTP, expectation=DENY, canary_server=True
    )
    run = await lab.run(make_plan(witness, lossy), phase_timeout=0.3, retries=0)
    record = next(r for r in run.checks if r.check_id == "lossy")
    assert [a.verdict for a in record.attempts] == [Verdict.BLOCKED, Verdict.REACHABLE]
    assert record.verdict is Verdict.REACHABLE and record.status is CheckStatus.LEAK


async def test_a_timeout_to_a_destination_not_known_to_answer_is_never_blocked(lab: Lab) -> None:
    silent = make_check(
        "silent", "ntp-silent.probe.test", lab.udp_silent_port, kind=CheckKind.NTP, expectation=DENY
    )
    witness = make_check("ntp", "ntp.probe.test", lab.ntp_port, kind=CheckKind.NTP)
    run = await lab.run(make_plan(silent, witness, lab.check("good")), phase_timeout=0.3, retries=2)
    record = next(r for r in run.checks if r.check_id == "silent")
    # the witness shows network rules pass UDP from here, not that this destination answers
    assert record.verdict is Verdict.INCONCLUSIVE, record.reason
    assert "cannot be told from a destination that is down" in record.reason
    assert len(record.attempts) == 3  # not blocked: retried like any other mismatch


async def test_explicit_control_check_is_the_only_witness(lab: Lab) -> None:
    witness = make_check("ntp", "ntp.probe.test", lab.ntp_port, kind=CheckKind.NTP)
    silent = make_check(
        "silent", "ntp-silent.probe.test", lab.udp_silent_port, kind=CheckKind.NTP, expectation=DENY
    )
    run = await lab.run(
        make_plan(witness, silent, lab.check("good")), phase_timeout=0.3, control_check="good"
    )
    record = next(r for r in run.checks if r.check_id == "silent")
    assert record.verdict is Verdict.INCONCLUSIVE


async def test_a_cut_is_read_against_the_time_a_spliced_handshake_took(lab: Lab) -> None:
    context = lab.extra["ca"]
    import ssl

    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.issue_cert("far.probe.test").configure_cert(server)
    far = dedicated_peer(
        lab, "127.10.4.1", ["far.probe.test"], behaviour=lambda n: "serve", tls=server, delay=0.3
    )
    slow_cut = dedicated_peer(
        lab, "127.10.4.2", ["slowcut.probe.test"], behaviour=lambda n: "cut", delay=0.3
    )
    allowed = make_check("far", "far.probe.test", far.port)
    fast = lab.check("cut", expectation=DENY)
    run = await lab.run(make_plan(allowed, fast), phase_timeout=2.0)
    by_id = {r.check_id: r for r in run.checks}
    assert by_id["far"].verdict is Verdict.REACHABLE
    record = by_id["cut"]
    timing = record.evidence["timing"]
    assert timing["decided_by"] == "firewall" and timing["spliced_by"] == "far"
    # The peer's 300 ms start at accept, a little before the client's clock starts at its
    # ClientHello: the spliced handshake reads just under 300 ms on a loaded machine.
    assert timing["spliced_hello_ms"] >= 250
    assert timing["hello_to_cut_ms"] * 3 < 300
    assert record.verdict is Verdict.BLOCKED and record.assurance is Assurance.SIGNATURE
    assert record.assumption and "came from the firewall's proxy itself" in record.assumption
    # a cut as late as a round trip to the far end may be a destination refusing behind the proxy
    late = make_check("slowcut", "slowcut.probe.test", slow_cut.port, expectation=DENY)
    run = await lab.run(make_plan(lab.check("good"), late), phase_timeout=2.0)
    record = next(r for r in run.checks if r.check_id == "slowcut")
    assert record.evidence["timing"]["decided_by"] == "far-end"
    assert record.verdict is Verdict.INCONCLUSIVE and record.status is CheckStatus.UNPROVEN


async def test_every_attempt_records_its_source_address_and_port(lab: Lab) -> None:
    from probe_peers import NtpPeer, start_udp

    ntp_peer = NtpPeer()
    port = lab.loop.call(start_udp("127.12.0.10", ntp_peer, lab.loop.resources))
    lab.dns.zone.records["ntp-src.probe.test."] = ["127.12.0.10"]
    peer = lab.peers["good"]
    before = len(peer.remotes)
    closed = make_check("closed", "closed.probe.test", lab.closed_port, kind=CheckKind.TCP)
    plan = make_plan(
        lab.check("good"),
        make_check("ntp-src", "ntp-src.probe.test", port, kind=CheckKind.NTP),
        closed,
    )
    run = await lab.run(plan, retries=1)
    by_id = {r.check_id: r for r in run.checks}
    (https,) = by_id["good"].attempts
    assert (https.local_address, https.local_port) == peer.remotes[before]  # what the far end saw
    assert by_id["good"].evidence["tcp"]["local_port"] == https.local_port
    (ntp,) = by_id["ntp-src"].attempts
    assert (ntp.local_address, ntp.local_port) == ntp_peer.sources[-1]
    refused = by_id["closed"].attempts  # refused (unhealthy) counts as the path working: no retry
    assert all(a.local_port for a in refused) and refused[0].local_address == "127.0.0.1"


async def test_checks_run_concurrently_up_to_the_global_bound(lab: Lab) -> None:
    names = [f"slow{i}.probe.test" for i in range(12)]
    peer = dedicated_peer(lab, "127.10.2.1", names, behaviour=lambda n: "hang")
    plan = make_plan(
        *(
            make_check(f"slow{i}", name, peer.port, kind=CheckKind.TLS)
            for i, name in enumerate(names)
        )
    )
    run = await lab.run(plan, phase_timeout=1.0, concurrency=32)
    assert peer.max_open == 12  # all twelve held a connection at the same time
    assert all(r.verdict is Verdict.UNHEALTHY for r in run.checks)  # spliced, then stalled

    bounded = dedicated_peer(
        lab, "127.10.2.2", [f"b{i}.probe.test" for i in range(6)], behaviour=lambda n: "hang"
    )
    plan = make_plan(
        *(
            make_check(f"b{i}", f"b{i}.probe.test", bounded.port, kind=CheckKind.TLS)
            for i in range(6)
        )
    )
    await lab.run(plan, phase_timeout=0.3, concurrency=2)
    assert bounded.max_open == 2 and bounded.connections == 6


async def test_per_destination_bound(lab: Lab) -> None:
    peer = dedicated_peer(lab, "127.10.2.3", ["same.probe.test"], behaviour=lambda n: "hang")
    plan = make_plan(
        *(make_check(f"s{i}", "same.probe.test", peer.port, kind=CheckKind.TLS) for i in range(5))
    )
    await lab.run(plan, phase_timeout=0.3, per_destination=2)
    assert peer.max_open == 2 and peer.connections == 5


async def test_deadline_ends_unfinished_checks_as_inconclusive(lab: Lab) -> None:
    slow = lab.check("hang", kind=CheckKind.TLS)
    fast = lab.check("good")
    began = time.monotonic()
    run = await lab.run(make_plan(slow, fast), phase_timeout=10.0, deadline=1.0)
    elapsed = time.monotonic() - began
    by_id = {r.check_id: r for r in run.checks}
    assert by_id["hang"].verdict is Verdict.INCONCLUSIVE
    assert by_id["hang"].reason.startswith("deadline:")
    assert by_id["good"].verdict is Verdict.REACHABLE
    assert elapsed < 9.0  # far below the 10 s phase timeout: the deadline cut it


async def test_api_server_host_source(lab: Lab) -> None:
    check = make_check(
        "api", "placeholder.hcp.example", lab.port("good"), host_source=HostSource.API_SERVER
    )
    unknown = (await lab.run(make_plan(check))).checks[0]
    assert unknown.verdict is Verdict.INCONCLUSIVE
    assert "API server host is unknown" in unknown.reason
    known = (await lab.run(make_plan(check), api_server="good.probe.test")).checks[0]
    assert known.verdict is Verdict.REACHABLE
    assert known.host == "good.probe.test"


@pytest.mark.parametrize(  # host names are data only, never contacted
    ("env", "option", "expected"),
    [
        ({"KUBERNETES_SERVICE_HOST": "a.hcp.eastus.azmk8s.io"}, "x.test", "a.hcp.eastus.azmk8s.io"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "api.test", "api.test"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1"}, None, None),
        ({}, None, None),
    ],
)  # fmt: skip
def test_api_server_host_rule(
    env: dict[str, str], option: str | None, expected: str | None
) -> None:
    assert api_server_host(env, option) == expected


def test_location_from_downward_api_env_and_flags() -> None:
    env = {
        "EGRESS_NODE_NAME": "aks-sys-0",
        "EGRESS_POD_NAME": "egress-probe-abc",
        "EGRESS_POD_NAMESPACE": "egress",
        "EGRESS_NODE_POOL": "sys",
        "EGRESS_CLUSTER": "prod",
        "EGRESS_NODE_IP": "10.224.0.4",
        "EGRESS_POD_IP": "10.244.1.7",
    }
    assert location_from_env(env) == Location(
        cluster="prod",
        node_pool="sys",
        node="aks-sys-0",
        pod="egress-probe-abc",
        namespace="egress",
        node_ip="10.224.0.4",
        pod_ip="10.244.1.7",
    )
    assert location_from_env(env, cluster="c2", node_pool="p2").cluster == "c2"
    assert location_from_env({}) == Location()
