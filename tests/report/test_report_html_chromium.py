"""The HTML report opened in headless Chromium: it renders, and shows the leak banner."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli import app
from egress.store import ResultStore

from store.sample_runs import BASE, fixed_history

LEAK_BANNER = (0xA5, 0x11, 0x11)  # .status.leak background in the page's CSS


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png_rows(data: bytes, max_rows: int) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the first `max_rows` unfiltered rows (8-bit only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0, "only 8-bit non-interlaced screenshots expected"
    bpp = {2: 3, 6: 4}[colour]
    raw = zlib.decompressobj().decompress(idat, max_rows * (width * bpp + 1))
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(min(max_rows, height)):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = previous[x]
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                upleft = previous[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + _paeth(left, up, upleft)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is missing; scripts/test.sh installs it from .ci/apt-packages.txt"
            )
        pytest.skip("chromium is not installed (apt-get install chromium)")
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        for run in fixed_history():
            store.append_run(run)
    page = tmp_path / "report.html"
    now = BASE.replace(hour=7).isoformat()
    args = [
        "report",
        "--store",
        str(store_path),
        "--now",
        now,
        "--days",
        "1",
        "--format",
        "html",
        "--output",
        str(page),
    ]
    assert CliRunner().invoke(app, args).exit_code == 1
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1280,2000",
            f"file://{page}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    keep = os.environ.get("EGRESS_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(screenshot, keep)
    width, height, bpp, rows = decode_png_rows(screenshot.read_bytes(), max_rows=400)
    assert (width, height) == (1280, 2000)
    pixels = [bytes(row[x : x + 3]) for row in rows[::4] for x in range(0, len(row), bpp * 4)]
    assert len(set(pixels)) > 20, "the page looks blank"
    non_white = sum(p != b"\xff\xff\xff" for p in pixels) / len(pixels)
    assert non_white > 0.02, "almost nothing was drawn"
    assert bytes(LEAK_BANNER) in pixels, "the red leak status banner is not on screen"
