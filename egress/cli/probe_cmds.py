"""`egress probe run`: probe every check of a plan from here and report verdicts with evidence."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from egress.cli._apps import probe_app
from egress.cli._common import (
    RequireAssuranceOption,
    guarded,
    parse_assurance,
    resolve_plan,
    stderr_console,
)
from egress.compliance import withholds_proof
from egress.errors import MetricsError, OutputError, ProbeError, StoreError, UsageError
from egress.probe_plan import Expectation, FirewallProfile, ProbePlan
from egress.results import CheckRecord, RunReport, RunStatus

if TYPE_CHECKING:
    from rich.console import Console


def _check_control(plan: ProbePlan, control: str | None) -> None:
    if control is None:
        return
    match = next((c for c in plan.checks if c.id == control), None)
    if match is None or match.expectation is not Expectation.ALLOW or match.unverifiable_reason:
        raise UsageError(
            f"--control {control!r} is not a probeable allow check of the plan; name one."
        )


def _check_writable(path: Path, flag: str) -> None:
    """Fail before probing when an output file could not be written after it."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file path.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise OutputError(
            f"{flag} {path} cannot be written ({exc.strerror or exc}); choose a writable path "
            "(checked before probing, so nothing was probed)."
        ) from exc


def _check_store(location: str) -> None:
    """A bad store fails before probing; an unreachable server or a lock only at the end."""
    from egress.store import ResultStore, is_dsn
    from egress.store._postgres import parse_dsn

    if is_dsn(location):
        parse_dsn(location)  # a malformed DSN is a mistake to fix now
        return
    path = Path(location)
    _check_writable(path, "--store")
    if path.is_file() and path.stat().st_size:
        try:  # header, owner and schema version; no write lock is taken
            ResultStore(path, create=False).close()
        except StoreError as exc:
            if "locked" not in exc.message:
                raise


def _store(
    location: str, pending: Path | None, wait_s: float, run: RunReport, console: Console
) -> None:
    """Append the run; if the store cannot take it, keep it in the pending file and say so."""
    from egress.store import ResultStore
    from egress.store._pending import default_pending_path, push_pending, write_pending

    pending_path = pending or default_pending_path(location)
    try:
        with ResultStore(location, wait_s=wait_s) as store:
            store.append_run(run)
            pushed = push_pending(store, pending_path)
    except StoreError as exc:
        kept = write_pending(pending_path, run)
        console.print(
            f"warning: {exc.message} The run was kept in {kept}; the next run with this "
            f"--store pushes it, or run `egress report ingest --store ... {kept}`.",
            markup=False,
        )
        return
    if pushed is not None:
        console.print(
            f"pushed {pushed.runs_added} pending run(s) from {pending_path} "
            f"({pushed.runs_already_stored} already stored)",
            markup=False,
        )
        for rejected in pushed.rejected:
            console.print(f"pending line not stored (file kept): {rejected}", markup=False)


@probe_app.command("run")
@guarded
def run(  # noqa: PLR0917  (typer maps each option to a parameter)
    plan_path: Annotated[
        Path | None, typer.Option("--plan", help="Probe plan JSON from `egress compile`.")
    ] = None,
    cloud: Annotated[str | None, typer.Option(help="Compile for this cloud.")] = None,
    region: Annotated[str | None, typer.Option(help="Compile for this region.")] = None,
    feature: Annotated[list[str] | None, typer.Option(help="Optional feature group.")] = None,
    policy: Annotated[Path | None, typer.Option(help="User policy file to compile in.")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="table|jsonl (default: table on a TTY).")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the RunReport JSON here.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="EGRESS_STORE",
            help="Append the run to this store: an SQLite file or postgresql://USER@HOST/DB.",
        ),
    ] = None,
    pending: Annotated[
        Path | None,
        typer.Option(
            envvar="EGRESS_PENDING",
            help="Where a run waits when the store is unreachable or locked "
            "(default: STORE.pending.jsonl; egress.pending.jsonl for PostgreSQL).",
        ),
    ] = None,
    store_wait: Annotated[
        float,
        typer.Option(min=0.1, max=600, help="Seconds to wait for a locked store per attempt."),
    ] = 15.0,
    api_server: Annotated[
        str | None, typer.Option(help="API server FQDN if KUBERNETES_SERVICE_HOST is an IP.")
    ] = None,
    resolver: Annotated[
        str | None, typer.Option(help="DNS resolver IP[:PORT] (default: resolv.conf).")
    ] = None,
    # Bounded, so no flag can make a run last forever or open unbounded sockets.
    concurrency: Annotated[int, typer.Option(min=1, max=4096, help="Checks probing at once.")] = 32,
    timeout: Annotated[float, typer.Option(min=0.05, max=300, help="Seconds per phase.")] = 3.0,
    deadline: Annotated[
        float, typer.Option(min=0.1, max=86_400, help="Seconds for the whole run.")
    ] = 60.0,
    retries: Annotated[
        int, typer.Option(min=0, max=100, help="Re-probes while observed differs from expected.")
    ] = 2,
    control: Annotated[
        str | None, typer.Option(help="Allow check id to use as the control (default: any).")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster name for the records.")] = None,
    node_pool: Annotated[str | None, typer.Option(help="Node pool name for the records.")] = None,
    trust_store: Annotated[
        Path | None, typer.Option(hidden=True, help="CA bundle instead of the public store.")
    ] = None,
    pushgateway: Annotated[
        str | None,
        typer.Option(help="Push the run's metrics to this Prometheus Pushgateway URL."),
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(help="Write the run's metrics in Prometheus text format to this file."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Also fail on inconclusive deny canaries, not only required ones.")
    ] = False,
    require_assurance: RequireAssuranceOption = None,
    profile: Annotated[
        FirewallProfile | None,
        typer.Option(help="Firewall behaviour the judge relies on (default: the plan's)."),
    ] = None,
) -> None:
    """Probe every check of the plan; exit 0 only when COMPLIANT, 1 when NON-COMPLIANT or NOT
    PROVEN, 2 on bad input, 5 when the probe cannot run."""
    from egress.metrics.delivery import check_gateway_url, deliver
    from egress.probe import DnspythonResolver, ProbeRun, ProbeSettings
    from egress.probe.output import build_outputs
    from egress.probe.settings import api_server_host, current_env, location_from_env

    if pushgateway is not None:
        check_gateway_url(pushgateway)
    minimum = parse_assurance(require_assurance)
    probe_plan = resolve_plan(plan_path, cloud, region, feature or [], policy)
    if not probe_plan.checks:
        raise UsageError("the probe plan has no checks, so it proves nothing; regenerate it.")
    _check_control(probe_plan, control)
    for path, flag in ((report, "--report"), (junit, "--junit")):
        if path is not None:
            _check_writable(path, flag)
    if store is not None:
        _check_store(store)
    console = stderr_console()
    outputs = build_outputs(fmt, report=report, junit=junit, console=console, stdout=sys.stdout)
    env = current_env()
    settings = ProbeSettings(
        phase_timeout=timeout,
        deadline=deadline,
        concurrency=concurrency,
        retries=retries,
        api_server=api_server,
        control_check=control,
        trust_store=trust_store,
        minimum_assurance=minimum,
        firewall_profile=profile,
    )

    def emit(record: CheckRecord) -> None:
        for output in outputs:
            output.record(record)

    probe = ProbeRun(
        plan=probe_plan,
        settings=settings,
        resolver=DnspythonResolver.from_option(resolver),
        location=location_from_env(env, cluster=cluster, node_pool=node_pool),
        api_server=api_server_host(env, api_server),
        on_record=emit,
    )
    for output in outputs:
        output.start(probe_plan)
    finished: list[RunReport] = []

    async def main() -> None:  # asyncio.run reprs its task's result on exit: keep it small
        finished.append(await probe.execute())

    try:
        asyncio.run(main())
    except OSError as exc:
        raise ProbeError(f"the probe could not run: {exc}; check the pod's network.") from exc
    # The statuses were judged at --require-assurance by the runner; the run status adds
    # --strict. Every output, the store and the exit code read this one RunReport.
    result = finished[0].model_copy(update={"strict": strict, "require_assurance": minimum})
    for output in outputs:
        output.finish(result)
    if store is not None:
        _store(store, pending, store_wait, result, console)
    judgement = result.judgement()
    withheld = [c for c in result.checks if withholds_proof(c.statused, strict=strict)]
    if withheld:
        ids = ", ".join(c.check_id for c in withheld[:10]) + (" ..." if len(withheld) > 10 else "")
        console.print(
            f"{len(withheld)} check(s) could not be proven either way (unproven), which leaves "
            f"the run {judgement.status.words}: {ids}",
            markup=False,
        )
    if judgement.status is not RunStatus.COMPLIANT:
        console.print(f"{judgement.status.words}: {'; '.join(judgement.reasons)}", markup=False)
    ok = judgement.status is RunStatus.COMPLIANT
    try:
        deliver(result, pushgateway=pushgateway, textfile=metrics_file, strict=strict)
    except MetricsError as exc:
        # The verdict stands either way: a leak still exits 1; a compliant run whose alerts
        # cannot be fed exits 5, since nothing would notice the next leak.
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        if ok:
            raise typer.Exit(int(exc.exit_code)) from None
    raise typer.Exit(int(judgement.status.exit_code))
