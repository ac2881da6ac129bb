"""Probe records for real attempts made through the lab, and CLI wiring to the emulators."""

from __future__ import annotations

from pathlib import Path

import pytest

from egress.compliance import Assurance, Verdict, check_status
from egress.probe_plan import CheckKind, Expectation
from egress.results import Attempt, CheckRecord, Location, Phase, RunReport

from squid_lab import Request


def record_for(
    request: Request,
    *,
    check_id: str,
    expectation: Expectation,
    verdict: Verdict,
    assurance: Assurance | None = None,
    port: int,
    run_id: str = "run-1",
    reason: str = "as the probe judged it",
) -> CheckRecord:
    """What the probe would store for this attempt: its verdict, and the attempt's socket."""
    tcp = Phase(
        name="tcp",
        ok=True,
        duration_ms=(request.finished_at - request.started_at).total_seconds() * 1000,
        detail={
            "address": "127.0.0.1",  # the lab's origin (resolved locally)
            "port": port,
            "outcome": "connected",
            "local_address": request.local_address,
            "local_port": request.local_port,
        },
    )
    attempt = Attempt(
        started_at=request.started_at,
        verdict=verdict,
        reason=reason,
        phases=(tcp,),
        local_address=request.local_address,  # as the probe records the attempt's socket
        local_port=request.local_port,
    )
    status = check_status(expectation=expectation, verdict=verdict, assurance=assurance)
    return CheckRecord(
        run_id=run_id,
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(cluster="lab", node_pool="system", node="node-0"),
        check_id=check_id,
        host=request.host,
        port=port,
        transport="tcp",
        kind=CheckKind.HTTP,
        expectation=expectation,
        destination=request.host,
        rule="canary/lab" if expectation is Expectation.DENY else "required/lab",
        feature="canary" if expectation is Expectation.DENY else "required",
        required=expectation is Expectation.ALLOW,
        verdict=verdict,
        status=status,
        assurance=assurance,
        reason=reason,
        evidence={"host": request.host},
        attempts=(attempt,),
        started_at=request.started_at,
        finished_at=request.finished_at,
    )


def write_run(path: Path, records: list[CheckRecord]) -> Path:
    first = records[0]
    run = RunReport(
        run_id=first.run_id,
        plan_hash=first.plan_hash,
        tool_version=first.tool_version,
        cloud=first.cloud,
        region=first.region,
        location=first.location,
        started_at=min(r.started_at for r in records),
        finished_at=max(r.finished_at for r in records),
        checks=tuple(records),
    )
    path.write_text(run.model_dump_json())
    return path


def use_emulator_identity(monkeypatch: pytest.MonkeyPatch, url: str, ca_path: Path) -> None:
    """DefaultAzureCredential limited to its environment credential, against the emulator."""
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-1")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "secret-1")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_path))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
