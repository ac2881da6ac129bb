"""Runner behaviour: asymmetric retries, the control rule, bounds, the deadline, host sources."""

from __future__ import annotations

import time

import pytest
from conftest import Lab, make_check, make_plan

from egress.probe.settings import api_server_host, location_from_env
from egress.probe_plan import CheckKind, Expectation, HostSource
from egress.results import Location, Verdict

from probe_peers import TcpPeer

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY


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
    assert [a.verdict for a in record.attempts] == [Verdict.BLOCKED, Verdict.REACHABLE]
    assert record.verdict is Verdict.REACHABLE and record.compliant is True


async def test_timeout_is_blocked_only_with_a_control_that_passed_that_phase(lab: Lab) -> None:
    deny = lab.check("hang", kind=CheckKind.TLS, expectation=DENY)
    alone = (await lab.run(make_plan(deny), phase_timeout=0.4)).checks[0]
    assert alone.verdict is Verdict.INCONCLUSIVE and alone.compliant is None
    assert "no control check passed tls" in alone.reason
    control = lab.check("good", id="control")
    run = await lab.run(make_plan(deny, control), phase_timeout=0.4)
    record = next(r for r in run.checks if r.check_id == "hang")
    assert record.verdict is Verdict.BLOCKED and record.compliant is True
    assert record.evidence["control"] == {"check_id": "control", "phase": "tls"}
    assert record.evidence["tls"]["outcome"] == "timeout"


async def test_explicit_control_check_is_the_only_witness(lab: Lab) -> None:
    deny = lab.check("hang", kind=CheckKind.TLS, expectation=DENY)
    good = lab.check("good")
    failing = make_check("closed", "closed.probe.test", lab.closed_port)
    run = await lab.run(make_plan(deny, good, failing), phase_timeout=0.4, control_check="closed")
    record = next(r for r in run.checks if r.check_id == "hang")
    assert record.verdict is Verdict.INCONCLUSIVE


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
    assert all(r.verdict is Verdict.INCONCLUSIVE for r in run.checks)

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
    }
    assert location_from_env(env) == Location(
        cluster="prod",
        node_pool="sys",
        node="aks-sys-0",
        pod="egress-probe-abc",
        namespace="egress",
    )
    assert location_from_env(env, cluster="c2", node_pool="p2").cluster == "c2"
    assert location_from_env({}) == Location()
