"""Runs that could not reach the store wait in a pending file until a later run pushes them.

A pending file holds one whole RunReport per JSON line, appended with a single write and
fsync'd, so a crash leaves at most one truncated last line (which ingest rejects as a whole:
a run is never half stored). `egress report ingest` reads these files as they are, and each
`probe run --store` pushes them first thing after its own run is stored.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from egress.errors import StoreError
from egress.results import RunReport
from egress.store._ingest import RejectedLine, ingest_files
from egress.store._postgres import is_dsn
from egress.store._store import ResultStore

PENDING_SUFFIX = ".pending.jsonl"


def default_pending_path(location: str) -> Path:
    """Next to an SQLite store; in the working folder for a PostgreSQL store."""
    if is_dsn(location):
        return Path("egress" + PENDING_SUFFIX)
    return Path(location + PENDING_SUFFIX)


def _append(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


def write_pending(path: Path, run: RunReport) -> Path:
    """Append the run to `path`, or to the temp folder if that fails; where it went."""
    line = run.model_dump_json().encode("utf-8") + b"\n"
    errors = []
    for target in (path, Path(tempfile.gettempdir()) / f"egress-{run.run_id}{PENDING_SUFFIX}"):
        try:
            _append(target, line)
            return target
        except OSError as exc:
            errors.append(f"{target}: {exc.strerror or exc}")
    raise StoreError(
        f"run {run.run_id} could not be stored and could not be kept in a pending file "
        f"({'; '.join(errors)}); it is only in this run's output (JSON lines, --report)."
    )


@dataclass(frozen=True)
class PushResult:
    runs_added: int
    runs_already_stored: int
    rejected: tuple[RejectedLine, ...]
    files: tuple[Path, ...]


def push_pending(store: ResultStore, path: Path) -> PushResult | None:
    """Ingest the pending file (and leftovers of an interrupted push); None if there is none.

    The file is renamed before it is read, so runs appended meanwhile by another probe land
    in a new pending file instead of being deleted unread. A file is deleted only when every
    line of it was stored or already stored; otherwise it stays for `report ingest`.
    """
    claimed = sorted(path.parent.glob(f"{path.name}.pushing-*"))
    if path.is_file():
        mine = path.with_name(f"{path.name}.pushing-{os.getpid()}")
        try:
            path.rename(mine)
            claimed.append(mine)
        except OSError:
            pass  # another probe claimed it first
    claimed = [p for p in claimed if p.is_file()]
    if not claimed:
        return None
    result = ingest_files(store, claimed)
    bad = {r.file for r in result.rejected}
    for file in claimed:
        if file not in bad:
            file.unlink(missing_ok=True)
    return PushResult(
        result.runs_added, result.runs_already_stored, result.rejected, tuple(claimed)
    )
