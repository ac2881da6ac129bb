"""The rule lives in egress/compliance.py only: no SQL or output module re-decides it."""

from __future__ import annotations

import re
from pathlib import Path

import egress

SOURCE = Path(egress.__file__).parent
# SQL or Python that decides compliance from the raw facts instead of the stored status
RESTATED = re.compile(
    r"""\b(verdict|expectation|compliant)\s*(=|!=|<>|\b[Ii][Nn]\b)\s*\(?\s*['"0-9]"""
)


SHIPPED_V2_INDEX = "WHERE compliant = 0 OR (expectation = 'deny' AND verdict = 'reachable');"


def test_no_module_but_the_compliance_rule_decides_from_verdicts_in_sql() -> None:
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "compliance.py":  # the rule itself
            continue
        # version 2's index DDL is kept verbatim, as it shipped (version 3 drops that index)
        text = path.read_text(encoding="utf-8").replace(SHIPPED_V2_INDEX, "")
        offenders += [f"{path.relative_to(SOURCE)}: {m.group(0)}" for m in RESTATED.finditer(text)]
    assert offenders == []


def test_the_check_finds_a_restated_rule() -> None:
    assert RESTATED.search("WHERE c.expectation = 'deny' AND c.verdict = 'reachable'")
    assert RESTATED.search("sum(CASE WHEN c.compliant = 1 THEN 1 END)")
    assert not RESTATED.search("WHERE c.status IN ('fail', 'leak')")
