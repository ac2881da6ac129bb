"""Hand-built JSON lines and memoised name columns against json.dumps and the plain rule."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.firewall_logs import corroborate, model
from egress.firewall_logs.corroborate import Corroborated, FlowIndex, Observed, Outcome
from egress.firewall_logs.model import FirewallDecision, LogTable, RowError, decision_from_columns
from egress.firewall_logs.render import _check_document, _check_line, _Quoted
from egress.probe_plan import Expectation

T = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def _decision(**changes: Any) -> FirewallDecision:
    row = {
        "TimeGenerated": T.isoformat(),
        "SourceIp": "10.240.0.4",
        "SourcePort": 40000,
        "Fqdn": "svc.example.test",  # data only, never contacted
        "DestinationPort": 443,
        "Protocol": "HTTPS",
        "Action": "Allow",
        "ActionReason": "",
        "Policy": "fp",
        "RuleCollectionGroup": "g",
        "RuleCollection": "c",
        "Rule": "r",
    } | changes
    return decision_from_columns(LogTable.APPLICATION_RULE, row, datetime.fromisoformat)


def _observed(check_id: str, assurance: Assurance | None) -> Observed:
    return Observed(
        check_id=check_id,
        host="svc.example.test",
        port=443,
        expectation=Expectation.DENY,
        required=False,
        verdict=Verdict.BLOCKED,
        status=CheckStatus.PASS,
        assurance=assurance,
        inspected=False,
        reason='probe: "quoted", tab\there, ünïcode ✓, 443 ms',
        attempted=True,
    )


CASES = [
    Corroborated(
        _observed("plain-443", Assurance.SIGNATURE),
        Outcome.CONFIRMED,
        "agrees",
        Verdict.BLOCKED,
        Assurance.CONFIRMED,
        CheckStatus.PASS,
        _decision(Action="Deny", Rule="", Policy=""),
    ),
    Corroborated(
        _observed('quote"d\\check ✓', None),
        Outcome.CONTRADICTED,
        "leak",
        Verdict.REACHABLE,
        Assurance.CONFIRMED,
        CheckStatus.LEAK,
        _decision(Rule="rülé \u2028 line", Policy="fp/ø"),
    ),
    Corroborated(
        _observed("unmatched", None),
        Outcome.UNMATCHED,
        'no firewall decision for "this" flow \x01',
        Verdict.BLOCKED,
        None,
        CheckStatus.PASS,
    ),
]


def test_a_hand_built_check_line_is_json_dumps_of_its_document() -> None:
    quoted = _Quoted()
    for _ in range(2):  # the second time from the encoded-once values
        for check in CASES:
            assert _check_line(check, quoted) == json.dumps(_check_document(check))


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("Policy", [1, "1", True, 1.0, " 1 ", None, ""]),
        ("Rule", ["r", " r ", "R", ["r"], {"r": 1}]),
        ("Fqdn", ["A.Example.TEST.", "a.example.test", " a.example.test"]),
        ("Protocol", ["https", "HTTPS", 1]),
    ],
)
def test_memoised_name_columns_match_the_plain_rule(column: str, values: list[Any]) -> None:
    """Equal dict keys (1, 1.0, True) and unhashable values must not share a normalisation."""
    model._NAMES_SEEN.clear()
    for _ in range(2):
        for value in values:
            got = _decision(**{column: value})
            plain = model._name(value)
            expected = {
                "Policy": ("policy", plain),
                "Rule": ("rule", plain),
                "Fqdn": ("destination_fqdn", plain.lower().rstrip(".") or None),
                "Protocol": ("protocol", plain.upper()),
            }[column]
            assert getattr(got, expected[0]) == expected[1], value


def test_an_empty_source_is_refused_memoised_or_not() -> None:
    model._NAMES_SEEN.clear()
    for _ in range(2):
        with pytest.raises(RowError, match="SourceIp is empty"):
            _decision(SourceIp=" ")


def test_an_explanation_built_from_its_remembered_phrase_is_the_plain_sentence() -> None:
    later = T.replace(microsecond=0, second=59)
    checks = [
        *CASES[:2],
        CASES[0]._replace(
            decision=_decision(Action="Deny", Rule="", Policy="", TimeGenerated=later.isoformat())
        ),
        CASES[1]._replace(decision=_decision(Policy="nul\x00in name")),  # the mark itself
    ]
    corroborate._PHRASES.clear()
    for _ in range(2):
        for check in checks:
            assert check.decision is not None
            plain = corroborate._sentence(check.why, check.observed.verdict, check.decision)
            assert check.explanation == plain
            assert check.decision.time.isoformat() in plain
    assert checks[0].explanation != checks[2].explanation  # same phrase, its own time


def test_the_row_filter_finds_every_window_a_plain_scan_finds() -> None:
    """Bisecting a key's flows and looking back by the longest window, against trying every
    flow: overlapping windows of one source port (reused across runs) and their edges."""
    skew = timedelta(seconds=2)
    index = FlowIndex(skew)
    windows = [(0, 10), (5, 100), (50, 60), (200, 201), (150, 400), (399, 399)]
    observed = _observed("reused-port", None)
    for begin, end in windows:
        when = (T + timedelta(seconds=begin), T + timedelta(seconds=end))
        index.add_flows(observed, [(("10.240.0.4",), 40000, (), *when)], run=0)
    could_match = index.row_filter()
    rng = random.Random(7)
    moments = [T + timedelta(seconds=s) for s in (-2, -3, 102, 103, 401, 402, 130)]
    moments += [
        T + timedelta(microseconds=rng.randrange(-5_000_000, 410_000_000)) for _ in range(400)
    ]
    for moment in moments:
        row = {"SourceIp": "10.240.0.4", "SourcePort": 40000, "DestinationPort": 443}
        row["TimeGenerated"] = moment.isoformat()
        plain = any(
            T + timedelta(seconds=b) - skew <= moment <= T + timedelta(seconds=e) + skew
            for b, e in windows
        )
        assert could_match(row) is plain, moment
        assert not could_match(row | {"SourcePort": 40001})
