"""The fast number cut of stored outcomes gives exactly what the full tokeniser gives."""

from __future__ import annotations

import json
import random
from typing import Any

from egress.store._compact import cut_numbers, cut_numbers_tokenised

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
