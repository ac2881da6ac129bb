"""The runner's one call into the compliance rule: a judged check and its evidence -> status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from egress.compliance import Assurance, CheckStatus, Verdict, check_status
from egress.probe_plan import Check


def was_inspected(evidence: Mapping[str, Any]) -> bool:
    """Whether the TLS phase saw a re-signing (inspecting) proxy instead of the real certificate."""
    tls = evidence.get("tls")
    return isinstance(tls, Mapping) and bool(tls.get("inspection"))


def record_status(
    check: Check,
    verdict: Verdict,
    assurance: Assurance | None,
    evidence: Mapping[str, Any],
    *,
    minimum_assurance: Assurance | None,
) -> CheckStatus:
    """The status a check record carries, from the plan's check, the judged verdict, the
    assurance the judge gives a ``blocked`` verdict, the final evidence and --require-assurance.
    """
    return check_status(
        expectation=check.expectation,
        verdict=verdict,
        assurance=assurance,
        inspected=was_inspected(evidence),
        inspection=check.tls_inspection,
        minimum_assurance=minimum_assurance,
    )
