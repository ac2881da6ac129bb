"""Store each result as a shared outcome plus its few per-run numbers, losslessly.

Run after run, a passing check produces the same reason, evidence and attempts except for
timings: durations, the moment each attempt started, an ephemeral source port. So a stored
result is split in two:

- the *outcome*: verdict, status, assurance, assumption, reason, evidence and attempts with
  every number and every attempt start taken out (a placeholder left in its place), as
  canonical JSON stored once per distinct content and referenced by its digest;
- the *timing*: the numbers taken out, in a fixed walk order, as a short JSON array (the
  check's start and duration first, in microseconds from the run's start).

Joining them gives back exactly the result that was stored, failing or passing, changed or
not: evidence is never summarised or dropped, only deduplicated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from egress.results import CheckRecord

_NUMBER = "\x00#"  # a number taken out into the timing
_MOMENT = "\x00@"  # an attempt's start taken out (microseconds after the check's start)
_ESCAPE = "\x00"  # a real string starting with NUL gets one more in front
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Outcome:
    """The shared part of a result, identified by the digest of its canonical JSON."""

    digest: str
    verdict: str
    status: str
    assurance: str | None
    body: str


def _micros(later: datetime, earlier: datetime) -> int:
    return (later - earlier) // _MICROSECOND


def _strip(value: Any, numbers: list[Any]) -> Any:
    """`value` with its numbers replaced by placeholders (appended to `numbers` in order)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        numbers.append(value)
        return _NUMBER
    if isinstance(value, str):
        return _ESCAPE + value if value.startswith(_ESCAPE) else value
    if isinstance(value, list):
        return [_strip(item, numbers) for item in value]
    if isinstance(value, dict):
        return {key: _strip(value[key], numbers) for key in sorted(value)}
    raise TypeError(f"not JSON data: {type(value).__name__}")


def _fill(value: Any, numbers: list[Any], position: list[int]) -> Any:
    if isinstance(value, str):
        if value == _NUMBER:
            position[0] += 1
            return numbers[position[0] - 1]
        return value[1:] if value.startswith(_ESCAPE) else value
    if isinstance(value, list):
        return [_fill(item, numbers, position) for item in value]
    if isinstance(value, dict):
        return {key: _fill(value[key], numbers, position) for key in sorted(value)}
    return value


def split(check: CheckRecord, run_started_at: datetime) -> tuple[Outcome, str]:
    """(outcome, timing JSON) of one result of a run that started at `run_started_at`."""
    start = check.started_at
    numbers: list[Any] = [
        _micros(start, run_started_at),
        _micros(check.finished_at, start),
    ]
    attempts = []
    for attempt in check.attempts:
        numbers.append(_micros(attempt.started_at, start))
        dumped = attempt.model_dump(mode="json")
        dumped["started_at"] = _MOMENT
        attempts.append(dumped)
    evidence = json.loads(json.dumps(check.evidence, default=str))  # as JSON stores it
    body = json.dumps(
        _strip(
            {
                "assumption": check.assumption,
                "attempts": attempts,
                "evidence": evidence,
                "reason": check.reason,
            },
            numbers,
        ),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assurance = None if check.assurance is None else check.assurance.value
    key = json.dumps([check.verdict.value, check.status.value, assurance, body])
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()
    outcome = Outcome(digest, check.verdict.value, check.status.value, assurance, body)
    return outcome, json.dumps(numbers, separators=(",", ":"))


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
    numbers = json.loads(timing)
    started = run_started_at.astimezone(UTC) + int(numbers[0]) * _MICROSECOND
    finished = started + int(numbers[1]) * _MICROSECOND
    template = json.loads(body)
    attempt_count = len(template["attempts"])
    moments = numbers[2 : 2 + attempt_count]
    filled = _fill(template, numbers[2 + attempt_count :], [0])
    attempts = []
    for attempt, offset in zip(filled["attempts"], moments, strict=True):
        attempts.append({**attempt, "started_at": started + int(offset) * _MICROSECOND})
    return Joined(
        started_at=started,
        finished_at=finished,
        assumption=filled["assumption"],
        reason=filled["reason"],
        evidence=filled["evidence"],
        attempts=attempts,
    )
