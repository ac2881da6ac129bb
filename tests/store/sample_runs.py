"""Deterministic RunReports for store and report tests (hosts are data only, never contacted)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from egress.probe_plan import CheckKind, Expectation
from egress.results import (
    Assurance,
    Attempt,
    CheckRecord,
    CheckStatus,
    Location,
    Phase,
    RunReport,
    Verdict,
)

BASE = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Endpoint:
    check_id: str
    host: str
    port: int
    transport: str
    kind: CheckKind
    expectation: Expectation
    rule: str
    feature: str
    required: bool


# Names below are data for the store; no test resolves or contacts them.
ENDPOINTS = (
    Endpoint(
        "mcr-443",
        "mcr.microsoft.com",
        443,
        "tcp",
        CheckKind.HTTPS,
        Expectation.ALLOW,
        "aks/required/mcr",
        "required",
        True,
    ),
    Endpoint(
        "api-443",
        "aks-prod-dns.hcp.eastus.azmk8s.io",
        443,
        "tcp",
        CheckKind.TLS,
        Expectation.ALLOW,
        "aks/required/apiserver",
        "required",
        True,
    ),
    Endpoint(
        "ntp-123",
        "ntp.ubuntu.com",
        123,
        "udp",
        CheckKind.NTP,
        Expectation.ALLOW,
        "aks/required/ntp",
        "required",
        False,
    ),
    Endpoint(
        "nvidia-443",
        "nvidia.github.io",
        443,
        "tcp",
        CheckKind.HTTPS,
        Expectation.ALLOW,
        "aks/gpu/nvidia",
        "gpu",
        False,
    ),
    Endpoint(
        "canary-bing-443",
        "www.bing.com",
        443,
        "tcp",
        CheckKind.HTTPS,
        Expectation.DENY,
        "canary/bing",
        "canary",
        False,
    ),
)

# What each verdict means for each expectation (written out by hand, not by the rule), and a
# reason a person can read. Every block here is an HTTP 470 deny: the firewall stated it.
_OUTCOMES: dict[tuple[Expectation, Verdict], tuple[CheckStatus, str]] = {
    (Expectation.ALLOW, Verdict.REACHABLE): (CheckStatus.PASS, "answered through the firewall"),
    (Expectation.ALLOW, Verdict.BLOCKED): (CheckStatus.FAIL, "Azure Firewall denied it (HTTP 470)"),
    (Expectation.ALLOW, Verdict.INCONCLUSIVE): (
        CheckStatus.UNPROVEN,
        "no NTP answer and no proof of a block",
    ),
    (Expectation.DENY, Verdict.BLOCKED): (CheckStatus.PASS, "Azure Firewall denied it (HTTP 470)"),
    (Expectation.DENY, Verdict.REACHABLE): (
        CheckStatus.LEAK,
        "the canary answered: traffic leaked",
    ),
    (Expectation.DENY, Verdict.INCONCLUSIVE): (CheckStatus.UNPROVEN, "NXDOMAIN proves nothing"),
}


def make_check(
    endpoint: Endpoint,
    verdict: Verdict,
    *,
    run_id: str,
    started: datetime,
    location: Location,
    region: str = "eastus",
) -> CheckRecord:
    check_status, reason = _OUTCOMES[(endpoint.expectation, verdict)]
    status = 470 if verdict is Verdict.BLOCKED else 200
    evidence: dict[str, Any] = {
        "resolver": "127.0.0.53:53",  # data only, never contacted
        "answers": ["127.0.0.20"],
        "status": status if endpoint.kind is CheckKind.HTTPS else None,
    }
    phases = (
        Phase(name="dns", ok=True, duration_ms=2.5, detail={"rcode": "NOERROR"}),
        Phase(name="tcp", ok=True, duration_ms=11.0),
        Phase(
            name="http",
            ok=verdict is Verdict.REACHABLE,
            duration_ms=40.0,
            detail={"status": status},
        ),
    )
    return CheckRecord(
        run_id=run_id,
        plan_hash="0" * 64,
        tool_version="0.1.0",
        cloud="AzureCloud",
        region=region,
        location=location,
        check_id=endpoint.check_id,
        host=endpoint.host,
        port=endpoint.port,
        transport="udp" if endpoint.transport == "udp" else "tcp",
        kind=endpoint.kind,
        expectation=endpoint.expectation,
        destination=endpoint.host,
        rule=endpoint.rule,
        feature=endpoint.feature,
        required=endpoint.required,
        verdict=verdict,
        status=check_status,
        assurance=Assurance.STATED if verdict is Verdict.BLOCKED else None,
        reason=reason,
        evidence=evidence,
        attempts=(Attempt(started_at=started, verdict=verdict, reason=reason, phases=phases),),
        started_at=started,
        finished_at=started + timedelta(milliseconds=60),
    )


def make_run(
    run_id: str,
    started: datetime,
    *,
    node_pool: str = "system",
    cluster: str = "aks-prod",
    region: str = "eastus",
    overrides: dict[str, Verdict] | None = None,
    endpoints: tuple[Endpoint, ...] = ENDPOINTS,
) -> RunReport:
    """A run where every check behaves as the policy says, except the `overrides`."""
    location = Location(
        cluster=cluster,
        node_pool=node_pool,
        node=f"aks-{node_pool}-0",
        pod=f"egress-probe-{run_id}",
        namespace="egress-probe",
    )
    checks = []
    for index, endpoint in enumerate(endpoints):
        default = (
            Verdict.REACHABLE if endpoint.expectation is Expectation.ALLOW else Verdict.BLOCKED
        )
        verdict = (overrides or {}).get(endpoint.check_id, default)
        moment = started + timedelta(seconds=index)
        checks.append(
            make_check(
                endpoint, verdict, run_id=run_id, started=moment, location=location, region=region
            )
        )
    return RunReport(
        run_id=run_id,
        plan_hash="0" * 64,
        tool_version="0.1.0",
        cloud="AzureCloud",
        region=region,
        location=location,
        started_at=started,
        finished_at=started + timedelta(seconds=len(endpoints) + 1),
        checks=tuple(checks),
    )


def fixed_history() -> list[RunReport]:
    """Six hourly runs on two pools: a flapping required endpoint, a leak, an optional failure.

    system pool: mcr-443 is blocked in runs 2 and 4 (failed required, flapping).
    gpu pool: ntp is inconclusive throughout, nvidia-443 is always blocked (optional), and
    the bing canary becomes reachable in the last run (a leak, and drift).
    """
    runs = []
    for hour in range(6):
        system_overrides = {"mcr-443": Verdict.BLOCKED} if hour in (2, 4) else {}
        runs.append(
            make_run(
                f"sys-{hour}",
                BASE + timedelta(hours=hour, minutes=5),
                overrides=system_overrides,
            )
        )
        gpu_overrides = {"ntp-123": Verdict.INCONCLUSIVE, "nvidia-443": Verdict.BLOCKED}
        if hour == 5:
            gpu_overrides["canary-bing-443"] = Verdict.REACHABLE
        runs.append(
            make_run(
                f"gpu-{hour}",
                BASE + timedelta(hours=hour, minutes=35),
                node_pool="gpu",
                overrides=gpu_overrides,
            )
        )
    return runs


def fleet_history() -> list[RunReport]:
    """Three clusters in three regions, hourly runs from BASE for six hours, with two plants.

    aks-east (eastus): system and gpu pools, clean throughout.
    aks-west (westus): system clean; the user pool's bing canary is reachable in its last run
    (the planted leak).
    aks-north (northeurope): system clean; the batch pool ran at 00:50 and 01:50 only and then
    stopped reporting (the planted coverage gap), and the spot pool was last probed three days
    before (a pool not probed in a one-day window).
    """
    runs = []
    for hour in range(6):
        at = BASE + timedelta(hours=hour)
        runs += [
            make_run(f"east-sys-{hour}", at + timedelta(minutes=5), cluster="aks-east"),
            make_run(
                f"east-gpu-{hour}",
                at + timedelta(minutes=10),
                cluster="aks-east",
                node_pool="gpu",
            ),
            make_run(
                f"west-sys-{hour}",
                at + timedelta(minutes=20),
                cluster="aks-west",
                region="westus",
            ),
            make_run(
                f"west-user-{hour}",
                at + timedelta(minutes=25),
                cluster="aks-west",
                region="westus",
                node_pool="user",
                overrides={"canary-bing-443": Verdict.REACHABLE} if hour == 5 else {},
            ),
            make_run(
                f"north-sys-{hour}",
                at + timedelta(minutes=40),
                cluster="aks-north",
                region="northeurope",
            ),
        ]
        if hour < 2:
            runs.append(
                make_run(
                    f"north-batch-{hour}",
                    at + timedelta(minutes=50),
                    cluster="aks-north",
                    region="northeurope",
                    node_pool="batch",
                )
            )
    runs.append(
        make_run(
            "north-spot-old",
            BASE - timedelta(days=3),
            cluster="aks-north",
            region="northeurope",
            node_pool="spot",
        )
    )
    return runs


def clean_history() -> list[RunReport]:
    """Three hourly runs on one pool where everything behaves as the policy says."""
    return [make_run(f"ok-{h}", BASE + timedelta(hours=h, minutes=5)) for h in range(3)]


def append_runs_worker(path: str, prefix: str, count: int) -> None:
    """A separate process appending `count` distinct runs (concurrent writer test)."""
    from egress.store import ResultStore

    with ResultStore(Path(path)) as store:
        for n in range(count):
            run = make_run(f"{prefix}-{n}", BASE + timedelta(minutes=n), node_pool=prefix)
            assert store.append_run(run)


def stalled_writer_worker(path: str, ready: Any) -> None:
    """Start appending a big run, then freeze inside the open transaction until killed."""
    import time

    from egress.store import ResultStore

    many = tuple(
        Endpoint(
            f"bulk-{n}",
            "mcr.microsoft.com",
            443,
            "tcp",
            CheckKind.HTTPS,
            Expectation.ALLOW,
            "aks/required/mcr",
            "required",
            True,
        )
        for n in range(400)
    )
    run = make_run("half-written", BASE + timedelta(hours=1), endpoints=many)
    store = ResultStore(Path(path))
    calls = 0

    def freeze_midway() -> int:
        nonlocal calls
        if store.connection.in_transaction:
            calls += 1
            if calls == 20:  # some check rows are written, the run is not committed
                ready.set()
                time.sleep(60)
        return 0

    store.connection.set_progress_handler(freeze_midway, 200)
    store.append_run(run)


def cluster_writer_worker(
    location: str, cluster: str, count: int, freeze_at: int, ready: Any
) -> None:
    """One cluster's writer: `count` runs, or freeze inside run `freeze_at`'s transaction.

    The freeze comes after the run's check rows are written and before its summaries and
    COMMIT, so a kill there leaves an open transaction with half a run in it.
    """
    import time

    from egress.store import ResultStore

    store = ResultStore(location)
    db = store._db
    original = db.insert_many
    written = 0

    def insert_then_maybe_freeze(conn: Any, table: str, columns: Any, rows: Any) -> None:
        original(conn, table, columns, rows)
        if written == freeze_at:
            ready.set()
            time.sleep(120)

    db.insert_many = insert_then_maybe_freeze  # type: ignore[method-assign]
    for n in range(count):
        run = make_run(
            f"{cluster}-{n}", BASE + timedelta(minutes=5 * n), cluster=cluster, node_pool="pool"
        )
        assert store.append_run(run)
        written += 1
    store.close()
