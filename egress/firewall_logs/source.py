"""The one small interface every firewall log source implements, and what it is asked for."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from egress.firewall_logs.model import Action, FirewallDecision, LogTable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which decisions to read: a time window, the cluster's source addresses, the tables."""

    since: datetime
    until: datetime
    sources: tuple[str, ...] = ()  # addresses or CIDRs; empty: every source
    tables: tuple[LogTable, ...] = tuple(LogTable)
    denies_only: bool = False
    # A cheap look at a row's raw columns before it is parsed (corroboration: "could this
    # row be one of the attempts?"); rows it refuses are never parsed or validated further.
    row_filter: Callable[[Mapping[str, Any]], bool] | None = None

    def networks(self) -> tuple[IpNetwork, ...]:
        return tuple(ipaddress.ip_network(s, strict=False) for s in self.sources)


@dataclass
class SourceNotes:
    """What a source wants the reader to know: partial results, bounds hit, empty tables."""

    messages: list[str] = field(default_factory=list)
    records: int = 0  # rows read before the query's filters (for "zero records")
    incomplete: bool = False  # partial results or a row bound hit: absence proves nothing
    newest: datetime | None = None  # the newest decision read (files: how far they reach)

    def saw(self, moment: datetime) -> None:
        if self.newest is None or moment > self.newest:
            self.newest = moment

    def add(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)


class DecisionSource(Protocol):
    """A firewall log source: one module per kind, registered in egress.firewall_logs."""

    @property
    def name(self) -> str:
        """How messages and reports name this source (file path, workspace id)."""
        ...

    @property
    def notes(self) -> SourceNotes: ...

    @property
    def complete(self) -> bool:
        """True when the source holds all it ever will (a file): nothing to wait for."""
        ...

    def decisions(self, query: LogQuery) -> Iterator[FirewallDecision]:
        """The decisions in the window from the given sources, in any order."""
        ...

    def latest(self, query: LogQuery) -> datetime | None:
        """The newest decision time the source holds for any source address (the watermark
        up to which logs have arrived), or None when it holds none in the window."""
        ...


class AddressFilter:
    """Fast membership of a source IP in the query's addresses (exact IPs first, then CIDRs)."""

    def __init__(self, query: LogQuery) -> None:
        networks = query.networks()
        self.everything = not networks
        self._exact = {str(n.network_address) for n in networks if n.num_addresses == 1}
        self._ranges = [n for n in networks if n.num_addresses > 1]
        self._seen: dict[str, bool] = {}

    def __call__(self, address: str) -> bool:
        if self.everything or address in self._exact:
            return True
        known = self._seen.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = any(ip in n for n in self._ranges)
            if len(self._seen) < 100_000:
                self._seen[address] = known
        return known


def raw_selects(query: LogQuery, columns: Mapping[str, Any]) -> bool:
    """A cheap look at a row's raw columns before it is parsed: can it be selected at all?"""
    if query.denies_only and str(columns.get("Action", "Deny")).lower() not in ("deny", "drop"):
        return False
    return query.row_filter is None or query.row_filter(columns)


def selects(query: LogQuery, decision: FirewallDecision, addresses: AddressFilter) -> bool:
    """Whether a decision falls in the query (the file source filters what the KQL filters)."""
    if decision.table not in query.tables:
        return False
    if not query.since <= decision.time <= query.until:
        return False
    if query.denies_only and decision.action is not Action.DENY:
        return False
    return addresses(decision.source_ip)
