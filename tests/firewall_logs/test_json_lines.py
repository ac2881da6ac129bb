"""The JSON-lines reader's fast scan refuses what json.loads refuses, naming file and line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from test_join_rules import T0, row

from egress.errors import FirewallLogError
from egress.firewall_logs.files import FileSource
from egress.firewall_logs.source import LogQuery

QUERY = LogQuery(since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))


def _read(tmp_path: Path, lines: list[str]) -> int:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(lines))
    return len(list(FileSource((path,)).decisions(QUERY)))


def test_blank_lines_and_leading_blanks_are_read_as_json_loads_reads_them(
    tmp_path: Path,
) -> None:
    good = json.dumps(row("Deny"))
    assert _read(tmp_path, [good + "\n", "\n", "  " + good + "  \r\n", good]) == 3


@pytest.mark.parametrize(
    "bad",
    [
        '{"Type": "AZFWApplicationRule"} trailing\n',  # an object, then garbage
        '{"Type": "AZFWApplicationRule", "TimeGen\n',  # cut mid-line
        "[1, 2]x\n",
        "nul\n",
    ],
)
def test_a_bad_line_names_the_file_and_its_line(tmp_path: Path, bad: str) -> None:
    good = json.dumps(row("Deny")) + "\n"
    with pytest.raises(FirewallLogError, match=r"rows\.jsonl:3: is not a JSON object"):
        _read(tmp_path, [good, good, bad, good])


def test_rows_the_join_refuses_are_still_json_checked_but_not_parsed(tmp_path: Path) -> None:
    """verify's row filter skips rows that cannot be an attempt before parsing them (a
    missing column there is no error), yet a broken line anywhere still names its line."""
    refusing = LogQuery(since=QUERY.since, until=QUERY.until, row_filter=lambda columns: False)
    path = tmp_path / "rows.jsonl"
    good = json.dumps(row("Deny")) + "\n"
    incomplete = json.dumps({k: v for k, v in row("Deny").items() if k != "Fqdn"}) + "\n"
    path.write_text(good + incomplete + good)
    source = FileSource((path,))
    assert list(source.decisions(refusing)) == []
    assert source.notes.records == 3
    path.write_text(good + incomplete + '{"Type": "AZFWApplicationRule", "Sour\n' + good)
    with pytest.raises(FirewallLogError, match=r"rows\.jsonl:3: is not a JSON object"):
        list(FileSource((path,)).decisions(refusing))
    with pytest.raises(FirewallLogError, match=r"rows\.jsonl:2: .*no column Fqdn"):
        list(FileSource((path,)).decisions(QUERY))
