"""Issue 8's case matrix, probed from the pod through the lab firewall.

Each case is one probe run (the plan's checks plus the allowed endpoints a real plan has,
which the judge may use as witnesses). Two tests per case:

* ``test_case``: every check's verdict, assurance and status, the run status and what
  ``egress report`` says of the stored run, as issue 8's rules say they must be;
* ``test_no_pass_without_the_firewalls_word``: every ``pass`` agrees with the truth the
  firewall logged itself (squid's access log, the nft trace): an allow check that passes
  was let through, a deny check that passes was stopped.

Cases the current judge still gets wrong are marked ``xfail(strict=True)`` with the issue
item, so they turn red (XPASS) the moment the fix lands and the mark must go.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.compliance import Assurance, CheckStatus, RunStatus, Verdict
from egress.probe import DnspythonResolver, ProbeRun, ProbeSettings
from egress.probe_plan import (
    Check,
    CheckKind,
    FirewallProfile,
    HostSource,
    ProbePlan,
    TlsInspection,
)
from egress.results import CheckRecord, Location, RunReport
from egress.store import ResultStore

from firewall_lab import API_SERVER, Lab
from lab_logs import decisions
from lab_plans import ALLOW, DENY, DENY_HTTP, PROXIED_PORTS, WITNESSES, check

pytestmark = pytest.mark.netns


@dataclass(frozen=True)
class Expect:
    """What one check must come out as; sets where issue 8 leaves the judge a choice."""

    verdicts: frozenset[Verdict]
    statuses: frozenset[CheckStatus]
    assurance: Assurance | None = None

    @classmethod
    def of(
        cls,
        verdict: Verdict | tuple[Verdict, ...],
        status: CheckStatus | tuple[CheckStatus, ...],
        assurance: Assurance | None = None,
    ) -> Expect:
        verdicts = verdict if isinstance(verdict, tuple) else (verdict,)
        statuses = status if isinstance(status, tuple) else (status,)
        return cls(frozenset(verdicts), frozenset(statuses), assurance)


REACHABLE = Expect.of(Verdict.REACHABLE, CheckStatus.PASS)
STATED_BLOCK = Expect.of(Verdict.BLOCKED, CheckStatus.PASS, Assurance.STATED)
SIGNATURE_BLOCK = Expect.of(Verdict.BLOCKED, CheckStatus.PASS, Assurance.SIGNATURE)
UNPROVEN = Expect.of(Verdict.INCONCLUSIVE, CheckStatus.UNPROVEN)
# The firewall let it through and the far end failed: never blocked, never a pass.
FAR_END_DENY = Expect.of(
    (Verdict.INCONCLUSIVE, Verdict.UNHEALTHY), (CheckStatus.UNPROVEN, CheckStatus.LEAK)
)
# An allowed endpoint whose destination failed: the path works, the firewall is not to blame.
FAR_END_ALLOW = Expect.of(
    (Verdict.INCONCLUSIVE, Verdict.UNHEALTHY), (CheckStatus.UNPROVEN, CheckStatus.PASS)
)
WITNESS_EXPECT = {c.id: REACHABLE for c in WITNESSES}


@dataclass(frozen=True)
class Case:
    name: str
    checks: tuple[Check, ...]
    expect: dict[str, Expect]
    run: frozenset[RunStatus]
    gap: str | None = None  # why today's main misses `expect`/`run`: the xfail reason
    false_pass: str | None = None  # why today's main passes a check the truth contradicts
    api_server: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    profile: FirewallProfile = FirewallProfile.AZURE_FIREWALL

    @property
    def plan(self) -> ProbePlan:
        return ProbePlan(
            cloud="AzureCloud",
            region="eastus",
            generated_by="tests/lab",
            firewall_profile=self.profile,
            checks=self.checks,
        )


def case(
    name: str,
    *checks: Check,
    expect: dict[str, Expect],
    run: RunStatus | tuple[RunStatus, ...],
    witnesses: bool = True,
    deny_http: bool = True,
    **extra: Any,
) -> Case:
    support = (WITNESSES if witnesses else ()) + ((DENY_HTTP,) if deny_http else ())
    expected = {**(WITNESS_EXPECT if witnesses else {}), **expect}
    if deny_http:
        expected.setdefault(DENY_HTTP.id, STATED_BLOCK)
    runs = run if isinstance(run, tuple) else (run,)
    return Case(name, support + checks, expected, frozenset(runs), **extra)


CASES = (
    case(
        "allowed-and-healthy",
        check("allow-http", "web.lab.test", 80, CheckKind.HTTP),
        expect={"allow-http": REACHABLE},
        run=RunStatus.COMPLIANT,
    ),
    case(
        "app-rule-deny",
        check("deny-https", "unlisted.lab.test", 443, CheckKind.HTTPS, DENY),
        expect={"deny-https": SIGNATURE_BLOCK},
        run=RunStatus.COMPLIANT,
    ),
    case(
        "network-rule-drop",
        check("deny-net-canary", "canary.lab.test", 9000, CheckKind.TCP, DENY, canary_server=True),
        check("deny-net-plain", "healthy.lab.test", 9000, CheckKind.TCP, DENY),
        # A timeout on a network-rule port proves a block only to a declared canary server.
        expect={"deny-net-canary": SIGNATURE_BLOCK, "deny-net-plain": UNPROVEN},
        run=RunStatus.COMPLIANT,
    ),
    case(
        "destination-refuses",
        check("deny-refuses-443", "refuses.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-refuses-8443", "refuses.lab.test", 8443, CheckKind.TLS, DENY),
        check("allow-refuses-443", "refuses.lab.test", 443, CheckKind.HTTPS),
        expect={
            "deny-refuses-443": FAR_END_DENY,
            "deny-refuses-8443": FAR_END_DENY,
            "allow-refuses-443": FAR_END_ALLOW,
        },
        run=(RunStatus.NOT_PROVEN, RunStatus.NON_COMPLIANT),
    ),
    case(
        "destination-blackholes",
        check("deny-blackhole-443", "blackhole.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-blackhole-8443", "blackhole.lab.test", 8443, CheckKind.TLS, DENY),
        check("allow-blackhole-443", "blackhole.lab.test", 443, CheckKind.HTTPS),
        expect={
            "deny-blackhole-443": FAR_END_DENY,
            "deny-blackhole-8443": FAR_END_DENY,
            "allow-blackhole-443": FAR_END_ALLOW,
        },
        run=(RunStatus.NOT_PROVEN, RunStatus.NON_COMPLIANT),
    ),
    case(
        "destination-down",
        check("deny-down-443", "down.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-down-8443", "down.lab.test", 8443, CheckKind.TLS, DENY),
        check("allow-down-443", "down.lab.test", 443, CheckKind.HTTPS),
        expect={
            "deny-down-443": FAR_END_DENY,
            "deny-down-8443": FAR_END_DENY,
            "allow-down-443": FAR_END_ALLOW,
        },
        run=(RunStatus.NOT_PROVEN, RunStatus.NON_COMPLIANT),
    ),
    case(
        "nxdomain",
        check("deny-nx", "nx-deny.lab.test", 443, CheckKind.HTTPS, DENY),
        check("allow-nx", "nx-allow.lab.test", 443, CheckKind.HTTPS),
        expect={"deny-nx": UNPROVEN, "allow-nx": UNPROVEN},
        run=RunStatus.NOT_PROVEN,
    ),
    case(
        "outside-resolver",
        check("deny-dns-open", "198.19.53.1", 53, CheckKind.DNS, DENY),
        check("deny-dns-closed", "198.19.53.2", 53, CheckKind.DNS, DENY, canary_server=True),
        expect={
            "deny-dns-open": Expect.of(Verdict.REACHABLE, CheckStatus.LEAK),
            "deny-dns-closed": SIGNATURE_BLOCK,
        },
        run=RunStatus.NON_COMPLIANT,
    ),
    case(
        "tls-inspection",
        check("allow-inspected", "inspected.lab.test", 443, CheckKind.HTTPS),
        check(
            "allow-api-server",
            "api.invalid",
            443,
            CheckKind.HTTPS,
            host_source=HostSource.API_SERVER,
            tls_inspection=TlsInspection.FORBIDDEN,
            destination="*.hcp.eastus.azmk8s.io",
        ),
        expect={
            "allow-inspected": REACHABLE,
            "allow-api-server": Expect.of(Verdict.REACHABLE, CheckStatus.FAIL),
        },
        run=RunStatus.NON_COMPLIANT,
        api_server=API_SERVER,  # resolved locally, never contacted
        evidence={"inspecting_issuer": "Lab Inspecting Firewall CA"},
    ),
    case(
        "tcp-only-443",
        check("allow-tcp-443", "healthy.lab.test", 443, CheckKind.TCP),
        check("deny-tcp-443", "unlisted.lab.test", 443, CheckKind.TCP, DENY),
        # The proxy completes every handshake on 443 itself: neither way is proven.
        expect={"allow-tcp-443": UNPROVEN, "deny-tcp-443": UNPROVEN},
        run=RunStatus.NOT_PROVEN,
    ),
    case(
        "allowed-fqdn-on-a-wrong-port",
        check("deny-wrong-http", "healthy.lab.test", 80, CheckKind.HTTP, DENY),
        check("deny-wrong-net", "healthy.lab.test", 8080, CheckKind.TCP, DENY),
        check(
            "deny-wrong-canary", "canary.lab.test", 8080, CheckKind.TCP, DENY, canary_server=True
        ),
        expect={
            "deny-wrong-http": STATED_BLOCK,
            "deny-wrong-net": UNPROVEN,
            "deny-wrong-canary": SIGNATURE_BLOCK,
        },
        run=RunStatus.COMPLIANT,
    ),
    case(
        "leak",
        check("deny-leaky-https", "leaky.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-leaky-http", "leaky.lab.test", 80, CheckKind.HTTP, DENY),
        expect={
            "deny-leaky-https": Expect.of(Verdict.REACHABLE, CheckStatus.LEAK),
            "deny-leaky-http": Expect.of(Verdict.REACHABLE, CheckStatus.LEAK),
        },
        run=RunStatus.NON_COMPLIANT,
    ),
    case(
        # The generic profile assumes nothing of the firewall: only what it states counts.
        "generic-profile",
        check("deny-https", "unlisted.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-net-canary", "canary.lab.test", 9000, CheckKind.TCP, DENY, canary_server=True),
        expect={"deny-https": UNPROVEN, "deny-net-canary": UNPROVEN},
        run=RunStatus.COMPLIANT,  # the 470 deny is stated
        profile=FirewallProfile.GENERIC,
    ),
    case(
        "every-canary-inconclusive",
        check("deny-nx", "nx-deny.lab.test", 443, CheckKind.HTTPS, DENY),
        check("deny-tcp-443", "unlisted.lab.test", 443, CheckKind.TCP, DENY),
        expect={"deny-nx": UNPROVEN, "deny-tcp-443": UNPROVEN},
        run=RunStatus.NOT_PROVEN,  # "nothing was shown to be blocked"
        deny_http=False,
    ),
)


@dataclass(frozen=True)
class Outcome:
    run: RunReport
    report_exit: int
    report_status: str
    began: float
    ended: float

    def record(self, check_id: str) -> CheckRecord:
        return next(r for r in self.run.checks if r.check_id == check_id)


Outcomes = Callable[[Case], Outcome]


@pytest.fixture(scope="module")
def outcomes(firewall_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    """Each case probed once, stored and reported; both tests of a case share the outcome."""
    cache: dict[str, Outcome] = {}

    def outcome(spec: Case) -> Outcome:
        if spec.name not in cache:
            cache[spec.name] = _probe(firewall_lab, spec, tmp_path_factory.mktemp(spec.name))
        return cache[spec.name]

    return outcome


def _probe(lab: Lab, spec: Case, tmp: Path) -> Outcome:
    settings = ProbeSettings(
        trust_store=lab.trust_store, phase_timeout=0.6, retries=1, retry_delay=0.05, deadline=20
    )

    async def run() -> RunReport:
        probe = ProbeRun(
            plan=spec.plan,
            settings=settings,
            resolver=DnspythonResolver(*lab.resolver),
            location=Location(cluster="lab", node_pool="pool"),
            api_server=spec.api_server,
        )
        return await probe.execute()

    began = time.time()
    report = lab.in_pod(run)
    time.sleep(0.3)  # squid writes a tunnel's line when it closes
    ended = time.time()
    store = tmp / "results.db"
    with ResultStore(store) as results:
        results.append_run(report)
    now = report.finished_at.isoformat()
    argv = ["report", "--store", str(store), "--format", "json", "--now", now, "--days", "1"]
    cli = CliRunner().invoke(app, argv)
    document = json.loads(cli.stdout)
    status = str(document["status"])
    return Outcome(report, cli.exit_code, status, began, ended)


def _params(attribute: str) -> list[Any]:
    params = []
    for spec in CASES:
        reason = getattr(spec, attribute)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(spec, id=spec.name, marks=marks))
    return params


@pytest.mark.parametrize("spec", _params("gap"))
def test_case(spec: Case, outcomes: Outcomes) -> None:
    outcome = outcomes(spec)
    problems = []
    for check_id, want in spec.expect.items():
        got = outcome.record(check_id)
        if got.verdict not in want.verdicts or got.status not in want.statuses:
            problems.append(f"{check_id}: {got.verdict}/{got.status} ({got.reason})")
        if got.verdict is Verdict.BLOCKED and got.assurance is not want.assurance:
            problems.append(f"{check_id}: assurance {got.assurance}, want {want.assurance}")
        if got.assurance is Assurance.SIGNATURE and not got.assumption:
            problems.append(f"{check_id}: a signature verdict that names no assumption")
    assert not problems, problems
    run_status = outcome.run.status()
    assert run_status in spec.run, run_status
    assert outcome.report_status == run_status.value
    assert outcome.report_exit == (0 if run_status is RunStatus.COMPLIANT else 1)
    if issuer := spec.evidence.get("inspecting_issuer"):
        for check_id in ("allow-inspected", "allow-api-server"):
            tls = outcome.record(check_id).evidence["tls"]
            assert tls["inspection"] is True and issuer in tls["certificate"]["issuer"]


@pytest.mark.parametrize("spec", _params("false_pass"))
def test_no_pass_without_the_firewalls_word(
    spec: Case, outcomes: Outcomes, firewall_lab: Lab
) -> None:
    """Issue 8's "Done when": no check is `pass` unless the firewall's own log agrees."""
    outcome = outcomes(spec)
    passed = [r for r in outcome.run.checks if r.status is CheckStatus.PASS]
    deadline = time.monotonic() + 3
    while True:  # squid logs a tunnel when it closes: give late lines a moment
        logged = decisions(firewall_lab, outcome.began, outcome.ended)
        let_through = {r.check_id: _firewall_let_through(r, logged) for r in passed}
        if None not in let_through.values() or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    unsupported = [
        f"{r.check_id}: pass, but the firewall let it through: {let_through[r.check_id]}"
        for r in passed
        if (let_through[r.check_id] is not (r.expectation is ALLOW))
    ]
    assert not unsupported, unsupported


def _firewall_let_through(record: CheckRecord, logged: list[Any]) -> bool | None:
    """True/False from the firewall's own log for this check's flow; None if it decided nothing."""
    dns_phase = record.evidence.get("dns", {})
    address = dns_phase.get("address") if dns_phase else record.host
    if address is None:
        return None  # the name never resolved: nothing reached the firewall's rules
    proxied = record.transport == "tcp" and record.port in PROXIED_PORTS
    # Attempts record their source port: only the check's own flows count (a record from a
    # probe that names no port falls back to every flow to the same destination and name).
    ports = {port for a in record.attempts if (port := getattr(a, "local_port", None))}
    own_flows = [d for d in logged if d.source_port in ports] if ports else logged
    actions = set()
    for decision in own_flows:
        if (decision.destination_ip, decision.destination_port) != (address, record.port):
            continue
        if proxied != (decision.source == "application-rule"):
            continue
        if proxied and decision.target != record.host:
            continue
        actions.add(decision.action)
    if "allow" in actions:
        return True
    return False if "deny" in actions else None
