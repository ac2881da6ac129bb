"""The HTTP rung: one GET without body or credentials to the probed address, Host/SNI = FQDN."""

from __future__ import annotations

import ssl
import time
from typing import Any

import httpx

from egress import __version__

DENY_MARKER = "Action: Deny"  # Azure Firewall application-rule deny body (with HTTP 470)
AZURE_FIREWALL_DENY_STATUS = 470


def _url(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}/"


async def http_get(
    *,
    scheme: str,
    host: str,
    address: str,
    port: int,
    context: ssl.SSLContext,
    time_limit: float,
    excerpt_bytes: int,
) -> tuple[bool, float, dict[str, Any]]:
    """GET / with Host (and SNI for https) set to the FQDN; keep status and a short body excerpt.

    A fresh client per request: no connection reuse across SNI values, no cookies, no
    proxy variables from the environment, no redirects followed.
    """
    url = _url(scheme, address, port)
    detail: dict[str, Any] = {"method": "GET", "url": url, "host": host}
    extensions: dict[str, Any] = {"sni_hostname": host} if scheme == "https" else {}
    headers = {"Host": host, "User-Agent": f"egress-probe/{__version__}", "Accept": "*/*"}
    began = time.perf_counter()
    try:
        async with httpx.AsyncClient(
            verify=context,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(time_limit),
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            request = client.build_request("GET", url, headers=headers, extensions=extensions)
            response = await client.send(request, stream=True)
            try:
                body = await _read_excerpt(response, excerpt_bytes)
            finally:
                await response.aclose()
    except httpx.TimeoutException as exc:
        detail.update(outcome="timeout", error=f"{type(exc).__name__} after {time_limit:g}s")
        return False, _ms(began), detail
    except httpx.HTTPError as exc:
        outcome = "protocol-error" if isinstance(exc, httpx.ProtocolError) else "error"
        detail.update(outcome=outcome, error=f"{type(exc).__name__}: {exc}"[:300])
        return False, _ms(began), detail
    excerpt = body.decode("utf-8", errors="replace")
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


async def _read_excerpt(response: httpx.Response, limit: int) -> bytes:
    collected = b""
    async for chunk in response.aiter_raw():
        collected += chunk
        if len(collected) >= limit:
            break
    return collected[:limit]


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
