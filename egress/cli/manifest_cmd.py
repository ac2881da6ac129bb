"""`egress probe manifest`: the Kubernetes objects that run the probe in-cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from egress.cli._apps import probe_app
from egress.cli._common import guarded, resolve_plan, stderr_console, write_stdout
from egress.output import write_file

if TYPE_CHECKING:
    from egress.k8s import Target


def _targets(pools: list[str], selectors: list[str]) -> tuple[Target, ...]:
    from egress.k8s import any_node_target, pool_target, selector_target

    targets = [pool_target(p) for p in pools] + [selector_target(s) for s in selectors]
    return tuple(targets) or (any_node_target(),)


@probe_app.command("manifest")
@guarded
def manifest(  # noqa: PLR0917  (typer maps each option to a parameter)
    plan_path: Annotated[
        Path | None, typer.Option("--plan", help="Probe plan JSON from `egress compile`.")
    ] = None,
    cloud: Annotated[str | None, typer.Option(help="Compile for this cloud.")] = None,
    region: Annotated[str | None, typer.Option(help="Compile for this region.")] = None,
    feature: Annotated[list[str] | None, typer.Option(help="Optional feature group.")] = None,
    policy: Annotated[Path | None, typer.Option(help="User policy file to compile in.")] = None,
    node_pool: Annotated[
        list[str] | None,
        typer.Option(help="AKS node pool to probe from (repeatable); one Job/CronJob each."),
    ] = None,
    node_selector: Annotated[
        list[str] | None,
        typer.Option(help="Node selector key=value[,key=value] (repeatable); one each."),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="Cron schedule (UTC), e.g. '*/5 * * * *': CronJobs instead of Jobs."),
    ] = None,
    store_pvc: Annotated[
        str | None,
        typer.Option(
            help="Keep results and the HTML report on a PersistentVolumeClaim of this size "
            "(e.g. 1Gi), one per node pool."
        ),
    ] = None,
    storage_class: Annotated[
        str | None, typer.Option(help="StorageClass for the store (default: the cluster's).")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Probe image (default: ghcr.io/egress/egress:<version>).")
    ] = None,
    namespace: Annotated[str, typer.Option(help="Namespace to create and run in.")] = (
        "egress-probe"
    ),
    cluster: Annotated[
        str | None, typer.Option(help="Cluster name recorded with every result.")
    ] = None,
    deadline: Annotated[
        int, typer.Option(help="Seconds the probe may run (the Job gets 120 s more).")
    ] = 120,
    pushgateway: Annotated[
        str | None,
        typer.Option(help="Pushgateway URL each run pushes its Prometheus metrics to."),
    ] = None,
    alerts: Annotated[
        bool, typer.Option(help="Also render a PrometheusRule with the probe's alerts.")
    ] = False,
    azure_alerts: Annotated[
        Path | None,
        typer.Option(
            help="Write the same alerts as an ARM template of an Azure Managed Prometheus "
            "rule group to this file."
        ),
    ] = None,
    stale_after: Annotated[
        int | None,
        typer.Option(help="Seconds without a complete run before the stale alert fires."),
    ] = None,
    store_secret: Annotated[
        str | None,
        typer.Option(
            help="Write every run to the PostgreSQL fleet store named by this Secret's key "
            "'dsn' (optional key 'password'); with --store-pvc, runs the database cannot take "
            "wait on the volume."
        ),
    ] = None,
    workload_identity_sa: Annotated[
        str | None,
        typer.Option(
            help="Run as this workload-identity ServiceAccount and use its Entra ID token as "
            "the database password (Azure Database for PostgreSQL)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the YAML here, not stdout.")
    ] = None,
) -> None:
    """Render Namespace, ServiceAccount, plan ConfigMap, store PVCs and probe Jobs/CronJobs.

    Pipe it to `kubectl apply -f -`. Pods meet the Pod Security Standard "restricted".
    """
    from egress import __version__
    from egress.k8s import ManifestSpec, render_manifest, warnings
    from egress.k8s.spec import check_options

    spec = ManifestSpec(
        version=__version__,
        targets=_targets(node_pool or [], node_selector or []),
        namespace=namespace,
        image=image,
        cluster=cluster,
        schedule=schedule,
        store_size=store_pvc,
        storage_class=storage_class,
        deadline_seconds=deadline,
        pushgateway=pushgateway,
        alerts=alerts,
        stale_after_seconds=stale_after,
        store_secret=store_secret,
        workload_identity_sa=workload_identity_sa,
    )
    check_options(spec)  # fail on a bad flag before compiling
    if plan_path is None and region is not None:
        # Compiled here (not read from --plan): workload selectors get probes of their own.
        from egress.api import CompileRequest, compile_egress
        from egress.k8s.workloads import render_with_workloads

        request = CompileRequest(
            cloud=cloud or "AzureCloud",
            region=region,
            features=tuple(feature or ()),
            policy_path=policy,
        )
        text, plan, workload_probes = render_with_workloads(compile_egress(request), spec)
    else:
        plan = resolve_plan(plan_path, cloud, region, feature or [], policy)
        text, workload_probes = render_manifest(plan, spec), 0
    if azure_alerts is not None:
        from egress.metrics.alerts import alert_rules, azure_rule_group_template

        template = azure_rule_group_template(
            alert_rules(stale_after_seconds=spec.stale_after), cluster=cluster
        )
        write_file(azure_alerts, json.dumps(template, indent=2, sort_keys=True) + "\n")
    if output is None:
        write_stdout(text)
    else:
        write_file(output, text)
    kind = "CronJob" if schedule else "Job"
    names = ", ".join(t.name for t in spec.targets)
    console = stderr_console()
    for warning in warnings(spec):
        console.print(f"[bold yellow]warning:[/] {warning}")
    console.print(
        f"egress probe manifest: {len(spec.targets)} {kind}(s) in namespace {namespace} "
        f"for {names}; plan {plan.plan_hash[:12]} with {len(plan.checks)} checks"
        + (f"; plus {workload_probes} per-workload probe(s)." if workload_probes else ".")
    )
