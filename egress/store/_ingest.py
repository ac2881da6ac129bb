"""Load JSON-lines records and RunReport files into the store, keeping every good line.

Input is what `kubectl logs` gathers from probe pods: one CheckRecord JSON object per line
and one RunSummary line per run (optionally behind kubectl's `--prefix` / `--timestamps`
decorations), or whole RunReport documents (`egress probe run --report`). Lines are grouped
back into runs by run id; each bad line is reported with its file and line number and the
rest is kept. A summary line is checked against the check lines of its run: when they
disagree (a line lost or edited) the summary's line is rejected, naming every difference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from egress.errors import PlanFileError, UsageError
from egress.results import CheckRecord, RunReport, RunSummary
from egress.store._store import ResultStore, acyclic_work, check_run

# Runs are written in transactions of about this many check rows (each run whole).
BATCH_CHECKS = 20_000

# kubectl logs --prefix adds "[pod/name/container] ", --timestamps adds "2026-...Z ".
_KUBECTL_DECORATION = re.compile(
    r"^(\[[^\]]*\]\s+)?(\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-][0-9:]+)\s+)?"
)


@dataclass(frozen=True)
class RejectedLine:
    """One input line that could not be used, and why."""

    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did: runs added, runs already present, and every rejected line."""

    runs_added: int
    runs_already_stored: int
    checks_added: int
    rejected: tuple[RejectedLine, ...]


@dataclass
class _PendingRun:
    first: tuple[Path, int]
    identity: dict[str, Any]
    checks: dict[str, tuple[CheckRecord, tuple[Path, int]]] = field(default_factory=dict)


@dataclass
class _Collector:
    documents: dict[str, tuple[RunReport, tuple[Path, int]]] = field(default_factory=dict)
    pending: dict[str, _PendingRun] = field(default_factory=dict)
    summaries: dict[str, tuple[RunSummary, tuple[Path, int]]] = field(default_factory=dict)
    rejected: list[RejectedLine] = field(default_factory=list)
    duplicate_documents: int = 0

    def reject(self, where: tuple[Path, int], reason: str) -> None:
        self.rejected.append(RejectedLine(where[0], where[1], reason))

    def add_document(self, run: RunReport, where: tuple[Path, int]) -> None:
        if run.run_id in self.documents:
            self.duplicate_documents += 1
        else:
            self.documents[run.run_id] = (run, where)

    def add_check(self, record: CheckRecord, where: tuple[Path, int]) -> None:
        identity = record.model_dump(
            mode="json", include={"plan_hash", "tool_version", "cloud", "region", "location"}
        )
        run = self.pending.setdefault(record.run_id, _PendingRun(where, identity))
        if identity != run.identity:
            first_file, first_line = run.first
            self.reject(
                where,
                f"run {record.run_id} is described differently (plan hash, version, cloud, "
                f"region or location) than at {first_file}:{first_line}",
            )
            return
        seen = run.checks.get(record.check_id)
        if seen is None:
            run.checks[record.check_id] = (record, where)
        elif seen[0] != record:
            self.reject(
                where,
                f"check {record.check_id} of run {record.run_id} was already read at "
                f"{seen[1][0]}:{seen[1][1]} with a different result",
            )
        # an identical repeated line (logs gathered twice) is dropped silently

    def add_summary(self, summary: RunSummary, where: tuple[Path, int]) -> None:
        seen = self.summaries.get(summary.run_id)
        if seen is None:
            self.summaries[summary.run_id] = (summary, where)
        elif seen[0] != summary:
            self.reject(
                where,
                f"the summary of run {summary.run_id} differs from the one read at "
                f"{seen[1][0]}:{seen[1][1]}",
            )

    def runs(self) -> list[tuple[RunReport, tuple[Path, int]]]:
        """Whole documents first, then runs rebuilt from lines (unless a document has them);
        each summary line is checked against the run it summarises."""
        result = list(self.documents.values())
        for run_id, pending in self.pending.items():
            if run_id in self.documents:
                continue
            checks = [record for record, _ in pending.checks.values()]
            summary = self.summaries.get(run_id)
            run = RunReport.model_validate(
                {
                    **pending.identity,
                    "run_id": run_id,
                    "started_at": summary[0].started_at
                    if summary
                    else min(c.started_at for c in checks),
                    "finished_at": summary[0].finished_at
                    if summary
                    else max(c.finished_at for c in checks),
                    "checks": checks,
                    "strict": summary[0].strict if summary else False,
                    "require_assurance": summary[0].require_assurance if summary else None,
                }
            )
            result.append((run, pending.first))
        by_id = {run.run_id: run for run, _ in result}
        for run_id, (stated, where) in self.summaries.items():
            summarised = by_id.get(run_id)
            if summarised is None:
                self.reject(where, f"the summary of run {run_id} has no check lines with it")
                continue
            differences = _differences(stated, RunSummary.of(summarised))
            if differences:
                self.reject(
                    where,
                    f"the summary of run {run_id} disagrees with its {len(summarised.checks)} "
                    f"check "
                    f"record(s): {'; '.join(differences)}",
                )
        return result


def _differences(stated: RunSummary, counted: RunSummary) -> list[str]:
    """Each field where a summary line and the recount of its check lines differ."""
    said, found = stated.model_dump(mode="json"), counted.model_dump(mode="json")
    return [
        f"{name}: the summary says {said[name]}, the check records make {found[name]}"
        for name in said
        if said[name] != found[name]
    ]


def _explain(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"field '{where}' is invalid: {first['msg']}{more}"


def _read_object(
    collector: _Collector, data: object, where: tuple[Path, int], *, document: bool
) -> None:
    if not isinstance(data, dict):
        collector.reject(where, "not a JSON object")
        return
    try:
        if data.get("record") == "check":
            collector.add_check(CheckRecord.model_validate(data), where)
        elif data.get("record") == "summary":
            collector.add_summary(RunSummary.model_validate(data), where)
        elif "checks" in data:
            collector.add_document(RunReport.model_validate(data), where)
        else:
            kind = "document" if document else "line"
            collector.reject(
                where,
                f'this {kind} is neither a check record ("record": "check"), a run summary '
                '("record": "summary") nor a run report',
            )
    except ValidationError as exc:
        collector.reject(where, _explain(exc))


def _read_file(collector: _Collector, path: Path, *, ignore_non_json: bool) -> None:
    raw = path.read_bytes()
    try:
        whole = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        whole = None
    if isinstance(whole, dict) and "checks" in whole and "record" not in whole:  # a RunReport
        _read_object(collector, whole, (path, 1), document=True)
        return
    for number, line_bytes in enumerate(raw.splitlines(), start=1):
        where = (path, number)
        try:
            line = line_bytes.decode("utf-8").strip()
        except UnicodeDecodeError:
            collector.reject(where, "not valid UTF-8")
            continue
        line = _KUBECTL_DECORATION.sub("", line, count=1)
        if not line:
            continue
        if not line.startswith("{"):
            if not ignore_non_json:
                collector.reject(where, f"not a JSON record: {line[:60]!r}")
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            collector.reject(where, f"invalid JSON: {exc}")
            continue
        except RecursionError:
            collector.reject(where, "JSON nested too deeply for a probe record")
            continue
        _read_object(collector, data, where, document=False)


def ingest_files(
    store: ResultStore, paths: Sequence[Path], *, ignore_non_json: bool = False
) -> IngestResult:
    """Read every file, then append each run in its own transaction (dedupe by run id)."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"cannot read {', '.join(missing)}: no such file; nothing was ingested.")
    with acyclic_work():  # every record is kept until its run is whole
        return _ingest(store, paths, ignore_non_json=ignore_non_json)


def _ingest(store: ResultStore, paths: Sequence[Path], *, ignore_non_json: bool) -> IngestResult:
    collector = _Collector()
    for path in paths:
        _read_file(collector, path, ignore_non_json=ignore_non_json)
    added = already = checks = 0
    batch: list[RunReport] = []

    def flush() -> None:
        nonlocal added, checks
        nonlocal already
        if batch:
            new = set(store.append_runs(batch))  # a concurrent writer may have stored some
            added += len(new)
            already += len(batch) - len(new)
            checks += sum(len(run.checks) for run in batch if run.run_id in new)
            batch.clear()

    known: set[str] = set()
    batched = 0  # check rows in `batch`
    for run, where in collector.runs():
        try:
            check_run(run)
        except PlanFileError as exc:
            collector.reject(where, exc.message)
            continue
        if store.has_run(run.run_id) or run.run_id in known:
            already += 1
            continue
        known.add(run.run_id)
        batch.append(run)
        batched += len(run.checks)
        if batched >= BATCH_CHECKS:
            flush()
            batched = 0
    flush()
    return IngestResult(
        runs_added=added,
        runs_already_stored=already + collector.duplicate_documents,
        checks_added=checks,
        rejected=tuple(_sorted(collector.rejected)),
    )


def read_runs(paths: Sequence[Path]) -> tuple[list[RunReport], tuple[RejectedLine, ...]]:
    """Parse files into runs by the same rules as ingest_files, without storing them."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"cannot read {', '.join(missing)}: no such file.")
    collector = _Collector()
    with acyclic_work():
        for path in paths:
            _read_file(collector, path, ignore_non_json=False)
        runs = [run for run, _ in collector.runs()]
    return runs, tuple(_sorted(collector.rejected))


def _sorted(rejected: Iterable[RejectedLine]) -> list[RejectedLine]:
    return sorted(rejected, key=lambda r: (str(r.file), r.line))
