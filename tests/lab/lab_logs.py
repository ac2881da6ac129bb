"""The lab firewall's own decisions, read back from squid's and dnsmasq's logs and the nft trace.

One :class:`Decision` per flow the firewall decided: the application-rule proxy (squid,
TCP 80/443) or a network rule (nftables' forward chain). These are what Azure Firewall
writes to ``AZFWApplicationRule`` and ``AZFWNetworkRule``; issue 10 turns them into rows.
The case-matrix tests use them as the truth a probe verdict is checked against.
:func:`dns_queries` reads dnsmasq's query log (the DNS proxy: ``AZFWDnsQuery``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from firewall_lab import SQUID_LOG_FIELDS, Lab

_PACKET = re.compile(
    r"^(?P<time>\S+) trace id (?P<id>\S+) \S+ \S+ (?P<chain>\S+) packet: (?P<rest>.*)"
)
_VERDICT = re.compile(
    r"^(?P<time>\S+) trace id (?P<id>\S+) \S+ \S+ (?P<chain>\S+) "
    r"(?:rule .*?(?:comment \"(?P<comment>[^\"]*)\" )?\(verdict (?P<verdict>\w+)"
    r"|policy (?P<policy>\w+))"
)


@dataclass(frozen=True)
class Decision:
    """One firewall decision about one flow."""

    time: float
    source: str  # "application-rule" (squid) or "network-rule" (nftables)
    protocol: str  # tcp | udp | http | https
    source_ip: str
    source_port: int
    destination_ip: str
    destination_port: int
    target: str | None  # the SNI or Host the proxy judged (application rules only)
    action: str  # allow | deny
    rule: str | None  # the deciding rule: nft comment, squid's bump mode or status
    inspected: bool = False


def squid_decisions(path: Path) -> list[Decision]:
    """One decision per intercepted connection (squid writes several lines for some).

    Lines of one connection share the client address and port and overlap in time; a later
    line from the same port that began after the previous one ended is a new connection
    (ephemeral ports are reused over a session).
    """
    if not path.exists():
        return []
    found: list[Decision] = []
    last: dict[tuple[str, str], tuple[Decision, float]] = {}  # connection -> (decision, end)
    for line in path.read_text(encoding="utf-8").splitlines():
        row = dict(zip(SQUID_LOG_FIELDS, line.split(), strict=False))
        if len(row) < len(SQUID_LOG_FIELDS) or row["local_port"] == "-" or row["method"] == "-":
            continue
        key, began, ended = (
            (row["client_ip"], row["client_port"]),
            _started(row),
            float(row["time"]),
        )
        previous = last.get(key)
        if previous is not None and began <= previous[1] + 0.005:  # ms rounding
            last[key] = (previous[0], max(ended, previous[1]))
            continue  # another line of the same connection: its first line decided
        decision = _squid_decision(row, began)
        if decision is not None:
            found.append(decision)
            last[key] = (decision, ended)
    return found


def _squid_decision(row: dict[str, str], began: float) -> Decision | None:
    tls = row["method"] == "CONNECT"
    if tls and row["sni"] == "-":
        return None  # no ClientHello seen (e.g. a bare TCP connect): nothing decided
    mode = row["bump_mode"]
    return Decision(
        time=began,
        source="application-rule",
        protocol="https" if tls else "http",
        source_ip=row["client_ip"],
        source_port=int(row["client_port"]),
        destination_ip=row["local_ip"],
        destination_port=int(row["local_port"]),
        target=row["sni"] if tls else urlsplit(row["url"]).hostname,
        action=("allow" if mode in ("splice", "bump") else "deny")
        if tls
        else ("deny" if row["status"] == "470" else "allow"),
        rule=mode if tls else row["squid_status"],
        inspected=tls and mode == "bump",
    )


def _started(row: dict[str, str]) -> float:
    """squid stamps a line when the transaction ends; the flow began `elapsed_ms` earlier."""
    return float(row["time"]) - int(row["elapsed_ms"]) / 1000


def nft_decisions(path: Path) -> list[Decision]:
    """The forward chain's verdict on the first packet of each traced flow."""
    if not path.exists():
        return []
    packets: dict[str, dict[str, str]] = {}
    decisions: list[Decision] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PACKET.match(line):
            if match["chain"] == "forward":
                packets[match["id"]] = {"time": match["time"], "rest": match["rest"]}
            continue
        match = _VERDICT.match(line)
        if not match or match["chain"] != "forward" or match["id"] not in packets:
            continue
        verdict = match["verdict"] or match["policy"]
        if verdict not in ("accept", "drop"):
            continue
        packet = packets.pop(match["id"])
        fields = _fields(packet["rest"])
        protocol = fields.get("ip protocol", "?")
        decisions.append(
            Decision(
                time=float(packet["time"]),
                source="network-rule",
                protocol=protocol,
                source_ip=fields.get("ip saddr", "?"),
                source_port=int(fields.get(f"{protocol} sport", "0")),
                destination_ip=fields.get("ip daddr", "?"),
                destination_port=int(fields.get(f"{protocol} dport", "0")),
                target=None,
                action="allow" if verdict == "accept" else "deny",
                rule=match["comment"] or ("policy" if match["policy"] else None),
            )
        )
    return decisions


def _fields(rest: str) -> dict[str, str]:
    """`ip saddr 10.0.0.1 ip daddr ... tcp dport 443 ...` -> {"ip saddr": "10.0.0.1", ...}."""
    words = rest.split()
    found: dict[str, str] = {}
    for i in range(len(words) - 2):
        if words[i] in ("ip", "tcp", "udp"):
            found.setdefault(f"{words[i]} {words[i + 1]}", words[i + 2])
    return found


def decisions(lab: Lab, since: float = 0.0, until: float = float("inf")) -> list[Decision]:
    """Every decision the lab firewall logged in [since, until] (UNIX time)."""
    found = squid_decisions(lab.squid_access_log) + nft_decisions(lab.nft_log)
    return sorted((d for d in found if since <= d.time <= until), key=lambda d: d.time)


_DNS_LINE = re.compile(
    r"^(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) dnsmasq\[\d+\]: (?P<serial>\d+) "
    r"(?P<ip>[\d.:a-f]+)/(?P<port>\d+) (?P<what>.*)$"
)


@dataclass(frozen=True)
class DnsQuery:
    """One query the DNS proxy answered (dnsmasq's log has whole seconds, local time)."""

    time: float
    source_ip: str
    source_port: int
    name: str
    qtype: str
    answer: str  # an address, NXDOMAIN, NODATA-IPv6, ...


def dns_queries(path: Path) -> list[DnsQuery]:
    """Each query with the first answer dnsmasq logged for it."""
    if not path.exists():
        return []
    year = time.localtime().tm_year
    asked: dict[str, dict[str, str]] = {}
    found: list[DnsQuery] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _DNS_LINE.match(line)
        if not match:
            continue
        words = match["what"].split()
        if words[0].startswith("query["):
            asked[match["serial"]] = {
                "qtype": words[0][6:-1],
                "name": words[1],
                **match.groupdict(),
            }
        elif len(words) >= 4 and words[-2] == "is" and match["serial"] in asked:
            query = asked.pop(match["serial"])
            stamp = datetime.strptime(f"{year} {query['stamp']}", "%Y %b %d %H:%M:%S")
            found.append(
                DnsQuery(
                    time=stamp.timestamp(),
                    source_ip=query["ip"],
                    source_port=int(query["port"]),
                    name=query["name"],
                    qtype=query["qtype"],
                    answer=words[-1],
                )
            )
    return found
