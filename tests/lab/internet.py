"""The lab's internet: a delaying wire to the firewall plus the servers behind it.

Run by :mod:`firewall_lab` as ``ip netns exec <internet> python internet.py CONFIG.json``.

* **The wire.** The firewall and internet namespaces are joined by two TUN devices, one in
  each. This process reads every IP packet from one and writes it to the other after
  ``delay_ms``: a userspace cable that holds each packet, because this kernel has no
  ``netem`` qdisc. SYN, SYN-ACK, ICMP and UDP are all delayed alike, so the internet is
  farther from the pod than the firewall is, as it is in Azure.
* **The servers.** Per address: HTTPS, plain HTTP, bare TLS, NTP and DNS, under the lab's
  test CA. Every accepted connection or datagram is appended to ``served.jsonl`` (address,
  port, peer, SNI): the ground truth of whether traffic reached the far end.

It prints ``ready`` on stdout once the wire is attached and every server listens, and runs
until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import ssl
import struct
import sys
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rrset

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_tun(name: str, netns: str | None = None) -> int:
    """Attach to the persistent TUN device `name` (in namespace `netns` if given)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if netns:
            target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        return fd
    finally:
        _setns(home)
        os.close(home)


class Wire:
    """Moves packets between two TUN fds, each held for `delay` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, a: int, b: int, delay: float) -> None:
        self.loop, self.delay = loop, delay
        loop.add_reader(a, self._pump, a, b)
        loop.add_reader(b, self._pump, b, a)

    def _pump(self, source: int, target: int) -> None:
        while True:
            try:
                packet = os.read(source, 65535)
            except BlockingIOError:
                return
            self.loop.call_later(self.delay, self._deliver, target, packet)

    @staticmethod
    def _deliver(target: int, packet: bytes) -> None:
        with contextlib.suppress(OSError):  # the far device went away during shutdown
            os.write(target, packet)


class Served:
    """The ground-truth log of what reached a server."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8", buffering=1)

    def note(self, **fields: Any) -> None:
        self.file.write(json.dumps({"time": time.time(), **fields}, sort_keys=True) + "\n")


def tcp_handler(kind: str, served: Served, context: ssl.SSLContext | None) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        local = writer.get_extra_info("sockname")
        peer = writer.get_extra_info("peername")
        sni = None
        try:
            if kind in ("https", "tls") and context is not None:
                await writer.start_tls(context)
                sni = SNI.pop(id(writer.get_extra_info("ssl_object")), None)
            served.note(proto="tcp", kind=kind, address=local[0], port=local[1], peer=peer, sni=sni)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            body = f"hello from {local[0]}:{local[1]} ({kind})\n".encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            del head
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    return handle


SNI: dict[int, str | None] = {}  # id(SSLObject) -> the SNI its ClientHello carried


def _record_sni(obj: Any, name: str | None, _context: Any) -> None:
    SNI[id(obj)] = name


class Ntp(asyncio.DatagramProtocol):
    def __init__(self, served: Served) -> None:
        self.served = served
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is None or len(data) < 48:
            return
        local = self.transport.get_extra_info("sockname")
        self.served.note(proto="udp", kind="ntp", address=local[0], port=local[1], peer=addr)
        reply = bytearray(48)
        reply[0] = (0 << 6) | (4 << 3) | 4
        reply[1] = 2
        reply[24:32] = data[40:48]
        reply[40:48] = os.urandom(8)
        self.transport.sendto(bytes(reply), addr)


class Dns(asyncio.DatagramProtocol):
    """An outside resolver: answers A from its zone, NXDOMAIN for the rest."""

    def __init__(self, served: Served, zone: dict[str, str]) -> None:
        self.served, self.zone = served, zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is None:
            return
        try:
            query = dns.message.from_wire(data)
        except Exception:  # not DNS: ignore like any resolver
            return
        local = self.transport.get_extra_info("sockname")
        question = query.question[0]
        name = question.name.to_text().lower()
        self.served.note(
            proto="udp", kind="dns", address=local[0], port=local[1], peer=addr, qname=name
        )
        response = dns.message.make_response(query)
        if name == ".":
            response.answer.append(dns.rrset.from_text(".", 30, "IN", "NS", "ns.lab.test."))
        elif name in self.zone:
            response.answer.append(dns.rrset.from_text(name, 30, "IN", "A", self.zone[name]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


async def main(config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    wire = config["wire"]
    inner = open_tun(wire["internet_tun"])
    outer = open_tun(wire["firewall_tun"], wire["firewall_netns"])
    Wire(loop, inner, outer, wire["delay_ms"] / 1000)
    served = Served(Path(config["served_log"]))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config["cert"], config["key"])
    context.sni_callback = _record_sni
    keep: list[Any] = []
    for host in config["hosts"]:
        address = host["address"]
        for port, kind in host.get("tcp", {}).items():
            handler = tcp_handler(kind, served, context if kind in ("https", "tls") else None)
            keep.append(await asyncio.start_server(handler, address, int(port)))
        for port, kind in host.get("udp", {}).items():
            protocol: asyncio.DatagramProtocol = (
                Ntp(served) if kind == "ntp" else Dns(served, config.get("dns_zone", {}))
            )
            transport, _ = await loop.create_datagram_endpoint(
                lambda p=protocol: p, local_addr=(address, int(port))
            )
            keep.append(transport)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for each in keep:
        each.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
