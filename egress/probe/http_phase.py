"""The HTTP rung: one GET without body or credentials, sent with httpx over the probe's channel.

An httpx transport that speaks HTTP/1.1 (h11) over the already verified connection: the
request goes to the address the probe connected to, with Host (and, via the channel, SNI)
set to the FQDN, and only a bounded excerpt of the body is read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import h11
import httpx

from egress import __version__
from egress.probe.channel import Channel

DENY_MARKER = "Action: Deny"  # Azure Firewall application-rule deny body (with HTTP 470)
AZURE_FIREWALL_DENY_STATUS = 470
_DROPPED_HEADERS = {b"content-length", b"transfer-encoding", b"content-encoding"}


class ChannelTransport(httpx.AsyncBaseTransport):
    """Sends exactly one request over an open channel and reads a bounded response."""

    def __init__(self, channel: Channel, excerpt_bytes: int) -> None:
        self._channel = channel
        self._limit = excerpt_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        connection = h11.Connection(h11.CLIENT)
        head = h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        )
        try:
            await self._channel.send(connection.send(head) + (connection.send(h11.EndOfMessage())))
            response = cast(h11.Response, await self._next(connection, h11.Response))
            body = b""
            while len(body) < self._limit:
                event = await self._next(connection, h11.Data, h11.EndOfMessage)
                if not isinstance(event, h11.Data):
                    break
                body += bytes(event.data)
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except (ConnectionError, OSError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
        headers = [(k, v) for k, v in response.headers if k.lower() not in _DROPPED_HEADERS]
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            content=body[: self._limit],
            extensions={
                "http_version": b"HTTP/" + response.http_version,
                "reason_phrase": bytes(response.reason),
            },
            request=request,
        )

    async def _next(self, connection: h11.Connection, *wanted: type) -> object:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                # b"" marks the close; h11 then yields ConnectionClosed or raises
                connection.receive_data(await self._channel.receive())
                continue
            if isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("the peer closed the connection before answering")
            if isinstance(event, wanted):
                return event


async def http_get(
    channel: Channel,
    *,
    scheme: str,
    host: str,
    port: int,
    time_limit: float,
    excerpt_bytes: int,
) -> tuple[bool, float, dict[str, Any]]:
    """GET / for the FQDN over the channel; keep status and a short body excerpt as evidence."""
    url = f"{scheme}://{host}:{port}/"
    detail: dict[str, Any] = {"method": "GET", "url": url, "host": host}
    headers = {"User-Agent": f"egress-probe/{__version__}", "Accept": "*/*"}
    headers["Accept-Encoding"] = "identity"
    began = time.perf_counter()
    try:
        async with httpx.AsyncClient(
            transport=ChannelTransport(channel, excerpt_bytes),
            trust_env=False,
            follow_redirects=False,
        ) as client:
            response = await asyncio.wait_for(client.get(url, headers=headers), time_limit)
    except TimeoutError:
        detail.update(outcome="timeout", error=f"no HTTP response within {time_limit:g}s")
        return False, _ms(began), detail
    except httpx.HTTPError as exc:
        outcome = "protocol-error" if isinstance(exc, httpx.ProtocolError) else "error"
        detail.update(outcome=outcome, error=f"{type(exc).__name__}: {exc}"[:300])
        return False, _ms(began), detail
    excerpt = response.content.decode("utf-8", errors="replace")
    detail.update(
        outcome="response",
        status=response.status_code,
        reason_phrase=response.reason_phrase,
        http_version=response.http_version,
        body_excerpt=excerpt,
        deny_signature=(
            response.status_code == AZURE_FIREWALL_DENY_STATUS and DENY_MARKER in excerpt
        ),
    )
    return True, _ms(began), detail


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
