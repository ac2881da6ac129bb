"""Real protocol peers for the probe tests, on 127.0.0.0/8 or inside a test-made netns.

Every peer is a real server: a dnspython-based DNS server (UDP and TCP), TCP peers that
speak TLS (with SNI capture) and HTTP or misbehave on purpose (cut after the ClientHello,
reset, hang, garbage), and NTP responders. They run on an asyncio loop in a background
thread so both async tests and the CLI (which runs its own loop) can talk to them.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

T = TypeVar("T")
AZURE_DENY_BODY = b"Action: Deny. Reason: No rule matched. Proceeding with default action."
CLONE_NEWNET = 0x40000000


# --------------------------------------------------------------------------- event loop


class PeerLoop:
    """An asyncio loop in a daemon thread (optionally entered into a network namespace)."""

    def __init__(self, netns: str | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.resources: list[Any] = []  # servers and transports to close at the end
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                if netns:
                    enter_netns(netns)
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True, name=f"peers-{netns or 'host'}")
        self.thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def shutdown() -> None:
            await close_all(self.resources)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def close_all(resources: list[Any]) -> None:
    for resource in resources:
        resource.close()
        if isinstance(resource, asyncio.Server):
            await resource.wait_closed()
    await asyncio.sleep(0)


def enter_netns(name: str) -> None:
    """Move the calling thread into a named network namespace (setns, CLONE_NEWNET)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def run_in_netns(name: str, factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a fresh loop in a thread that entered the namespace."""
    result: list[T] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            enter_netns(name)

            async def wrapper() -> T:
                return await factory()

            result.append(asyncio.run(wrapper()))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=main, name=f"probe-{name}")
    thread.start()
    thread.join(120)
    if failure:
        raise failure[0]
    return result[0]


# --------------------------------------------------------------------------- DNS


@dataclass
class DnsZone:
    """What the test DNS server answers."""

    records: dict[str, list[str]] = field(default_factory=dict)  # name. -> addresses
    nxdomain: set[str] = field(default_factory=set)
    refused_ede: dict[str, int] = field(default_factory=dict)  # name. -> EDE code
    silent: set[str] = field(default_factory=set)  # never answered (timeout)


class DnsPeer(asyncio.DatagramProtocol):
    def __init__(self, zone: DnsZone) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.zone.silent:
            return None
        response = dns.message.make_response(query)
        if name in self.zone.nxdomain:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif name in self.zone.refused_ede:
            response.set_rcode(dns.rcode.REFUSED)
            option = dns.edns.EDEOption(self.zone.refused_ede[name], "blocked by test policy")
            response.use_edns(0, options=[option])
        else:
            family = ":" if rdtype == "AAAA" else "."
            addresses = [a for a in self.zone.records.get(name, []) if family in a]
            if rdtype in ("A", "AAAA") and addresses:
                rrset = dns.rrset.from_text_list(question.name, 30, "IN", rdtype, addresses)
                response.answer.append(rrset)
            elif rdtype == "NS" and name == ".":
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 30, "IN", "NS", ["ns.probe.test."])
                )
        return response.to_wire()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = self.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = self.answer(await reader.readexactly(size))
            if reply is not None:
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def start_dns(host: str, zone: DnsZone, keep: list[Any]) -> tuple[DnsPeer, int]:
    """UDP and TCP on the same port of `host`."""
    loop = asyncio.get_running_loop()
    peer = DnsPeer(zone)
    transport, _ = await loop.create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
    keep.append(transport)
    port = int(transport.get_extra_info("sockname")[1])
    keep.append(await asyncio.start_server(peer.serve_tcp, host, port))
    return peer, port


# --------------------------------------------------------------------------- TCP peers


@dataclass
class TcpPeer:
    """A TCP listener whose behaviour per connection is chosen by the test."""

    host: str
    behaviour: Callable[[int], str]  # connection number -> serve|cut|reset|hang|garbage|http
    tls: ssl.SSLContext | None = None
    status: int = 200
    body: bytes = b"hello from the test peer"
    port: int = 0
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    sni: list[str | None] = field(default_factory=list)
    first_bytes: list[bytes] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    delay: float = 0.0  # seconds between the ClientHello and the answer (or the cut)
    remotes: list[tuple[str, int]] = field(default_factory=list)  # client address, port

    async def start(self, keep: list[Any], port: int = 0) -> TcpPeer:
        if self.tls is not None:
            self.tls.sni_callback = self._record_sni
        server = await asyncio.start_server(self._handle, self.host, port)
        keep.append(server)
        self.port = int(server.sockets[0].getsockname()[1])
        return self

    def _record_sni(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.remotes.append(tuple(writer.get_extra_info("peername")[:2]))
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        mode = self.behaviour(self.connections)
        try:
            await self._run(mode, reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def _run(
        self, mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if mode in ("cut", "reset"):
            self.first_bytes.append(await reader.read(4096))  # the ClientHello
            await asyncio.sleep(self.delay)
            if mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if mode == "hang":
            while await reader.read(65536):  # swallow the ClientHello; never answer
                pass
            return
        if self.tls is not None and mode in ("serve", "garbage"):
            if self.delay:  # the ClientHello waits in the socket, not in the reader's buffer
                writer.transport.pause_reading()
                await asyncio.sleep(self.delay)
            await writer.start_tls(self.tls)
        if mode == "garbage":
            await reader.read(4096)
            writer.write(b"\x00\x01this is not HTTP at all\r\n\r\n")
            await writer.drain()
            return
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        reason = {200: "OK", 470: "status code 470", 503: "Service Unavailable"}.get(
            self.status, "Whatever"
        )
        writer.write(
            f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n".encode()
            + self.body
        )
        await writer.drain()


def always(mode: str) -> Callable[[int], str]:
    return lambda _n: mode


# --------------------------------------------------------------------------- NTP


class NtpPeer(asyncio.DatagramProtocol):
    """Answers mode-3 requests with mode 4; `echo=False` answers with a wrong origin."""

    def __init__(self, echo: bool = True, silent: bool = False, silent_first: int = 0) -> None:
        self.echo = echo
        self.silent = silent
        self.silent_first = silent_first  # leave the first N requests unanswered
        self.requests: list[bytes] = []
        self.sources: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.requests.append(data)
        self.sources.append((str(addr[0]), int(addr[1])))
        if len(self.requests) <= self.silent_first:
            return
        if self.silent or self.transport is None or len(data) < 48:
            return
        reply = bytearray(48)
        reply[0] = (0 << 6) | (4 << 3) | 4
        reply[1] = 2  # stratum
        reply[24:32] = data[40:48] if self.echo else bytes(8)
        reply[40:48] = os.urandom(8)
        self.transport.sendto(bytes(reply), addr)


async def start_udp(host: str, peer: asyncio.DatagramProtocol, keep: list[Any]) -> int:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
    keep.append(transport)
    return int(transport.get_extra_info("sockname")[1])


def closed_port(host: str) -> int:
    """A port on `host` with nothing listening (bound briefly, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_ca(ca: Any, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path
