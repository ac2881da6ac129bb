"""`egress report` (render the compliance report) and `egress report ingest` (load logs)."""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from egress.cli._apps import app
from egress.cli._common import (
    RequireAssuranceOption,
    guarded,
    parse_assurance,
    stderr_console,
    write_stdout,
)
from egress.cli.firewall_cmds import (
    AuthorityHost,
    CloudName,
    PollOption,
    SkewOption,
    TableName,
    TimeZone,
    WaitOption,
    WorkspaceEndpoint,
    join_logs,
    no_cyclic_gc,
    source_options,
)
from egress.errors import ExitCode, UsageError
from egress.output import write_file
from egress.report import (
    FormatName,
    build_report,
    make_format,
    now_from_flag,
    window_from_flags,
)
from egress.report.build import MAX_DAYS, days_before
from egress.report.fleet import parse_duration
from egress.report.formats.base import status_text
from egress.report.model import ComplianceReport, ScopeFilter
from egress.store import ResultStore, ingest_files

if TYPE_CHECKING:
    from egress.firewall_logs import SourceOptions

report_app = typer.Typer()
app.add_typer(report_app, name="report")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="EGRESS_STORE",
        help="The result store: an SQLite file, or postgresql://USER@HOST/DB (TLS verified).",
    ),
]
# A fixed "now" for reproducible output (tests, golden files); hidden from --help.
NowOption = Annotated[
    str | None,
    typer.Option("--now", hidden=True, envvar="EGRESS_REPORT_NOW", help="Fix 'now' (tests)."),
]


def _summary(report: ComplianceReport) -> str:
    return (
        f"egress report: {status_text(report)}; {len(report.leaks)} leaking, "
        f"{len(report.failed_required)} failed required, {len(report.unproven)} unproven, "
        f"{len(report.flapping)} flapping endpoint(s); {report.runs} runs on "
        f"{len(report.coverage)} node pool(s), {len(report.fleet.gaps)} coverage gap(s)"
    )


def _require_store(store: str | None) -> str:
    if store is None or not store.strip():
        raise typer.BadParameter(
            "give --store PATH or --store postgresql://... (or set EGRESS_STORE).",
            param_hint="--store",
        )
    return store


@report_app.callback(invoke_without_command=True)
@guarded
def report(
    ctx: typer.Context,
    *,
    store: StoreOption = None,
    days: Annotated[
        float | None,
        typer.Option("--days", help="Window: the last N days before --until (default 7)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Window start, ISO 8601 (UTC if no zone).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Window end, ISO 8601 (default: now).")
    ] = None,
    output_format: Annotated[
        FormatName, typer.Option("--format", help="Output format.")
    ] = FormatName.TERMINAL,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (atomically) instead of stdout."),
    ] = None,
    now: NowOption = None,
    strict: Annotated[
        bool, typer.Option(help="Also count unproven deny checks against the window.")
    ] = False,
    require_assurance: RequireAssuranceOption = None,
    cluster: Annotated[
        list[str] | None,
        typer.Option("--cluster", help="Only this cluster (repeatable)."),
    ] = None,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", help="Only clusters that ran in this region (repeatable)."),
    ] = None,
    stale_after: Annotated[
        str | None,
        typer.Option(
            "--stale-after",
            help="A pool silent this long at the window end is a coverage gap (e.g. 90m, 2h); "
            "default: 3 x its mean interval between runs, or 1h.",
        ),
    ] = None,
    firewall_logs: Annotated[
        list[str] | None,
        typer.Option(
            "--firewall-logs",
            help="Corroborate with the firewall's logs: workspace:<id>, or an export or "
            "diagnostic file (repeatable); the options below as for `egress firewall verify`.",
        ),
    ] = None,
    cloud: CloudName = "AzureCloud",
    table: TableName = None,
    time_zone: TimeZone = None,
    workspace_endpoint: WorkspaceEndpoint = None,
    authority_host: AuthorityHost = None,
    skew: SkewOption = 5.0,
    wait: WaitOption = 0.0,
    poll: PollOption = 30.0,
) -> None:
    """Render the compliance report for a time window (or run a subcommand).

    With --firewall-logs, each check is corroborated as `egress firewall verify` does
    (confirmed, contradicted, unmatched) and the window is judged on the result.
    Exit 0 only when the window is COMPLIANT; 1 when it is NON-COMPLIANT or NOT PROVEN,
    2 on bad usage, 5 when the store cannot be read.
    """
    if ctx.invoked_subcommand is not None:
        return
    store_path = _require_store(store)
    moment = now_from_flag(now)
    window = window_from_flags(moment, days=days, since=since, until=until)
    threshold = parse_duration(stale_after, option="--stale-after") if stale_after else None
    with ResultStore(store_path, create=False, verify=True) as result_store:
        compliance = build_report(
            result_store,
            window,
            now=moment,
            strict=strict,
            require_assurance=parse_assurance(require_assurance),
            scope=ScopeFilter(tuple(cluster or ()), tuple(region or ())),
            stale_after=threshold,
        )
        if firewall_logs:
            options = source_options(cloud, table, time_zone, workspace_endpoint, authority_host)
            compliance = _with_firewall_logs(
                compliance,
                result_store,
                logs=firewall_logs,
                options=options,
                skew=skew,
                wait=wait,
                poll=poll,
            )
    to_terminal = output is None and sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if to_terminal else 120
    renderer = make_format(output_format, color=to_terminal, width=width)
    text = renderer.render(compliance)
    if output is None:
        write_stdout(text)
    else:
        write_file(output, text)
    if not (output is None and output_format is FormatName.TERMINAL):
        stderr_console().print(_summary(compliance), markup=False)
    raise typer.Exit(int(compliance.exit_code))


def _with_firewall_logs(
    compliance: ComplianceReport,
    store: ResultStore,
    *,
    logs: list[str],
    options: SourceOptions,
    skew: float,
    wait: float,
    poll: float,
) -> ComplianceReport:
    """The report with the window's runs joined with the firewall's decisions (as verify)."""
    from egress.firewall_logs import open_source
    from egress.firewall_logs.stored import index_store
    from egress.report.corroboration import corroborated, summarize

    source = open_source(logs, options)
    window = compliance.window
    with no_cyclic_gc():
        scope = compliance.fleet.scope  # the same --cluster/--region as the rest
        infos, index = index_store(
            store,
            window.since,
            window.until,
            timedelta(seconds=skew),
            clusters=scope.clusters,
            regions=scope.regions,
        )
        result = join_logs(source, infos, index, wait=wait, poll=poll)
    summary = summarize(result, strict=compliance.strict, minimum=compliance.require_assurance)
    return corroborated(compliance, summary)


@report_app.command("ingest")
@guarded
def ingest(
    files: Annotated[
        list[Path], typer.Argument(help="JSON-lines files or RunReport JSON files.", dir_okay=False)
    ],
    store: StoreOption = None,
    ignore_non_json: Annotated[
        bool,
        typer.Option(
            "--ignore-non-json",
            help="Skip lines that are not JSON objects (log noise) instead of rejecting them.",
        ),
    ] = False,
) -> None:
    """Load probe results gathered with `kubectl logs` (or --report files) into the store.

    Also takes the pending files a probe writes when its store was unreachable or locked.
    Runs already stored (same run id) are skipped. Each rejected line is listed as
    FILE:LINE: reason and the rest is kept; the exit code is then 2, else 0.
    """
    store_path = _require_store(store)
    with ResultStore(store_path) as result_store:
        result = ingest_files(result_store, files, ignore_non_json=ignore_non_json)
    console = stderr_console()
    for rejected in result.rejected:
        console.print(f"rejected: {rejected}", markup=False)
    console.print(
        f"ingested {result.runs_added} run(s) ({result.checks_added} results); "
        f"{result.runs_already_stored} already stored; {len(result.rejected)} line(s) rejected",
        markup=False,
    )
    raise typer.Exit(int(ExitCode.USAGE if result.rejected else ExitCode.OK))


@report_app.command("prune")
@guarded
def prune(
    keep_days: Annotated[
        int,
        typer.Option(
            "--keep-days", min=1, max=MAX_DAYS, help="Keep this many days before today (UTC)."
        ),
    ],
    store: StoreOption = None,
    now: NowOption = None,
) -> None:
    """Delete runs older than --keep-days whole days (retention for a store on a volume)."""
    store_path = _require_store(store)
    moment = now_from_flag(now)
    before = days_before(moment, keep_days, option="--keep-days")
    with ResultStore(store_path, create=False) as result_store:
        deleted, cutoff = result_store.prune(before)
    stderr_console().print(
        f"deleted {deleted} run(s) that started before {cutoff.isoformat()}", markup=False
    )


@report_app.command("backup")
@guarded
def backup(
    to: Annotated[
        Path, typer.Option("--to", help="Write the copy here (must not exist yet).", dir_okay=False)
    ],
    store: StoreOption = None,
) -> None:
    """Copy an SQLite store consistently while probes may keep writing (SQLite backup API).

    The store is checked first (quick_check); the copy is written beside its target and
    renamed into place, so the target is either a whole checked copy or absent.
    """
    store_path = _require_store(store)
    if to.exists():
        raise UsageError(f"--to {to} already exists; choose a new file (nothing is overwritten).")
    with ResultStore(store_path, create=False, verify=True) as result_store:
        runs = len(result_store.run_ids())
        result_store.backup_to(to)
    stderr_console().print(f"backed up {runs} run(s) from {store_path} to {to}", markup=False)
