"""Rule-level diff of desired vs live state into an ordered plan of writes, honouring ownership."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from egress.azure.state import (
    MANAGED_TAG,
    AzureTarget,
    DesiredState,
    LiveState,
    SubnetRef,
)
from egress.errors import AzureApplyError, AzureConflictError, UsageError

# Read-only at any depth; "type" only at the top (rule collection actions have a "type" too).
READ_ONLY_KEYS = frozenset({"etag", "id", "provisioningState", "size", "subnets"})


class Kind(StrEnum):
    ROUTE_TABLE = "route table"
    TABLE_TAGS = "route table tags"
    ROUTE = "route"
    GROUP = "rule collection group"
    SELECTOR = "kube selector group"
    SUBNET = "subnet"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Step:
    """One write: what, how, the etag seen at plan time (None: must not exist), the body."""

    kind: Kind
    action: Action
    name: str
    etag: str | None
    body: dict[str, Any] | None
    details: tuple[str, ...] = ()  # one diff line each, starting with +, - or ~
    subnet: SubnetRef | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """Ordered writes (route table, then groups, then subnets) plus what is left alone.

    `observed` holds the etag of every resource the plan read, by resource id: a saved plan is
    applied only while all of them are unchanged.
    """

    target: AzureTarget
    steps: tuple[Step, ...]
    kept: tuple[str, ...] = ()  # managed but no longer desired; deleted only with --prune
    unmanaged: tuple[str, ...] = ()  # never touched
    notes: tuple[str, ...] = ()  # differences egress deliberately leaves alone
    observed: dict[str, str | None] = field(default_factory=dict)
    read_selectors: bool = False  # the kube selector groups were listed (and are in observed)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    def count(self, action: Action) -> int:
        return sum(1 for step in self.steps if step.action is action)


def clean(value: Any, *, top: bool = True) -> Any:
    """Drop read-only fields and empty defaults (ARM returns omitted lists as [])."""
    if isinstance(value, dict):
        out = {
            k: clean(v, top=False)
            for k, v in value.items()
            if k not in READ_ONLY_KEYS
            and not (top and k == "type")
            and v not in (None, "", False, [], {})
        }
        return {k: v for k, v in out.items() if v not in ([], {})}
    if isinstance(value, list):
        return [clean(v, top=False) for v in value]
    return value


def comparable_group(body: dict[str, Any]) -> dict[str, Any]:
    """A group's writable content with collections and rules keyed by name (order is noise)."""
    props = clean(body.get("properties") or {})
    return {
        "priority": props.get("priority"),
        "ruleCollections": {
            c.get("name"): {**c, "rules": {r.get("name"): r for r in c.get("rules", [])}}
            for c in props.get("ruleCollections", [])
        },
    }


RULE_MARKER = "egress:"  # every rule egress compiles has a description starting with this


def is_managed_group(name: str, body: dict[str, Any], prefix: str) -> bool:
    """Egress owns a group when its name has the prefix and every rule carries the marker.

    Rule collection groups have no tags, so the marker lives in what Azure stores and returns:
    the rule descriptions the compiler writes (``egress: <features>``).
    """
    rules = [
        rule
        for collection in (body.get("properties") or {}).get("ruleCollections") or []
        for rule in collection.get("rules") or []
    ]
    return (
        name.startswith(prefix)
        and bool(rules)
        and all(str(rule.get("description") or "").startswith(RULE_MARKER) for rule in rules)
    )


def is_managed_table(table: dict[str, Any] | None) -> bool:
    key, value = MANAGED_TAG
    return bool(table) and ((table or {}).get("tags") or {}).get(key) == value


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def rule_summary(rule: dict[str, Any]) -> str:
    rule = clean(rule)
    selectors = [
        f"pods of {str(ref).rsplit('/', 1)[-1]}" for ref in rule.get("sourceKubeSelectorGroups", [])
    ]
    sources = _show(rule.get("sourceAddresses", []) + rule.get("sourceIpGroups", []) + selectors)
    kind = rule.get("ruleType", "")
    if kind == "ApplicationRule":
        protocols = ", ".join(f"{p['protocolType']}:{p['port']}" for p in rule.get("protocols", []))
        targets = (
            rule.get("fqdnTags", []) + rule.get("targetFqdns", []) + rule.get("targetUrls", [])
        )
        return f"{protocols} from {sources} to {_show(targets)}"
    if kind == "NatRule":
        return (
            f"{_show(rule.get('ipProtocols', []))} from {sources} to "
            f"{_show(rule.get('destinationAddresses', []))}:"
            f"{_show(rule.get('destinationPorts', []))}"
            f" -> {rule.get('translatedAddress') or rule.get('translatedFqdn')}"
            f":{rule.get('translatedPort')}"
        )
    destinations = (
        rule.get("destinationAddresses", [])
        + rule.get("destinationFqdns", [])
        + rule.get("destinationIpGroups", [])
    )
    return (
        f"{_show(rule.get('ipProtocols', []))} from {sources} to {_show(destinations)} "
        f"port {_show(rule.get('destinationPorts', []))}"
    )


def _collection_head(collection: dict[str, Any]) -> str:
    action = (collection.get("action") or {}).get("type", "")
    count = len(collection.get("rules") or [])
    return (
        f"collection {collection.get('name')} "
        f"(priority {collection.get('priority')}, {action}, {count} rule{'s' * (count != 1)})"
    )


def _field_changes(indent: str, desired: dict[str, Any], live: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(desired) | set(live)):
        if key in ("rules", "name") or desired.get(key) == live.get(key):
            continue
        old, new = _show(live.get(key, "(none)")), _show(desired.get(key, "(none)"))
        lines.append(f"~ {indent}{key}: {old} -> {new}")
    return lines


def group_details(desired: dict[str, Any], live: dict[str, Any] | None) -> list[str]:
    """Rule-level lines: collections and rules added, removed or changed (field by field)."""
    want = clean(desired.get("properties") or {})
    have = clean((live or {}).get("properties") or {})
    lines: list[str] = []
    if live is not None and want.get("priority") != have.get("priority"):
        lines.append(f"~ priority: {have.get('priority')} -> {want.get('priority')}")
    want_cols = {c["name"]: c for c in want.get("ruleCollections", [])}
    have_cols = {c["name"]: c for c in have.get("ruleCollections", [])}
    for name, collection in want_cols.items():
        if name not in have_cols:
            lines.append(f"+ {_collection_head(collection)}")
            lines += [
                f"+   rule {r['name']}: {rule_summary(r)}" for r in collection.get("rules", [])
            ]
            continue
        old = have_cols[name]
        if collection == old:
            continue
        lines.append(f"~ collection {name}")
        lines += _field_changes("  ", collection, old)
        want_rules = {r["name"]: r for r in collection.get("rules", [])}
        have_rules = {r["name"]: r for r in old.get("rules", [])}
        for rule_name, rule in want_rules.items():
            if rule_name not in have_rules:
                lines.append(f"+   rule {rule_name}: {rule_summary(rule)}")
            elif rule != have_rules[rule_name]:
                lines.append(f"~   rule {rule_name}")
                lines += _field_changes("    ", rule, have_rules[rule_name])
        lines += [f"-   rule {n}" for n in sorted(set(have_rules) - set(want_rules))]
    lines += [f"- collection {n}" for n in sorted(set(have_cols) - set(want_cols))]
    return lines


def _failed(resource: dict[str, Any]) -> bool:
    """A write that ended Failed is rewritten on the next run, even if the body matches."""
    return (resource.get("properties") or {}).get("provisioningState") == "Failed"


def _route_line(sign: str, route: dict[str, Any]) -> str:
    props = route.get("properties") or {}
    hop = " ".join(str(p) for p in (props.get("nextHopType"), props.get("nextHopIpAddress")) if p)
    return f"{sign} route {route.get('name')}: {props.get('addressPrefix')} -> {hop}"


def _route_props(route: dict[str, Any]) -> dict[str, Any]:
    props = clean(route.get("properties") or {})
    props.pop("hasBgpOverride", None)
    return dict(props)


def _group_steps(
    desired: DesiredState, live: LiveState, prune: bool
) -> tuple[list[Step], list[str], list[str]]:
    steps: list[Step] = []
    kept: list[str] = []
    unmanaged = sorted(
        n for n, b in live.groups.items() if not is_managed_group(n, b, desired.prefix)
    )
    for name, body in desired.groups.items():
        if not name.startswith(desired.prefix):
            raise UsageError(
                f"rule collection group '{name}' does not start with the managed prefix "
                f"'{desired.prefix}'; egress only writes groups it can recognise as its own."
            )
        if not is_managed_group(name, body, desired.prefix):
            raise UsageError(
                f"rule collection group '{name}' has rules without the '{RULE_MARKER}' description "
                "marker, so a later run could not recognise it as egress-managed; recompile it."
            )
        current = live.groups.get(name)
        if current is not None and name in unmanaged:
            raise AzureConflictError(
                f"rule collection group '{name}' already exists in firewall policy "
                f"'{live.policy.get('name')}' but is not managed by egress (its rules lack the "
                f"'{RULE_MARKER}' description marker); rename or delete it, nothing was written."
            )
        if current is None:
            details = [
                f"+ priority {body['properties'].get('priority')}",
                *group_details(body, None),
            ]
            steps.append(Step(Kind.GROUP, Action.CREATE, name, None, body, tuple(details)))
        elif _failed(current):
            line = "~ provisioningState: Failed -> Succeeded (re-applied)"
            steps.append(Step(Kind.GROUP, Action.UPDATE, name, current.get("etag"), body, (line,)))
        elif comparable_group(body) != comparable_group(current):
            steps.append(
                Step(
                    Kind.GROUP,
                    Action.UPDATE,
                    name,
                    current.get("etag"),
                    body,
                    tuple(group_details(body, current)),
                )
            )
    for name in sorted(set(live.groups) - set(desired.groups) - set(unmanaged)):
        if prune:
            steps.append(Step(Kind.GROUP, Action.DELETE, name, live.groups[name].get("etag"), None))
        else:
            kept.append(f"rule collection group {name}")
    return steps, kept, [f"rule collection group {n}" for n in unmanaged]


def _selector_props(body: dict[str, Any]) -> Any:
    return clean(body.get("properties") or {})


def _selector_users(live: LiveState, groups: set[str]) -> dict[str, list[str]]:
    """Kube selector group name -> which of `groups` have rules using it as a source."""
    users: dict[str, list[str]] = {}
    for group in sorted(groups):
        collections = (live.groups[group].get("properties") or {}).get("ruleCollections") or []
        for collection in collections:
            for rule in collection.get("rules") or []:
                for ref in rule.get("sourceKubeSelectorGroups") or []:
                    name = str(ref).rstrip("/").rsplit("/", 1)[-1]
                    if group not in users.setdefault(name, []):
                        users[name].append(group)
    return users


def _selector_steps(
    desired: DesiredState, live: LiveState, prune: bool, unmanaged_groups: set[str]
) -> tuple[list[Step], list[Step], list[str], list[str]]:
    """Creates/updates (before the groups that use them), deletes (after), kept, left alone.

    Kube selector groups carry no tags or descriptions, so one is egress's when its name has
    the managed prefix and no rule collection group egress does not own uses it: changing or
    deleting it then cannot alter anyone else's rules.
    """
    foreign_users = _selector_users(live, unmanaged_groups)
    unmanaged = sorted(
        n
        for n in live.kube_selector_groups
        if not n.startswith(desired.prefix) or n in foreign_users
    )
    upserts: list[Step] = []
    for name, body in desired.kube_selector_groups.items():
        if not name.startswith(desired.prefix):
            raise UsageError(
                f"kube selector group '{name}' does not start with the managed prefix "
                f"'{desired.prefix}'; egress only writes selector groups it recognises as its own."
            )
        current = live.kube_selector_groups.get(name)
        if current is not None and name in unmanaged:
            raise AzureConflictError(
                f"kube selector group '{name}' in firewall policy '{live.policy.get('name')}' is "
                f"used by rule collection group(s) {', '.join(foreign_users[name])}, which egress "
                "does not manage, so egress may not change it; rename it, nothing was written."
            )
        want = _selector_props(body)
        if current is None:
            lines = tuple(f"+ {k}: {_show(v)}" for k, v in sorted(want.items()))
            upserts.append(Step(Kind.SELECTOR, Action.CREATE, name, None, body, lines))
        elif _failed(current):
            line = "~ provisioningState: Failed -> Succeeded (re-applied)"
            upserts.append(
                Step(Kind.SELECTOR, Action.UPDATE, name, current.get("etag"), body, (line,))
            )
        elif want != _selector_props(current):
            lines = tuple(_field_changes("", want, _selector_props(current)))
            upserts.append(
                Step(Kind.SELECTOR, Action.UPDATE, name, current.get("etag"), body, lines)
            )
    deletes: list[Step] = []
    kept: list[str] = []
    stale = set(live.kube_selector_groups) - set(desired.kube_selector_groups) - set(unmanaged)
    for name in sorted(stale):
        if prune:
            etag = live.kube_selector_groups[name].get("etag")
            deletes.append(Step(Kind.SELECTOR, Action.DELETE, name, etag, None))
        else:
            kept.append(f"kube selector group {name}")
    return upserts, deletes, kept, [f"kube selector group {n}" for n in unmanaged]


def _table_steps(
    desired: DesiredState, live: LiveState, target: AzureTarget, prune: bool
) -> tuple[list[Step], list[str], list[str]]:
    want = desired.route_table
    if want is None or not target.route_table:
        return [], [], []
    table_name = target.route_table
    have = live.route_table
    if have is None:
        body = {k: v for k, v in want.items() if k in ("location", "tags", "properties")}
        details = [_route_line("+", r) for r in body.get("properties", {}).get("routes", [])]
        bgp = body.get("properties", {}).get("disableBgpRoutePropagation")
        details.append(f"+ disableBgpRoutePropagation: {bgp}")
        details += [f"+ tag {k}={v}" for k, v in sorted((body.get("tags") or {}).items())]
        return (
            [Step(Kind.ROUTE_TABLE, Action.CREATE, table_name, None, body, tuple(details))],
            [],
            [],
        )
    steps: list[Step] = []
    managed_table = is_managed_table(have)
    live_routes = {r["name"]: r for r in (have.get("properties") or {}).get("routes") or []}
    owned = {n for n in live_routes if managed_table and n.startswith(desired.prefix)}
    wanted_tags = {str(k): str(v) for k, v in (want.get("tags") or {}).items()}
    have_tags = {str(k): str(v) for k, v in (have.get("tags") or {}).items()}
    if any(have_tags.get(k) != v for k, v in wanted_tags.items()):
        merged = {**have_tags, **wanted_tags}
        tag_lines = tuple(
            f"+ tag {k}={v}" for k, v in sorted(wanted_tags.items()) if have_tags.get(k) != v
        )
        steps.append(
            Step(
                Kind.TABLE_TAGS,
                Action.UPDATE,
                table_name,
                have.get("etag"),
                {"tags": merged},
                tag_lines,
            )
        )
    for route in (want.get("properties") or {}).get("routes") or []:
        name = route["name"]
        if not name.startswith(desired.prefix):
            raise UsageError(
                f"route '{name}' does not start with the managed prefix '{desired.prefix}'."
            )
        current = live_routes.get(name)
        if current is not None and name not in owned:
            raise AzureConflictError(
                f"route '{name}' already exists in route table '{table_name}', which egress does "
                "not manage (no managed-by=egress tag); rename or remove it, nothing was written."
            )
        clash = [
            n
            for n, r in live_routes.items()
            if n not in owned
            and n != name
            and (r.get("properties") or {}).get("addressPrefix")
            == route["properties"].get("addressPrefix")
        ]
        if clash:
            raise AzureConflictError(
                f"route table '{table_name}' already routes "
                f"{route['properties'].get('addressPrefix')} through route '{clash[0]}', which "
                "egress does not own; remove it first, nothing was written."
            )
        body = {"properties": route["properties"]}
        if current is None:
            steps.append(
                Step(Kind.ROUTE, Action.CREATE, name, None, body, (_route_line("+", route),))
            )
        elif _failed(current):
            line = "~ provisioningState: Failed -> Succeeded (re-applied)"
            steps.append(Step(Kind.ROUTE, Action.UPDATE, name, current.get("etag"), body, (line,)))
        elif _route_props(current) != _route_props(route):
            lines = tuple(_field_changes("", _route_props(route), _route_props(current)))
            steps.append(Step(Kind.ROUTE, Action.UPDATE, name, current.get("etag"), body, lines))
    kept: list[str] = []
    wanted_names = {r["name"] for r in (want.get("properties") or {}).get("routes") or []}
    for name in sorted(owned - wanted_names):
        if prune:
            steps.append(Step(Kind.ROUTE, Action.DELETE, name, live_routes[name].get("etag"), None))
        else:
            kept.append(f"route {name}")
    unmanaged = [f"route {n}" for n in sorted(set(live_routes) - owned - wanted_names)]
    return steps, kept, unmanaged


def _subnet_steps(live: LiveState, target: AzureTarget, table_exists: bool) -> list[Step]:
    if not target.route_table or not table_exists:
        return []
    steps = []
    for subnet in target.subnets:
        doc = live.subnets[subnet.id]
        current = ((doc.get("properties") or {}).get("routeTable") or {}).get("id")
        if (current or "").lower() == target.route_table_id.lower():
            continue
        line = f"~ routeTable: {current or '(none)'} -> {target.route_table_id}"
        steps.append(
            Step(
                Kind.SUBNET,
                Action.UPDATE,
                f"{subnet.vnet}/{subnet.name}",
                doc.get("etag"),
                with_route_table(doc, target.route_table_id),
                (line,),
                subnet,
            )
        )
    return steps


def with_route_table(subnet: dict[str, Any], route_table_id: str) -> dict[str, Any]:
    """The subnet as read, with only properties.routeTable changed (NSG etc. survive)."""
    body = copy.deepcopy(subnet)
    for read_only in ("etag", "type"):
        body.pop(read_only, None)
    props = body.setdefault("properties", {})
    props.pop("provisioningState", None)
    props["routeTable"] = {"id": route_table_id}
    return body


def observed_etags(live: LiveState) -> dict[str, str | None]:
    """The etag of every resource a plan was based on, by lower-cased resource id."""
    docs = [
        live.policy,
        *live.groups.values(),
        *live.kube_selector_groups.values(),
        *live.subnets.values(),
    ]
    if live.route_table is not None:
        docs.append(live.route_table)
        docs += (live.route_table.get("properties") or {}).get("routes") or []
    return {str(doc.get("id", "")).lower(): doc.get("etag") for doc in docs if doc.get("id")}


def already_applied(step: Step, doc: dict[str, Any] | None) -> bool:
    """Whether Azure already holds what `step` would write (a re-sent write that had landed)."""
    body = step.body or {}
    if step.action is Action.DELETE:
        return doc is None
    if doc is None:
        return False
    if step.kind is Kind.GROUP:
        return comparable_group(doc) == comparable_group(body)
    if step.kind is Kind.SELECTOR:
        return bool(_selector_props(doc) == _selector_props(body))
    if step.kind is Kind.ROUTE:
        return _route_props(doc) == _route_props(body)
    tags = {str(k): str(v) for k, v in (doc.get("tags") or {}).items()}
    if step.kind in (Kind.ROUTE_TABLE, Kind.TABLE_TAGS):
        wanted_tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
        if any(tags.get(k) != v for k, v in wanted_tags.items()):
            return False
        if step.kind is Kind.TABLE_TAGS:
            return True
        have = {r.get("name"): _route_props(r) for r in _routes_of(doc)}
        return have == {r.get("name"): _route_props(r) for r in _routes_of(body)}
    return _table_of(doc).lower() == _table_of(body).lower()  # a subnet: its association


def _table_of(subnet: dict[str, Any]) -> str:
    return str(((subnet.get("properties") or {}).get("routeTable") or {}).get("id") or "")


def _routes_of(table: dict[str, Any]) -> list[dict[str, Any]]:
    return list((table.get("properties") or {}).get("routes") or [])


def _table_setting_notes(
    desired: DesiredState, live: LiveState, target: AzureTarget
) -> tuple[str, ...]:
    """Existing route tables keep their settings (AKS may own them); say so when they differ."""
    if desired.route_table is None or live.route_table is None:
        return ()
    key = "disableBgpRoutePropagation"
    want = bool((desired.route_table.get("properties") or {}).get(key))
    have = bool((live.route_table.get("properties") or {}).get(key))
    if want == have:
        return ()
    return (
        f"route table {target.route_table} has {key}={str(have).lower()} but the compiled "
        f"policy wants {str(want).lower()}; egress leaves existing table settings alone, "
        "change it yourself if intended.",
    )


def check_dns_proxy(desired: DesiredState, live: LiveState, target: AzureTarget) -> None:
    """FQDNs in network rules need the firewall's DNS proxy (or requireProxy disabled)."""
    if not desired.dns_proxy_required:
        return
    dns = (live.policy.get("properties") or {}).get("dnsSettings") or {}
    if dns.get("enableProxy") is True or dns.get("requireProxyForNetworkRules") is False:
        return
    reason = f" ({desired.dns_proxy_reason})" if desired.dns_proxy_reason else ""
    raise AzureApplyError(
        f"firewall policy '{target.firewall_policy}' has DNS proxy disabled but the compiled "
        f"network rules use FQDNs{reason}; enable it (az network firewall policy update "
        f"--name {target.firewall_policy} --resource-group {target.resource_group} "
        "--enable-dns-proxy true) and re-run."
    )


def check_not_afc_managed(live: LiveState, target: AzureTarget, steps: list[Step]) -> None:
    """Azure Firewall for Containers owns an `afcManaged` policy; other writers keep off it."""
    if not (live.policy.get("properties") or {}).get("afcManaged"):
        return
    if any(step.kind in (Kind.GROUP, Kind.SELECTOR) for step in steps):
        raise AzureApplyError(
            f"firewall policy '{target.firewall_policy}' is managed by Azure Firewall for "
            "Containers (afcManaged) and is read-only to other writers, so egress will not "
            "change its rule collection or kube selector groups; manage it through AFC or pass "
            "--firewall-policy with a policy egress may write."
        )


def build_plan(
    desired: DesiredState, live: LiveState, target: AzureTarget, *, prune: bool = False
) -> Plan:
    """Diff desired against live; raise when a write would touch something egress does not own."""
    check_dns_proxy(desired, live, target)
    table_steps, table_kept, table_unmanaged = _table_steps(desired, live, target, prune)
    group_steps, group_kept, group_unmanaged = _group_steps(desired, live, prune)
    unmanaged_groups = {n.removeprefix("rule collection group ") for n in group_unmanaged}
    upserts, deletes, selectors_kept, selectors_unmanaged = _selector_steps(
        desired, live, prune, unmanaged_groups
    )
    notes = _table_setting_notes(desired, live, target)
    table_exists = live.route_table is not None or any(
        s.kind is Kind.ROUTE_TABLE for s in table_steps
    )
    subnet_steps = _subnet_steps(live, target, table_exists)
    # Selector groups are written before the rules that name them, deleted after.
    steps = table_steps + upserts + group_steps + deletes + subnet_steps
    check_not_afc_managed(live, target, steps)
    return Plan(
        target=target,
        steps=tuple(steps),
        kept=tuple(table_kept + group_kept + selectors_kept),
        unmanaged=tuple(group_unmanaged + selectors_unmanaged + table_unmanaged),
        notes=notes,
        observed=observed_etags(live),
        read_selectors=live.read_selectors,
    )
