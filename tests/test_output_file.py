"""The single-file writer: atomic for regular files, and never replaces a device or a link."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from egress.errors import OutputError
from egress.output import write_file


def test_a_regular_file_is_replaced_whole_and_no_temp_is_left(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    write_file(target, "first")
    write_file(target, ["sec", "ond"])
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_a_fifo_is_written_in_place_and_stays_a_fifo(tmp_path: Path) -> None:
    # stands for -o /dev/null or /dev/stdout: a rename would put a regular file in its place
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    write_file(fifo, "through the pipe")
    reader.join(timeout=10)
    assert received == ["through the pipe"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_symlink_keeps_pointing_at_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    write_file(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_folder_in_the_way_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        write_file(tmp_path / "taken", "x")
