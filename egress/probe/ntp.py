"""NTP over UDP: a real 48-byte mode-3 request and strict validation of the mode-4 reply."""

from __future__ import annotations

import secrets
import struct

NTP_PACKET_BYTES = 48
CLIENT_FIRST_BYTE = (0 << 6) | (4 << 3) | 3  # LI 0, version 4, mode 3 (client)
SERVER_MODE = 4


def client_request() -> tuple[bytes, bytes]:
    """The request and its unpredictable transmit timestamp (the nonce the reply must echo)."""
    transmit = secrets.token_bytes(8)
    packet = bytes([CLIENT_FIRST_BYTE]) + bytes(39) + transmit
    return packet, transmit


def reply_problem(reply: bytes, transmit: bytes) -> str | None:
    """None for a valid server reply to this request, else why it is not one."""
    if len(reply) < NTP_PACKET_BYTES:
        return f"reply has {len(reply)} bytes, expected at least {NTP_PACKET_BYTES}"
    mode = reply[0] & 0x07
    if mode != SERVER_MODE:
        return f"reply mode is {mode}, expected 4 (server)"
    if reply[24:32] != transmit:
        return "reply origin timestamp does not echo the request's transmit timestamp"
    return None


def reply_summary(reply: bytes) -> dict[str, int]:
    """Fields worth keeping as evidence: mode, version, stratum."""
    first, stratum = struct.unpack("!BB", reply[:2])
    return {"mode": first & 0x07, "version": (first >> 3) & 0x07, "stratum": stratum}
