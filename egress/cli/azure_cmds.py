"""`egress plan` and `egress apply`: diff the compiled policy against Azure and write the changes.

Azure modules are imported inside the command bodies so `egress --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from egress.cli._apps import app
from egress.cli._common import guarded, stderr_console, stdout_console
from egress.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from azure.mgmt.network import NetworkManagementClient
    from rich.console import Console

    from egress.azure import AzureTarget, DesiredState, Plan
    from egress.azure.cloud import Connection

Policy = Annotated[
    Path | None,
    typer.Option("--policy", help="User policy file (YAML); compiled on the fly.", dir_okay=False),
]
FromDir = Annotated[
    Path | None,
    typer.Option("--from", help="Output folder of `egress compile` to apply instead of compiling."),
]
Region = Annotated[str, typer.Option("--region", help="Azure region the cluster runs in.")]
CloudName = Annotated[
    str, typer.Option("--cloud", help="AzureCloud, AzureChinaCloud or AzureUSGovernment.")
]
Features = Annotated[
    list[str] | None, typer.Option("--feature", help="Optional feature group (repeatable).")
]
Subscription = Annotated[str | None, typer.Option("--subscription", help="Subscription id.")]
ResourceGroup = Annotated[
    str | None, typer.Option("--resource-group", help="Resource group of the firewall policy.")
]
FirewallPolicy = Annotated[
    str | None, typer.Option("--firewall-policy", help="Firewall policy name.")
]
RouteTable = Annotated[
    str | None,
    typer.Option("--route-table", help="Route table to write routes to (e.g. AKS's kubenet one)."),
]
RouteTableGroup = Annotated[
    str | None,
    typer.Option(
        "--route-table-resource-group", help="Its resource group (default: --resource-group)."
    ),
]
SubnetIds = Annotated[
    list[str] | None,
    typer.Option(
        "--subnet-id", help="Subnet resource id to associate the route table with (repeatable)."
    ),
]
Prune = Annotated[
    bool,
    typer.Option("--prune", help="Delete egress-managed groups and routes no longer compiled."),
]
ManagedPrefix = Annotated[
    str | None,
    typer.Option(
        "--managed-prefix", help="Name prefix of what egress owns (default: from the policy)."
    ),
]
ArmEndpoint = Annotated[
    str | None,
    typer.Option(
        "--arm-endpoint", help="Override the cloud's Resource Manager URL (private clouds)."
    ),
]
AuthorityHost = Annotated[
    str | None,
    typer.Option(
        "--authority-host", envvar="AZURE_AUTHORITY_HOST", help="Override the Entra ID authority."
    ),
]
PollInterval = Annotated[
    float | None,
    typer.Option(
        "--poll-interval",
        help="Seconds between polls when Azure sends no Retry-After.",
        min=0.001,
        max=3600,
        hidden=True,
    ),
]


@dataclass(frozen=True, slots=True)
class Inputs:
    """Every flag plan and apply share, as one value."""

    policy: Path | None
    from_dir: Path | None
    region: str
    cloud: str
    features: tuple[str, ...]
    subscription: str | None
    resource_group: str | None
    firewall_policy: str | None
    route_table: str | None
    route_table_resource_group: str | None
    subnet_ids: tuple[str, ...]
    prune: bool
    managed_prefix: str | None
    arm_endpoint: str | None
    authority_host: str | None
    poll_interval: float | None


def desired_and_target(inputs: Inputs) -> tuple[DesiredState, AzureTarget]:
    """Compile (or read --from) and resolve where to write: flags override the policy file."""
    from egress.api import resolve_scope
    from egress.azure.state import AzureTarget, SubnetRef, desired_from_dir, desired_from_policy
    from egress.model import AzureScope

    table, subnet_ids, policy_scope = inputs.route_table, inputs.subnet_ids, AzureScope()
    if inputs.from_dir is not None:
        if inputs.policy is not None or inputs.features:
            raise UsageError("--from applies a compiled folder; leave out --policy and --feature.")
        desired = desired_from_dir(inputs.from_dir, prefix=inputs.managed_prefix)
        table = table or desired.route_table_name
        if desired.route_table is not None and not table:
            raise UsageError(
                f"--from {inputs.from_dir} has a route table: pass --route-table NAME."
            )
    else:
        from egress.compiler import CompileRequest, compile_request

        compiled = compile_request(
            CompileRequest(
                cloud=inputs.cloud,
                region=inputs.region,
                features=inputs.features,
                policy_path=inputs.policy,
            )
        )
        desired = desired_from_policy(compiled)
        policy_scope = compiled.azure
        table = table or compiled.route_table.name
        subnet_ids = subnet_ids or compiled.route_table.subnet_ids
    scope = resolve_scope(
        policy_scope,
        subscription=inputs.subscription,
        resource_group=inputs.resource_group,
        firewall_policy=inputs.firewall_policy,
        route_table_resource_group=inputs.route_table_resource_group,
    )
    subscription, group, firewall = (
        scope.subscription_id,
        scope.resource_group,
        scope.firewall_policy,
    )
    table_group = scope.route_table_resource_group
    subnets = tuple(SubnetRef.parse(s) for s in subnet_ids)
    for subnet in subnets:
        if subnet.subscription_id.lower() != subscription.lower():
            raise UsageError(
                f"subnet {subnet.id} is in subscription {subnet.subscription_id}, not "
                f"{subscription}; apply one subscription at a time."
            )
    target = AzureTarget(
        subscription_id=subscription,
        resource_group=group,
        firewall_policy=firewall,
        route_table=table if desired.route_table is not None else None,
        route_table_resource_group=table_group or group,
        subnets=subnets,
    )
    return desired, target


def connection_for(inputs: Inputs, subscription: str) -> Connection:
    from egress.azure.cloud import Connection, endpoints_for

    endpoints = endpoints_for(
        inputs.cloud, arm_endpoint=inputs.arm_endpoint, authority_host=inputs.authority_host
    )
    return Connection(
        subscription_id=subscription, endpoints=endpoints, polling_interval=inputs.poll_interval
    )


@contextmanager
def planned(inputs: Inputs) -> Iterator[tuple[Plan, NetworkManagementClient, Connection]]:
    """Compile, connect and read Azure; the client is closed when the block ends."""
    from egress.azure import make_plan
    from egress.azure.cloud import network_client

    desired, target = desired_and_target(inputs)
    connection = connection_for(inputs, target.subscription_id)
    with network_client(connection) as client:
        yield make_plan(client, desired, target, prune=inputs.prune), client, connection


Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Also save the plan (changes + etags) for `egress apply FILE`.",
        dir_okay=False,
    ),
]
SavedPlanFile = Annotated[
    Path | None,
    typer.Argument(help="A plan saved by `egress plan --out`: apply exactly it.", dir_okay=False),
]
# What a saved plan fixes: with a plan file, apply takes only how to connect and confirm.
PLAN_DECIDES = (
    "policy", "from_dir", "region", "cloud", "feature", "subscription", "resource_group",
    "firewall_policy", "route_table", "route_table_resource_group", "subnet_id", "prune",
    "managed_prefix",
)  # fmt: skip


@app.command("plan")
@guarded
def plan_command(
    *,
    policy: Policy = None,
    from_dir: FromDir = None,
    region: Region = "eastus",
    cloud: CloudName = "AzureCloud",
    feature: Features = None,
    subscription: Subscription = None,
    resource_group: ResourceGroup = None,
    firewall_policy: FirewallPolicy = None,
    route_table: RouteTable = None,
    route_table_resource_group: RouteTableGroup = None,
    subnet_id: SubnetIds = None,
    prune: Prune = False,
    managed_prefix: ManagedPrefix = None,
    arm_endpoint: ArmEndpoint = None,
    authority_host: AuthorityHost = None,
    poll_interval: PollInterval = None,
    out: Out = None,
) -> None:
    """Show what `egress apply` would change in Azure (reads only); exit 3 when changes pend."""

    from egress.azure.render import render_plan

    inputs = Inputs(
        policy, from_dir, region, cloud, tuple(feature or ()), subscription, resource_group,
        firewall_policy, route_table, route_table_resource_group, tuple(subnet_id or ()), prune,
        managed_prefix, arm_endpoint, authority_host, poll_interval,
    )  # fmt: skip
    with planned(inputs) as (plan, _, _):
        render_plan(plan, stdout_console())
    if out is not None:
        from egress.azure.saved_plan import write_saved_plan

        write_saved_plan(out, plan, cloud=cloud)
        stderr_console().print(
            f"Saved the plan to {out}; apply exactly it with: egress apply {out}"
        )
    if plan.has_changes:
        raise typer.Exit(int(ExitCode.CHANGES_PENDING))


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")]
Timeout = Annotated[
    float,
    typer.Option("--timeout", help="Give up after this many seconds in total.", min=1, max=86_400),
]


@app.command("apply")
@guarded
def apply_command(
    ctx: typer.Context,
    saved: SavedPlanFile = None,
    *,
    policy: Policy = None,
    from_dir: FromDir = None,
    region: Region = "eastus",
    cloud: CloudName = "AzureCloud",
    feature: Features = None,
    subscription: Subscription = None,
    resource_group: ResourceGroup = None,
    firewall_policy: FirewallPolicy = None,
    route_table: RouteTable = None,
    route_table_resource_group: RouteTableGroup = None,
    subnet_id: SubnetIds = None,
    prune: Prune = False,
    managed_prefix: ManagedPrefix = None,
    arm_endpoint: ArmEndpoint = None,
    authority_host: AuthorityHost = None,
    poll_interval: PollInterval = None,
    yes: Yes = False,
    timeout: Timeout = 1800.0,
) -> None:
    """Write the changes `egress plan` shows (or exactly those of a saved plan FILE)."""
    if saved is not None:
        given = [  # typer vendors click: compare the ParameterSource by name
            f"--{name.replace('_', '-').replace('from-dir', 'from')}"
            for name in PLAN_DECIDES
            if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"
        ]
        if given:
            raise UsageError(
                f"a saved plan fixes what and where to write; leave out {', '.join(given)} "
                f"when applying {saved}."
            )
        inputs = Inputs(
            None, None, "", "", (), None, None, None, None, None, (), False, None,
            arm_endpoint, authority_host, poll_interval,
        )  # fmt: skip
        _apply_saved(saved, inputs, yes=yes, timeout=timeout)
        return

    inputs = Inputs(
        policy, from_dir, region, cloud, tuple(feature or ()), subscription, resource_group,
        firewall_policy, route_table, route_table_resource_group, tuple(subnet_id or ()), prune,
        managed_prefix, arm_endpoint, authority_host, poll_interval,
    )  # fmt: skip
    console = stderr_console()
    with planned(inputs) as (plan, client, connection):
        _execute(plan, client, connection, console, yes=yes, timeout=timeout)


def _execute(
    plan: Plan,
    client: NetworkManagementClient,
    connection: Connection,
    console: Console,
    *,
    yes: bool,
    timeout: float,
) -> None:
    """Show the plan, ask unless --yes, then write exactly it (shared by both apply forms)."""
    from egress.azure.executor import Executor
    from egress.azure.progress import ConsoleReporter
    from egress.azure.render import render_plan

    render_plan(plan, console)
    if not plan.has_changes:
        return
    if not yes:
        _confirm(plan, console)
    result = Executor(
        client,
        plan,
        timeout=timeout,
        retry=connection.retry,
        reporter=ConsoleReporter(console),
        poll_interval=connection.polling_interval or 30.0,
    ).run()
    console.print(f"Applied {result.writes} change(s) in {result.seconds:.1f}s.")


def _apply_saved(path: Path, connect: Inputs, *, yes: bool, timeout: float) -> None:
    """Apply a saved plan: refuse if anything it was based on moved, then write exactly it."""
    from egress.azure.cloud import network_client
    from egress.azure.saved_plan import check_still_current, load_saved_plan
    from egress.azure.state import read_live

    plan, cloud = load_saved_plan(path)
    inputs = dataclasses.replace(connect, cloud=cloud)
    connection = connection_for(inputs, plan.target.subscription_id)
    console = stderr_console()
    with network_client(connection) as client:
        live = read_live(client, plan.target, selectors=plan.read_selectors)
        check_still_current(plan, live, path)
        _execute(plan, client, connection, console, yes=yes, timeout=timeout)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm(plan: Plan, console: Console) -> None:
    if not stdin_is_terminal():
        raise UsageError(
            "refusing to apply without confirmation: stdin is not a terminal; review the plan "
            "and re-run with --yes."
        )
    if not typer.confirm(f"Apply these {len(plan.steps)} change(s)?", default=False, err=True):
        console.print("Cancelled; nothing was written.")
        raise typer.Exit(int(ExitCode.USAGE))
