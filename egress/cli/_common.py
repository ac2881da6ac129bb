"""What every command shares: one place that turns EgressError into a message and exit code."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from egress.compliance import Assurance
from egress.errors import EgressError, OutputError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from egress.probe_plan import ProbePlan

P = ParamSpec("P")
R = TypeVar("R")


RequireAssuranceOption = Annotated[
    str | None,
    typer.Option(
        "--require-assurance",
        metavar="signature|stated|confirmed",
        help="Count a block as proven only when known at least this surely "
        "(signature < stated < confirmed); weaker blocks are unproven.",
    ),
]


def parse_assurance(text: str | None) -> Assurance | None:
    """The --require-assurance value, or None when not given."""
    if text is None:
        return None
    try:
        return Assurance(text.strip().lower())
    except ValueError:
        known = ", ".join(a.value for a in Assurance)
        raise UsageError(
            f"--require-assurance {text!r} is not an assurance level; use one of: {known}."
        ) from None


def stderr_console() -> Console:
    """Human output (summaries, progress, errors) goes to stderr; artefacts to stdout."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


class _StdoutConsole(Console):
    def on_broken_pipe(self) -> None:  # rich's own handler exits 1, which means non-compliant
        raise stdout_error(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))


def stdout_console() -> Console:
    """Command output meant for stdout (catalog listing, plan), failing cleanly like the rest."""
    return _StdoutConsole(soft_wrap=True, highlight=False)


def fail(error: EgressError) -> typer.Exit:
    """Print an EgressError as `error: ...` (plus `hint: ...`) and return the Exit to raise."""
    console = stderr_console()
    console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    if error.hint:
        console.print(f"[bold]hint:[/] {escape(error.hint)}")
    return typer.Exit(int(error.exit_code))


# Errors of writing to a stream rather than a named file (which its writer translates).
_STREAM_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail a second time."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests capture stdout): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def stdout_error(exc: OSError) -> OutputError:
    """A failed write to standard output (disk full, closed pipe) as the tool's own error."""
    _discard_stdout()
    reason = "the reading end closed the pipe" if exc.errno == errno.EPIPE else exc.strerror
    return OutputError(
        f"cannot write to standard output ({reason}), so the output is incomplete; "
        "write to a file with --output, or check the disk or pipe stdout goes to."
    )


def write_stdout(text: str) -> None:
    """Write an artefact to stdout in full, or fail with exit 5 (never a traceback)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        raise stdout_error(exc) from None


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a user error never shows a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                return command(*args, **kwargs)
            finally:
                sys.stdout.flush()  # a late ENOSPC/EPIPE must surface here, not at exit
        except EgressError as error:
            raise fail(error) from None
        except OSError as exc:
            if exc.errno not in _STREAM_ERRNOS or exc.filename is not None:
                raise
            raise fail(stdout_error(exc)) from None
        except KeyboardInterrupt:
            stderr_console().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def resolve_plan(
    plan_path: Path | None,
    cloud: str | None,
    region: str | None,
    features: list[str],
    policy: Path | None,
) -> ProbePlan:
    """The probe plan from `--plan FILE`, or compiled on the fly from `--region` and friends."""
    if plan_path is not None:
        if cloud or region or features or policy:
            raise UsageError(
                "--plan cannot be combined with --cloud/--region/--feature/--policy; pass "
                "either a plan file or what to compile."
            )
        from egress.probe_plan import load_plan

        return load_plan(plan_path)
    if region is None:
        raise UsageError("pass --plan PATH, or --region (and optionally --cloud) to compile one.")
    from egress.compiler import CompileRequest, compile_request

    request = CompileRequest(
        cloud=cloud or "AzureCloud", region=region, features=tuple(features), policy_path=policy
    )
    return compile_request(request).probe_plan
