"""`egress firewall verify|explain` (the firewall's own logs) and `egress reconcile` (AKS's list).

Exit codes: verify 0 when every run is COMPLIANT after corroboration, 1 otherwise; explain 0;
reconcile 0 without drift, 3 with drift; 2 bad input; 4 Azure refused; 5 environment.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from egress.cli._apps import app
from egress.cli._common import guarded, stderr_console
from egress.errors import ExitCode, UsageError
from egress.output import write_file

if TYPE_CHECKING:
    from egress.firewall_logs import DecisionSource, SourceOptions
    from egress.firewall_logs.corroborate import CorroborationResult, FlowIndex, RunInfo
    from egress.results import RunReport

firewall_app = typer.Typer(
    help="Azure Firewall's own word: corroborate probe verdicts, explain denials.",
    no_args_is_help=True,
)
app.add_typer(firewall_app, name="firewall")


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


Logs = Annotated[
    list[str],
    typer.Option(
        "--logs",
        help="workspace:<Log Analytics workspace id>, or an export / diagnostic file (repeatable).",
    ),
]
CloudName = Annotated[
    str, typer.Option("--cloud", help="AzureCloud, AzureChinaCloud or AzureUSGovernment.")
]
TableName = Annotated[
    str | None,
    typer.Option("--table", help="Files: the table when rows do not name it (AZFWNetworkRule...)."),
]
TimeZone = Annotated[
    str | None,
    typer.Option("--time-zone", help="Files: the zone of times written without one."),
]
WorkspaceEndpoint = Annotated[
    str | None,
    typer.Option("--workspace-endpoint", hidden=True, help="Override the query API URL."),
]
Since = Annotated[str | None, typer.Option("--since", help="Window start, ISO 8601 (UTC).")]
Until = Annotated[str | None, typer.Option("--until", help="Window end, ISO 8601 (default: now).")]
Days = Annotated[float | None, typer.Option("--days", help="Window: the last N days.")]
OutputFormat = Annotated[Format, typer.Option("--format", help="text or json.")]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here (atomically) instead of stdout.")
]
AuthorityHost = Annotated[
    str | None,
    typer.Option("--authority-host", envvar="AZURE_AUTHORITY_HOST", help="Entra authority."),
]
SkewOption = Annotated[
    float, typer.Option("--skew", min=0, max=300, help="Clock skew allowed, seconds.")
]
WaitOption = Annotated[
    float,
    typer.Option("--wait", min=0, max=3600, help="Wait up to this long for logs to arrive."),
]
PollOption = Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls.")]
NowOption = Annotated[str | None, typer.Option("--now", hidden=True, envvar="EGRESS_REPORT_NOW")]


def source_options(
    cloud: str, table: str | None, zone: str | None, endpoint: str | None, authority: str | None
) -> SourceOptions:
    from egress.catalog import parse_cloud
    from egress.firewall_logs import SourceOptions
    from egress.firewall_logs.model import LogTable, table_named
    from egress.firewall_logs.timeparse import zone_named

    chosen = None
    if table is not None:
        chosen = table_named(table)
        if chosen is None:
            names = ", ".join(t.value for t in LogTable)
            raise UsageError(f"--table '{table}' is not one of {names}.")
    return SourceOptions(
        cloud=parse_cloud(cloud),
        table=chosen,
        zone=zone_named(zone) if zone else None,
        workspace_endpoint=endpoint,
        authority_host=authority,
    )


def _window(
    now: str | None, days: float | None, since: str | None, until: str | None
) -> tuple[datetime, datetime]:
    from egress.report import now_from_flag, window_from_flags

    window = window_from_flags(now_from_flag(now), days=days, since=since, until=until)
    return window.since, window.until


def _emit(text: str | Iterable[str], output: Path | None) -> None:
    if output is None:
        sys.stdout.writelines([text] if isinstance(text, str) else text)
        sys.stdout.flush()
    else:
        write_file(output, text)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """The join builds a million acyclic objects; the cycle collector only rescans them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _indexed(
    store: Path | None, results: list[Path], since: datetime, until: datetime, skew: timedelta
) -> Iterator[tuple[list[RunInfo], FlowIndex, Callable[[str], RunReport | None]]]:
    """The runs in the window, indexed, and how to read one back whole (for --records).

    From the store (compact rows), or from probe JSON lines / --report files parsed by the
    store's own rules (their records keep the node IP, which the store does not).
    """
    from egress.firewall_logs.corroborate import index_runs
    from egress.firewall_logs.stored import index_store
    from egress.store import ResultStore, read_runs

    if (store is None) == (not results):
        raise UsageError("give either --store PATH or --results FILE (probe output), not both.")
    if store is not None:
        with ResultStore(store, create=False) as result_store:
            infos, index = index_store(result_store, since, until, skew)
            yield infos, index, result_store.read_run
        return
    runs, rejected = read_runs(results)
    if rejected:
        raise UsageError(f"--results: {rejected[0]}; fix or drop that file.")
    chosen = {r.run_id: r for r in runs if since <= r.started_at < until}
    infos, index = index_runs(chosen.values(), skew)
    yield infos, index, chosen.get


def _wait_for_logs(
    source: DecisionSource, runs: list[RunInfo], skew: timedelta, wait: float, poll: float
) -> datetime | None:
    """Poll the source's watermark until it passes the last run (or `wait` runs out)."""
    from egress.firewall_logs import LogQuery
    from egress.firewall_logs.corroborate import FLOW_TABLES

    if not runs:
        return None
    needed = max(r.finished_at for r in runs) + skew
    query = LogQuery(
        since=min(r.started_at for r in runs) - skew,
        until=needed + timedelta(hours=1),
        tables=FLOW_TABLES,
    )
    deadline = time.monotonic() + wait
    console = stderr_console()
    while True:
        watermark = source.latest(query)
        if watermark is not None and watermark >= needed:
            return watermark
        left = deadline - time.monotonic()
        if left <= 0:
            return watermark
        pause = min(poll, left)
        console.print(
            f"firewall logs have arrived up to {watermark.isoformat() if watermark else 'nothing'}"
            f"; waiting {pause:g}s for {needed.isoformat()} (ingestion lag)",
            markup=False,
        )
        time.sleep(pause)


def join_logs(
    source: DecisionSource, infos: list[RunInfo], index: FlowIndex, *, wait: float, poll: float
) -> CorroborationResult:
    """The one corroboration path (verify and `report --firewall-logs`): wait for a workspace's
    logs up to `wait`, join, close the source."""
    from egress.firewall_logs.corroborate import join

    try:
        watermark = (
            None if source.complete else _wait_for_logs(source, infos, index.skew, wait, poll)
        )
        return join(infos, index, source, watermark=watermark)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


@firewall_app.command("verify")
@guarded
def verify(
    logs: Logs,
    *,
    store: Annotated[
        Path | None, typer.Option("--store", envvar="EGRESS_STORE", help="The result store.")
    ] = None,
    results: Annotated[
        list[Path] | None, typer.Option("--results", help="Probe JSON lines or --report files.")
    ] = None,
    since: Since = None,
    until: Until = None,
    days: Days = None,
    skew: SkewOption = 5.0,
    wait: WaitOption = 0.0,
    poll: PollOption = 30.0,
    records_out: Annotated[
        Path | None,
        typer.Option("--records", help="Also write the corroborated records as JSON lines."),
    ] = None,
    output_format: OutputFormat = Format.TEXT,
    output: Output = None,
    cloud: CloudName = "AzureCloud",
    table: TableName = None,
    time_zone: TimeZone = None,
    workspace_endpoint: WorkspaceEndpoint = None,
    authority_host: AuthorityHost = None,
    now: NowOption = None,
) -> None:
    """Join each probe attempt with the firewall's decision for the same flow.

    confirmed: the firewall logged what the probe concluded (assurance becomes confirmed);
    contradicted: it logged the opposite (an allowed canary is a LEAK naming the rule);
    unmatched: no record (logging off, logs not arrived, or it never reached the firewall).
    Exit 0 when every run is COMPLIANT after corroboration, else 1.
    """
    from egress.compliance import RunStatus
    from egress.firewall_logs import open_source
    from egress.firewall_logs.render import verify_json, verify_text

    start, end = _window(now, days, since, until)
    source = open_source(
        logs, source_options(cloud, table, time_zone, workspace_endpoint, authority_host)
    )
    allowance = timedelta(seconds=skew)
    with (
        no_cyclic_gc(),
        _indexed(store, results or [], start, end, allowance) as (infos, index, read_run),
    ):
        if not infos:
            raise UsageError(
                f"no stored runs start between {start.isoformat()} and {end.isoformat()}; "
                "check --since/--until/--days or the store."
            )
        result = join_logs(source, infos, index, wait=wait, poll=poll)
        if records_out is not None:
            write_file(records_out, _records(read_run, result))
    _emit(verify_json(result) if output_format is Format.JSON else verify_text(result), output)
    ok = all(run.status() is RunStatus.COMPLIANT for run in result.runs)
    raise typer.Exit(int(ExitCode.OK if ok else ExitCode.NON_COMPLIANT))


def _records(
    read_run: Callable[[str], RunReport | None], result: CorroborationResult
) -> Iterator[str]:
    """Each stored record with the firewall's word, as JSON lines `report ingest` reads."""
    for run in result.runs:
        stored = read_run(run.run_id)
        if stored is None:
            continue
        for record, check in zip(stored.checks, run.checks, strict=True):
            yield check.applied_to(record).model_dump_json() + "\n"


@firewall_app.command("explain")
@guarded
def explain_command(
    logs: Logs,
    *,
    source_address: Annotated[
        list[str],
        typer.Option("--source", help="The cluster's source address or CIDR (repeatable)."),
    ],
    region: Annotated[str, typer.Option("--region", help="Azure region the cluster runs in.")],
    features: Annotated[
        list[str] | None, typer.Option("--feature", help="Enabled feature group (repeatable).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="The user policy file.")] = None,
    since: Since = None,
    until: Until = None,
    days: Days = None,
    output_format: OutputFormat = Format.TEXT,
    output: Output = None,
    cloud: CloudName = "AzureCloud",
    table: TableName = None,
    time_zone: TimeZone = None,
    workspace_endpoint: WorkspaceEndpoint = None,
    authority_host: AuthorityHost = None,
    now: NowOption = None,
) -> None:
    """List what the cluster was denied, by destination and port, and what would allow it.

    Each is matched against the catalog ("enable feature X"), your policy ("in your policy but
    not applied", or shadowed), or nothing (a candidate allow entry to review). Never allows
    anything itself.
    """
    import ipaddress

    from egress.firewall_logs import LogQuery, open_source
    from egress.firewall_logs.corroborate import FLOW_TABLES
    from egress.firewall_logs.explain import explain
    from egress.firewall_logs.knowledge import load_knowledge
    from egress.firewall_logs.render import explain_json, explain_text

    for value in source_address:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise UsageError(f"--source '{value}' is not an IP address or CIDR.") from None
    start, end = _window(now, days if days or since else 1.0, since, until)
    knowledge = load_knowledge(cloud, region, tuple(features or ()), policy)
    source = open_source(
        logs, source_options(cloud, table, time_zone, workspace_endpoint, authority_host)
    )
    query = LogQuery(
        since=start, until=end, sources=tuple(source_address), tables=FLOW_TABLES, denies_only=True
    )
    try:
        result = explain(
            source.decisions(query), knowledge, source=source.name, since=start, until=end
        )
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    result = type(result)(
        result.source,
        result.since,
        result.until,
        result.denials,
        tuple(source.notes.messages),
        source.notes.records,
    )
    _emit(explain_json(result) if output_format is Format.JSON else explain_text(result), output)


@app.command("reconcile")
@guarded
def reconcile_command(
    *,
    cluster: Annotated[str, typer.Option("--cluster", help="The AKS managed cluster's name.")],
    resource_group: Annotated[
        str, typer.Option("--resource-group", help="The cluster's resource group.")
    ],
    subscription: Annotated[str, typer.Option("--subscription", help="Subscription id.")],
    region: Annotated[str, typer.Option("--region", help="Azure region the cluster runs in.")],
    features: Annotated[
        list[str] | None, typer.Option("--feature", help="Enabled feature group (repeatable).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="The user policy file.")] = None,
    output_format: OutputFormat = Format.TEXT,
    output: Output = None,
    cloud: CloudName = "AzureCloud",
    arm_endpoint: Annotated[
        str | None, typer.Option("--arm-endpoint", help="Override the Resource Manager URL.")
    ] = None,
    authority_host: Annotated[
        str | None,
        typer.Option("--authority-host", envvar="AZURE_AUTHORITY_HOST", help="Entra authority."),
    ] = None,
) -> None:
    """Compare what egress compiles for a cluster with AKS's own list for it.

    Reports entries missing in egress, extra in egress (with the catalog doc), and port or
    protocol differences; with the FQDN tag, what the tag does not cover. Exit 3 on drift.
    """
    from egress.azure.aks import cluster_endpoints
    from egress.azure.cloud import Connection, endpoints_for
    from egress.firewall_logs.knowledge import load_knowledge
    from egress.firewall_logs.reconcile import reconcile
    from egress.firewall_logs.render import reconcile_json, reconcile_text

    knowledge = load_knowledge(cloud, region, tuple(features or ()), policy)
    connection = Connection(
        subscription_id=subscription,
        endpoints=endpoints_for(cloud, arm_endpoint=arm_endpoint, authority_host=authority_host),
    )
    result = reconcile(cluster, knowledge, cluster_endpoints(connection, resource_group, cluster))
    text = reconcile_json(result) if output_format is Format.JSON else reconcile_text(result)
    _emit(text, output)
    raise typer.Exit(int(ExitCode.CHANGES_PENDING if result.drifted else ExitCode.OK))
