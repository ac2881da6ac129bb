"""Faults through the real SDK pipeline: conflicts, throttling, 5xx, etag races, interruptions."""

from __future__ import annotations

import pytest
from azure.mgmt.network import NetworkManagementClient
from emulator import ArmEmulator, Fault

from egress.azure import make_plan
from egress.azure.boundary import RetrySettings
from egress.azure.diff import Kind
from egress.azure.executor import Executor
from egress.azure.state import AzureTarget, DesiredState, SubnetRef, desired_from_policy
from egress.compiler import CompileRequest, compile_request
from egress.errors import AzureApplyError, AzureConflictError

from azure_hub import POLICY, POLICY_ID, RG, SUB, SUBNET_ID, TABLE, TABLE_ID, Cli, rcg_id

RETRY = RetrySettings(attempts=2, backoff_seconds=0.05, max_wait_seconds=2.0, conflict_attempts=15)
TARGET = AzureTarget(
    subscription_id=SUB,
    resource_group=RG,
    firewall_policy=POLICY,
    route_table=TABLE,
    route_table_resource_group=RG,
    subnets=(SubnetRef.parse(SUBNET_ID),),
)
GROUP_PUT = "ruleCollectionGroups/egress-aks"


# urllib3 may leave the socket of a connection the server dropped for the GC to close.
DROPPED_SOCKETS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    return desired_from_policy(compile_request(CompileRequest(region="eastus")))


def _run(client: NetworkManagementClient, desired: DesiredState) -> int:
    plan = make_plan(client, desired, TARGET)
    return Executor(client, plan, timeout=60, retry=RETRY, poll_interval=0.01).run().writes


def _statuses(arm: ArmEmulator, method: str, path_end: str) -> list[int]:
    return [e.status for e in arm.log if e.method == method and e.path.endswith(path_end)]


@pytest.mark.parametrize("retry_after", ["1", None])
def test_conflict_while_another_write_is_in_flight_is_retried(
    cli: Cli, retry_after: str | None
) -> None:
    # Someone else's group write keeps the policy Updating for a moment; 409 with or without
    # Retry-After (the SDK pipeline honours the header, egress backs off on its own otherwise).
    cli.arm.conflict_retry_after = retry_after
    cli.arm.store.start_operation(
        rcg_id("DefaultApplicationRuleCollectionGroup"),
        policy=POLICY_ID,
        is_delete=False,
        polls=10**6,
        seconds=1.5,
    )
    result = cli.run("apply", "--yes")
    assert result.exit_code == 0, result.output
    statuses = _statuses(cli.arm, "PUT", GROUP_PUT)
    assert statuses[0] == 409 and statuses[-1] == 201, statuses
    puts = [e for e in cli.arm.log if e.method == "PUT" and e.path.endswith(GROUP_PUT)]
    assert puts[1].at - puts[0].at >= 1.0
    if retry_after is None:
        assert "is busy (409), retrying in 2s" in result.stderr


def test_429_retry_after_is_honoured(cli: Cli) -> None:
    cli.arm.faults.append(
        Fault(
            "PUT",
            GROUP_PUT,
            status=429,
            headers={"Retry-After": "1"},
            body={"error": {"code": "TooManyRequests", "message": "Throttled."}},
        )
    )
    result = cli.run("apply", "--yes")
    assert result.exit_code == 0, result.output
    puts = [e for e in cli.arm.log if e.method == "PUT" and e.path.endswith(GROUP_PUT)]
    assert [e.status for e in puts] == [429, 201]
    assert puts[1].at - puts[0].at >= 1.0


def test_server_errors_on_reads_are_retried(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    arm.faults.append(Fault("GET", f"firewallPolicies/{POLICY}", status=500, times=2))
    plan = make_plan(client, desired, TARGET)
    assert plan.has_changes
    assert _statuses(arm, "GET", f"firewallPolicies/{POLICY}") == [500, 500, 200]


def test_external_change_between_plan_and_apply_stops_without_overwriting(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    plan = make_plan(client, desired, TARGET)
    assert [s.kind for s in plan.steps] == [Kind.ROUTE_TABLE, Kind.GROUP, Kind.SUBNET]
    # A colleague associates another route table with the subnet after the plan was made.
    other = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/routeTables/rt-x"
    subnet = arm.resource(SUBNET_ID)
    assert subnet is not None
    arm.seed(SUBNET_ID, {"properties": {**subnet["properties"], "routeTable": {"id": other}}})
    with pytest.raises(
        AzureConflictError,
        match=r"subnet .vnet-aks/aks-subnet. was changed by someone else since the plan",
    ):
        Executor(client, plan, timeout=60, retry=RETRY, poll_interval=0.01).run()
    after = arm.resource(SUBNET_ID)
    assert after is not None and after["properties"]["routeTable"] == {"id": other}
    assert not any(w.endswith("aks-subnet") for w in arm.accepted_writes())


def test_group_created_by_someone_else_after_the_plan_is_not_overwritten(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    plan = make_plan(client, desired, TARGET)
    theirs = {"properties": {"priority": 400, "ruleCollections": []}}
    arm.seed(rcg_id("egress-aks"), theirs)
    with pytest.raises(
        AzureConflictError, match=r"rule collection group .egress-aks. was changed by someone else"
    ):
        Executor(client, plan, timeout=60, retry=RETRY, poll_interval=0.01).run()
    group = arm.resource(rcg_id("egress-aks"))
    assert group is not None and group["properties"]["ruleCollections"] == []
    assert arm.accepted_writes() == [f"PUT {TABLE_ID}"]


@DROPPED_SOCKETS
def test_interrupted_apply_leaves_old_or_new_and_a_rerun_converges(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    arm.faults.append(Fault("PUT", GROUP_PUT, kind="drop", times=50))
    with pytest.raises(AzureApplyError, match="rule collection group 'egress-aks'"):
        _run(client, desired)
    # Old or new, never half: the table is new, the group and the subnet are untouched.
    assert arm.resource(TABLE_ID) is not None
    assert arm.resource(rcg_id("egress-aks")) is None
    subnet = arm.resource(SUBNET_ID)
    assert subnet is not None and "routeTable" not in subnet["properties"]

    arm.faults.clear()
    arm.reset_log()
    assert _run(client, desired) == 2  # the group and the subnet; the table is already right
    arm.reset_log()
    assert not make_plan(client, desired, TARGET).has_changes
    assert arm.writes == 0


@DROPPED_SOCKETS
def test_lost_response_after_the_write_landed_converges(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    # The PUT lands but the answer is lost; the SDK re-sends it, and that copy's If-None-Match
    # meets the first copy: 412. Azure holds exactly the planned body, so the write counts as done.
    arm.lro_seconds = 0.5
    arm.faults.append(Fault("PUT", GROUP_PUT, kind="drop_after", times=1))
    assert _run(client, desired) == 3
    assert _statuses(arm, "PUT", GROUP_PUT) == [0, 412]
    arm.reset_log()
    assert not make_plan(client, desired, TARGET).has_changes


def test_overall_timeout_stops_waiting_with_a_clear_message(cli: Cli) -> None:
    cli.arm.lro_polls = 10**6
    cli.arm.lro_seconds = 3600
    result = cli.run("apply", "--yes", "--timeout", "1")
    assert result.exit_code == 4
    assert "timed out after 1s (--timeout) waiting for create route table rt-aks" in result.stderr


def test_a_huge_retry_after_is_capped(
    arm: ArmEmulator, client: NetworkManagementClient, desired: DesiredState
) -> None:
    # The fixture's client caps any single wait at 2 s; a server asking for 1000 s is not obeyed.
    arm.faults.append(
        Fault("GET", f"firewallPolicies/{POLICY}", status=429, headers={"Retry-After": "1000"})
    )
    assert make_plan(client, desired, TARGET).has_changes
    gets = [
        e for e in arm.log if e.method == "GET" and e.path.endswith(f"firewallPolicies/{POLICY}")
    ]
    assert [e.status for e in gets] == [429, 200]
    assert 1.9 <= gets[1].at - gets[0].at < 10


def test_failed_operation_is_reported_and_the_next_run_rewrites_the_group(cli: Cli) -> None:
    cli.arm.failing_writes.append(GROUP_PUT)
    failed = cli.run("apply", "--yes")
    assert failed.exit_code == 4, failed.output
    assert (
        "error: Azure reported that create rule collection group egress-aks failed" in failed.stderr
    )
    assert "FirewallPolicyUpdateFailed" in failed.stderr
    # The group holds the new body but is Failed: the plan still counts it as pending.
    plan = cli.run("plan")
    assert plan.exit_code == 3
    assert "~ provisioningState: Failed -> Succeeded (re-applied)" in plan.stdout
    cli.arm.reset_log()
    assert cli.run("apply", "--yes").exit_code == 0
    # The group again, and the subnet association the failed run never reached.
    assert cli.arm.write_log() == [f"PUT {rcg_id('egress-aks')}", f"PUT {SUBNET_ID}"]
    assert cli.run("plan").exit_code == 0
