"""The protocol ladder per check kind: DNS, TCP, TLS, HTTP, NTP or a DNS query, each phase timed."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

import dns.message
import dns.rcode

from egress.probe import ntp
from egress.probe.channel import Channel
from egress.probe.connect import Connector, Stream
from egress.probe.dns_client import Resolver
from egress.probe.http_phase import http_get
from egress.probe.settings import ProbeSettings, is_ip_literal
from egress.probe.tls_phase import handshake, tls_phase_detail
from egress.probe.work import WorkItem
from egress.probe_plan import CheckKind
from egress.results import Phase


@dataclass
class Ladder:
    """Climbs the rungs a check kind needs and stops at the first failed one."""

    settings: ProbeSettings
    resolver: Resolver
    connector: Connector
    trusted: ssl.SSLContext
    unverified: ssl.SSLContext
    dns_gate: asyncio.Semaphore

    async def climb(self, item: WorkItem) -> tuple[Phase, ...]:
        check = item.check
        if check.kind is CheckKind.UNVERIFIABLE:
            return ()
        if item.problem:
            detail = {"outcome": "unknown", "error": item.problem}
            return (Phase(name="host", ok=False, duration_ms=0.0, detail=detail),)
        phases: list[Phase] = []
        address = item.host
        if not is_ip_literal(item.host):
            async with self.dns_gate:
                dns_phase = await self.resolver.lookup(item.host, self.settings.phase_timeout)
            phases.append(dns_phase)
            if not dns_phase.ok:
                return tuple(phases)
            address = str(dns_phase.detail["address"])
        if check.kind is CheckKind.NTP:
            phases.append(await self._ntp(address, check.port))
        elif check.kind is CheckKind.DNS:
            phases.append(await self._dns_query(address, check.port, check.dns_query_name))
        else:
            await self._tcp_ladder(item, address, phases)
        return tuple(phases)

    async def _tcp_ladder(self, item: WorkItem, address: str, phases: list[Phase]) -> None:
        check, time_limit = item.check, self.settings.phase_timeout
        tcp, stream = await self.connector.tcp(address, check.port, time_limit)
        phases.append(tcp)
        if stream is None:
            return
        opened = [Channel(*stream)]
        try:  # every connection is closed on the way out, also when cancelled at the deadline
            if check.kind is CheckKind.HTTP:
                phases.append(await self._http(opened[0], "http", item.host, check.port))
            if check.kind in (CheckKind.TCP, CheckKind.HTTP):
                return
            tls, channel = await self._tls(item.host, address, check.port, stream, opened)
            phases.append(tls)
            usable = tls.ok and (tls.detail.get("verified") or tls.detail.get("inspection"))
            if check.kind is CheckKind.HTTPS and usable and channel is not None:
                phases.append(await self._http(channel, "https", item.host, check.port))
        finally:
            for each in opened:
                each.close()

    async def _tls(
        self, host: str, address: str, port: int, stream: Stream, opened: list[Channel]
    ) -> tuple[Phase, Channel | None]:
        """Verify against the trust store; after a verify failure, reconnect to record the cert."""
        time_limit = self.settings.phase_timeout
        sni = None if is_ip_literal(host) else host
        began = time.perf_counter()
        first, channel = await handshake(stream, self.trusted, sni or host, time_limit)
        second: dict[str, Any] | None = None
        if first["outcome"] == "verify-failed":
            _, again = await self.connector.tcp(address, port, time_limit)
            if again is not None:
                opened.append(Channel(*again))
                second, channel = await handshake(again, self.unverified, sni, time_limit)
        ok, detail = tls_phase_detail(first, second)
        detail["sni"] = sni  # IP literals are verified against IP SANs but sent without SNI
        return Phase(name="tls", ok=ok, duration_ms=_ms(began), detail=detail), channel

    async def _http(self, channel: Channel, scheme: str, host: str, port: int) -> Phase:
        ok, duration, detail = await http_get(
            channel,
            scheme=scheme,
            host=host,
            port=port,
            time_limit=self.settings.phase_timeout,
            excerpt_bytes=self.settings.body_excerpt_bytes,
        )
        return Phase(name="http", ok=ok, duration_ms=duration, detail=detail)

    async def _ntp(self, address: str, port: int) -> Phase:
        request, transmit = ntp.client_request()
        phase, reply = await self.connector.udp(
            name="ntp",
            address=address,
            port=port,
            payload=request,
            check=lambda data: ntp.reply_problem(data, transmit),
            time_limit=self.settings.phase_timeout,
        )
        if reply is None:
            return phase
        detail = {**phase.detail, **ntp.reply_summary(reply), "origin_echoed": True}
        return phase.model_copy(update={"detail": detail})

    async def _dns_query(self, address: str, port: int, query_name: str | None) -> Phase:
        qname = (query_name or ".").rstrip(".") + "."
        query = dns.message.make_query(qname, "NS" if qname == "." else "A", use_edns=0)

        def problem(data: bytes) -> str | None:
            try:
                reply = dns.message.from_wire(data)
            except Exception as exc:  # any undecodable datagram is simply not a reply
                return f"undecodable reply: {type(exc).__name__}"
            return None if query.is_response(reply) else "reply does not match the query id"

        phase, reply = await self.connector.udp(
            name="dns-query",
            address=address,
            port=port,
            payload=query.to_wire(),
            check=problem,
            time_limit=self.settings.phase_timeout,
        )
        if reply is None:
            return phase.model_copy(update={"detail": {**phase.detail, "qname": qname}})
        message = dns.message.from_wire(reply)
        answers = sorted(rdata.to_text() for rrset in message.answer for rdata in rrset)
        detail = {
            **phase.detail,
            "qname": qname,
            "rcode": dns.rcode.to_text(message.rcode()),
            "answers": answers[:10],
        }
        return phase.model_copy(update={"detail": detail})


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
