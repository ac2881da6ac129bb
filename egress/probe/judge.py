"""Pure, firewall-aware judging: a check's ladder phases become a verdict, its assurance and reason.

Nothing here does I/O, so every rule is a row in a table-driven unit test. Failures are read
against how the firewall enforces the check (``Check.enforced_by``) and which firewall the
run assumes (``FirewallProfile``):

* application-rule ports go through Azure Firewall's transparent proxy. It answers every TCP
  handshake itself, denies HTTP with 470 and HTTPS by cutting the connection right after the
  ClientHello, and otherwise splices the connection to the destination. So a TCP-level result
  there proves nothing, a cut is a deny *signature*, and a stall after the proxy took the
  ClientHello or request means the proxy let it through;
* network rules drop denied packets silently and never refuse, so a refusal came from beyond
  the firewall, and a timeout is a deny signature only when an allow check connected through a
  network rule in the same run (or the destination is a declared canary server);
* the ``generic`` profile assumes none of this: only what a firewall states counts as blocked.

Every ``blocked`` verdict carries an assurance: ``stated`` (HTTP 470 with ``Action: Deny``,
EDE 15-18, an ICMP administratively-prohibited or reject errno) or ``signature`` (a pattern a
deny produces but a dead destination could too), whose ``assumption`` is one sentence.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from egress.compliance import Assurance, CheckStatus, Verdict, check_status
from egress.probe_plan import Check, CheckKind, Enforcement, Expectation, FirewallProfile
from egress.results import Phase

BLOCKING_EDE = {15: "Blocked", 16: "Censored", 17: "Filtered", 18: "Prohibited"}  # RFC 8914
# A local reject (the node's own netfilter or a prohibit route) surfaces as these: stated.
LOCAL_REJECT_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
UDP_PHASES = frozenset({"ntp", "dns-query"})
# Witness paths: what an allow check that got through proves works from this vantage point.
NETWORK_TCP = "network-rule/tcp"
NETWORK_UDP = "network-rule/udp"
# A cut this fraction of a spliced handshake's ClientHello-to-ServerHello time or later had time
# for a round trip to the far end (a splice has two: connect, then the hello), so it may be a
# destination refusing behind a firewall that allowed the connection.
FAR_END_FRACTION = 1 / 3
Detail = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Context:
    """What the rest of the run tells the judge: the profile, witnesses and timing reference."""

    profile: FirewallProfile = FirewallProfile.AZURE_FIREWALL
    witnesses: Mapping[str, str] = field(default_factory=dict)  # witness path -> check id
    spliced_hello_ms: float | None = None  # fastest verified handshake through the proxy
    spliced_by: str | None = None  # the check that measured it

    @property
    def azure(self) -> bool:
        return self.profile is FirewallProfile.AZURE_FIREWALL


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str
    assurance: Assurance | None = None  # set exactly when the verdict is blocked
    assumption: str | None = None  # what a signature (or an inferred splice) takes for granted
    evidence: dict[str, Any] = field(default_factory=dict)  # control witness, timing numbers


def _stated(reason: str) -> Judgement:
    return Judgement(Verdict.BLOCKED, reason, Assurance.STATED)


def _signature(reason: str, assumption: str, **evidence: Any) -> Judgement:
    return Judgement(Verdict.BLOCKED, reason, Assurance.SIGNATURE, assumption, dict(evidence))


def _inconclusive(reason: str) -> Judgement:
    return Judgement(Verdict.INCONCLUSIVE, reason)


def timeout_phase(phases: Sequence[Phase]) -> str | None:
    """The phase that ended in a timeout, if the ladder stopped on one."""
    if phases and not phases[-1].ok and phases[-1].detail.get("outcome") == "timeout":
        return phases[-1].name
    return None


def witness_path(check: Check, phase: str) -> str | None:
    """The path a passed phase of a reachable allow check witnesses, if any.

    A handshake on an application-rule port is answered by the proxy itself and witnesses
    nothing. A DNS check's query goes to its resolver's own address, which the firewall
    decides by network rules (its DNS proxy answers only queries sent to the firewall).
    """
    enforcement = check.enforced_by
    if phase == "tcp" and enforcement is Enforcement.NETWORK_RULE:
        return NETWORK_TCP
    if phase in UDP_PHASES and enforcement is not Enforcement.APPLICATION_RULE:
        return NETWORK_UDP
    return None


def needed_witness(check: Check, phases: Sequence[Phase]) -> str | None:
    """The witness path a timeout of this attempt needs to be judged a drop (None: none can)."""
    phase = timeout_phase(phases)
    return None if phase is None else witness_path(check, phase)


def judge_attempt(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    """Verdict, assurance, assumption and a one-sentence reason for one attempt."""
    if check.kind is CheckKind.UNVERIFIABLE:
        return Judgement(
            Verdict.UNVERIFIABLE, f"cannot be verified from a pod: {check.unverifiable_reason}"
        )
    if not phases:
        return _inconclusive("the check was not probed")
    last = phases[-1]
    if last.ok:
        return _success(check, phases, context)
    if last.detail.get("outcome") == "timeout":
        return _timeout(check, phases, context)
    rule = _FAILURE_RULES.get(last.name)
    if rule is None:
        return _inconclusive(str(last.detail.get("error", f"{last.name} failed")))
    return rule(check, phases, context)


def judge(
    check: Check, phases: Sequence[Phase], control_ok: bool
) -> tuple[Verdict, bool | None, str]:
    """Verdict, legacy compliance and reason, with every witness path present when `control_ok`."""
    witnesses = {NETWORK_TCP: "control", NETWORK_UDP: "control"} if control_ok else {}
    judged = judge_attempt(check, phases, Context(witnesses=witnesses))
    return judged.verdict, compliance(check.expectation, judged), judged.reason


def compliance(expectation: Expectation, judged: Judgement | Verdict) -> bool | None:
    """Legacy tri-state view of :func:`egress.compliance.check_status` (pass/fail/other)."""
    verdict = judged if isinstance(judged, Verdict) else judged.verdict
    assurance = None if isinstance(judged, Verdict) else judged.assurance
    status = check_status(expectation=expectation, verdict=verdict, assurance=assurance)
    return _LEGACY.get(status)


_LEGACY = {CheckStatus.PASS: True, CheckStatus.FAIL: False, CheckStatus.LEAK: False}


# --------------------------------------------------------------------------- timeouts


def _timeout(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    last = phases[-1]
    phase, seconds = last.name, last.detail.get("error", "")
    enforcement = check.enforced_by
    if phase == "dns":
        return _inconclusive(
            f"the resolver did not answer for {check.host} ({seconds}); a DNS proxy forwards "
            "every query, so a silent resolver is not a firewall deny"
        )
    if phase in ("tls", "http"):
        return _stall_after_connect(check, phases, context)
    if enforcement is Enforcement.APPLICATION_RULE:
        return _inconclusive(
            f"TCP connect to port {check.port} timed out; the firewall's proxy completes "
            "handshakes on application-rule ports itself, so this is no deny of it"
        )
    if not context.azure:
        return _inconclusive(
            f"{phase} to port {check.port} timed out; the generic profile counts only what a "
            "firewall states, and a silent drop states nothing"
        )
    what = "the connection" if phase == "tcp" else "the request"
    path = witness_path(check, phase)
    witness = context.witnesses.get(path) if path else None
    if not check.canary_server:
        # A same-path witness shows network rules pass traffic from here, not that this
        # destination answers: a dead or black-holing destination behind an allowing rule
        # times out exactly like a drop (the firewall's own counters tell them apart).
        seen = (
            f"; allow check {witness} got through a network rule on the same path, but that "
            f"does not show {check.host} answers"
            if witness
            else ""
        )
        return _inconclusive(
            f"{phase} to {check.host} port {check.port} timed out{seen}: a silent drop cannot "
            "be told from a destination that is down; declare the destination a canary "
            "server (canary_server: true) if it answers on that port whenever it is let through"
        )
    evidence = {"control": {"check_id": witness, "phase": phase, "path": path}} if witness else {}
    return _signature(
        f"{phase} to the canary server {check.host} port {check.port} timed out",
        f"{check.host} answers on port {check.port} whenever the path lets {what} through "
        "(declared canary_server), so only the firewall can have dropped it",
        **evidence,
    )


def _stall_after_connect(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    """TLS or HTTP timed out after the TCP handshake: never a block."""
    last, tls = phases[-1], _phase(phases, "tls")
    seconds = last.detail.get("error", "")
    if check.enforced_by is not Enforcement.APPLICATION_RULE:
        if not context.azure:
            return _inconclusive(
                f"TCP connected to port {check.port}, then {last.name} stalled ({seconds}); "
                "the generic profile cannot rule out a firewall that filters beyond TCP"
            )
        return Judgement(
            Verdict.UNHEALTHY,
            f"TCP connected to port {check.port} through a network rule, then {last.name} "
            f"stalled ({seconds}): the destination failed, not the path",
        )
    if tls is not None and tls.ok and tls.detail.get("verified"):
        return Judgement(
            Verdict.UNHEALTHY,
            f"TLS completed with the destination's trusted certificate, then HTTP stalled "
            f"({seconds})",
        )
    sni = tls.detail.get("sni") if tls is not None else check.host
    if last.name == "tls" and not sni:
        return _inconclusive(
            f"the TLS handshake without SNI timed out ({seconds}); the proxy cannot match a "
            "name it was not sent"
        )
    if not context.azure:
        return _inconclusive(
            f"{last.name} stalled after the TCP handshake ({seconds}); the generic profile "
            "cannot tell a forwarding proxy from a stalling one"
        )
    took = "ClientHello" if last.name == "tls" else "HTTP request"
    stalled_ms = last.detail.get("hello_to_end_ms") if last.name == "tls" else None
    return Judgement(
        Verdict.UNHEALTHY,
        f"the firewall's proxy took the {took} for {sni} and did not deny it, then "
        f"{last.name} stalled ({seconds}): it let the connection through to a destination "
        "that did not answer",
        assumption=(
            "Azure Firewall denies on an application-rule port at once (HTTP 470, or a cut "
            "right after the ClientHello), never by stalling"
        ),
        evidence={"timing": {"hello_to_end_ms": stalled_ms}} if stalled_ms is not None else {},
    )


# --------------------------------------------------------------------------- other failures


def _dns_failure(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    detail = phases[-1].detail
    ede = [code for code in _int_list(detail.get("ede")) if code in BLOCKING_EDE]
    resolver = detail.get("resolver")
    if ede:
        names = ", ".join(f"{code} {BLOCKING_EDE[code]}" for code in ede)
        return _stated(f"resolver {resolver} refused the name with EDE {names}")
    outcome = detail.get("outcome")
    if outcome == "nxdomain":
        return _inconclusive(
            f"resolver {resolver} answered NXDOMAIN; a missing name is not proof of a block"
        )
    if outcome == "nodata":
        return _inconclusive(f"resolver {resolver} returned no A or AAAA records")
    return _inconclusive(f"DNS lookup via {resolver} failed: {detail.get('error', outcome)}")


def _connect_failure(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    detail = phases[-1].detail
    code = detail.get("errno")
    name = detail.get("errno_name") or "error"
    where = f"{detail.get('address')}:{detail.get('port')}"
    if isinstance(code, int) and code in LOCAL_REJECT_ERRNOS:
        return _stated(f"connect to {where} was rejected locally with {name} (a reject rule)")
    if code == errno.EHOSTUNREACH:
        return _unreachable(f"connect to {where}", context)
    if code != errno.ECONNREFUSED:
        return _inconclusive(f"connect to {where} failed with {name}: {detail.get('error')}")
    if check.enforced_by is Enforcement.APPLICATION_RULE or not context.azure:
        return _inconclusive(
            f"connect to {where} was refused (RST or ICMP port unreachable): a closed port "
            "or a rejecting device, not proof of a block"
        )
    return _refused_beyond(f"connect to {where} was refused (RST or ICMP port unreachable)")


def _unreachable(what: str, context: Context) -> Judgement:
    """An ICMP unreachable: Linux reports administratively-prohibited and host-unreachable alike.

    Azure Firewall never answers a denied flow with ICMP, so under its profile the message came
    from somewhere else and proves nothing; a generic firewall may say no this way.
    """
    if context.azure:
        return _inconclusive(
            f"{what} failed with EHOSTUNREACH; Azure Firewall drops denied flows silently and "
            "sends no ICMP, so the unreachable came from elsewhere (a host or router beyond it)"
        )
    return _signature(
        f"{what} failed with EHOSTUNREACH (an ICMP unreachable)",
        "the ICMP unreachable is a firewall's administratively-prohibited answer, not a far-end "
        "router's host-unreachable; the socket reports both as EHOSTUNREACH",
    )


def _refused_beyond(what: str) -> Judgement:
    return Judgement(
        Verdict.UNHEALTHY,
        f"{what}: the firewall let it through and the destination refused",
        assumption="Azure Firewall's network rules drop denied packets silently and never "
        "refuse, so a refusal came from beyond the firewall",
    )


def _tls_failure(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    tls, tcp = phases[-1].detail, _phase(phases, "tcp")
    outcome, sni, error = tls.get("outcome"), tls.get("sni"), tls.get("error")
    if check.enforced_by is not Enforcement.APPLICATION_RULE:
        if context.azure:
            return Judgement(
                Verdict.UNHEALTHY,
                f"TCP connected to port {check.port} through a network rule, then the TLS "
                f"handshake failed ({outcome}: {error}): the destination failed, not the path",
            )
        return _inconclusive(f"the TLS handshake failed: {error or outcome}")
    if outcome == "alert":
        return _inconclusive(
            f"the TLS peer answered with alert {tls.get('alert')}; firewall and server "
            "cannot be told apart"
        )
    if outcome == "cut-during-handshake" and context.azure:
        return Judgement(
            Verdict.UNHEALTHY,
            f"the server had sent {tls.get('bytes_from_server')} bytes of the handshake before "
            f"the cut ({error}): the proxy let it through and the destination failed",
            assumption="Azure Firewall without TLS inspection sends no handshake bytes of its "
            "own, so they came from the destination",
        )
    if outcome != "cut-after-client-hello":
        return _inconclusive(f"the TLS handshake failed: {error or outcome}")
    if not sni:
        return _inconclusive(
            f"the TLS handshake without SNI was cut ({error}); the proxy cannot match a name "
            "it was not sent"
        )
    if not context.azure:
        return _inconclusive(
            f"the TLS handshake was cut ({error}) right after a ClientHello with SNI {sni}; "
            "the generic profile does not read a cut as a firewall's statement"
        )
    return _cut_after_hello(sni, str(error), tls, tcp, context)


def _cut_after_hello(
    sni: str, error: str, tls: Detail, tcp: Phase | None, context: Context
) -> Judgement:
    cut_ms = tls.get("hello_to_end_ms")
    timing: dict[str, Any] = {
        "proxy_handshake_ms": tcp.duration_ms if tcp is not None else None,
        "hello_to_cut_ms": cut_ms,
        "spliced_hello_ms": context.spliced_hello_ms,
        "spliced_by": context.spliced_by,
    }
    reference = context.spliced_hello_ms
    said = f"the TLS handshake was cut ({error}) right after a ClientHello with SNI {sni}"
    if reference is None or not isinstance(cut_ms, (int, float)):
        timing["decided_by"] = "undecided"
        return _signature(
            f"{said}, before any server byte",
            f"a cut right after the ClientHello is the firewall's proxy refusing {sni}, not a "
            "destination that refused a spliced connection (no spliced handshake in this run "
            "to compare its timing with)",
            timing=timing,
        )
    if cut_ms >= reference * FAR_END_FRACTION:
        timing["decided_by"] = "far-end"
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"{said}, but {cut_ms:g} ms after it: time enough for a round trip to the far end "
            f"(a spliced handshake took {reference:g} ms), so the proxy may have let it "
            "through to a destination that refused",
            evidence={"timing": timing},
        )
    timing["decided_by"] = "firewall"
    return _signature(
        f"{said}, {cut_ms:g} ms after it, before any server byte",
        f"a cut {cut_ms:g} ms after the ClientHello, far sooner than the {reference:g} ms a "
        f"spliced handshake took in this run ({context.spliced_by}), came from the firewall's "
        "proxy itself and not from a destination behind it",
        timing=timing,
    )


def _udp_failure(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    detail = phases[-1].detail
    code = detail.get("errno")
    if isinstance(code, int) and code in LOCAL_REJECT_ERRNOS:
        return _stated(f"the UDP exchange was rejected locally with {detail.get('errno_name')}")
    if code == errno.EHOSTUNREACH:
        return _unreachable("the UDP exchange", context)
    if detail.get("outcome") == "invalid":
        return _inconclusive(f"a reply came but was not valid: {detail.get('error')}")
    if code == errno.ECONNREFUSED and context.azure:
        return _refused_beyond("the UDP request was refused (ICMP port unreachable)")
    return _inconclusive(f"the UDP exchange failed: {detail.get('error')}")


def _http_failure(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    error = phases[-1].detail.get("error")
    tls = _phase(phases, "tls")
    if tls is not None and tls.ok and (tls.detail.get("verified") or context.azure):
        return Judgement(Verdict.UNHEALTHY, f"TLS completed but the HTTP exchange failed: {error}")
    if check.enforced_by is not Enforcement.APPLICATION_RULE and context.azure:
        return Judgement(
            Verdict.UNHEALTHY,
            f"TCP connected to port {check.port} through a network rule, but the HTTP "
            f"exchange failed: {error}",
        )
    return _inconclusive(f"the HTTP exchange failed: {error}")


def _host_failure(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    return _inconclusive(str(phases[-1].detail.get("error", "the host to probe is unknown")))


_FAILURE_RULES: dict[str, Callable[[Check, Sequence[Phase], Context], Judgement]] = {
    "host": _host_failure,
    "dns": _dns_failure,
    "tcp": _connect_failure,
    "tls": _tls_failure,
    "http": _http_failure,
    "ntp": _udp_failure,
    "dns-query": _udp_failure,
}


# --------------------------------------------------------------------------- successes


def _success(check: Check, phases: Sequence[Phase], context: Context) -> Judgement:
    last = phases[-1]
    detail = last.detail
    if last.name == "tcp":
        if check.enforced_by is Enforcement.APPLICATION_RULE:
            return _inconclusive(
                f"TCP connect to port {check.port} succeeded, but the firewall's proxy "
                "completes handshakes on application-rule ports (80/443/1433) itself"
            )
        return Judgement(
            Verdict.REACHABLE, f"TCP connect to {detail.get('address')}:{check.port} succeeded"
        )
    if last.name == "tls":
        return _tls_success(detail)
    if last.name == "http":
        return _http_success(detail, _phase(phases, "tls"))
    if last.name == "ntp":
        return Judgement(
            Verdict.REACHABLE, "a valid NTP mode-4 reply echoed the request's transmit time"
        )
    if last.name == "dns-query":
        return Judgement(
            Verdict.REACHABLE,
            f"the outside resolver answered ({detail.get('rcode')}): DNS to it gets out",
        )
    return _inconclusive(f"the ladder stopped after {last.name} without a conclusion")


def _tls_success(detail: Detail) -> Judgement:
    if detail.get("verified"):
        return Judgement(
            Verdict.REACHABLE, "TLS with SNI completed with a publicly trusted certificate"
        )
    if detail.get("inspection"):
        return _inconclusive(
            f"TLS was intercepted by an inspecting proxy (issuer "
            f"{detail.get('inspecting_issuer')}); the handshake does not prove the destination "
            "was reached"
        )
    return Judgement(
        Verdict.UNHEALTHY,
        f"TLS completed but the destination's certificate is invalid: {detail.get('verify_error')}",
    )


def _http_success(detail: Detail, tls: Phase | None) -> Judgement:
    status = detail.get("status")
    if detail.get("deny_signature"):
        return _stated("HTTP 470 with 'Action: Deny': Azure Firewall application-rule deny")
    if tls is not None and not tls.detail.get("verified") and not tls.detail.get("inspection"):
        return Judgement(
            Verdict.UNHEALTHY, f"the certificate is invalid: {tls.detail.get('verify_error')}"
        )
    via = ""
    if tls is not None and tls.detail.get("inspection"):
        via = f" through a TLS-inspecting proxy (issuer {tls.detail.get('inspecting_issuer')})"
    if status == 470:
        return _inconclusive("HTTP 470 without the 'Action: Deny' body is not a known deny")
    if isinstance(status, int) and status >= 500:
        return Judgement(
            Verdict.UNHEALTHY, f"the path worked{via} but the server answered HTTP {status}"
        )
    return Judgement(Verdict.REACHABLE, f"the destination answered HTTP {status}{via}")


def _phase(phases: Sequence[Phase], name: str) -> Phase | None:
    return next((p for p in phases if p.name == name), None)


def _int_list(value: object) -> list[int]:
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []
