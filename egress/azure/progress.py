"""Progress of `egress apply` on stderr: a live spinner on a terminal, one line per write always."""

from __future__ import annotations

from rich.console import Console
from rich.status import Status


class ConsoleReporter:
    """The executor Reporter for the command line."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None

    def begin(self, label: str) -> None:
        if self._console.is_terminal:
            self._status = self._console.status(f"{label} ...")
            self._status.start()

    def waiting(self, label: str, status: str, elapsed: float) -> None:
        if self._status is not None:
            self._status.update(f"{label} ... {status} ({elapsed:.0f}s)")

    def end(self, label: str, elapsed: float) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self._console.print(f"  done: {label} ({elapsed:.1f}s)", markup=False)

    def note(self, text: str) -> None:
        self._console.print(f"  waiting: {text}", markup=False)
