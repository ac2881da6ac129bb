"""The Typer applications every command module attaches to (no other state here)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="egress",
    help="Compile, apply and prove AKS egress rules behind Azure Firewall.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
probe_app = typer.Typer(
    help="Prove from inside the cluster that required endpoints work and all else is blocked.",
    no_args_is_help=True,
)
app.add_typer(probe_app, name="probe")
