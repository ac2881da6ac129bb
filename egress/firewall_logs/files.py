"""Firewall log files: table exports (JSON, JSON lines, CSV) and storage-account diagnostics.

Recognised shapes (by content, not by file name):

* JSON array of objects keyed by column names (``az monitor log-analytics query`` output);
* JSON lines of such objects (one row per line);
* the query API's own document ``{"tables": [{"columns": [...], "rows": [[...]]}]}``;
* CSV with a header row of column names (the portal's "Export to CSV"; its
  ``TimeGenerated [UTC]`` header names the zone of the times below it);
* the JSON lines diagnostic settings write to a storage account: ``time``, ``category`` (the
  table name), ``properties`` (the columns).

A row's table comes from its ``Type`` column or ``category``; ``--table`` names it when the
export has neither, and must agree with it when it has.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from egress.errors import FirewallLogError
from egress.firewall_logs.model import (
    FirewallDecision,
    LogTable,
    RowError,
    decision_from_columns,
    missing_columns,
    table_named,
)
from egress.firewall_logs.source import (
    AddressFilter,
    LogQuery,
    SourceNotes,
    raw_selects,
    selects,
)
from egress.firewall_logs.timeparse import header_zone, parse_time

# json's C scanner: (object, end) of the JSON value at an index (StopIteration: none there).
_SCANNER: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SUPPORTED = ", ".join(t.value for t in LogTable)
_DENY_WORDS = frozenset({"Deny", "Drop"})


def _time_in(zone: tzinfo | None) -> Callable[[Any], datetime]:
    """The time parser for one export (times without a zone are in `zone`)."""
    return lambda value: parse_time(value, zone)


def _is_deny(action: Any) -> bool:
    return action in _DENY_WORDS or str(action).strip().lower() in ("deny", "drop")


class _Denies(dict[str, bool]):
    """_is_deny of each Action text, worked out once (a million rows repeat a few words)."""

    def __missing__(self, action: str) -> bool:
        deny = _is_deny(action)
        if len(self) < 1000:
            self[action] = deny
        return deny


_DENIES = _Denies()


class FileSource:
    """Decisions read from one or more files; every row is validated, then filtered."""

    def __init__(
        self, paths: tuple[Path, ...], *, table: LogTable | None = None, zone: tzinfo | None = None
    ) -> None:
        self.paths = paths
        self.table = table
        self.zone = zone
        self._notes = SourceNotes()
        self._query: LogQuery | None = None  # while decisions() reads: skip rows cheaply

    @property
    def name(self) -> str:
        return ", ".join(str(p) for p in self.paths)

    @property
    def notes(self) -> SourceNotes:
        return self._notes

    @property
    def complete(self) -> bool:
        return True

    def decisions(self, query: LogQuery) -> Iterator[FirewallDecision]:
        addresses = AddressFilter(query)
        self._notes.records = 0
        self._query = query
        try:
            for path in self.paths:
                for decision in self._read(path):
                    if decision is None:
                        continue
                    self._notes.saw(decision.time)
                    if selects(query, decision, addresses):
                        yield decision
        finally:
            self._query = None

    def latest(self, query: LogQuery) -> datetime | None:
        newest: datetime | None = None
        for path in self.paths:
            for decision in self._read(path):
                if decision is None:
                    continue
                if query.since <= decision.time <= query.until and (
                    newest is None or decision.time > newest
                ):
                    newest = decision.time
        return newest

    # --- reading --------------------------------------------------------------------
    def _read(self, path: Path) -> Iterator[FirewallDecision | None]:
        try:
            handle = path.open(encoding="utf-8-sig", newline="")
        except OSError as error:
            raise FirewallLogError(
                f"cannot read firewall log file {path}: {error.strerror or error}; check the path."
            ) from None
        with handle:
            try:
                head = handle.read(4096)
            except UnicodeDecodeError:
                raise FirewallLogError(
                    f"{path}: is not UTF-8 text; give a JSON, JSON-lines or CSV export."
                ) from None
            handle.seek(0)
            first = head.lstrip()[:1]
            try:
                if first == "[":
                    yield from self._json_document(path, handle.read())
                elif first == "{":
                    yield from self._json_lines_or_document(path, handle)
                elif first:
                    yield from self._csv(path, handle)
            except UnicodeDecodeError:
                raise FirewallLogError(
                    f"{path}: is not UTF-8 text; give a JSON, JSON-lines or CSV export."
                ) from None

    def _json_lines_or_document(self, path: Path, handle: Any) -> Iterator[FirewallDecision | None]:
        first_line = handle.readline()
        try:
            json.loads(first_line)
        except ValueError:
            handle.seek(0)
            yield from self._json_document(path, handle.read())  # pretty-printed document
            return
        handle.seek(0)
        # The C scanner straight away (json.loads adds two Python calls per line); what
        # follows the object on its line must be blank, as json.loads would insist.
        scan = _SCANNER
        query = self._query
        denies_only = query is not None and query.denies_only
        row_filter = query.row_filter if query is not None else None
        # Hot loop (a month is a million lines): rows of a known table that the running query
        # refuses before parsing are counted and skipped here, without building anything.
        known: dict[str, LogTable] = {}
        counted = 0
        time = _time_in(self.zone)
        try:
            for number, line in enumerate(handle, start=1):
                try:
                    item, end = scan(line, 0)
                    after = len(line) - end  # usually just the newline
                    if (
                        after
                        and not (after == 1 and line[end] == "\n")
                        and not line[end:].isspace()
                    ):
                        raise ValueError(line[end:])
                except (StopIteration, ValueError):
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)  # leading blanks; else json's own refusal
                    except ValueError:
                        raise FirewallLogError(
                            f"{path}:{number}: is not a JSON object (a truncated or corrupted "
                            "line); re-export the file or remove the line."
                        ) from None
                if type(item) is dict and query is not None and "properties" not in item:
                    table = known.get(item.get("Type") or "")
                    if table is not None:
                        counted += 1
                        if denies_only:
                            action = item.get("Action")
                            if not (_DENIES[action] if type(action) is str else _is_deny(action)):
                                continue
                        if row_filter is None or row_filter(item):
                            yield self._parsed_line(path, number, table, item, time)
                        continue
                if isinstance(item, dict) and "tables" in item and number == 1:
                    yield from self._api_document(path, item)
                    return
                decision = self._object(path, number, item)
                if type(item) is dict and item.get("Type"):
                    known[item["Type"]] = self._table(f"{path}:{number}", item["Type"])
                yield decision
        finally:
            self._notes.records += counted

    def _json_document(self, path: Path, text: str) -> Iterator[FirewallDecision | None]:
        try:
            document = json.loads(text)
        except ValueError as error:
            raise FirewallLogError(
                f"{path}:{error.lineno}: is not valid JSON ({error.msg}; truncated?); "  # type: ignore[attr-defined]
                "re-export the file."
            ) from None
        if isinstance(document, dict) and "tables" in document:
            yield from self._api_document(path, document)
        elif isinstance(document, list):
            for index, item in enumerate(document, start=1):
                yield self._object(path, index, item, where="entry")
        else:
            raise FirewallLogError(
                f"{path}: holds neither rows nor a query result; give an export of {_SUPPORTED}."
            )

    def _api_document(
        self, path: Path, document: Mapping[str, Any]
    ) -> Iterator[FirewallDecision | None]:
        for t_index, table in enumerate(document.get("tables") or [], start=1):
            try:
                names = [str(c["name"]) for c in table["columns"]]
                rows = table["rows"]
            except (KeyError, TypeError):
                raise FirewallLogError(
                    f"{path}: table {t_index} has no columns/rows; re-export the query result."
                ) from None
            for r_index, row in enumerate(rows, start=1):
                if not isinstance(row, list) or len(row) != len(names):
                    raise FirewallLogError(
                        f"{path}: table {t_index} row {r_index} has {len(row)} values for "
                        f"{len(names)} columns; re-export the query result."
                    )
                yield self._object(path, r_index, dict(zip(names, row, strict=True)), where="row")

    def _object(
        self, path: Path, number: int, item: Any, *, where: str = "line"
    ) -> FirewallDecision | None:
        at = f"{path}:{number}" if where == "line" else f"{path} {where} {number}"
        if not isinstance(item, dict):
            raise FirewallLogError(f"{at}: is not a JSON object of columns; re-export the file.")
        if "category" in item and isinstance(item.get("properties"), dict):
            columns = {**item["properties"], "TimeGenerated": item.get("time")}
            named = str(item["category"])
        else:
            columns = item
            named = str(item.get("Type") or "")
        return self._decision(at, named, columns, self.zone)

    def _decision(
        self, at: str, named: str, columns: Mapping[str, Any], zone: tzinfo | None
    ) -> FirewallDecision | None:
        """The row's decision; None when the running query cannot select it (not parsed)."""
        table = self._table(at, named)
        self._notes.records += 1
        if self._query is not None and not raw_selects(self._query, columns):
            return None
        return self._parsed(at, table, columns, zone)

    def _parsed(
        self, at: str, table: LogTable, columns: Mapping[str, Any], zone: tzinfo | None
    ) -> FirewallDecision:
        try:
            return decision_from_columns(table, columns, _time_in(zone))
        except RowError as error:
            raise FirewallLogError(f"{at}: {error}; fix or re-export the file.") from None

    @staticmethod
    def _parsed_line(
        path: Path,
        number: int,
        table: LogTable,
        columns: Mapping[str, Any],
        time: Callable[[Any], datetime],
    ) -> FirewallDecision:
        """:meth:`_parsed` of a JSON line (the hot loop: its place is named only on error)."""
        try:
            return decision_from_columns(table, columns, time)
        except RowError as error:
            raise FirewallLogError(
                f"{path}:{number}: {error}; fix or re-export the file."
            ) from None

    def _table(self, at: str, named: str) -> LogTable:
        if not named:
            if self.table is None:
                raise FirewallLogError(
                    f"{at}: the row names no table (no Type column or category); pass "
                    f"--table with one of {_SUPPORTED}."
                )
            return self.table
        table = table_named(named)
        if table is None:
            legacy = " (legacy AzureDiagnostics is not supported: switch the diagnostic "
            legacy += "setting to resource-specific tables)" if named == "AzureDiagnostics" else ""
            raise FirewallLogError(
                f"{at}: rows of table {named} are not firewall decisions egress reads{legacy}; "
                f"export one of {_SUPPORTED}."
            )
        if self.table is not None and table is not self.table:
            raise FirewallLogError(
                f"{at}: the row is from {table.value} but --table says {self.table.value}; "
                "drop --table or give the right file."
            )
        return table

    def _csv(self, path: Path, handle: Any) -> Iterator[FirewallDecision | None]:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except csv.Error as error:
            raise FirewallLogError(f"{path}:1: is not a CSV header ({error}).") from None
        zone = self.zone
        names: list[str] = []
        for column in header:
            try:
                name, named_zone, is_time = header_zone(column)
            except RowError as error:
                raise FirewallLogError(f"{path}:1: {error}.") from None
            if is_time and named_zone is not None:
                zone = named_zone  # the header is the export's own word on its zone
            names.append(name)
        type_column = names.index("Type") if "Type" in names else None
        if type_column is None and self.table is not None:
            missing = missing_columns(self.table, frozenset(names))
            if missing:
                raise FirewallLogError(
                    f"{path}:1: the header has no column {', '.join(missing)} that "
                    f"{self.table.value} rows need; export all columns."
                )
        width = len(names)
        try:
            for row in reader:
                if not row:
                    continue
                at = f"{path}:{reader.line_num}"
                if len(row) != width:
                    raise FirewallLogError(
                        f"{at}: has {len(row)} fields for {width} columns (truncated?); "
                        "re-export the file."
                    )
                named = row[type_column] if type_column is not None else ""
                yield self._decision(at, named, dict(zip(names, row, strict=True)), zone)
        except csv.Error as error:
            raise FirewallLogError(f"{path}:{reader.line_num}: is not CSV ({error}).") from None
