"""A byte channel over a connected stream, optionally through the TLS session the probe verified.

The HTTP rung talks over this channel, so the request travels on exactly the connection
whose handshake and certificate are in the evidence: no second connection, no second
handshake, no resolution by the HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

READ_CHUNK = 16384


@dataclass
class Channel:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tls: ssl.SSLObject | None = None
    incoming: ssl.MemoryBIO | None = None
    outgoing: ssl.MemoryBIO | None = None

    async def send(self, data: bytes) -> None:
        if self.tls is not None and self.outgoing is not None:
            self.tls.write(data)
            data = self.outgoing.read()
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> bytes:
        """The next bytes from the peer; b"" once it closed the connection."""
        if self.tls is None or self.incoming is None:
            return await self.reader.read(READ_CHUNK)
        while True:
            try:
                return self.tls.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                chunk = await self.reader.read(READ_CHUNK)
                if not chunk:
                    return b""
                self.incoming.write(chunk)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.writer.close()
