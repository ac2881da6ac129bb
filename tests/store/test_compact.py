"""The outcome codec: its fast paths give exactly what the proven reference paths give."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

import pytest

from egress.probe_plan import CheckKind, Expectation
from egress.results import (
    Assurance,
    Attempt,
    CheckRecord,
    CheckStatus,
    Location,
    Phase,
    RunReport,
    Verdict,
)
from egress.store import ResultStore
from egress.store._compact import (
    _NotPlainError,
    _split_fast,
    cut_numbers,
    cut_numbers_tokenised,
    join,
    split,
    split_slow,
)


class _Level(IntEnum):
    LOW = 1
    HIGH = 2


_WORDS = ['a"b', "x\\y", "12", "-3.5e7", "é ☃", "\x01", "#", "tab\there", "", "null", "1,2"]


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(8 if depth < 3 else 5)
    if pick == 0:
        return rng.randint(-(10**12), 10**12)
    if pick == 1:
        return rng.choice([0.1, -2.5, 1e-7, 3e21, 123.456, float(rng.random())])
    if pick == 2:
        return rng.choice([True, False, None])
    if pick in (3, 4):
        return "".join(rng.choice(_WORDS) for _ in range(rng.randrange(3)))
    if pick == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_WORDS) + str(i): _value(rng, depth + 1) for i in range(rng.randrange(4))}


def test_the_fast_cut_matches_the_tokeniser_on_varied_json() -> None:
    rng = random.Random(12)
    fast_paths = 0
    for _ in range(3000):
        text = json.dumps(
            {"v": _value(rng, 0)}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        fast_paths += "\\" not in text
        assert cut_numbers(text) == cut_numbers_tokenised(text), text
    assert fast_paths > 500  # both paths were exercised


def test_numbers_inside_strings_stay_and_numbers_outside_are_cut() -> None:
    body, numbers = cut_numbers('{"a":"port 443","b":-1.5e3,"c":[7,"8"]}')
    assert body == '{"a":"port 443","b":#,"c":[#,"8"]}'
    assert numbers == ["-1.5e3", "7"]


# -- the fast split against the reference split -------------------------------------------

_RUN_START = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
_TEXTS = ["port 443", 'a"b', "x\\y", "-1.5e3", "é ☃ 日本", "\x01#\n\t", "", "null", "1,2", "#"]


def _plain(rng: random.Random, depth: int) -> Any:
    """Values a probe's evidence holds, numbers of every shape among them."""
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return rng.choice([0, -7, 443, 10**20, -(2**63), rng.randint(-99, 10**6)])
    if pick == 1:
        return rng.choice([0.1, 1e-7, -2.5, 3e21, 1.0, -0.0, 123.456, 5e-324, rng.random()])
    if pick == 2:
        return rng.choice([True, False, None])
    if pick in (3, 4, 5):
        return rng.choice(_TEXTS) + rng.choice(["", str(rng.randint(0, 99))])
    if pick == 6:
        return [_plain(rng, depth + 1) for _ in range(rng.randrange(3))]
    if pick == 7:
        return tuple(_plain(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {rng.choice(_TEXTS) + str(i): _plain(rng, depth + 1) for i in range(rng.randrange(4))}


def _record(rng: random.Random, evidence: dict[str, Any], detail: dict[str, Any]) -> CheckRecord:
    started = _RUN_START + timedelta(microseconds=rng.randint(0, 10**9))
    attempts = []
    for n in range(rng.choice([0, 1, 1, 2, 3])):
        attempts.append(
            Attempt(
                started_at=started + timedelta(microseconds=rng.randint(0, 10**7)),
                verdict=rng.choice(list(Verdict)),
                reason=rng.choice(_TEXTS) + " attempt",
                phases=tuple(
                    Phase(
                        name=rng.choice(["dns", "tcp", "tls", "http", "ntp"]),
                        ok=rng.random() < 0.5,
                        duration_ms=rng.choice([0.0, 0.1, 1e-7, 12.345, 3000.0, rng.random()]),
                        detail=detail if p == 0 else {"n": p, "s": rng.choice(_TEXTS)},
                    )
                    for p in range(rng.randrange(4))
                ),
                local_address=rng.choice([None, "10.240.0.7", "fd00::7"]),
                local_port=rng.choice([None, 0, 40001, rng.randint(1, 65535)]),
            )
        )
        del n
    return CheckRecord(
        run_id="r1",
        plan_hash="h",
        tool_version="0.2.0",
        cloud="AzureCloud",
        region="eastus",
        location=Location(),
        check_id="c-443",
        host="mcr.microsoft.com",  # data only, never contacted
        port=443,
        transport="tcp",
        kind=CheckKind.HTTPS,
        expectation=Expectation.ALLOW,
        destination="mcr.microsoft.com",
        rule="r",
        feature="required",
        required=True,
        verdict=Verdict.REACHABLE,
        status=CheckStatus.PASS,
        assurance=rng.choice([None, Assurance.STATED]),
        assumption=rng.choice([None, "it assumes 3 things", 'a "quoted" one']),
        reason=rng.choice(_TEXTS) + " 12 ms",
        evidence=evidence,
        attempts=tuple(attempts),
        started_at=started,
        finished_at=started + timedelta(microseconds=rng.randint(0, 10**8)),
    )


def _dumped(check: CheckRecord) -> dict[str, Any]:
    """What a joined result must give back: the record's own fields, as pydantic sees them."""
    dumped = check.model_dump(mode="json")
    return {k: dumped[k] for k in ("assumption", "reason", "evidence", "attempts")}


def test_the_fast_split_writes_what_the_reference_writes_and_joins_back_exactly() -> None:
    rng = random.Random(1201)
    fast = 0
    for _ in range(1500):
        evidence = {f"k{i}": _plain(rng, 0) for i in range(rng.randrange(5))}
        detail = {f"d{i}": _plain(rng, 1) for i in range(rng.randrange(4))}
        check = _record(rng, evidence, detail)
        try:
            got = _split_fast(check, _RUN_START)
        except _NotPlainError:
            got = None  # left to the reference: only for values it writes differently
        want = split_slow(check, _RUN_START)
        assert split(check, _RUN_START) == want
        if got is not None:
            fast += 1
            assert got == want, check
        outcome, timing = want
        joined = join(outcome.body, timing, _RUN_START)
        assert (joined.started_at, joined.finished_at) == (check.started_at, check.finished_at)
        back = {
            "assumption": joined.assumption,
            "reason": joined.reason,
            "evidence": joined.evidence,
            "attempts": [
                Attempt.model_validate(a).model_dump(mode="json") for a in joined.attempts
            ],
        }
        assert back == _dumped(check)
        assert "#" not in json.dumps(back) or "#" in json.dumps(_dumped(check))
    assert fast == 1500  # plain JSON values never leave the fast path


@pytest.mark.parametrize(
    "evidence, detail",
    [
        ({"x": math.nan, "y": -math.inf}, {}),  # json.dumps writes NaN, pydantic null
        ({}, {"when": datetime(2026, 1, 2, tzinfo=UTC)}),  # pydantic ISO, json str()
        ({"n": {1: "a", 2: "b"}}, {}),  # non-string keys
        ({"s": CheckStatus.LEAK, "i": _Level.HIGH}, {"e": _Level.LOW}),  # enum members
        ({}, {"inf": math.inf}),
    ],
)
def test_values_the_fast_writer_does_not_know_take_the_reference_path(
    evidence: dict[str, Any], detail: dict[str, Any]
) -> None:
    check = _record(random.Random(5), evidence, detail)
    assert split(check, _RUN_START) == split_slow(check, _RUN_START)


def test_the_canonical_body_of_schema_v5_is_unchanged() -> None:
    """Bodies stored by earlier versions are found again: same text, same digest (the text
    and digest below are what egress 0.2's split wrote for this record)."""
    check = _record(random.Random(3), {"dns": {"answers": ["20.1.2.3"], "ttl": 30}}, {})
    outcome, timing = split(check, _RUN_START)
    assert outcome.body == (
        '{"assumption":"a \\"quoted\\" one","attempts":[{"local_port":#,"phases":[{"detail":{},'
        '"duration_ms":#,"name":"ntp","ok":true},{"detail":{"n":#,"s":"null"},"duration_ms":#,'
        '"name":"tls","ok":false},{"detail":{"n":#,"s":"x\\\\y"},"duration_ms":#,"name":"ntp",'
        '"ok":false}],"reason":"\\u0001#\\n\\t attempt","started_at":#,"verdict":"blocked"},'
        '{"local_port":null,"phases":[],"reason":"port 443 attempt","started_at":#,'
        '"verdict":"inconclusive"},{"local_port":#,"phases":[{"detail":{},"duration_ms":#,'
        '"name":"ntp","ok":false},{"detail":{"n":#,"s":"x\\\\y"},"duration_ms":#,"name":"http",'
        '"ok":true},{"detail":{"n":#,"s":"é ☃ 日本"},"duration_ms":#,"name":"tls","ok":true}],'
        '"reason":"é ☃ 日本 attempt","started_at":#,"verdict":"reachable"}],'
        '"evidence":{"dns":{"answers":["20.1.2.3"],"ttl":#}},"reason":" 12 ms"}'
    )
    assert timing == (
        "[255512575,77044027,0,12.345,1,0.1917441039952995,2,0.47635320869933495,9130651,"
        '8777524,40001,0.8788128002554817,1,12.345,2,0.1,5054432,30,[null,null,"fd00::7"]]'
    )
    assert outcome.row == ("reachable", "pass", "stated", outcome.body)
    assert outcome.digest == "3026f4d64c9987779307aae5abc94ffa"


def test_edge_case_results_come_back_whole_from_both_backends(store_location: str) -> None:
    """The fast split and the COPY rows hold escapes, tabs, non-ASCII and odd numbers."""
    rng = random.Random(77)
    checks = []
    for n in range(40):
        evidence = {f"k{i}": _plain(rng, 0) for i in range(rng.randrange(5))}
        detail = {f"d{i}": _plain(rng, 1) for i in range(rng.randrange(4))}
        check = _record(rng, evidence, detail)
        attempts = tuple(
            a.model_copy(update={"local_address": rng.choice(["a\\b\tc\n", "é", None])})
            for a in check.attempts
        )
        checks.append(check.model_copy(update={"check_id": f"c-{n}", "attempts": attempts}))
    run = RunReport(
        run_id="r1",
        plan_hash="h",
        tool_version="0.2.0",
        cloud="AzureCloud",
        region="eastus",
        location=Location(),
        started_at=_RUN_START,
        finished_at=_RUN_START + timedelta(minutes=5),
        checks=tuple(checks),
    )
    with ResultStore(store_location) as store:
        assert store.append_runs([run]) == ("r1",)
        stored = store.read_run("r1")
    assert stored is not None
    assert stored.model_dump(mode="json") == run.model_dump(mode="json")


def test_remembered_values_are_told_apart_exactly() -> None:
    """Values equal to Python (1 == 1.0 == True, 0.0 == -0.0) are written as themselves."""
    rng = random.Random(9)
    looks_alike: list[Any] = [1, 1.0, True, "1", -0.0, 0.0, [1], (1,), {"a": 1}, None, 1]
    bodies = set()
    for value in looks_alike * 2:
        check = _record(rng, {"v": value}, {"v": value})
        assert split(check, _RUN_START) == split_slow(check, _RUN_START)
        outcome, timing = split(check, _RUN_START)
        assert join(outcome.body, timing, _RUN_START).evidence == json.loads(
            json.dumps({"v": value})
        )
        bodies.add(outcome.body)
    assert len(bodies) > 1


def test_timings_leave_out_unrecorded_addresses_and_older_timings_still_join() -> None:
    """No attempt recorded its source address: the timing ends with the numbers (8 bytes a
    row in PostgreSQL); any recorded one closes it with the list. Stores written before
    always closed it with the list, all nulls as a rule, and still read back the same."""
    rng = random.Random(1202)
    seen = {"listed": 0, "left out": 0}
    for _ in range(300):
        check = _record(rng, {"k": _plain(rng, 0)}, {"d": _plain(rng, 1)})
        outcome, timing = split(check, _RUN_START)
        values = json.loads(timing)
        recorded = [a.local_address for a in check.attempts]
        if any(address is not None for address in recorded):
            assert values[-1] == recorded
            seen["listed"] += 1
            continue
        assert all(type(v) is not list for v in values)
        seen["left out"] += 1
        older = json.dumps([*values, [None] * len(check.attempts)], separators=(",", ":"))
        assert join(outcome.body, older, _RUN_START) == join(outcome.body, timing, _RUN_START)
        attempts = join(outcome.body, timing, _RUN_START).attempts
        assert [a["local_address"] for a in attempts] == recorded
    assert min(seen.values()) > 50
