"""Whole plans compared step by step (kind, action, name, etag, body, every detail line) and the
exact sentences the plan stops with: what `egress plan` prints and `egress apply` writes."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from egress.azure.diff import Action, Kind, Plan, Step, build_plan
from egress.azure.state import AzureTarget, DesiredState, LiveState, SubnetRef
from egress.errors import AzureConflictError, UsageError

from azure_hub import POLICY, RG, SUB, SUBNET_ID

TARGET = AzureTarget(SUB, RG, POLICY, "rt", RG, (SubnetRef.parse(SUBNET_ID),))
NO_TABLE = AzureTarget(SUB, RG, POLICY, None, RG)
RULE = {
    "ruleType": "NetworkRule",
    "name": "ntp",
    "description": "egress: required",
    "ipProtocols": ["UDP"],
    "sourceAddresses": ["10.42.1.0/24"],
    "destinationAddresses": ["10.9.0.4"],
    "destinationPorts": ["123"],
}


def _collection(name: str, *rules: dict[str, Any], priority: int = 100) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": priority,
        "action": {"type": "Allow"},
        "rules": list(rules),
    }


def _group(*collections: dict[str, Any], priority: int = 400) -> dict[str, Any]:
    return {"properties": {"priority": priority, "ruleCollections": list(collections)}}


def _live(**kwargs: Any) -> LiveState:
    return LiveState({"name": POLICY, "properties": {}}, **kwargs)


def _desired(**kwargs: Any) -> DesiredState:
    return DesiredState(
        "egress",
        kwargs.pop("groups", {}),
        kwargs.pop("table", None),
        dns_proxy_required=False,
        **kwargs,
    )


def _azure(body: dict[str, Any], etag: str) -> dict[str, Any]:
    return copy.deepcopy(body) | {"etag": etag, "id": f"/x/{etag}"}


# --- rule collection groups --------------------------------------------------------------


def test_group_create_update_and_delete_steps_in_full() -> None:
    new = _group(_collection("net", RULE))
    changed_rule = {**RULE, "destinationPorts": ["124"]}
    live = _live(
        groups={
            "egress-b": _azure(_group(_collection("net", changed_rule), priority=410), "b"),
            "egress-old": _azure(_group(_collection("net", RULE)), "old"),
        }
    )
    desired = _desired(groups={"egress-a": new, "egress-b": new})
    plan = build_plan(desired, live, NO_TABLE, prune=True)
    assert plan == Plan(
        target=NO_TABLE,
        steps=(
            Step(
                Kind.GROUP,
                Action.CREATE,
                "egress-a",
                None,
                new,
                (
                    "+ priority 400",
                    "+ collection net (priority 100, Allow, 1 rule)",
                    "+   rule ntp: UDP from 10.42.1.0/24 to 10.9.0.4 port 123",
                ),
            ),
            Step(
                Kind.GROUP,
                Action.UPDATE,
                "egress-b",
                "b",
                new,
                (
                    "~ priority: 410 -> 400",
                    "~ collection net",
                    "~   rule ntp",
                    "~     destinationPorts: 124 -> 123",
                ),
            ),
            Step(Kind.GROUP, Action.DELETE, "egress-old", "old", None),
        ),
        observed={"/x/b": "b", "/x/old": "old"},
    )


def test_collections_without_rules_compare_and_read_cleanly() -> None:
    empty = _group(_collection("a"), _collection("b", RULE))
    moved = _group(_collection("a", priority=150), _collection("b", RULE))
    [step] = build_plan(
        _desired(groups={"egress-a": empty}),
        _live(groups={"egress-a": _azure(moved, "1")}),
        NO_TABLE,
    ).steps
    assert step.details == ("~ collection a", "~   priority: 150 -> 100")
    created = build_plan(_desired(groups={"egress-a": empty}), _live(), NO_TABLE).steps[0]
    assert created.details[1] == "+ collection a (priority 100, Allow, 0 rules)"
    assert not build_plan(
        _desired(groups={"egress-a": empty}),
        _live(groups={"egress-a": _azure(empty, "1")}),
        NO_TABLE,
    ).steps


def test_the_sentences_a_group_plan_stops_with() -> None:
    foreign = _group(_collection("net", {**RULE, "description": "hand made"}))
    cases = [
        (
            _desired(groups={"web": _group(_collection("net", RULE))}),
            _live(),
            UsageError,
            "rule collection group 'web' does not start with the managed prefix 'egress'; egress "
            "only writes groups it can recognise as its own.",
        ),
        (
            _desired(groups={"egress-x": foreign}),
            _live(),
            UsageError,
            "rule collection group 'egress-x' has rules without the 'egress:' description marker, "
            "so a later run could not recognise it as egress-managed; recompile it.",
        ),
        (
            _desired(groups={"egress-x": _group(_collection("net", RULE))}),
            _live(groups={"egress-x": _azure(foreign, "1")}),
            AzureConflictError,
            "rule collection group 'egress-x' already exists in firewall policy 'fp-hub' but is "
            "not managed by egress (its rules lack the 'egress:' description marker); rename or "
            "delete it, nothing was written.",
        ),
    ]
    for desired, live, error, sentence in cases:
        with pytest.raises(error, match=f"^{re.escape(sentence)}$"):
            build_plan(desired, live, NO_TABLE)


# --- route table, tags and routes ---------------------------------------------------------

ROUTE = {
    "name": "egress-default",
    "properties": {
        "addressPrefix": "0.0.0.0/0",
        "nextHopType": "VirtualAppliance",
        "nextHopIpAddress": "10.42.0.4",
    },
}
WANT_TABLE = {
    "location": "eastus",
    "tags": {"managed-by": "egress", "egress-prefix": "egress"},
    "properties": {"routes": [ROUTE], "disableBgpRoutePropagation": True},
    "name": "not-a-body-key",
}


def test_a_new_table_is_one_create_with_only_its_body_keys() -> None:
    subnet = {"id": SUBNET_ID, "etag": "s", "properties": {"addressPrefix": "10.42.1.0/24"}}
    plan = build_plan(_desired(table=WANT_TABLE), _live(subnets={SUBNET_ID: subnet}), TARGET)
    body = {k: WANT_TABLE[k] for k in ("location", "tags", "properties")}
    assert plan.steps == (
        Step(
            Kind.ROUTE_TABLE,
            Action.CREATE,
            "rt",
            None,
            body,
            (
                "+ route egress-default: 0.0.0.0/0 -> VirtualAppliance 10.42.0.4",
                "+ disableBgpRoutePropagation: True",
                "+ tag egress-prefix=egress",
                "+ tag managed-by=egress",
            ),
        ),
        Step(
            Kind.SUBNET,
            Action.UPDATE,
            "vnet-aks/aks-subnet",
            "s",
            {
                "id": SUBNET_ID,
                "properties": {
                    "addressPrefix": "10.42.1.0/24",
                    "routeTable": {"id": TARGET.route_table_id},
                },
            },
            (f"~ routeTable: (none) -> {TARGET.route_table_id}",),
            TARGET.subnets[0],
        ),
    )


def _table(*routes: dict[str, Any], tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": "/rt",
        "etag": "t",
        "tags": {"aks": "1"} if tags is None else tags,
        "properties": {"routes": list(routes), "disableBgpRoutePropagation": True},
    }


def _subnet_there() -> dict[str, dict[str, Any]]:
    return {SUBNET_ID: {"properties": {"routeTable": {"id": TARGET.route_table_id}}}}


def test_an_existing_table_gets_its_tags_merged_then_its_routes() -> None:
    live = _live(route_table=_table(), subnets=_subnet_there())
    plan = build_plan(_desired(table=WANT_TABLE), live, TARGET)
    assert plan.steps == (
        Step(
            Kind.TABLE_TAGS,
            Action.UPDATE,
            "rt",
            "t",
            {"tags": {"aks": "1", "managed-by": "egress", "egress-prefix": "egress"}},
            ("+ tag egress-prefix=egress", "+ tag managed-by=egress"),
        ),
        Step(
            Kind.ROUTE,
            Action.CREATE,
            "egress-default",
            None,
            {"properties": ROUTE["properties"]},
            ("+ route egress-default: 0.0.0.0/0 -> VirtualAppliance 10.42.0.4",),
        ),
    )
    tagged = {"aks": "1", "managed-by": "egress", "egress-prefix": "egress"}
    half = _live(route_table=_table(tags={"managed-by": "egress"}), subnets=_subnet_there())
    assert build_plan(_desired(table=WANT_TABLE), half, TARGET).steps[0].details == (
        "+ tag egress-prefix=egress",
    )
    done = _live(route_table=_table(_azure(ROUTE, "r"), tags=tagged), subnets=_subnet_there())
    assert not build_plan(_desired(table=WANT_TABLE), done, TARGET).steps


def test_owned_routes_update_and_prune_and_failed_ones_are_rewritten() -> None:
    tagged = {"managed-by": "egress", "egress-prefix": "egress"}
    moved = copy.deepcopy(ROUTE)
    moved["properties"]["nextHopIpAddress"] = "10.42.0.5"
    failed = copy.deepcopy(ROUTE)
    failed["properties"]["provisioningState"] = "Failed"
    stale = {
        "name": "egress-old",
        "properties": {"addressPrefix": "10.1.0.0/16", "nextHopType": "None"},
    }
    for have, expected in (
        (
            moved,
            Step(
                Kind.ROUTE,
                Action.UPDATE,
                "egress-default",
                "r",
                {"properties": ROUTE["properties"]},
                ("~ nextHopIpAddress: 10.42.0.5 -> 10.42.0.4",),
            ),
        ),
        (
            failed,
            Step(
                Kind.ROUTE,
                Action.UPDATE,
                "egress-default",
                "r",
                {"properties": ROUTE["properties"]},
                ("~ provisioningState: Failed -> Succeeded (re-applied)",),
            ),
        ),
    ):
        live = _live(
            route_table=_table(_azure(have, "r"), _azure(stale, "s"), tags=tagged),
            subnets=_subnet_there(),
        )
        plan = build_plan(_desired(table=WANT_TABLE), live, TARGET, prune=True)
        assert plan.steps == (expected, Step(Kind.ROUTE, Action.DELETE, "egress-old", "s", None))
        kept = build_plan(_desired(table=WANT_TABLE), live, TARGET)
        assert kept.kept == ("route egress-old",) and kept.steps == (expected,)


def test_the_sentences_a_route_plan_stops_with() -> None:
    theirs = {
        "name": "aks-node",
        "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "None"},
    }
    bad = copy.deepcopy(WANT_TABLE)
    bad["properties"]["routes"] = [{**ROUTE, "name": "default"}]
    cases = [
        (
            _desired(table=bad),
            _live(route_table=_table(), subnets=_subnet_there()),
            UsageError,
            "route 'default' does not start with the managed prefix 'egress'.",
        ),
        (
            _desired(table=WANT_TABLE),
            _live(route_table=_table(_azure(ROUTE, "r")), subnets=_subnet_there()),
            AzureConflictError,
            "route 'egress-default' already exists in route table 'rt', which egress does not "
            "manage (no managed-by=egress tag); rename or remove it, nothing was written.",
        ),
        (
            _desired(table=WANT_TABLE),
            _live(route_table=_table(_azure(theirs, "a")), subnets=_subnet_there()),
            AzureConflictError,
            "route table 'rt' already routes 0.0.0.0/0 through route 'aks-node', which egress does "
            "not own; remove it first, nothing was written.",
        ),
    ]
    for desired, live, error, sentence in cases:
        with pytest.raises(error, match=f"^{re.escape(sentence)}$"):
            build_plan(desired, live, TARGET)
    # A route egress owns may share the prefix (it is being replaced), so no clash.
    tagged = {"managed-by": "egress", "egress-prefix": "egress"}
    own_old = {"name": "egress-old", "properties": theirs["properties"]}
    live = _live(route_table=_table(_azure(own_old, "o"), tags=tagged), subnets=_subnet_there())
    assert [s.action for s in build_plan(_desired(table=WANT_TABLE), live, TARGET).steps] == [
        Action.CREATE
    ]


def test_no_table_compiled_or_no_table_named_means_no_table_steps() -> None:
    live = _live(route_table=_table(), subnets=_subnet_there())
    assert not build_plan(_desired(), live, TARGET).steps
    assert not build_plan(_desired(table=WANT_TABLE), _live(), NO_TABLE).steps


# --- kube selector groups -----------------------------------------------------------------

SELECTOR = {"properties": {"podSelector": {"matchLabels": {"app": "web"}}}}


def test_selector_steps_in_full() -> None:
    changed = {"properties": {"podSelector": {"matchLabels": {"app": "api"}}}}
    failed = copy.deepcopy(SELECTOR)
    failed["properties"]["provisioningState"] = "Failed"
    live = _live(
        kube_selector_groups={
            "egress-b": _azure(changed, "b"),
            "egress-c": _azure(failed, "c"),
            "egress-old": _azure(SELECTOR, "old"),
        }
    )
    desired = _desired(
        kube_selector_groups={"egress-a": SELECTOR, "egress-b": SELECTOR, "egress-c": SELECTOR}
    )
    assert build_plan(desired, live, NO_TABLE, prune=True).steps == (
        Step(
            Kind.SELECTOR,
            Action.CREATE,
            "egress-a",
            None,
            SELECTOR,
            ('+ podSelector: {"matchLabels": {"app": "web"}}',),
        ),
        Step(
            Kind.SELECTOR,
            Action.UPDATE,
            "egress-b",
            "b",
            SELECTOR,
            ('~ podSelector: {"matchLabels": {"app": "api"}} -> {"matchLabels": {"app": "web"}}',),
        ),
        Step(
            Kind.SELECTOR,
            Action.UPDATE,
            "egress-c",
            "c",
            SELECTOR,
            ("~ provisioningState: Failed -> Succeeded (re-applied)",),
        ),
        Step(Kind.SELECTOR, Action.DELETE, "egress-old", "old", None),
    )


def test_the_sentences_a_selector_plan_stops_with() -> None:
    rule = {
        **RULE,
        "description": "hand made",
        "sourceKubeSelectorGroups": ["/p/kubeSelectorGroups/egress-s"],
    }
    other = {**rule, "name": "two"}
    live = _live(
        groups={
            "Default": _azure(_group(_collection("net", rule)), "d"),
            "Other": _azure(_group(_collection("net", other, rule)), "o"),
        },
        kube_selector_groups={"egress-s": _azure(SELECTOR, "s")},
    )
    cases = [
        (
            _desired(kube_selector_groups={"web": SELECTOR}),
            UsageError,
            "kube selector group 'web' does not start with the managed prefix 'egress'; egress "
            "only writes selector groups it recognises as its own.",
        ),
        (
            _desired(kube_selector_groups={"egress-s": SELECTOR}),
            AzureConflictError,
            "kube selector group 'egress-s' in firewall policy 'fp-hub' is used by rule collection "
            "group(s) Default, Other, which egress does not manage, so egress may not change it; "
            "rename it, nothing was written.",
        ),
    ]
    for desired, error, sentence in cases:
        with pytest.raises(error, match=f"^{re.escape(sentence)}$"):
            build_plan(desired, live, NO_TABLE)


# --- the remaining corners the mutation run pointed at -------------------------------------


def test_a_failed_group_is_rewritten_whole() -> None:
    body = _group(_collection("net", RULE))
    failed = _azure(body, "f")
    failed["properties"]["provisioningState"] = "Failed"
    plan = build_plan(
        _desired(groups={"egress-a": body}), _live(groups={"egress-a": failed}), NO_TABLE
    )
    assert plan.steps == (
        Step(
            Kind.GROUP,
            Action.UPDATE,
            "egress-a",
            "f",
            body,
            ("~ provisioningState: Failed -> Succeeded (re-applied)",),
        ),
    )


def test_a_new_collection_before_a_changed_one_reports_both() -> None:
    desired = _group(_collection("a", RULE), _collection("b", RULE))
    live = _azure(_group(_collection("b", {**RULE, "destinationPorts": ["9"]})), "1")
    [step] = build_plan(
        _desired(groups={"egress-a": desired}), _live(groups={"egress-a": live}), NO_TABLE
    ).steps
    assert step.details == (
        "+ collection a (priority 100, Allow, 1 rule)",
        "+   rule ntp: UDP from 10.42.1.0/24 to 10.9.0.4 port 123",
        "~ collection b",
        "~   rule ntp",
        "~     destinationPorts: 9 -> 123",
    )


def test_every_subnet_not_yet_associated_gets_a_step() -> None:
    second = SUBNET_ID.replace("aks-subnet", "aks-subnet-2")
    target = AzureTarget(
        SUB, RG, POLICY, "rt", RG, (SubnetRef.parse(SUBNET_ID), SubnetRef.parse(second))
    )
    subnets = {
        SUBNET_ID: {"properties": {"routeTable": {"id": target.route_table_id}}},
        second: {"etag": "2", "properties": {}},
    }
    tagged = {"managed-by": "egress", "egress-prefix": "egress"}
    live = _live(route_table=_table(_azure(ROUTE, "r"), tags=tagged), subnets=subnets)
    plan = build_plan(_desired(table=WANT_TABLE), live, target)
    assert [(s.kind, s.name, s.etag) for s in plan.steps] == [
        (Kind.SUBNET, "vnet-aks/aks-subnet-2", "2")
    ]


def test_read_only_route_fields_are_not_changes() -> None:
    tagged = {"managed-by": "egress", "egress-prefix": "egress"}
    live_route = copy.deepcopy(ROUTE)
    live_route["properties"].update(hasBgpOverride=True, provisioningState="Succeeded")
    live = _live(route_table=_table(_azure(live_route, "r"), tags=tagged), subnets=_subnet_there())
    assert not build_plan(_desired(table=WANT_TABLE), live, TARGET).steps


def test_dict_values_read_with_sorted_keys() -> None:
    want = {"properties": {"podSelector": {"matchLabels": {"z": "1", "a": "2"}}}}
    [step] = build_plan(_desired(kube_selector_groups={"egress-a": want}), _live(), NO_TABLE).steps
    assert step.details == ('+ podSelector: {"matchLabels": {"a": "2", "z": "1"}}',)


def test_the_dns_proxy_and_afc_sentences_in_full() -> None:
    from egress.errors import AzureApplyError

    for reason, shown in (("", ""), ("ntp uses FQDNs", " (ntp uses FQDNs)")):
        desired = DesiredState("egress", {}, None, dns_proxy_required=True, dns_proxy_reason=reason)
        sentence = (
            f"firewall policy 'fp-hub' has DNS proxy disabled but the compiled network rules use "
            f"FQDNs{shown}; enable it (az network firewall policy update --name fp-hub "
            "--resource-group rg-hub --enable-dns-proxy true) and re-run."
        )
        with pytest.raises(AzureApplyError, match=f"^{re.escape(sentence)}$"):
            build_plan(desired, _live(), NO_TABLE)
    afc = LiveState({"name": POLICY, "properties": {"afcManaged": True}})
    sentence = (
        "firewall policy 'fp-hub' is managed by Azure Firewall for Containers (afcManaged) and is "
        "read-only to other writers, so egress will not change its rule collection or kube "
        "selector groups; manage it through AFC or pass --firewall-policy with a policy egress "
        "may write."
    )
    with pytest.raises(AzureApplyError, match=f"^{re.escape(sentence)}$"):
        build_plan(_desired(kube_selector_groups={"egress-a": SELECTOR}), afc, NO_TABLE)


def test_the_plan_records_whether_selector_groups_were_read() -> None:
    live = _live()
    assert not build_plan(_desired(), live, NO_TABLE).read_selectors
    live.read_selectors = True
    assert build_plan(_desired(), live, NO_TABLE).read_selectors
