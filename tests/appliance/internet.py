"""The test's internet, run inside its own network namespace: TLS, HTTP, TCP and NTP peers.

Started by test_closed_loop.py as ``ip netns exec <inet> python internet.py CONFIG``; serves
until stdin closes (the test ends it), so it never outlives the test. Every address is a
test address inside that namespace (198.18.0.0/15); every name is answered by the test's
own DNS: nothing here is contacted on the real internet.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "probe"))

from probe_peers import NtpPeer, TcpPeer, always

# A real destination is a round trip away; these peers are next door. Answering a
# ClientHello only after this long makes a spliced handshake look like one to the far end,
# so a cut by the appliance's own proxy (a few ms) can be told apart from it, as on Azure.
FAR_END_DELAY = 0.08


class FarTcpPeer(TcpPeer):
    async def _run(
        self, mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.tls is not None:
            await asyncio.sleep(FAR_END_DELAY)
        await super()._run(mode, reader, writer)


async def main(config: dict[str, Any]) -> None:
    keep: list[Any] = []
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(config["cert"])
    for host, port, kind in config["tcp"]:
        peer = FarTcpPeer(host, always("serve"), tls=tls if kind == "tls" else None)
        await peer.start(keep, port)
    loop = asyncio.get_running_loop()
    for host, port in config["ntp"]:
        await loop.create_datagram_endpoint(NtpPeer, local_addr=(host, port))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes our stdin


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
