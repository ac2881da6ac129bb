"""The control witness: which allow check proved that a firewall path works from this vantage point.

A timeout only counts as a drop when an allow check got through the same enforcement path
(:func:`egress.probe.judge.witness_path`): a network-rule TCP connect for TCP, any network-rule
UDP exchange for UDP. A handshake the proxy answers itself witnesses nothing. The fastest
verified handshake through the proxy is also the timing reference that tells a proxy's own cut
from a round trip to the far end. Allow checks are the candidates, or only ``--control``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from egress.probe.judge import Context, witness_path
from egress.probe_plan import Check, Enforcement, FirewallProfile
from egress.results import Phase


class ControlWitness:
    """Collects passed paths of reachable candidate checks; waits while candidates still run."""

    def __init__(self, candidates: Iterable[str]) -> None:
        self._candidates = frozenset(candidates)
        self._pending = set(self._candidates)
        self._passed: dict[str, str] = {}
        self._spliced: tuple[float, str] | None = None
        self._changed = asyncio.Event()

    def is_candidate(self, check_id: str) -> bool:
        return check_id in self._candidates

    def succeeded(self, check: Check, phases: Sequence[Phase]) -> None:
        """Record what a reachable candidate proved (its passed paths, its spliced timing)."""
        if check.id not in self._candidates:
            return
        for phase in phases:
            path = witness_path(check, phase.name) if phase.ok else None
            if path is not None:
                self._passed.setdefault(path, check.id)
        tls = next((p for p in phases if p.name == "tls" and p.ok), None)
        hello = tls.detail.get("hello_to_first_byte_ms") if tls is not None else None
        spliced = (
            check.enforced_by is Enforcement.APPLICATION_RULE
            and tls is not None
            and tls.detail.get("verified")  # an inspecting proxy answers the hello itself
        )
        if not spliced or not isinstance(hello, (int, float)):
            hello = None
        if hello is not None and (self._spliced is None or hello < self._spliced[0]):
            self._spliced = (float(hello), check.id)
        self._wake()

    def finished(self, check_id: str) -> None:
        self._pending.discard(check_id)
        self._wake()

    def witness(self, path: str) -> str | None:
        """The control check that got through `path`, if one has so far."""
        return self._passed.get(path)

    def context(self, profile: FirewallProfile) -> Context:
        """What the judge may use now."""
        hello, by = self._spliced if self._spliced is not None else (None, None)
        return Context(
            profile=profile, witnesses=dict(self._passed), spliced_hello_ms=hello, spliced_by=by
        )

    async def wait_for(self, path: str) -> str | None:
        """The witness for `path`, waiting while candidate checks are still probing."""
        while True:
            found = self.witness(path)
            if found or not self._pending:
                return found
            await self._changed.wait()

    async def settled(self) -> None:
        """Wait until every candidate finished (the timing reference is then final)."""
        while self._pending:
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
