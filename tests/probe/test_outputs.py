"""Every probe output format against golden files, from one fixed, deterministic run."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from conftest import make_check, make_plan
from rich.console import Console

from egress.probe.judge import judge
from egress.probe.output import (
    STREAM_FORMATS,
    build_outputs,
    render_jsonl,
    render_junit,
    render_report,
    render_table,
)
from egress.probe.output.jsonl import JsonlOutput
from egress.probe.status import record_status
from egress.probe_plan import CheckKind, Expectation
from egress.results import Assurance, Attempt, CheckRecord, Location, Phase, RunReport, Verdict

T0 = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
LOCATION = Location(
    cluster="prod", node_pool="sys", node="aks-sys-0", pod="probe-x", namespace="egress"
)


def _record(
    check_kind: CheckKind, expectation: Expectation, phases: tuple[Phase, ...], n: int
) -> CheckRecord:
    if check_kind is CheckKind.UNVERIFIABLE:
        check = make_check(
            f"check-{n}",
            "tunnel.probe.test",
            1194,
            kind=check_kind,
            unverifiable_reason="tunnel protocol",
        )
    else:
        check = make_check(
            f"check-{n}", f"host{n}.probe.test", 443, kind=check_kind, expectation=expectation
        )
    verdict, _, reason = judge(check, phases, False)
    # what the judge will state for a cut after the ClientHello: a signature with its assumption
    cut = verdict is Verdict.BLOCKED
    assurance = Assurance.SIGNATURE if cut else None
    evidence = {p.name: p.detail for p in phases}
    started = T0 + timedelta(seconds=n)
    attempt = Attempt(started_at=started, verdict=verdict, reason=reason, phases=phases)
    return CheckRecord(
        run_id="run-1",
        plan_hash="0" * 64,
        tool_version="0.1.0",
        cloud="AzureCloud",
        region="eastus",
        location=LOCATION,
        check_id=check.id,
        host=check.host,
        port=check.port,
        transport=check.transport,
        kind=check.kind,
        expectation=check.expectation,
        destination=check.destination,
        rule=check.rule,
        feature=check.feature,
        required=check.required,
        verdict=verdict,
        status=record_status(check, verdict, assurance, evidence, minimum_assurance=None),
        assurance=assurance,
        assumption="the proxy, not the destination, cut the handshake" if cut else None,
        reason=reason,
        evidence=evidence,
        attempts=(attempt,),
        started_at=started,
        finished_at=started + timedelta(milliseconds=250),
    )


def fixed_run() -> RunReport:
    dns = Phase(
        name="dns", ok=True, duration_ms=1.5, detail={"outcome": "answers", "address": "127.0.0.9"}
    )
    tcp = Phase(name="tcp", ok=True, duration_ms=0.5, detail={"outcome": "connected"})
    tls = Phase(
        name="tls", ok=True, duration_ms=3.0, detail={"outcome": "complete", "verified": True}
    )
    http = Phase(
        name="http", ok=True, duration_ms=4.0, detail={"outcome": "response", "status": 200}
    )
    cut = Phase(
        name="tls",
        ok=False,
        duration_ms=2.0,
        detail={
            "outcome": "cut-after-client-hello",
            "sni": "host2.probe.test",
            "error": "EOF",
            "bytes_from_server": 0,
        },
    )
    records = (
        _record(CheckKind.HTTPS, Expectation.ALLOW, (dns, tcp, tls, http), 1),
        _record(CheckKind.HTTPS, Expectation.ALLOW, (dns, tcp, cut), 2),
        _record(CheckKind.HTTPS, Expectation.DENY, (dns, tcp, tls, http), 3),
        _record(CheckKind.UNVERIFIABLE, Expectation.ALLOW, (), 4),
    )  # fmt: skip
    return RunReport(
        run_id="run-1",
        plan_hash="0" * 64,
        tool_version="0.1.0",
        cloud="AzureCloud",
        region="eastus",
        location=LOCATION,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=5),
        checks=records,
    )


def test_jsonl_golden(golden: object) -> None:
    golden("probe/run.jsonl", render_jsonl(fixed_run()))  # type: ignore[operator]


def test_report_golden(golden: object) -> None:
    text = render_report(fixed_run())
    assert RunReport.model_validate_json(text) == fixed_run()
    golden("probe/report.json", text)  # type: ignore[operator]


def test_junit_golden(golden: object) -> None:
    golden("probe/junit.xml", render_junit(fixed_run()))  # type: ignore[operator]


def test_table_golden(golden: object) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, color_system=None, force_terminal=False)
    render_table(fixed_run(), console)
    text = buffer.getvalue()
    assert "LEAK" in text and "FAIL" in text and "-> NON-COMPLIANT" in text
    golden("probe/table.txt", text)  # type: ignore[operator]


def test_formats_are_registered_in_one_place() -> None:
    assert set(STREAM_FORMATS) == {"table", "jsonl"}
    stdout = io.StringIO()
    outputs = build_outputs(
        None, report=None, junit=None, console=Console(file=io.StringIO()), stdout=stdout
    )
    assert len(outputs) == 1 and isinstance(outputs[0], JsonlOutput)  # not a TTY: JSON lines
    plan = make_plan(make_check("a", "a.test", 443))
    outputs[0].start(plan)
    for record in fixed_run().checks:
        outputs[0].record(record)
    outputs[0].finish(fixed_run())
    assert stdout.getvalue() == render_jsonl(fixed_run())
