"""The one interface every probe output implements, and the atomic file write they share."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from egress.errors import OutputError
from egress.probe_plan import ProbePlan
from egress.results import CheckRecord, RunReport


class ProbeOutput(Protocol):
    """Receives the run as it happens: the plan, each finished check, then the whole run."""

    def start(self, plan: ProbePlan) -> None: ...

    def record(self, record: CheckRecord) -> None: ...

    def finish(self, run: RunReport) -> None: ...


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                stream.write(text)
            Path(temp).replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(temp).unlink()
            raise
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot write the file ({exc.strerror or exc}); check the folder and "
            "permissions."
        ) from exc
