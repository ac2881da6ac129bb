"""DNS for the ladder: a resolver protocol and its dnspython implementation (rcode, EDE, answers).

Queries go straight to one explicit nameserver (``--resolver`` or the first one in
resolv.conf) with a trailing-dot name, so search-list expansion can never change the
answer and the evidence names exactly which resolver said what.
"""

from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass
from typing import Any, Protocol

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from egress.errors import ProbeError, UsageError
from egress.probe.settings import is_ip_literal
from egress.results import Phase


class Resolver(Protocol):
    """Looks a name up as A and AAAA and returns the `dns` phase with its evidence."""

    @property
    def description(self) -> str: ...

    async def lookup(self, host: str, time_limit: float) -> Phase: ...


@dataclass(frozen=True)
class QueryResult:
    """One DNS exchange: the response, or why there was none."""

    response: dns.message.Message | None
    outcome: str  # "response", "timeout", "refused", "error"
    error: str | None = None
    errno: int | None = None


async def query_once(
    server: str, port: int, name: str, rdtype: str, time_limit: float
) -> QueryResult:
    """Send one real query (EDNS on, so EDE can come back); UDP with TCP fallback."""
    qname = name if name.endswith(".") else name + "."
    query = dns.message.make_query(qname, rdtype, use_edns=0)
    try:
        response, _ = await asyncio.wait_for(
            dns.asyncquery.udp_with_fallback(query, server, timeout=time_limit, port=port),
            time_limit,
        )
    except (TimeoutError, dns.exception.Timeout):
        return QueryResult(None, "timeout", f"no answer within {time_limit:g}s")
    except OSError as exc:
        outcome = "refused" if exc.errno == errno.ECONNREFUSED else "error"
        name_of = errno.errorcode.get(exc.errno or 0, "OSError")
        return QueryResult(None, outcome, f"{name_of}: {exc.strerror or exc}", exc.errno)
    except dns.exception.DNSException as exc:
        return QueryResult(None, "error", f"{type(exc).__name__}: {exc}")
    return QueryResult(response, "response")


def response_evidence(response: dns.message.Message, rdtype: str) -> dict[str, Any]:
    """Rcode, EDE codes and texts, and the answers of one type."""
    wanted = dns.rdatatype.from_text(rdtype)
    answers = sorted(
        rdata.to_text() for rrset in response.answer if rrset.rdtype == wanted for rdata in rrset
    )
    ede = response.extended_errors()
    return {
        "rcode": dns.rcode.to_text(response.rcode()),
        "ede": [int(option.code) for option in ede],
        "ede_text": [option.text or "" for option in ede],
        "answers": answers,
    }


class DnspythonResolver:
    """Queries one nameserver directly with dnspython."""

    def __init__(self, nameserver: str, port: int = 53) -> None:
        self.nameserver = nameserver
        self.port = port

    @property
    def description(self) -> str:
        return f"{self.nameserver}:{self.port}"

    @classmethod
    def from_option(cls, option: str | None) -> DnspythonResolver:
        """`IP[:PORT]` or `[IPv6]:PORT` from --resolver, else the first resolv.conf nameserver."""
        if option:
            return cls(*parse_resolver_option(option))
        try:
            system = dns.asyncresolver.Resolver()
        except (dns.resolver.NoResolverConfiguration, OSError) as exc:
            raise ProbeError(
                f"no DNS resolver is configured ({exc}); pass --resolver IP[:PORT]."
            ) from exc
        if not system.nameservers:
            raise ProbeError("resolv.conf lists no nameserver; pass --resolver IP[:PORT].")
        return cls(str(system.nameservers[0]), int(system.port))

    async def lookup(self, host: str, time_limit: float) -> Phase:
        name = host if host.endswith(".") else host + "."
        started = time.perf_counter()
        results = await asyncio.gather(
            query_once(self.nameserver, self.port, name, "A", time_limit),
            query_once(self.nameserver, self.port, name, "AAAA", time_limit),
        )
        detail: dict[str, Any] = {"resolver": self.description, "name": name}
        rcodes: dict[str, str] = {}
        ede: list[int] = []
        ede_text: list[str] = []
        answers: dict[str, list[str]] = {}
        errors: list[str] = []
        for rdtype, result in zip(("A", "AAAA"), results, strict=True):
            if result.response is None:
                rcodes[rdtype] = result.outcome.upper()
                errors.append(f"{rdtype}: {result.error}")
                continue
            evidence = response_evidence(result.response, rdtype)
            rcodes[rdtype] = evidence["rcode"]
            ede += [c for c in evidence["ede"] if c not in ede]
            ede_text += [t for t in evidence["ede_text"] if t and t not in ede_text]
            answers[rdtype] = evidence["answers"]
        detail.update(rcode=rcodes, ede=ede, ede_text=ede_text, answers=answers)
        addresses = answers.get("A", []) + answers.get("AAAA", [])
        if addresses:
            detail.update(outcome="answers", address=addresses[0])
        else:
            detail["outcome"] = _failure_outcome(rcodes, ede)
            detail["error"] = "; ".join(errors) or ", ".join(f"{k} {v}" for k, v in rcodes.items())
        duration = (time.perf_counter() - started) * 1000
        return Phase(name="dns", ok=bool(addresses), duration_ms=round(duration, 3), detail=detail)


def _failure_outcome(rcodes: dict[str, str], ede: list[int]) -> str:
    codes = set(rcodes.values())
    if "NXDOMAIN" in codes:
        return "nxdomain"
    if ede:
        return "refused" if "REFUSED" in codes else "servfail"
    if codes == {"TIMEOUT"}:
        return "timeout"
    for code in ("REFUSED", "SERVFAIL", "TIMEOUT"):
        if code in codes:
            return code.lower()
    return "nodata" if codes == {"NOERROR"} else "error"


def parse_resolver_option(option: str) -> tuple[str, int]:
    """`10.0.0.10`, `10.0.0.10:5353`, `[fd00::a]:53` or `fd00::a`."""
    text = option.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], option)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, option)
    if not is_ip_literal(host):
        raise UsageError(f"--resolver {option!r} is not an IP address; pass IP[:PORT].")
    return host, port


def _port(text: str, option: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"--resolver {option!r} has an invalid port; pass IP[:PORT].")
    return int(text)
