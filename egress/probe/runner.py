"""The asyncio runner: bounded concurrency, asymmetric retries, a deadline, one record per check."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from egress import __version__
from egress.probe.connect import AsyncioConnector, Connector
from egress.probe.control import ControlWitness
from egress.probe.dns_client import Resolver
from egress.probe.judge import Context, Judgement, judge_attempt, needed_witness, timeout_phase
from egress.probe.ladder import Ladder
from egress.probe.settings import ProbeSettings, trust_context, unverified_context
from egress.probe.status import record_status
from egress.probe.work import WorkItem, plan_work
from egress.probe_plan import Check, CheckKind, Enforcement, Expectation, ProbePlan, TlsInspection
from egress.results import Attempt, CheckRecord, Location, Phase, RunReport, Verdict

Clock = Callable[[], datetime]
RecordSink = Callable[[CheckRecord], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Progress:
    """What a check has done so far; survives cancellation at the deadline."""

    item: WorkItem
    attempts: list[tuple[datetime, tuple[Phase, ...]]] = field(default_factory=list)
    record: CheckRecord | None = None


@dataclass
class ProbeRun:
    """One run of a plan from one vantage point."""

    plan: ProbePlan = field(repr=False)
    settings: ProbeSettings
    resolver: Resolver
    location: Location
    api_server: str | None = None
    connector: Connector = field(default_factory=AsyncioConnector)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    clock: Clock = utc_now
    on_record: RecordSink | None = None

    async def execute(self) -> RunReport:
        settings = self.settings
        started_at = self.clock()
        self._plan_hash = self.plan.plan_hash  # hashes the whole plan: compute once per run
        items = plan_work(self.plan, self.api_server)
        self._ladder = Ladder(
            settings=settings,
            resolver=self.resolver,
            connector=self.connector,
            trusted=trust_context(settings.trust_store),
            unverified=unverified_context(),
            dns_gate=asyncio.Semaphore(settings.dns_concurrency),
        )
        self._global = asyncio.Semaphore(settings.concurrency)
        per_destination = settings.per_destination
        self._destinations: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_destination)
        )
        self._control = ControlWitness(_control_candidates(items, settings.control_check))
        self._profile = settings.firewall_profile or self.plan.firewall_profile
        progress = [_Progress(item) for item in items]
        # Deny checks start first: a block often shows as a timeout, so their timers then
        # overlap the work of everything else. Records keep plan order.
        start_order = sorted(
            progress, key=lambda p: p.item.check.expectation is not Expectation.DENY
        )
        tasks = [asyncio.create_task(self._probe(p)) for p in start_order]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=settings.deadline)
            for task in pending:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            bugs = [o for o in outcomes if isinstance(o, Exception)]
            if bugs:  # a programming error must not pass for a "deadline" verdict
                raise bugs[0]
        for entry in progress:
            if entry.record is None:  # cut off by the deadline
                self._finish(entry, deadline_hit=True)
        records = tuple(entry.record for entry in progress if entry.record is not None)
        return RunReport(
            run_id=self.run_id,
            plan_hash=self._plan_hash,
            tool_version=__version__,
            cloud=self.plan.cloud,
            region=self.plan.region,
            location=self.location,
            started_at=started_at,
            finished_at=self.clock(),
            checks=records,
        )

    async def _probe(self, entry: _Progress) -> None:
        item, check = entry.item, entry.item.check
        try:
            misses = confirmed = 0
            while misses <= self.settings.retries:
                if entry.attempts:
                    await asyncio.sleep(self.settings.retry_delay)
                started = self.clock()
                async with self._global, self._destinations[item.destination]:
                    phases = await self._climb(item)
                entry.attempts.append((started, phases))
                if check.kind is CheckKind.UNVERIFIABLE or item.problem:
                    break  # nothing a retry could change
                if check.expectation is Expectation.ALLOW:
                    verdict = judge_attempt(check, phases, self._context()).verdict
                    if verdict is Verdict.REACHABLE:
                        self._control.succeeded(check, phases)
                    if verdict in (Verdict.REACHABLE, Verdict.UNHEALTHY):
                        break
                else:  # a drop needs its witness: wait for it outside the bounds
                    path = needed_witness(check, phases)
                    if path is not None:
                        await self._control.wait_for(path)
                    if judge_attempt(check, phases, self._context()).verdict is Verdict.BLOCKED:
                        if timeout_phase(phases) is None or confirmed:
                            break
                        confirmed += 1  # re-probe a block seen as a timeout once: a lost
                        continue  # packet must not pass for a deny
                misses += 1
        finally:
            self._control.finished(check.id)
        for _, phases in entry.attempts:  # final labels need the settled witness and timing
            path = needed_witness(check, phases)
            if path is not None:
                await self._control.wait_for(path)
        if entry.attempts and _is_cut_on_proxy(check, entry.attempts[-1][1]):
            await self._control.settled()
        self._finish(entry, deadline_hit=False)

    def _context(self) -> Context:
        return self._control.context(self._profile)

    async def _climb(self, item: WorkItem) -> tuple[Phase, ...]:
        try:
            return await self._ladder.climb(item)
        except (OSError, ValueError, RuntimeError) as exc:  # unexpected I/O: a value, not a crash
            detail = {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
            return (Phase(name="probe", ok=False, duration_ms=0.0, detail=detail),)

    def _finish(self, entry: _Progress, *, deadline_hit: bool) -> None:
        item, check = entry.item, entry.item.check
        context = self._context()
        attempts: list[Attempt] = []
        judged = Judgement(Verdict.INCONCLUSIVE, "the check was not probed")
        for started, phases in entry.attempts:
            judged = judge_attempt(check, phases, context)
            attempts.append(
                Attempt(
                    started_at=started,
                    verdict=judged.verdict,
                    reason=judged.reason,
                    phases=phases,
                    **_source_of(phases),
                )
            )
        now = self.clock()
        if check.kind is CheckKind.UNVERIFIABLE:
            judged = judge_attempt(check, (), context)
        elif deadline_hit:
            judged = Judgement(
                Verdict.INCONCLUSIVE,
                f"deadline: the run deadline of {self.settings.deadline:g}s passed before this "
                f"check finished ({len(attempts)} attempt(s) completed)",
            )
        evidence: dict[str, Any] = {
            "host": item.host,
            "attempts": len(attempts),
            "enforcement": check.enforced_by.value,
            "profile": self._profile.value,
        }
        if attempts:
            evidence.update({phase.name: phase.detail for phase in attempts[-1].phases})
        evidence.update(judged.evidence)
        status = record_status(
            check,
            judged.verdict,
            judged.assurance,
            evidence,
            minimum_assurance=self.settings.minimum_assurance,
        )
        entry.record = CheckRecord(
            run_id=self.run_id,
            plan_hash=self._plan_hash,
            tool_version=__version__,
            cloud=self.plan.cloud,
            region=self.plan.region,
            location=self.location,
            check_id=check.id,
            host=item.host,
            port=check.port,
            transport=check.transport,
            kind=check.kind,
            expectation=check.expectation,
            destination=check.destination,
            rule=check.rule,
            feature=check.feature,
            required=check.required,
            verdict=judged.verdict,
            status=status,
            assurance=judged.assurance,
            assumption=judged.assumption,
            reason=_with_inspection(judged.reason, evidence, check),
            evidence=evidence,
            attempts=tuple(attempts),
            started_at=attempts[0].started_at if attempts else now,
            finished_at=now,
        )
        if self.on_record is not None:
            self.on_record(entry.record)


def _source_of(phases: tuple[Phase, ...]) -> dict[str, Any]:
    """The source address and port of the attempt's last connection or UDP socket."""
    for phase in reversed(phases):
        if "local_port" in phase.detail:
            return {
                "local_address": phase.detail.get("local_address"),
                "local_port": phase.detail.get("local_port"),
            }
    return {}


def _is_cut_on_proxy(check: Check, phases: tuple[Phase, ...]) -> bool:
    """A cut after the ClientHello on a proxied port: its timing is read against the reference."""
    return (
        check.enforced_by is Enforcement.APPLICATION_RULE
        and bool(phases)
        and phases[-1].name == "tls"
        and phases[-1].detail.get("outcome") == "cut-after-client-hello"
    )


def _with_inspection(reason: str, evidence: dict[str, Any], check: Check) -> str:
    """Name the inspecting issuer where the entry forbids TLS inspection."""
    tls = evidence.get("tls", {})
    if check.tls_inspection is TlsInspection.FORBIDDEN and tls.get("inspection"):
        issuer = tls.get("inspecting_issuer")
        return (
            f"TLS inspection is forbidden for {check.destination} but {issuer} re-signed it; "
            f"{reason}"
        )
    return reason


def _control_candidates(items: list[WorkItem], explicit: str | None) -> list[str]:
    """Every probeable allow check, or only the explicitly named control check."""
    if explicit:
        return [item.check.id for item in items if item.check.id == explicit]
    return [
        item.check.id
        for item in items
        if item.check.expectation is Expectation.ALLOW
        and item.check.kind is not CheckKind.UNVERIFIABLE
        and item.problem is None
    ]
