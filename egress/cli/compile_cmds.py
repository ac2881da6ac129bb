"""`egress compile`, `egress catalog` and `egress lint`: the compiler on the command line.

Heavy modules (the compiler, pydantic catalog models, targets) are imported inside the
command bodies so `egress --help` and every other command stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from egress.cli._apps import app
from egress.cli._common import guarded, stderr_console, stdout_console, write_stdout
from egress.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from egress.targets.summary import Summary

REGION_HELP = "Azure region the cluster runs in (e.g. eastus)."
CLOUD_HELP = "Azure cloud: AzureCloud, AzureChinaCloud or AzureUSGovernment."
FEATURE_HELP = "Optional feature group to enable (repeatable); 'all' enables every group."
POLICY_HELP = "User policy file (YAML) with sources, firewall IPs, allowances and DNAT."

Region = Annotated[str, typer.Option("--region", help=REGION_HELP)]
CloudOption = Annotated[str, typer.Option("--cloud", help=CLOUD_HELP)]
Features = Annotated[list[str] | None, typer.Option("--feature", help=FEATURE_HELP)]
CatalogDir = Annotated[
    Path | None,
    typer.Option(
        "--catalog-dir",
        file_okay=False,
        help="Folder with the catalog files (AzureCloud.yaml, ...) instead of the bundled one.",
    ),
]
PolicyPath = Annotated[
    Path | None, typer.Option("--policy", help=POLICY_HELP, dir_okay=False, exists=False)
]


def print_summary(console: Console, summary: Summary) -> None:
    """The summary table and notes (collections, rules, destinations, features, warnings)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"egress: {summary.cloud} {summary.region}", title_justify="left")
    for column in ("group", "collection", "kind"):
        table.add_column(column, overflow="fold")
    for column in ("priority", "rules", "destinations"):
        table.add_column(column, justify="right")
    for row in summary.rows:
        table.add_row(
            escape(row.group),
            escape(row.collection),
            f"{row.kind} {row.action.lower()}",
            str(row.priority),
            str(row.rules),
            str(row.destinations),
        )
    table.add_section()
    table.add_row("total", "", "", "", str(summary.rules), str(summary.destinations), style="bold")
    console.print(table)
    console.print(
        f"{summary.rules} rules (a naive one-rule-per-destination/port compile: "
        f"{summary.naive_rules}); {summary.routes} routes; {summary.services} services; "
        f"{summary.probe_checks} probe checks"
    )
    console.print(f"features: {', '.join(summary.features)}", markup=False)
    proxy = "required" if summary.dns_proxy_required else "not required"
    console.print(f"DNS proxy: {proxy} ({summary.dns_proxy_reason})", markup=False)
    if summary.skipped:
        console.print(f"skipped {len(summary.skipped)} catalog entries:")
        for skipped in summary.skipped:
            console.print(f"  - {skipped}", markup=False)
    for warning in summary.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")


@app.command("compile")
@guarded
def compile_command(
    *,
    region: Region = "eastus",
    cloud: CloudOption = "AzureCloud",
    feature: Features = None,
    policy: PolicyPath = None,
    catalog_dir: CatalogDir = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="Target to write (repeatable); default: the Azure targets; 'all': every target.",
        ),
    ] = None,
    service_tags: Annotated[
        Path | None,
        typer.Option(
            "--service-tags",
            metavar="FILE",
            dir_okay=False,
            help="ServiceTags_Public_*.json: prefixes for targets that cannot use service tags.",
        ),
    ] = None,
    appliance_dir: Annotated[
        str,
        typer.Option(
            "--appliance-dir",
            help="appliance target: folder its files are installed in (TLS key, logs).",
        ),
    ] = "/etc/egress-appliance",
    appliance_dns: Annotated[
        str,
        typer.Option(
            "--appliance-dns", help="appliance target: resolver its DNS proxy forwards to."
        ),
    ] = "168.63.129.16",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output folder, replaced atomically [default: egress-out]."
        ),
    ] = None,
    stdout: Annotated[
        str | None,
        typer.Option(
            "--stdout",
            metavar="TARGET",
            help="Write this one target to stdout instead of the output folder.",
        ),
    ] = None,
) -> None:
    """Compile the AKS egress requirements into firewall rules, routes, templates and a plan."""
    from rich.markup import escape

    from egress.api import (
        CompileRequest,
        RenderInputs,
        compile_egress,
        parse_targets,
        read_service_tags,
        render,
    )
    from egress.catalog.names import check_ip
    from egress.output import write_outputs
    from egress.targets.summary import summarize

    if stdout == "all":
        raise UsageError("--stdout takes one target name, not 'all'; use --output for all.")
    names = parse_targets([stdout] if stdout is not None else (target or []))
    if stdout is not None and (target or output is not None):
        flag = "--target" if target else "--output"
        raise UsageError(
            f"--stdout {stdout} writes one target to stdout and cannot be combined with {flag}; "
            f"drop {flag}, or drop --stdout to write files."
        )
    try:
        appliance_dns = check_ip(appliance_dns)
    except ValueError as error:
        raise UsageError(f"--appliance-dns: {error}.") from None
    tags = read_service_tags(service_tags)
    compiled = compile_egress(
        CompileRequest(
            cloud=cloud,
            region=region,
            features=tuple(feature or ()),
            policy_path=policy,
            catalog_dir=catalog_dir,
        )
    )
    inputs = RenderInputs(
        service_tags=tags, appliance_dir=appliance_dir, appliance_upstream_dns=appliance_dns
    )
    rendered = render(compiled, names, inputs=inputs)
    files, warnings = rendered.files, rendered.warnings
    console = stderr_console()
    if stdout is not None:
        if not files:
            raise UsageError(
                f"target '{stdout}' has nothing to write for this policy "
                "(k8s-services needs a DNAT publication in the policy file)."
            )
        if len(files) > 1:
            raise UsageError(
                f"--stdout writes one file, but target '{stdout}' writes "
                f"{', '.join(sorted(files))} for this policy; use --target {stdout} --output DIR."
            )
        (text,) = files.values()
        write_stdout(text)
        for warning in (*compiled.warnings, *warnings):
            console.print(f"[bold yellow]warning:[/] {escape(warning)}")
        return
    output = output or Path("egress-out")
    write_outputs(files, output)
    print_summary(console, summarize(compiled, warnings))
    console.print(f"wrote {len(files)} files to {output}: {', '.join(sorted(files))}", markup=False)


@app.command("catalog")
@guarded
def catalog_command(
    cloud: Annotated[
        str | None, typer.Option("--cloud", help="Only this cloud (default: all clouds).")
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", help="Only these feature groups.")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Expand {region} placeholders for this region.")
    ] = None,
    catalog_dir: CatalogDir = None,
) -> None:
    """List the clouds, regions, feature groups and entries of the catalog (fqdn_lists/)."""

    from egress import api
    from egress.catalog import expand_region, load_catalog
    from egress.model import Cloud

    console = stdout_console()
    clouds = [cloud] if cloud is not None else [c.value for c in Cloud]
    for name in clouds:
        catalog = load_catalog(name, catalog_dir)
        names = list(catalog.feature_names)
        for wanted in feature or []:
            if wanted not in names:
                raise UsageError(
                    f"unknown feature '{wanted}' for {catalog.cloud.value}; "
                    f"{api.suggestion(wanted, names)}"
                )
        if region is not None and region not in catalog.regions:
            raise UsageError(
                f"unknown region '{region}' for {catalog.cloud.value}; "
                f"{api.suggestion(region, list(catalog.regions))}"
            )
        console.print(f"[bold]{catalog.cloud.value}[/] ({len(catalog.regions)} regions)")
        console.print("  regions: " + ", ".join(catalog.regions), markup=False)
        console.print("  features: " + ", ".join(names), markup=False)
        for group in catalog.features:
            if feature and group.name not in feature:
                continue
            console.print(f"  {group.name}: {group.description}", markup=False)
            for entry in group.entries:
                destination = (
                    expand_region(entry.destination, region) if region else entry.destination
                )
                conditions = f" (only if {', '.join(entry.conditions)})" if entry.conditions else ""
                console.print(
                    f"    {entry.id}: {entry.type} {destination} "
                    f"[{', '.join(entry.ports)}]{conditions} - {entry.purpose}",
                    markup=False,
                )


@app.command("lint")
@guarded
def lint_command(
    policy: PolicyPath = None,
    region: Region = "eastus",
    cloud: CloudOption = "AzureCloud",
    feature: Features = None,
    catalog_dir: CatalogDir = None,
) -> None:
    """Check the policy and compiled rules against AKS and Azure Firewall constraints."""
    from rich.markup import escape

    from egress.compiler import CompileRequest
    from egress.compiler.lint import lint

    report = lint(
        CompileRequest(
            cloud=cloud,
            region=region,
            features=tuple(feature or ()),
            policy_path=policy,
            catalog_dir=catalog_dir,
        )
    )
    console = stderr_console()
    for finding in report.errors:
        console.print(f"[bold red]error:[/] {escape(str(finding))}")
    for finding in report.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(str(finding))}")
    console.print(f"{len(report.errors)} errors, {len(report.warnings)} warnings")
    if report.errors:
        raise typer.Exit(int(ExitCode.USAGE))
