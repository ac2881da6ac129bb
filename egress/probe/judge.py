"""Pure judging: a check's ladder phases (plus the control witness) become a verdict with a reason.

Nothing here does I/O, so every rule is a row in a table-driven unit test. "Blocked"
needs positive evidence; everything that cannot tell a firewall from a dead or absent
destination is "inconclusive" and never counts as compliant.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from egress.compliance import CheckStatus, check_status
from egress.probe_plan import Check, CheckKind, Expectation
from egress.results import Phase, Verdict

BLOCKING_EDE = {15: "Blocked", 16: "Censored", 17: "Filtered", 18: "Prohibited"}  # RFC 8914
# Azure Firewall's transparent proxy completes TCP handshakes on these ports by itself.
PROXY_ANSWERED_PORTS = frozenset({80, 443, 1433})
# ICMP administratively prohibited (and local reject routes) surface as these on connect().
PROHIBITED_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.EACCES, errno.EPERM})
Detail = dict[str, object]
UDP_PHASES = frozenset({"ntp", "dns-query"})


def compliance(expectation: Expectation, verdict: Verdict) -> bool | None:
    """Legacy tri-state view of :func:`egress.compliance.check_status` (pass/fail/other)."""
    status = check_status(expectation=expectation, verdict=verdict, assurance=None)
    return _LEGACY.get(status)


_LEGACY = {CheckStatus.PASS: True, CheckStatus.FAIL: False, CheckStatus.LEAK: False}


def timeout_phase(phases: Sequence[Phase]) -> str | None:
    """The phase that ended in a timeout, if the ladder stopped on one."""
    if phases and not phases[-1].ok and phases[-1].detail.get("outcome") == "timeout":
        return phases[-1].name
    return None


def judge(
    check: Check, phases: Sequence[Phase], control_ok: bool
) -> tuple[Verdict, bool | None, str]:
    """Verdict, compliance and a one-sentence reason for one attempt.

    `control_ok` says whether a control check to an allowed endpoint passed the phase at
    which this attempt timed out (see :func:`timeout_phase`); only then is a timeout a block.
    """
    if check.kind is CheckKind.UNVERIFIABLE:
        reason = f"cannot be verified from a pod: {check.unverifiable_reason}"
        return Verdict.UNVERIFIABLE, None, reason
    verdict, reason = _observe(check, phases, control_ok)
    return verdict, compliance(check.expectation, verdict), reason


def _observe(check: Check, phases: Sequence[Phase], control_ok: bool) -> tuple[Verdict, str]:
    if not phases:
        return Verdict.INCONCLUSIVE, "the check was not probed"
    last = phases[-1]
    detail = last.detail
    if last.ok:
        return _observe_success(check, phases)
    if detail.get("outcome") == "timeout":
        return _timeout(last.name, control_ok)
    observe = _FAILURE_RULES.get(last.name)
    if observe is None:
        return Verdict.INCONCLUSIVE, str(detail.get("error", f"{last.name} failed"))
    return observe(check, detail, phases)


def _timeout(phase: str, control_ok: bool) -> tuple[Verdict, str]:
    if control_ok:
        return (
            Verdict.BLOCKED,
            f"{phase} timed out while a control check to an allowed endpoint passed {phase}",
        )
    return (
        Verdict.INCONCLUSIVE,
        f"{phase} timed out and no control check passed {phase}, so a drop cannot be told "
        "from a dead path",
    )


def _dns_failure(check: Check, detail: Detail, _: Sequence[Phase]) -> tuple[Verdict, str]:
    ede = [code for code in _int_list(detail.get("ede")) if code in BLOCKING_EDE]
    resolver = detail.get("resolver")
    if ede:
        names = ", ".join(f"{code} {BLOCKING_EDE[code]}" for code in ede)
        return Verdict.BLOCKED, f"resolver {resolver} refused the name with EDE {names}"
    outcome = detail.get("outcome")
    if outcome == "nxdomain":
        return (
            Verdict.INCONCLUSIVE,
            f"resolver {resolver} answered NXDOMAIN; a missing name is not proof of a block",
        )
    if outcome == "nodata":
        return Verdict.INCONCLUSIVE, f"resolver {resolver} returned no A or AAAA records"
    return Verdict.INCONCLUSIVE, f"DNS lookup via {resolver} failed: {detail.get('error', outcome)}"


def _connect_failure(check: Check, detail: Detail, _: Sequence[Phase]) -> tuple[Verdict, str]:
    code = detail.get("errno")
    name = detail.get("errno_name") or "error"
    where = f"{detail.get('address')}:{detail.get('port')}"
    if isinstance(code, int) and code in PROHIBITED_ERRNOS:
        return (
            Verdict.BLOCKED,
            f"connect to {where} was rejected with {name} (ICMP administratively prohibited "
            "or a reject route)",
        )
    if code == errno.ECONNREFUSED:
        return (
            Verdict.INCONCLUSIVE,
            f"connect to {where} was refused (RST or ICMP port unreachable): a closed port "
            "or a rejecting device, not proof of a block",
        )
    return Verdict.INCONCLUSIVE, f"connect to {where} failed with {name}: {detail.get('error')}"


def _tls_failure(check: Check, detail: Detail, _: Sequence[Phase]) -> tuple[Verdict, str]:
    outcome = detail.get("outcome")
    sni = detail.get("sni")
    if outcome == "cut-after-client-hello" and sni:
        return (
            Verdict.BLOCKED,
            f"the TLS handshake was cut ({detail.get('error')}) right after a ClientHello with "
            f"SNI {sni}, before any server byte: an SNI-filtering firewall deny",
        )
    if outcome == "alert":
        return (
            Verdict.INCONCLUSIVE,
            f"the TLS peer answered with alert {detail.get('alert')}; firewall and server "
            "cannot be told apart",
        )
    return Verdict.INCONCLUSIVE, f"the TLS handshake failed: {detail.get('error', outcome)}"


def _udp_failure(check: Check, detail: Detail, _: Sequence[Phase]) -> tuple[Verdict, str]:
    code = detail.get("errno")
    if isinstance(code, int) and code in PROHIBITED_ERRNOS:
        return Verdict.BLOCKED, f"the UDP exchange was rejected with {detail.get('errno_name')}"
    if detail.get("outcome") == "invalid":
        return Verdict.INCONCLUSIVE, f"a reply came but was not valid: {detail.get('error')}"
    return Verdict.INCONCLUSIVE, f"the UDP exchange failed: {detail.get('error')}"


def _http_failure(check: Check, detail: Detail, phases: Sequence[Phase]) -> tuple[Verdict, str]:
    tls = _phase(phases, "tls")
    if tls is not None and tls.ok:
        return (
            Verdict.UNHEALTHY,
            f"TLS completed but the HTTP exchange failed: {detail.get('error')}",
        )
    return Verdict.INCONCLUSIVE, f"the plain HTTP exchange failed: {detail.get('error')}"


def _host_failure(check: Check, detail: Detail, _: Sequence[Phase]) -> tuple[Verdict, str]:
    return Verdict.INCONCLUSIVE, str(detail.get("error", "the host to probe is unknown"))


_FAILURE_RULES = {
    "host": _host_failure,
    "dns": _dns_failure,
    "tcp": _connect_failure,
    "tls": _tls_failure,
    "http": _http_failure,
    "ntp": _udp_failure,
    "dns-query": _udp_failure,
}


def _observe_success(check: Check, phases: Sequence[Phase]) -> tuple[Verdict, str]:
    last = phases[-1]
    detail = last.detail
    if last.name == "tcp":
        if check.port in PROXY_ANSWERED_PORTS:
            return (
                Verdict.INCONCLUSIVE,
                f"TCP connect to port {check.port} succeeded, but Azure Firewall completes "
                "handshakes on 80/443/1433 itself",
            )
        return Verdict.REACHABLE, f"TCP connect to {detail.get('address')}:{check.port} succeeded"
    if last.name == "tls":
        return _tls_success(detail)
    if last.name == "http":
        return _http_success(detail, _phase(phases, "tls"))
    if last.name == "ntp":
        return Verdict.REACHABLE, "a valid NTP mode-4 reply echoed the request's transmit time"
    if last.name == "dns-query":
        return (
            Verdict.REACHABLE,
            f"the outside resolver answered ({detail.get('rcode')}): DNS to it gets out",
        )
    return Verdict.INCONCLUSIVE, f"the ladder stopped after {last.name} without a conclusion"


def _tls_success(detail: Detail) -> tuple[Verdict, str]:
    if detail.get("verified"):
        return Verdict.REACHABLE, "TLS with SNI completed with a publicly trusted certificate"
    if detail.get("inspection"):
        return (
            Verdict.INCONCLUSIVE,
            f"TLS was intercepted by an inspecting proxy ({detail.get('verify_error')}); the "
            "handshake does not prove the destination was reached",
        )
    return (
        Verdict.UNHEALTHY,
        f"TLS completed but the destination's certificate is invalid: {detail.get('verify_error')}",
    )


def _http_success(detail: Detail, tls: Phase | None) -> tuple[Verdict, str]:
    status = detail.get("status")
    if detail.get("deny_signature"):
        return Verdict.BLOCKED, "HTTP 470 with 'Action: Deny': Azure Firewall application-rule deny"
    if tls is not None and not tls.detail.get("verified") and not tls.detail.get("inspection"):
        return Verdict.UNHEALTHY, f"the certificate is invalid: {tls.detail.get('verify_error')}"
    via = (
        " through a TLS-inspecting proxy"
        if tls is not None and tls.detail.get("inspection")
        else ""
    )
    if status == 470:
        return Verdict.INCONCLUSIVE, "HTTP 470 without the 'Action: Deny' body is not a known deny"
    if isinstance(status, int) and status >= 500:
        return Verdict.UNHEALTHY, f"the path worked{via} but the server answered HTTP {status}"
    return Verdict.REACHABLE, f"the destination answered HTTP {status}{via}"


def _phase(phases: Sequence[Phase], name: str) -> Phase | None:
    return next((p for p in phases if p.name == name), None)


def _int_list(value: object) -> list[int]:
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []
