"""Probe plans for the lab: checks against the lab's names, with their enforcement path."""

from __future__ import annotations

from typing import Any

from egress.probe_plan import Check, CheckKind, Enforcement, Expectation, ProbePlan

ALLOW, DENY = Expectation.ALLOW, Expectation.DENY
PROXIED_PORTS = (80, 443)  # where the lab's squid (Azure Firewall's proxy) intercepts


def check(
    check_id: str,
    host: str,
    port: int,
    kind: CheckKind,
    expectation: Expectation = ALLOW,
    **extra: Any,
) -> Check:
    transport = "udp" if kind in (CheckKind.NTP, CheckKind.DNS) else "tcp"
    proxied = transport == "tcp" and port in PROXIED_PORTS
    fields: dict[str, Any] = {
        "id": check_id,
        "host": host,
        "port": port,
        "transport": transport,
        "kind": kind,
        "expectation": expectation,
        "destination": host,
        "rule": "canary/lab" if expectation is DENY else "lab/allow/rule",
        "feature": "canary" if expectation is DENY else "required",
        "required": expectation is ALLOW,
        "enforcement": Enforcement.APPLICATION_RULE if proxied else Enforcement.NETWORK_RULE,
    }
    fields.update(extra)
    return Check(**fields)


# What every realistic plan has: allowed endpoints on each enforcement path, one provable deny.
WITNESSES = (
    check("allow-https", "healthy.lab.test", 443, CheckKind.HTTPS),
    check("allow-tls-8443", "healthy.lab.test", 8443, CheckKind.TLS),
    check("allow-ntp", "healthy.lab.test", 123, CheckKind.NTP),
)
DENY_HTTP = check("deny-http", "unlisted.lab.test", 80, CheckKind.HTTP, DENY)


def plan(*checks: Check) -> ProbePlan:
    return ProbePlan(cloud="AzureCloud", region="eastus", generated_by="tests/lab", checks=checks)
