"""Explain what the firewall denied: grouped by destination and port, each with what to do.

Each group is matched against, in order: the user's policy or an enabled catalog feature
("in your policy but not applied", or shadowed by the deny rule that matched first); a catalog
entry of a feature the cluster does not enable ("enable feature X"); or nothing, for which a
candidate allow entry is printed as policy YAML to review. Nothing is ever allowed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import yaml

from egress.compiler.intents import USER_FEATURE, Intent
from egress.firewall_logs.knowledge import Knowledge
from egress.firewall_logs.model import Action, FirewallDecision, LogTable


class Finding(StrEnum):
    NOT_APPLIED = "not-applied"  # allowed by the compiled policy, yet the default denied it
    SHADOWED = "shadowed"  # allowed by the compiled policy, but an earlier deny rule matched
    ENABLE_FEATURE = "enable-feature"  # a catalog entry of a feature the cluster lacks
    UNKNOWN = "unknown"  # nothing egress knows: a candidate allow entry to review


@dataclass
class _Group:
    destination: str
    host: str | None
    address: str | None
    port: int
    protocol: str
    table: LogTable
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    sources: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Denial:
    destination: str
    port: int
    protocol: str
    table: LogTable
    count: int
    first: datetime
    last: datetime
    sources: tuple[str, ...]  # up to 5 examples
    source_count: int
    denied_by: tuple[str, ...]  # rule paths, or the default action
    finding: Finding
    advice: str
    entry: str | None = None
    feature: str | None = None
    doc: str | None = None
    candidate_yaml: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    source: str
    since: datetime
    until: datetime
    denials: tuple[Denial, ...]
    notes: tuple[str, ...]
    decisions_read: int


def group_denials(decisions: Iterable[FirewallDecision]) -> list[_Group]:
    groups: dict[tuple[str, int, str], _Group] = {}
    for decision in decisions:
        if decision.action is not Action.DENY or decision.destination_port is None:
            continue
        key = (decision.destination, decision.destination_port, decision.protocol)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(
                decision.destination,
                decision.destination_fqdn,
                decision.destination_ip,
                decision.destination_port,
                decision.protocol,
                decision.table,
            )
        group.count += 1
        moment = decision.time
        if group.first is None or moment < group.first:
            group.first = moment
        if group.last is None or moment > group.last:
            group.last = moment
        if len(group.sources) < 1000:
            group.sources.add(decision.source_ip)
        group.rules.add(decision.rule_path if decision.rule else "")  # "": by default
    return list(groups.values())


def _port_spec(group: _Group) -> str:
    protocol = group.protocol.lower()
    if group.table is LogTable.APPLICATION_RULE or protocol in ("http", "https"):
        return f"{'http' if protocol == 'http' else 'https'}:{group.port}"
    return f"{'udp' if protocol == 'udp' else 'tcp'}:{group.port}"


def _candidate(group: _Group) -> str:
    entry: dict[str, object] = {"name": _candidate_name(group)}
    if group.host:
        entry["fqdn"] = group.host
    else:
        entry["cidr"] = f"{group.address}/32" if ":" not in str(group.address) else group.address
    entry["ports"] = [_port_spec(group)]
    entry["purpose"] = (
        f"REVIEW: denied {group.count} time(s) between {group.first:%Y-%m-%d %H:%M} and "
        f"{group.last:%Y-%m-%d %H:%M} UTC; allow only if the cluster needs it."
    )
    return yaml.safe_dump({"allow": [entry]}, sort_keys=False, width=1000)


def _candidate_name(group: _Group) -> str:
    base = "".join(c if c.isalnum() else "-" for c in group.destination.lower()).strip("-")
    return f"{base[:50]}-{group.port}".lstrip("-") or "candidate"


def _denied_by(group: _Group) -> tuple[str, ...]:
    return tuple(sorted(r or "default action (no rule matched)" for r in group.rules))


def _explain_group(group: _Group, knowledge: Knowledge) -> Denial:
    matches = knowledge.matching(group.host, group.address, group.port)
    enabled = [m for m in matches if m.feature in knowledge.enabled]
    denied_by = _denied_by(group)
    named_rules = sorted(r for r in group.rules if r)
    common = {
        "destination": group.destination,
        "port": group.port,
        "protocol": group.protocol,
        "table": group.table,
        "count": group.count,
        "first": group.first,
        "last": group.last,
        "sources": tuple(sorted(group.sources)[:5]),
        "source_count": len(group.sources),
        "denied_by": denied_by,
    }
    if enabled:
        intent = enabled[0]
        what = _what(intent)
        if named_rules:
            advice = (
                f"{what} allows it, but the earlier rule {named_rules[0]} denied it first "
                "(shadowed): lower that rule's priority or narrow it, then re-run egress plan."
            )
            finding = Finding.SHADOWED
        else:
            advice = (
                f"{what} allows it, but the firewall has no such rule yet (not applied): "
                "run egress plan and egress apply."
            )
            finding = Finding.NOT_APPLIED
        return Denial(
            **common,  # type: ignore[arg-type]
            finding=finding,
            advice=advice,
            entry=intent.provenance.entry_id,
            feature=intent.feature,
            doc=intent.provenance.doc or None,
        )
    if matches:
        intent = matches[0]
        return Denial(
            **common,  # type: ignore[arg-type]
            finding=Finding.ENABLE_FEATURE,
            advice=(
                f"enable feature {intent.feature} (entry {intent.provenance.entry_id}, "
                f"{intent.provenance.doc}): --feature {intent.feature} or features: "
                f"[{intent.feature}] in the policy."
            ),
            entry=intent.provenance.entry_id,
            feature=intent.feature,
            doc=intent.provenance.doc or None,
        )
    return Denial(
        **common,  # type: ignore[arg-type]
        finding=Finding.UNKNOWN,
        advice="no catalog entry or policy allowance covers it; review the candidate entry.",
        candidate_yaml=_candidate(group),
    )


def _what(intent: Intent) -> str:
    if intent.feature == USER_FEATURE:
        return f"your policy ({intent.provenance.entry_id})"
    return f"your policy (catalog entry {intent.provenance.entry_id}, feature {intent.feature})"


def explain(
    decisions: Iterable[FirewallDecision],
    knowledge: Knowledge,
    *,
    source: str,
    since: datetime,
    until: datetime,
    notes: tuple[str, ...] = (),
    decisions_read: int = 0,
) -> Explanation:
    groups = group_denials(decisions)
    denials = [_explain_group(g, knowledge) for g in groups]
    denials.sort(key=lambda d: (-d.count, d.destination, d.port))
    return Explanation(source, since, until, tuple(denials), notes, decisions_read)
