"""The normalised firewall decision, and the one mapping from Microsoft's column names to it.

Azure Firewall's resource-specific log tables (learn.microsoft.com/azure/azure-monitor/
reference/tables/azfwapplicationrule, .../azfwnetworkrule, .../azfwnatrule, .../azfwdnsquery)
name their columns once, here; every source (a Log Analytics workspace, an export file, a
storage account's diagnostic JSON lines) hands its rows to :func:`decision_from_columns`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class LogTable(StrEnum):
    """The resource-specific tables egress reads (legacy AzureDiagnostics is not supported)."""

    APPLICATION_RULE = "AZFWApplicationRule"
    NETWORK_RULE = "AZFWNetworkRule"
    NAT_RULE = "AZFWNatRule"
    DNS_QUERY = "AZFWDnsQuery"


class Action(StrEnum):
    """What the firewall did. DNS proxy rows record a query, not a decision."""

    ALLOW = "allow"
    DENY = "deny"
    DNAT = "dnat"
    QUERY = "query"


# Columns a row must have, per table (Microsoft's names); every other column is optional.
REQUIRED_COLUMNS: dict[LogTable, tuple[str, ...]] = {
    LogTable.APPLICATION_RULE: ("TimeGenerated", "SourceIp", "Fqdn", "DestinationPort", "Action"),
    LogTable.NETWORK_RULE: (
        "TimeGenerated",
        "SourceIp",
        "DestinationIp",
        "DestinationPort",
        "Action",
    ),
    LogTable.NAT_RULE: ("TimeGenerated", "SourceIp", "DestinationIp", "DestinationPort"),
    LogTable.DNS_QUERY: ("TimeGenerated", "SourceIp", "QueryName"),
}
# Every column egress reads, per table; the KQL `project` lists exactly these.
COLUMNS: dict[LogTable, tuple[str, ...]] = {
    LogTable.APPLICATION_RULE: (
        "TimeGenerated",
        "SourceIp",
        "SourcePort",
        "Fqdn",
        "TargetUrl",
        "DestinationPort",
        "Protocol",
        "Action",
        "ActionReason",
        "Policy",
        "RuleCollectionGroup",
        "RuleCollection",
        "Rule",
        "IsTlsInspected",
    ),
    LogTable.NETWORK_RULE: (
        "TimeGenerated",
        "SourceIp",
        "SourcePort",
        "DestinationIp",
        "DestinationPort",
        "Protocol",
        "Action",
        "ActionReason",
        "Policy",
        "RuleCollectionGroup",
        "RuleCollection",
        "Rule",
    ),
    LogTable.NAT_RULE: (
        "TimeGenerated",
        "SourceIp",
        "SourcePort",
        "DestinationIp",
        "DestinationPort",
        "Protocol",
        "Policy",
        "RuleCollectionGroup",
        "RuleCollection",
        "Rule",
        "TranslatedIp",
        "TranslatedPort",
    ),
    LogTable.DNS_QUERY: (
        "TimeGenerated",
        "SourceIp",
        "SourcePort",
        "QueryName",
        "QueryType",
        "ResponseCode",
        "Protocol",
    ),
}
_ACTIONS = {"allow": Action.ALLOW, "deny": Action.DENY, "drop": Action.DENY, "dnat": Action.DNAT}


class FirewallDecision(NamedTuple):
    """One row of one table, in the firewall's own words.

    Immutable like the other models, but a named tuple: a month of logs is a million rows
    and a frozen dataclass takes five times as long to build one.
    """

    time: datetime  # aware, UTC
    table: LogTable
    source_ip: str
    source_port: int | None
    destination_fqdn: str | None  # lowercased, no trailing dot (Fqdn, QueryName)
    destination_ip: str | None
    destination_port: int | None
    protocol: str  # as logged: HTTP, HTTPS, TCP, UDP, ...
    action: Action
    action_reason: str  # e.g. "No rule matched. Proceeding with default action"
    policy: str
    rule_collection_group: str
    rule_collection: str
    rule: str
    tls_inspected: bool | None
    target_url: str

    @property
    def by_default(self) -> bool:
        """No rule matched: the decision is the firewall's default action."""
        return not self.rule

    @property
    def rule_path(self) -> str:
        """`policy/group/collection/rule`, or the default action's reason when no rule matched."""
        if self.by_default:
            reason = self.action_reason or "no rule matched"
            return f"default action ({reason.rstrip('.')})"
        parts = (self.policy, self.rule_collection_group, self.rule_collection, self.rule)
        return "/".join(filter(None, parts))

    @property
    def destination(self) -> str:
        return self.destination_fqdn or self.destination_ip or "?"


class RowError(ValueError):
    """A row is unusable; the source adds file and line (or workspace and table)."""


def _text(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    return "" if value is None else str(value).strip()


def _port(value: Any, column: str) -> int | None:
    if type(value) is int and 0 <= value <= 65535:
        return value
    text = _text(value)
    if not text:
        return None
    try:
        port = int(float(text)) if "." in text else int(text)
    except ValueError:
        raise RowError(f"column {column} is '{text}', not a port number") from None
    if not 0 <= port <= 65535:
        raise RowError(f"column {column} is {port}, outside 0-65535")
    return port


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return None


_EXACT_ACTIONS = {"Allow": Action.ALLOW, "Deny": Action.DENY, "Drop": Action.DENY}


def _action(table: LogTable, value: Any) -> Action:
    if table is LogTable.NAT_RULE:
        return Action.DNAT
    if table is LogTable.DNS_QUERY:
        return Action.QUERY
    exact = _EXACT_ACTIONS.get(value) if type(value) is str else None
    if exact is not None:
        return exact
    text = _text(value)
    try:
        return _ACTIONS[text.lower()]
    except KeyError:
        raise RowError(f"column Action is '{text}', not Allow, Deny or Drop") from None


def missing_columns(table: LogTable, present: Mapping[str, Any] | frozenset[str]) -> list[str]:
    return [name for name in REQUIRED_COLUMNS[table] if name not in present]


_REQUIRED_SETS = {table: frozenset(names) for table, names in REQUIRED_COLUMNS.items()}


def _name(value: Any) -> str:
    """A repeated name column (policy, rule, reason...): stripped, one shared copy."""
    if type(value) is str:
        return sys.intern(value.strip()) if value else ""
    return sys.intern(_text(value))


# The name columns of a row, raw -> as a decision holds them. A month of rows repeats a few
# combinations, so each is normalised once (a bounded memo, not configuration: past the
# bound, rows are normalised each time).
_NameColumns = tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any]
_Names = tuple[str | None, str, str | None, str, str, str, str, str, str]
_NAMES_SEEN: dict[_NameColumns, _Names] = {}
_NAMES_BOUND = 50_000


def _names(raw: _NameColumns) -> _Names:
    """(destination fqdn, source ip, destination ip, protocol, action reason, policy, rule
    collection group, rule collection, rule), normalised; RowError for an empty source."""
    fqdn_column, source_column, destination_column, protocol_column, *rest = raw
    reason, policy, group, collection, rule = (_name(value) for value in rest)
    fqdn = _name(fqdn_column)
    source_ip = _name(source_column)
    if not source_ip:
        raise RowError("column SourceIp is empty")
    protocol = _name(protocol_column)
    names: _Names = (
        (fqdn if fqdn.islower() else sys.intern(fqdn.lower())).rstrip(".") or None,
        source_ip,
        _name(destination_column) or None,
        protocol if protocol.isupper() else sys.intern(protocol.upper()),
        reason,
        policy,
        group,
        collection,
        rule,
    )
    # Only text keys: 1, 1.0 and True are equal dict keys but not equal names.
    if len(_NAMES_SEEN) < _NAMES_BOUND and all(v is None or type(v) is str for v in raw):
        _NAMES_SEEN[raw] = names
    return names


def decision_from_columns(
    table: LogTable,
    row: Mapping[str, Any],
    time: Callable[[Any], datetime],
) -> FirewallDecision:
    """Build a decision from a row keyed by Microsoft's column names; `time` parses the time."""
    if not row.keys() >= _REQUIRED_SETS[table]:
        missing = missing_columns(table, row)
        raise RowError(f"{table.value} row has no column {', '.join(missing)}")
    get = row.get
    raw = (
        get("Fqdn") if table is LogTable.APPLICATION_RULE else get("QueryName"),
        get("SourceIp"),
        get("DestinationIp"),
        get("Protocol"),
        get("ActionReason"),
        get("Policy"),
        get("RuleCollectionGroup"),
        get("RuleCollection"),
        get("Rule"),
    )
    try:
        names = _NAMES_SEEN.get(raw) or _names(raw)
    except TypeError:  # an unhashable value (a JSON list or object in a column)
        names = _names(raw)
    fqdn, source_ip, destination_ip, protocol, reason, policy, group, collection, rule = names
    port = _port(get("DestinationPort"), "DestinationPort")
    if table is LogTable.DNS_QUERY and port is None:
        port = 53
    return FirewallDecision(
        time(get("TimeGenerated")),
        table,
        source_ip,
        _port(get("SourcePort"), "SourcePort"),
        fqdn,
        destination_ip,
        port,
        protocol,
        _action(table, get("Action")),
        reason,
        policy,
        group,
        collection,
        rule,
        _bool(get("IsTlsInspected")),
        _text(get("TargetUrl")),
    )


_TABLE_NAMES = {t.value: t for t in LogTable} | {t.value.lower(): t for t in LogTable}


def table_named(name: str) -> LogTable | None:
    """The table for a `Type`/`category` value (case-insensitive), or None."""
    return _TABLE_NAMES.get(name) or _TABLE_NAMES.get(name.strip().lower())
