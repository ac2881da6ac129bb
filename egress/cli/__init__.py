"""The thin command-line shell: each module registers its commands on the shared apps."""

from __future__ import annotations

from egress.cli import (  # noqa: F401  (imported for their command registrations)
    azure_cmds,
    compile_cmds,
    firewall_cmds,
    manifest_cmd,
    probe_cmds,
    report_cmds,
)
from egress.cli._apps import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
