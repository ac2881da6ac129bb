"""Fuzz `egress report ingest` with JSON lines: mutated records, junk JSON, raw bytes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_cli import fuzz_settings, run, scratch
from fuzz_strategies import JSON_VALUES, SMALL_JSON_VALUES, mutate_tree, mutated_bytes
from store.sample_runs import make_run

RUN = make_run("fuzz-run", datetime(2026, 11, 20, tzinfo=UTC))
RECORDS = [json.loads(check.model_dump_json()) for check in RUN.checks]
LINES = "\n".join(json.dumps(r) for r in RECORDS[:3]).encode() + b"\n"
DECORATIONS = st.sampled_from(
    ["", "[pod/egress-probe-x/probe] ", "2026-11-20T00:00:00.123456789Z ", "[p] 2026-11-20T00:00Z "]
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with scratch("fuzz-ingest-") as folder:
        yield Path(folder)


def _ingest(workdir: Path, data: bytes, *flags: str) -> None:
    logs = workdir / "logs.jsonl"
    logs.write_bytes(data)
    result = run(["report", "ingest", "--store", str(workdir / "store.sqlite"), str(logs), *flags])
    assert result.exit_code in (0, 2), result.stderr
    assert "ingested" in result.stderr  # every line was read, accepted or rejected by number


@st.composite
def record_lines(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        record: Any = copy.deepcopy(draw(st.sampled_from(RECORDS)))
        record = mutate_tree(draw, record, SMALL_JSON_VALUES, draw(st.integers(0, 3)))
        if draw(st.booleans()):
            record["run_id"] = draw(st.sampled_from(["fuzz-run", "other", ""]))
        text = json.dumps(record, ensure_ascii=draw(st.booleans()), allow_nan=True)
        lines.append(draw(DECORATIONS) + text)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@fuzz_settings(800)
@given(data=record_lines(), ignore=st.booleans())
def test_ingest_structured(workdir: Path, data: bytes, ignore: bool) -> None:
    _ingest(workdir, data, *(["--ignore-non-json"] if ignore else []))


@fuzz_settings(700)
@given(
    data=st.one_of(
        mutated_bytes(LINES),
        st.binary(max_size=200),
        JSON_VALUES.map(lambda v: json.dumps(v).encode() + b"\n"),
        st.integers(1, 5000).map(lambda depth: b'{"checks":' + b"[" * depth + b"]" * depth + b"}"),
    )
)
def test_ingest_bytes(workdir: Path, data: bytes) -> None:
    _ingest(workdir, data)
