"""Azure Firewall's own word: log sources, corroboration of probe verdicts, explain, reconcile.

Every source implements :class:`DecisionSource`; :data:`SOURCE_KINDS` is the one place they
are registered. A source is named on the command line as ``workspace:<workspace id>`` or as a
file path (an export or a storage account's diagnostic JSON lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from egress.errors import UsageError
from egress.firewall_logs.files import FileSource
from egress.firewall_logs.model import Action, FirewallDecision, LogTable
from egress.firewall_logs.source import DecisionSource, LogQuery, SourceNotes
from egress.model import Cloud

__all__ = [
    "SOURCE_KINDS",
    "Action",
    "DecisionSource",
    "FirewallDecision",
    "LogQuery",
    "LogTable",
    "SourceNotes",
    "SourceOptions",
    "open_source",
]


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What the command line says about how to read any source."""

    cloud: Cloud = Cloud.AZURE_CLOUD
    table: LogTable | None = None  # files: the table when rows do not name it
    zone: tzinfo | None = None  # files: the zone of times written without one
    workspace_endpoint: str | None = None
    authority_host: str | None = None
    connection_verify: str | bool = True


def _files(targets: tuple[str, ...], options: SourceOptions) -> DecisionSource:
    return FileSource(tuple(Path(t) for t in targets), table=options.table, zone=options.zone)


def _workspace(targets: tuple[str, ...], options: SourceOptions) -> DecisionSource:
    # Imported here: the Azure SDK takes a fifth of a second to load, which reading files
    # never needs.
    from egress.firewall_logs.workspace import WorkspaceSettings, WorkspaceSource

    if len(targets) != 1:
        raise UsageError("give one workspace:<id> per command; query several workspaces apart.")
    return WorkspaceSource(
        WorkspaceSettings(
            workspace_id=targets[0],
            cloud=options.cloud,
            endpoint=options.workspace_endpoint,
            authority_host=options.authority_host,
            connection_verify=options.connection_verify,
        )
    )


# kind -> (what it reads, factory); "file" is the default for a plain path.
SOURCE_KINDS: dict[str, tuple[str, Callable[[tuple[str, ...], SourceOptions], DecisionSource]]] = {
    "file": ("export or storage-account diagnostic files", _files),
    "workspace": ("a Log Analytics workspace (its workspace id)", _workspace),
}


def open_source(specs: list[str], options: SourceOptions) -> DecisionSource:
    """One source from `--logs` values: `workspace:<id>`, or file paths (all of one kind)."""
    if not specs:
        raise UsageError("give --logs workspace:<workspace id> or --logs FILE (an export).")
    kinds: dict[str, list[str]] = {}
    for spec in specs:
        kind, sep, target = spec.partition(":")
        if sep and kind in SOURCE_KINDS:
            kinds.setdefault(kind, []).append(target)
        else:
            kinds.setdefault("file", []).append(spec)
    if len(kinds) > 1:
        raise UsageError(
            f"--logs mixes {' and '.join(sorted(kinds))} sources; give one kind per command."
        )
    kind, targets = next(iter(kinds.items()))
    return SOURCE_KINDS[kind][1](tuple(targets), options)
