"""The Typer applications every command module attaches to, and the options they all share."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="egress",
    help="Compile, apply and prove AKS egress rules behind Azure Firewall.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
probe_app = typer.Typer(
    help="Prove from inside the cluster that required endpoints work and all else is blocked.",
    no_args_is_help=True,
)
app.add_typer(probe_app, name="probe")


def _print_version(value: bool) -> None:
    if value:
        from egress import __version__

        typer.echo(f"egress {__version__}")
        raise typer.Exit()


def configure_logging(verbose: bool) -> None:
    """The Azure SDK logs every failed credential attempt; show that only with --verbose.

    Without a handler of its own, a library's warnings reach Python's last-resort stderr
    handler, printing a dozen lines before egress's one-sentence error.
    """
    azure = logging.getLogger("azure")
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        azure.handlers = [handler]
        azure.setLevel(logging.INFO)
    else:
        azure.handlers = [logging.NullHandler()]
        azure.setLevel(logging.WARNING)


@app.callback()
def root(
    *,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show the Azure SDK's log output (sign-in attempts, HTTP)."
        ),
    ] = False,
) -> None:
    """Compile, apply and prove AKS egress rules behind Azure Firewall."""
    configure_logging(verbose)
