"""Terminal output: live progress while checks run, then a summary table (all on stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, CheckStatus, RunReport, RunStatus, Verdict

_STYLE = {
    Verdict.REACHABLE: "green",
    Verdict.BLOCKED: "cyan",
    Verdict.UNHEALTHY: "yellow",
    Verdict.INCONCLUSIVE: "magenta",
    Verdict.UNVERIFIABLE: "dim",
}


_LABEL = {
    CheckStatus.LEAK: "[bold red]LEAK[/]",
    CheckStatus.FAIL: "[red]FAIL[/]",
    CheckStatus.UNPROVEN: "[magenta]UNPROVEN[/]",
    CheckStatus.UNVERIFIABLE: "[dim]n/a[/]",
    CheckStatus.PASS: "[green]ok[/]",
}
# Most severe first in the table.
_ORDER = {status: n for n, status in enumerate(_LABEL)}


def summary_table(run: RunReport) -> Table:
    """One row per check, non-compliant first, then by check id."""
    table = Table(title=f"egress probe {run.cloud}/{run.region}", title_justify="left")
    for column in ("", "check", "destination", "expect", "verdict", "reason"):
        table.add_column(column, overflow="fold")
    order = sorted(run.checks, key=lambda r: (_ORDER[r.status], r.check_id))
    for record in order:
        style = _STYLE[record.verdict]
        table.add_row(
            _LABEL[record.status],
            record.check_id,
            f"{record.host}:{record.port}/{record.transport}",
            str(record.expectation),
            f"[{style}]{record.verdict}[/]",
            record.reason,
        )
    return table


def summary_line(run: RunReport) -> str:
    """The closing line: counts, then the run status in the words the report uses, and why."""
    tally = run.tally()
    verdicts = ", ".join(f"{n} {v}" for v, n in tally.by_verdict.items() if n)
    statuses = ", ".join(f"{n} {s}" for s, n in tally.by_status.items() if n)
    blocked = ", ".join(f"{n} {a}" for a, n in tally.blocked_by_assurance.items() if n)
    judgement = run.judgement()
    colour = "green" if judgement.status is RunStatus.COMPLIANT else "red"
    return (
        f"{len(run.checks)} checks: {verdicts}; {statuses}"
        + (f"; blocked by assurance: {blocked}" if blocked else "")
        + f" -> [bold {colour}]{judgement.status.words}[/]: {'; '.join(judgement.reasons)}"
    )


def render_table(run: RunReport, console: Console) -> None:
    console.print(summary_table(run))
    console.print(summary_line(run))


class TableOutput:
    """Live progress bar (when the console is a terminal) and the summary at the end."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, plan: ProbePlan) -> None:
        if not self._console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("probing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=self._console,
            transient=True,
        )
        self._task = self._progress.add_task("", total=len(plan.checks))
        self._progress.start()

    def record(self, record: CheckRecord) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, description=record.check_id)

    def finish(self, run: RunReport) -> None:
        if self._progress is not None:
            self._progress.stop()
        render_table(run, self._console)
