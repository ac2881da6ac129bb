"""The control witness: which allowed endpoint proved that a phase works from this vantage point.

A timeout only counts as "blocked" when some allow check passed the same phase (any UDP
exchange stands in for another), so a dead network path is never mistaken for a deny.
Allow checks are the candidates, or only the one named by ``--control``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from egress.probe.judge import UDP_PHASES
from egress.results import Phase


def _key(phase: str) -> str:
    return "udp" if phase in UDP_PHASES else phase


class ControlWitness:
    """Collects passed phases of successful candidate checks; waits while candidates still run."""

    def __init__(self, candidates: Iterable[str]) -> None:
        self._candidates = frozenset(candidates)
        self._pending = set(self._candidates)
        self._passed: dict[str, str] = {}
        self._changed = asyncio.Event()

    def is_candidate(self, check_id: str) -> bool:
        return check_id in self._candidates

    def succeeded(self, check_id: str, phases: Sequence[Phase]) -> None:
        if check_id not in self._candidates:
            return
        for phase in phases:
            if phase.ok:
                self._passed.setdefault(_key(phase.name), check_id)
        self._wake()

    def finished(self, check_id: str) -> None:
        self._pending.discard(check_id)
        self._wake()

    def witness(self, phase: str) -> str | None:
        """The control check that passed `phase`, if one has so far."""
        return self._passed.get(_key(phase))

    async def wait_for(self, phase: str) -> str | None:
        """The witness for `phase`, waiting while candidate checks are still probing."""
        while True:
            found = self.witness(phase)
            if found or not self._pending:
                return found
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
