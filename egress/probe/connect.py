"""Transport I/O for the ladder: TCP connect and one UDP request/reply, keeping the raw errno."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from egress.results import Phase

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
ReplyCheck = Callable[[bytes], str | None]  # None when the reply is valid, else why not


class Connector(Protocol):
    """Opens the transports the ladder climbs on; tests may wrap it, production uses asyncio."""

    async def tcp(
        self, address: str, port: int, time_limit: float
    ) -> tuple[Phase, Stream | None]: ...

    async def udp(
        self,
        *,
        name: str,
        address: str,
        port: int,
        payload: bytes,
        check: ReplyCheck,
        time_limit: float,
    ) -> tuple[Phase, bytes | None]: ...


def errno_detail(exc: OSError) -> dict[str, Any]:
    code = exc.errno
    return {
        "errno": code,
        "errno_name": errno.errorcode.get(code, "OSError") if code is not None else None,
        "error": exc.strerror or str(exc) or type(exc).__name__,
    }


def local_endpoint(sock: Any) -> dict[str, Any]:
    """The source address and port of a socket: the keys that join a flow with firewall logs."""
    try:
        name = sock.getsockname()
    except (OSError, AttributeError):
        return {}
    return {"local_address": str(name[0]), "local_port": int(name[1])}


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class AsyncioConnector:
    """asyncio streams and datagram endpoints; never listens, never needs privileges."""

    async def tcp(self, address: str, port: int, time_limit: float) -> tuple[Phase, Stream | None]:
        detail: dict[str, Any] = {"address": address, "port": port}
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            # connect() binds the source port at once, so even a dropped SYN names its flow
            connecting = loop.sock_connect(sock, (address, port))
            try:
                await asyncio.wait_for(connecting, time_limit)
            finally:
                detail.update(local_endpoint(sock))
            reader, writer = await asyncio.open_connection(sock=sock)
        except TimeoutError:
            sock.close()
            detail.update(outcome="timeout", error=f"no SYN-ACK within {time_limit:g}s")
            return Phase(name="tcp", ok=False, duration_ms=_elapsed(started), detail=detail), None
        except OSError as exc:
            sock.close()
            outcome = "refused" if exc.errno == errno.ECONNREFUSED else "error"
            detail.update(outcome=outcome, **errno_detail(exc))
            return Phase(name="tcp", ok=False, duration_ms=_elapsed(started), detail=detail), None
        except BaseException:  # cancelled at the deadline: never leak the socket
            sock.close()
            raise
        detail["outcome"] = "connected"
        phase = Phase(name="tcp", ok=True, duration_ms=_elapsed(started), detail=detail)
        return phase, (reader, writer)

    async def udp(
        self,
        *,
        name: str,
        address: str,
        port: int,
        payload: bytes,
        check: ReplyCheck,
        time_limit: float,
    ) -> tuple[Phase, bytes | None]:
        detail: dict[str, Any] = {"address": address, "port": port, "request_bytes": len(payload)}
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        protocol = _OneReply(check)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: protocol, remote_addr=(address, port)
            )
        except OSError as exc:
            detail.update(outcome="error", **errno_detail(exc))
            return Phase(name=name, ok=False, duration_ms=_elapsed(started), detail=detail), None
        detail.update(local_endpoint(transport.get_extra_info("socket")))  # connected UDP socket
        try:
            transport.sendto(payload)
            reply = await asyncio.wait_for(asyncio.shield(protocol.reply), time_limit)
        except TimeoutError:
            detail.update(outcome="timeout", error=f"no valid reply within {time_limit:g}s")
            if protocol.rejected:  # something answered, but not with a valid reply
                detail.update(outcome="invalid", invalid_replies=protocol.rejected)
                detail["error"] = f"replies did not validate: {protocol.rejected[0]}"
            return Phase(name=name, ok=False, duration_ms=_elapsed(started), detail=detail), None
        except OSError as exc:
            outcome = "refused" if exc.errno == errno.ECONNREFUSED else "error"
            detail.update(outcome=outcome, **errno_detail(exc))
            return Phase(name=name, ok=False, duration_ms=_elapsed(started), detail=detail), None
        finally:
            transport.close()
            if not protocol.reply.done():
                protocol.reply.cancel()
        detail.update(outcome="reply", reply_bytes=len(reply))
        return Phase(name=name, ok=True, duration_ms=_elapsed(started), detail=detail), reply


@dataclass
class _OneReply(asyncio.DatagramProtocol):
    """Waits for the first datagram the check accepts; ICMP errors end the wait."""

    check: ReplyCheck
    reply: asyncio.Future[bytes] = field(init=False)
    rejected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reply = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        problem = self.check(data)
        if problem is None:
            if not self.reply.done():
                self.reply.set_result(data)
        elif len(self.rejected) < 4:  # bounded evidence
            self.rejected.append(problem)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done() and isinstance(exc, OSError):
            self.reply.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            with contextlib.suppress(asyncio.InvalidStateError):
                self.reply.cancel()
