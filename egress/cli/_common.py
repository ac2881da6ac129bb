"""What every command shares: one place that turns EgressError into a message and exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from egress.errors import EgressError

P = ParamSpec("P")
R = TypeVar("R")


def stderr_console() -> Console:
    """Human output (summaries, progress, errors) goes to stderr; artefacts to stdout."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


def fail(error: EgressError) -> typer.Exit:
    """Print an EgressError as `error: ...` (plus `hint: ...`) and return the Exit to raise."""
    console = stderr_console()
    console.print(f"[bold red]error:[/] {error.message}", markup=True, highlight=False)
    if error.hint:
        console.print(f"[bold]hint:[/] {error.hint}")
    return typer.Exit(int(error.exit_code))


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a user error never shows a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EgressError as error:
            raise fail(error) from None
        except KeyboardInterrupt:
            stderr_console().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper
