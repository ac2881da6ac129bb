"""Derive the probe plan from the compiled rules: one check per endpoint plus deny canaries."""

from __future__ import annotations

import ipaddress

from egress import __version__
from egress.catalog.schema import PROBE_API_SERVER, UNVERIFIABLE_PREFIX
from egress.compiler.canaries import RuleFacts, canaries, check_id
from egress.compiler.intents import Intent, IntentKey
from egress.model import RuleCollectionGroup
from egress.policy import Policy
from egress.probe_plan import (
    Check,
    CheckKind,
    Expectation,
    FirewallProfile,
    HostSource,
    ProbePlan,
    derive_enforcement,
)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def build_probe_plan(
    *,
    cloud: str,
    region: str,
    first: dict[IntentKey, Intent],
    covered: tuple[Intent, ...],
    rule_of: dict[IntentKey, str],
    groups: tuple[RuleCollectionGroup, ...],
    policy: Policy,
) -> ProbePlan:
    checks: dict[str, Check] = {}
    seen: set[tuple[str, str, int, str]] = set()
    tag_path = next(
        (rule_of[k] for k, intent in first.items() if intent.dest_kind == "fqdn_tag"), ""
    )
    probed = [(intent, rule_of[key]) for key, intent in first.items() if key in rule_of]
    probed += [(intent, tag_path) for intent in covered]
    for intent, rule in probed:
        check = _allow_check(intent, rule)
        if check is None:
            continue
        endpoint = (
            check.host_source.value + ":" + check.host,
            check.transport,
            check.port,
            check.kind.value,
        )
        if endpoint in seen or check.id in checks:
            continue
        seen.add(endpoint)
        checks[check.id] = check
    rules = RuleFacts.of(groups, covered)
    for check in canaries(rules, policy):
        checks[check.id] = check
    ordered = sorted(
        (
            check.model_copy(
                update={
                    "enforcement": derive_enforcement(
                        check.kind, check.transport, check.port, rules.application_ports
                    )
                }
            )
            for check in checks.values()
        ),
        key=lambda c: (c.expectation is Expectation.DENY, c.feature != "required", c.id),
    )
    return ProbePlan(
        cloud=cloud,
        region=region,
        generated_by=f"egress {__version__}",
        firewall_profile=FirewallProfile(policy.firewall.profile),
        checks=tuple(ordered),
    )


def _label(entry_id: str) -> str:
    """Check-id stem: the catalog id, or the allowance's name so reordering keeps ids stable."""
    stem, _, name = entry_id.partition(" ")
    return f"policy/{name}" if name else stem.replace("[", "-").replace("]", "")


def _allow_check(intent: Intent, rule: str) -> Check | None:
    if intent.dest_kind == "fqdn_tag":
        return None  # the covered explicit entries are probed instead
    prov = intent.provenance
    port = int(intent.ports.partition("-")[0])
    transport = "udp" if intent.protocol == "udp" else "tcp"
    base = {
        "id": check_id(f"{_label(prov.entry_id)}/{intent.protocol}-{port}"),
        "port": port,
        "transport": transport,
        "expectation": Expectation.ALLOW,
        "destination": intent.destination,
        "rule": rule,
        "feature": prov.feature,
        "required": prov.feature == "required",
        "purpose": prov.purpose,
        "tls_inspection": intent.tls_inspection,
    }
    hint = intent.probe
    if hint and hint.startswith(UNVERIFIABLE_PREFIX):
        return _unverifiable(base, intent.destination, hint[len(UNVERIFIABLE_PREFIX) :].strip())
    if hint == PROBE_API_SERVER:
        kind = _kind(intent.protocol, port)
        if kind is CheckKind.UNVERIFIABLE:
            return _unverifiable(base, intent.destination, "UDP has no request/response to prove")
        return Check(host=intent.destination, host_source=HostSource.API_SERVER, kind=kind, **base)
    host = hint
    if host is None:
        if intent.dest_kind == "fqdn" or (
            intent.dest_kind == "address" and _is_ip(intent.destination)
        ):
            host = intent.destination
        else:
            why = (
                "a wildcard has no concrete host"
                if intent.dest_kind == "wildcard_fqdn"
                else "a service tag or CIDR names no single host"
            )
            return _unverifiable(base, intent.destination, f"{why}; set probe_host or probe_hosts")
    kind = _kind(intent.protocol, port)
    if kind is CheckKind.UNVERIFIABLE:
        return _unverifiable(
            base, intent.destination, f"UDP {port} has no request/response to prove"
        )
    extra = {"dns_query_name": "mcr.microsoft.com"} if kind is CheckKind.DNS else {}
    return Check(host=host, kind=kind, **base, **extra)


def _unverifiable(base: dict[str, object], destination: str, reason: str) -> Check:
    host = destination if len(destination) <= 253 else destination[:253]
    return Check.model_validate(
        {**base, "host": host, "kind": CheckKind.UNVERIFIABLE, "unverifiable_reason": reason}
    )


def _kind(protocol: str, port: int) -> CheckKind:
    if protocol == "https":
        return CheckKind.HTTPS
    if protocol == "http":
        return CheckKind.HTTP
    if protocol == "tcp":
        return CheckKind.TLS if port == 443 else CheckKind.TCP
    if port == 123:
        return CheckKind.NTP
    if port == 53:
        return CheckKind.DNS
    return CheckKind.UNVERIFIABLE
