"""The TLS rung: a handshake with SNI driven by hand, so a cut right after the ClientHello shows.

The handshake runs over memory BIOs on an already connected stream; that way the probe
knows how many bytes the server sent before the connection ended (zero means the
ClientHello itself was answered with EOF or RST), which alert came back, and the
certificate, verified against the public trust store or recorded as TLS inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from datetime import UTC
from typing import Any

from egress.probe.channel import READ_CHUNK, Channel
from egress.probe.connect import Stream

# OpenSSL verify codes meaning "issued by a CA this trust store does not know".
UNTRUSTED_ISSUER_CODES = frozenset({2, 18, 19, 20, 21})


class HandshakeCutError(Exception):
    """The peer closed or reset the connection during the handshake."""


async def handshake(
    stream: Stream, context: ssl.SSLContext, server_hostname: str | None, time_limit: float
) -> tuple[dict[str, Any], Channel | None]:
    """Drive one client handshake; returns the evidence and, when it completed, the channel."""
    reader, writer = stream
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_hostname)
    state = {"from_server": 0}
    detail: dict[str, Any] = {"sni": server_hostname}
    clock: dict[str, float] = {}  # perf_counter when the ClientHello left and the first byte came

    async def drive() -> None:
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                await _flush(writer, outgoing)
                clock.setdefault("hello", time.perf_counter())
                try:
                    chunk = await reader.read(READ_CHUNK)
                except ConnectionError as exc:
                    raise HandshakeCutError(f"{type(exc).__name__}: {exc}") from exc
                if not chunk:
                    raise HandshakeCutError("EOF") from None
                clock.setdefault("first_byte", time.perf_counter())
                state["from_server"] += len(chunk)
                incoming.write(chunk)
            else:
                await _flush(writer, outgoing)  # the client Finished in TLS 1.3
                return

    try:
        await asyncio.wait_for(drive(), time_limit)
    except TimeoutError:
        detail.update(outcome="timeout", error=f"no handshake within {time_limit:g}s")
    except HandshakeCutError as exc:
        cut = "cut-after-client-hello" if state["from_server"] == 0 else "cut-during-handshake"
        detail.update(outcome=cut, error=str(exc))
    except ssl.SSLCertVerificationError as exc:
        detail.update(
            outcome="verify-failed",
            verify_code=exc.verify_code,
            verify_error=exc.verify_message,
            error=exc.verify_message,
        )
    except ssl.SSLError as exc:
        alert = exc.reason or type(exc).__name__
        outcome = "alert" if "ALERT" in alert.upper() else "error"
        detail.update(outcome=outcome, alert=alert if outcome == "alert" else None, error=alert)
    except ConnectionError as exc:
        detail.update(outcome="error", error=f"{type(exc).__name__}: {exc}")
    else:
        detail.update(
            outcome="complete",
            version=tls.version(),
            cipher=(tls.cipher() or ("",))[0],
            certificate=certificate_summary(tls.getpeercert(binary_form=True)),
        )
    detail["bytes_from_server"] = state["from_server"]
    detail.update(_hello_timing(clock, detail["outcome"]))
    if detail["outcome"] != "complete":
        return detail, None
    return detail, Channel(reader, writer, tls, incoming, outgoing)


def _hello_timing(clock: dict[str, float], outcome: str) -> dict[str, float]:
    """Milliseconds from the ClientHello to the first server byte, or to the cut or timeout.

    Against the TCP handshake time (which a transparent proxy answers itself) this tells a
    proxy's own decision from a round trip to the far end.
    """
    hello = clock.get("hello")
    if hello is None:
        return {}
    out: dict[str, float] = {}
    if "first_byte" in clock:
        out["hello_to_first_byte_ms"] = round((clock["first_byte"] - hello) * 1000, 3)
    if outcome.startswith("cut-") or outcome == "timeout":
        out["hello_to_end_ms"] = round((time.perf_counter() - hello) * 1000, 3)
    return out


async def _flush(writer: asyncio.StreamWriter, outgoing: ssl.MemoryBIO) -> None:
    data = outgoing.read()
    if data:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()


def certificate_summary(der: bytes | None) -> dict[str, Any] | None:
    """Subject, issuer, validity and SANs of the leaf certificate (DER) for the evidence."""
    if not der:
        return None
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sorted(str(n) for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.astimezone(UTC).isoformat(),
        "not_after": cert.not_valid_after_utc.astimezone(UTC).isoformat(),
        "serial": format(cert.serial_number, "x"),
        "dns_names": names[:20],
    }


def tls_phase_detail(
    verified: dict[str, Any], unverified: dict[str, Any] | None
) -> tuple[bool, dict[str, Any]]:
    """Merge the verifying handshake with the recording one that follows a verify failure."""
    if verified["outcome"] == "complete":
        return True, {**verified, "verified": True, "inspection": False}
    if verified["outcome"] != "verify-failed":
        return False, {**verified, "verified": False, "inspection": False}
    code = verified.get("verify_code")
    merged = {
        **(unverified or {}),
        "verified": False,
        "verify_code": code,
        "verify_error": verified.get("verify_error"),
        "inspection": code in UNTRUSTED_ISSUER_CODES,
    }
    certificate = merged.get("certificate")
    if merged["inspection"] and isinstance(certificate, dict):
        merged["inspecting_issuer"] = certificate.get("issuer")
    ok = unverified is not None and unverified.get("outcome") == "complete"
    if not ok:
        merged.setdefault("outcome", "verify-failed")
        merged.setdefault("error", verified.get("verify_error"))
    return ok, merged
