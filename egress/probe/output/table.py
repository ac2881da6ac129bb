"""Terminal output: live progress while checks run, then a summary table (all on stderr)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport, RunStatus, Verdict

_STYLE = {
    Verdict.REACHABLE: "green",
    Verdict.BLOCKED: "cyan",
    Verdict.UNHEALTHY: "yellow",
    Verdict.INCONCLUSIVE: "magenta",
    Verdict.UNVERIFIABLE: "dim",
}


def _status(record: CheckRecord) -> str:
    if record.is_leak:
        return "[bold red]LEAK[/]"
    if record.compliant is False:
        return "[red]FAIL[/]"
    if record.compliant is None:
        return "[magenta]n/a[/]"
    return "[green]ok[/]"


def summary_table(run: RunReport) -> Table:
    """One row per check, non-compliant first, then by check id."""
    table = Table(title=f"egress probe {run.cloud}/{run.region}", title_justify="left")
    for column in ("", "check", "destination", "expect", "verdict", "reason"):
        table.add_column(column, overflow="fold")
    order = sorted(run.checks, key=lambda r: (r.compliant is not False, not r.is_leak, r.check_id))
    for record in order:
        style = _STYLE[record.verdict]
        table.add_row(
            _status(record),
            record.check_id,
            f"{record.host}:{record.port}/{record.transport}",
            str(record.expectation),
            f"[{style}]{record.verdict}[/]",
            record.reason,
        )
    return table


def summary_line(run: RunReport) -> str:
    verdicts = Counter(r.verdict for r in run.checks)
    leaks = sum(1 for r in run.checks if r.is_leak)
    failed = sum(1 for r in run.checks if r.compliant is False)
    counts = ", ".join(f"{verdicts[v]} {v}" for v in Verdict if verdicts[v])
    status = run.status()
    outcome = (
        f"[bold green]{status.words}[/]"
        if status is RunStatus.COMPLIANT
        else f"[bold red]{status.words}[/]"
    )
    return (
        f"{len(run.checks)} checks: {counts}; {failed} non-compliant ({leaks} leak(s)) -> {outcome}"
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
