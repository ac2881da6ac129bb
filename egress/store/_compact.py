"""Store each result as a shared outcome plus its few per-run numbers, losslessly.

Run after run, a passing check produces the same reason, evidence and attempts except for
timings: durations, the moment each attempt started, an ephemeral source port. So a stored
result is split in two:

- the *outcome*: verdict, status, assurance, assumption, reason, evidence and attempts as
  canonical JSON with every number cut out of the text (a `#` left in its place; attempt
  starts become microsecond offsets first), stored once per distinct content and
  referenced by its digest;
- the *timing*: the numbers cut out, in text order, as a short JSON array, after the
  check's start and duration (microseconds from the run's start), and last the attempts'
  source addresses as a list when any attempt recorded one (left out otherwise: 8 bytes
  less per PostgreSQL row in the usual case; stores written earlier always have the list).

Joining them gives back exactly the result that was stored, failing or passing, changed or
not: evidence is never summarised or dropped, only deduplicated.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from json.encoder import encode_basestring as _quote  # C, as json.dumps(ensure_ascii=False)
from marshal import dumps as _dumps
from typing import Any

from egress.results import CheckRecord
from egress.store._dialect import Connection, Dialect

# JSON tokens that matter here: a string (kept whole, whatever it holds) or a number.
_TOKENS = re.compile(r'("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)")
# In a stored body, `#` outside strings marks where a number was (never valid JSON there).
_HOLES = re.compile(r'("(?:[^"\\]|\\.)*")|(#)')
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Outcome:
    """The shared part of a result, identified by the digest of its canonical JSON."""

    digest: str
    verdict: str
    status: str
    assurance: str | None
    body: str

    @property
    def row(self) -> tuple[str, str, str | None, str]:
        return (self.verdict, self.status, self.assurance, self.body)


def _micros(later: datetime, earlier: datetime) -> int:
    return (later - earlier) // _MICROSECOND


def split(check: CheckRecord, run_started_at: datetime) -> tuple[Outcome, str]:
    """(outcome, timing JSON) of one result of a run that started at `run_started_at`.

    The same text as :func:`split_parts` (the proven reference), built without dumping the
    models: the body is written field by field with each number cut out as it is met, and
    anything :func:`_json` does not write exactly as `split_parts` would (a non-string key,
    NaN, a type JSON has no word for) takes the reference path instead.
    """
    try:
        return _split_fast(check, run_started_at)
    except (_NotPlainError, ValueError):  # ValueError: marshal refused a value
        return split_slow(check, run_started_at)


def split_slow(check: CheckRecord, run_started_at: datetime) -> tuple[Outcome, str]:
    """:func:`split` through the models' own dumps and :func:`split_parts`."""
    return split_parts(
        run_started_at=run_started_at,
        started_at=check.started_at,
        finished_at=check.finished_at,
        attempts=[(a.started_at, a.model_dump(mode="json")) for a in check.attempts],
        evidence=check.evidence,
        reason=check.reason,
        assumption=check.assumption,
        verdict=check.verdict.value,
        status=check.status.value,
        assurance=None if check.assurance is None else check.assurance.value,
    )


class _NotPlainError(Exception):
    """A value the fast writer leaves to the reference path."""


def _json(value: Any, out: list[str], numbers: list[str]) -> None:
    """Append `value` as canonical JSON to `out`, each number as `#` and its text to `numbers`.

    Only plain JSON values; json.dumps(sort_keys=True, ensure_ascii=False) writes them the
    same way (its C writer also uses int and float repr and this string escaper).
    """
    kind = type(value)
    if kind is dict:
        _object(value, out, numbers)
    elif kind is list or kind is tuple:
        mark = "["
        for item in value:
            out.append(mark)
            _json(item, out, numbers)
            mark = ","
        out.append("[]" if mark == "[" else "]")
    else:
        out.append(_scalar(value, kind, numbers))


def _object(value: dict[Any, Any], out: list[str], numbers: list[str]) -> None:
    """:func:`_json` of a dict, its scalar members inline (most of what a result holds)."""
    mark = "{"
    for key in sorted(value) if len(value) > 1 else value:
        if type(key) is not str:
            raise _NotPlainError
        item = value[key]
        kind = type(item)
        if kind is str:
            out.append(mark + _quote(key) + ":" + _quote(item))
        elif kind is dict or kind is list or kind is tuple:
            out.append(mark + _quote(key) + ":")
            _json(item, out, numbers)
        else:
            out.append(mark + _quote(key) + ":" + _scalar(item, kind, numbers))
        mark = ","
    out.append("{}" if mark == "{" else "}")


def _scalar(value: Any, kind: type, numbers: list[str]) -> str:
    if kind is str:
        return _quote(value)
    if kind is int:
        numbers.append(int.__repr__(value))
        return "#"
    if kind is float:
        if not math.isfinite(value):
            raise _NotPlainError  # NaN/Infinity: json.dumps and pydantic's dump disagree
        numbers.append(float.__repr__(value))
        return "#"
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    raise _NotPlainError


_Pieces = tuple[str, tuple[str, ...], str]  # text, the numbers cut from it, text after one more


class _SeenValues(dict[bytes, _Pieces]):
    """The canonical pieces of values met before, by their marshal bytes: `seen[dumps(v, 2)]`.

    A passing check's evidence and most phases are the same run after run but for a few
    numbers. marshal (format 2: no back-references, so equal values give equal bytes) is
    one fast C call that accepts only exact str/int/float/bool/None/tuple/list/dict values
    (ValueError otherwise: the caller takes the reference path) and keeps types and float
    bits, so equal bytes mean equal values of equal types, which :func:`_json` writes alike.
    A value first met is read back from its bytes (exactly) and written by `make`.
    """

    def __init__(self, make: Callable[[Any], _Pieces], size: int = 8192) -> None:
        super().__init__()
        self._make = make
        self._size = size

    def __missing__(self, key: bytes) -> _Pieces:
        made = self._make(marshal.loads(key))
        if len(self) >= self._size:
            self.clear()  # values that change every run (ports): start afresh
        self[key] = made
        return made


def _value_pieces(value: Any) -> _Pieces:
    out: list[str] = []
    numbers: list[str] = []
    _json(value, out, numbers)
    return "".join(out), tuple(numbers), ""


def _phase_pieces(parts: tuple[str, bool, dict[str, Any]]) -> _Pieces:
    """A phase but for its duration: `{"detail":...,"duration_ms":` and `,"name":...}`."""
    name, ok, detail = parts
    text, numbers, _ = _value_pieces(detail)
    tail = ',"name":' + _quote(name) + (',"ok":true}' if ok else ',"ok":false}')
    return '{"detail":' + text + ',"duration_ms":', numbers, tail


_EVIDENCE = _SeenValues(_value_pieces)
_PHASE = _SeenValues(_phase_pieces)


def _split_fast(check: CheckRecord, run_started_at: datetime) -> tuple[Outcome, str]:
    started = check.started_at
    numbers = [
        str((started - run_started_at) // _MICROSECOND),
        str((check.finished_at - started) // _MICROSECOND),
    ]
    assumption = check.assumption
    out = ['{"assumption":' + ("null" if assumption is None else _quote(assumption))]
    mark = ',"attempts":['
    addresses = []
    for attempt in check.attempts:  # keys in sorted order, local_address left to the timing
        port = attempt.local_port
        if port is None:
            out.append(mark + '{"local_port":null,"phases":[')
        elif type(port) is int:
            out.append(mark + '{"local_port":#,"phases":[')
            numbers.append(int.__repr__(port))
        else:
            raise _NotPlainError
        mark = ""
        for phase in attempt.phases:
            head, found, tail = _PHASE[_dumps((phase.name, phase.ok, phase.detail), 2)]
            duration = phase.duration_ms
            numbers += found
            if type(duration) is float and math.isfinite(duration):
                out.append(f"{mark}{head}#{tail}")
                numbers.append(float.__repr__(duration))
            else:
                out.append(f"{mark}{head}{_scalar(duration, type(duration), numbers)}{tail}")
            mark = ","
        reason, verdict = _quote(attempt.reason), _quote(attempt.verdict._value_)
        out.append(f'],"reason":{reason},"started_at":#,"verdict":{verdict}}}')
        numbers.append(str((attempt.started_at - started) // _MICROSECOND))
        addresses.append(attempt.local_address)
        mark = ","
    out.append('],"evidence":' if addresses else ',"attempts":[],"evidence":')
    text, found, _ = _EVIDENCE[_dumps(check.evidence, 2)]
    out.append(text)
    numbers += found
    out.append(',"reason":' + _quote(check.reason) + "}")
    assurance = check.assurance
    outcome = _outcome(
        check.verdict._value_,
        check.status._value_,
        None if assurance is None else assurance._value_,
        "".join(out),
    )
    if addresses.count(None) != len(addresses):  # none recorded (usual): the list is left out
        numbers.append(json.dumps(addresses, separators=(",", ":")))
    return outcome, "[" + ",".join(numbers) + "]"


@lru_cache(maxsize=16384)  # ~10 MB at most: a fleet has few distinct outcomes
def _outcome(verdict: str, status: str, assurance: str | None, body: str) -> Outcome:
    """Outcomes repeat run after run: digest each distinct one once."""
    return Outcome(
        digest(f"{verdict}|{status}|{assurance}|{body}"), verdict, status, assurance, body
    )


def split_parts(
    *,
    run_started_at: datetime,
    started_at: datetime,
    finished_at: datetime,
    attempts: list[tuple[datetime, dict[str, Any]]],
    evidence: dict[str, Any],
    reason: str,
    assumption: str | None,
    verdict: str,
    status: str,
    assurance: str | None,
) -> tuple[Outcome, str]:
    """:func:`split` from a result's parts (also for rows of older schema versions).

    The body is serialised once; every number outside a string is then cut out of the text
    (so it comes back exactly as written), attempt starts included, as microsecond offsets.
    """
    # An attempt's source address changes with every pod: it goes with the numbers.
    addresses = [dumped.get("local_address") for _, dumped in attempts]
    templates = [
        {
            **{k: v for k, v in dumped.items() if k != "local_address"},
            "started_at": _micros(when, started_at),
        }
        for when, dumped in attempts
    ]
    text = json.dumps(
        {"assumption": assumption, "attempts": templates, "evidence": evidence, "reason": reason},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    numbers = [str(_micros(started_at, run_started_at)), str(_micros(finished_at, started_at))]

    body, found = cut_numbers(text)
    numbers += found
    outcome = Outcome(
        digest(f"{verdict}|{status}|{assurance}|{body}"), verdict, status, assurance, body
    )
    if any(address is not None for address in addresses):
        numbers.append(json.dumps(addresses, separators=(",", ":")))
    return outcome, "[" + ",".join(numbers) + "]"


def cut_numbers(text: str) -> tuple[str, list[str]]:
    """(the JSON text with each number outside strings replaced by `#`, those numbers).

    Without a backslash no quote is escaped, so splitting at quotes alternates between the
    text outside strings and the strings' contents; only the outside is scanned for numbers
    (about three times faster than tokenising everything). JSON text never holds a raw
    U+0001 (control characters are escaped), so it can join the outside pieces.
    """
    if "\\" not in text:
        pieces = text.split('"')
        parts = _NUMBER.split("\x01".join(pieces[0::2]))
        pieces[0::2] = "#".join(parts[0::2]).split("\x01")
        return '"'.join(pieces), parts[1::2]
    return cut_numbers_tokenised(text)


def cut_numbers_tokenised(text: str) -> tuple[str, list[str]]:
    """:func:`cut_numbers` for any JSON text, by tokenising strings and numbers alike."""
    # split() keeps both groups: [text, string | None, number | None, text, ...]
    parts = _TOKENS.split(text)
    found = parts[2::3]
    parts[1::3] = ["" if string is None else string for string in parts[1::3]]
    parts[2::3] = ["" if number is None else "#" for number in found]
    return "".join(parts), [number for number in found if number is not None]


def digest(text: str) -> str:
    """A 128-bit content digest (collisions are not a practical concern at this size)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


DEF_COLUMNS = (
    "check_id",
    "host",
    "port",
    "transport",
    "kind",
    "expectation",
    "destination",
    "rule",
    "feature",
    "required",
)


def definition(check: CheckRecord) -> tuple[str, tuple[Any, ...]]:
    """(digest, row) of what the check is, independent of any run."""
    return _definition(
        check.check_id,
        check.host,
        check.port,
        check.transport,
        check.kind,
        check.expectation,
        check.destination,
        check.rule,
        check.feature,
        check.required,
    )


@lru_cache(maxsize=4096)
def _definition(*fields: Any) -> tuple[str, tuple[Any, ...]]:
    """Definitions repeat every run: the row and its digest are computed once for each."""
    values = (*fields[:4], fields[4].value, fields[5].value, *fields[6:9], int(fields[9]))
    return definition_digest(values), values


@lru_cache(maxsize=4096)
def definition_digest(values: tuple[Any, ...]) -> str:
    return digest(json.dumps(values))


@dataclass(frozen=True)
class Joined:
    """The per-result fields a stored outcome and timing give back."""

    started_at: datetime
    finished_at: datetime
    assumption: str | None
    reason: str
    evidence: dict[str, Any]
    attempts: list[dict[str, Any]]


def join(body: str, timing: str, run_started_at: datetime) -> Joined:
    """The inverse of :func:`split`."""
    numbers = json.loads(timing)  # numbers read back exactly (repr round-trips)
    # The attempts' source addresses close the array when any was recorded (a list is never
    # a number); stores before 2026-12 always wrote the list, all nulls as a rule.
    addresses = numbers.pop() if numbers and type(numbers[-1]) is list else None
    started = run_started_at.astimezone(UTC) + int(numbers[0]) * _MICROSECOND
    finished = started + int(numbers[1]) * _MICROSECOND
    segments = _segments(body)
    pieces = [segments[0]]
    for number, segment in zip(numbers[2:], segments[1:], strict=True):
        pieces.append(str(number) if type(number) is int else json.dumps(number))
        pieces.append(segment)
    filled = json.loads("".join(pieces))
    attempts = [
        {
            **attempt,
            "started_at": started + int(attempt["started_at"]) * _MICROSECOND,
            "local_address": address,
        }
        for attempt, address in zip(
            filled["attempts"],
            [None] * len(filled["attempts"]) if addresses is None else addresses,
            strict=True,
        )
    ]
    return Joined(
        started_at=started,
        finished_at=finished,
        assumption=filled["assumption"],
        reason=filled["reason"],
        evidence=filled["evidence"],
        attempts=attempts,
    )


@lru_cache(maxsize=4096)
def _segments(body: str) -> tuple[str, ...]:
    """The body's text between its holes (bodies are shared: a month reads few of them)."""
    parts = _HOLES.split(body)  # [text, string | None, "#" | None, text, ...]
    segments = [parts[0]]
    for index in range(1, len(parts), 3):
        string, hole, text = parts[index], parts[index + 1], parts[index + 2]
        if hole is not None:
            segments.append(text)
        else:
            segments[-1] += (string or "") + text
    return tuple(segments)


OUTCOME_COLUMNS = ("verdict", "status", "assurance", "body")


def intern(
    conn: Connection, table: str, columns: tuple[str, ...], rows: dict[str, tuple[Any, ...]]
) -> dict[str, int]:
    """The row id of each digest in `table`, inserting the missing ones (any writer's wins)."""
    ids: dict[str, int] = {}
    digests = list(rows)
    for attempt in range(2):  # the second pass picks up rows a concurrent writer inserted
        missing = [d for d in digests if d not in ids]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            found = conn.execute(
                f"SELECT digest, id FROM {table} WHERE digest IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            ids.update((str(d), int(i)) for d, i in found)
        missing = [d for d in digests if d not in ids]
        if not missing or attempt == 1:
            break
        marks = "(" + ", ".join("?" * (len(columns) + 1)) + ")"
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            conn.execute(
                f"INSERT INTO {table} (digest, {', '.join(columns)}) VALUES "
                f"{', '.join([marks] * len(chunk))} ON CONFLICT (digest) DO NOTHING",
                [value for d in chunk for value in (d, *rows[d])],
            )
    return ids


_CHUNK = 200


def compact_v3_checks(conn: Connection, dialect: Dialect) -> None:
    """Version 4's backfill: every version-3 check row as definition, outcome and timing."""
    rows = conn.execute(
        "SELECT c.run, r.started_at, c.check_id, c.host, c.port, c.transport, c.kind, "
        "c.expectation, c.destination, c.rule, c.feature, c.required, c.verdict, c.status, "
        "c.assurance, c.assumption, c.reason, c.evidence, c.attempts, c.started_at, "
        "c.finished_at FROM checks AS c JOIN runs AS r ON r.id = c.run ORDER BY c.run, c.id"
    ).fetchall()
    defs: dict[str, tuple[Any, ...]] = {}
    outcomes: dict[str, tuple[Any, ...]] = {}
    staged: list[tuple[int, int, str, str, str]] = []
    position, previous = 0, None
    for row in rows:
        run, run_started = int(row[0]), datetime.fromisoformat(row[1])
        position = position + 1 if run == previous else 0
        previous = run
        values = tuple(row[2:12])
        values = (*values[:2], int(values[2]), *values[3:9], int(values[9]))
        def_digest = definition_digest(values)
        defs[def_digest] = values
        attempts = [(datetime.fromisoformat(a["started_at"]), a) for a in json.loads(row[18])]
        outcome, timing = split_parts(
            run_started_at=run_started,
            started_at=datetime.fromisoformat(row[19]),
            finished_at=datetime.fromisoformat(row[20]),
            attempts=attempts,
            evidence=json.loads(row[17]),
            reason=row[16],
            assumption=row[15],
            verdict=row[12],
            status=row[13],
            assurance=row[14],
        )
        outcomes[outcome.digest] = (
            outcome.verdict,
            outcome.status,
            outcome.assurance,
            outcome.body,
        )
        staged.append((run, position, def_digest, outcome.digest, timing))
    def_ids = intern(conn, "check_defs", DEF_COLUMNS, defs)
    outcome_ids = intern(conn, "outcomes", OUTCOME_COLUMNS, outcomes)
    marks = "(?, ?, ?, ?, ?)"
    for start in range(0, len(staged), _CHUNK):
        chunk = staged[start : start + _CHUNK]
        conn.execute(
            "INSERT INTO results (run, position, def, outcome, timing) VALUES "
            + ", ".join([marks] * len(chunk)),
            [v for r, p, d, o, t in chunk for v in (r, p, def_ids[d], outcome_ids[o], t)],
        )
    del dialect  # the statements above are the same in both backends
