"""The model holds target-neutral allowances; the Azure groups are a layout derived from them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from egress.model import DestinationKind, Protocol
from egress.targets.azure_layout import GroupSpec, azure_layout

from targets.cases import COMPILED, compiled


@pytest.mark.parametrize("case", list(COMPILED))
def test_the_azure_groups_are_a_pure_layout_of_the_allowances(case: str):
    policy = compiled(case)
    nat = tuple(
        rule
        for group in policy.rule_collection_groups
        for collection in group.collections
        if collection.is_nat
        for rule in collection.rules
    )
    aks, *rest = policy.rule_collection_groups
    user = next((g for g in rest if g.name.endswith("-user")), None)
    specs = (
        GroupSpec(aks.name, aks.priority),
        GroupSpec(user.name if user else "egress-user", user.priority if user else 0),
    )
    layout = azure_layout(policy.allowances, policy.sources, specs, nat)
    assert layout.groups == policy.rule_collection_groups


def test_allowances_say_who_what_how_and_why():
    policy = compiled("eastus-default")
    by_destination = {(a.destination, a.protocol, a.ports): a for a in policy.allowances}
    mcr = by_destination[("mcr.microsoft.com", Protocol.HTTPS, "443")]  # data, never contacted
    assert mcr.kind is DestinationKind.FQDN
    assert mcr.sources == policy.sources
    assert [p.entry_id for p in mcr.provenance] == ["required/mcr"]
    assert mcr.provenance[0].doc.startswith("https://learn.microsoft.com/")
    kinds = {a.kind for a in policy.allowances}
    assert {DestinationKind.FQDN, DestinationKind.SERVICE_TAG} <= kinds
    keys = [(a.kind, a.destination, a.protocol, a.ports, a.user) for a in policy.allowances]
    assert len(keys) == len(set(keys)), "allowances are de-duplicated"


def test_tag_mode_keeps_the_members_the_fqdn_tag_stands_for():
    policy = compiled("westeurope-full")
    tags = [a for a in policy.allowances if a.kind is DestinationKind.FQDN_TAG]
    assert [t.destination for t in tags] == ["AzureKubernetesService"]
    members = {a.destination for a in policy.tag_members}
    assert "mcr.microsoft.com" in members
    required_app = [
        a
        for a in policy.allowances
        if a.is_app
        and a.kind is not DestinationKind.FQDN_TAG
        and all(p.feature == "required" for p in a.provenance)
    ]
    assert not required_app, "the tag replaces the required application allowances"


def test_removing_an_allowance_removes_exactly_its_rule_destination():
    policy = compiled("eastus-default")
    dropped = next(a for a in policy.allowances if a.destination == "mcr.microsoft.com")
    kept = tuple(a for a in policy.allowances if a is not dropped)
    aks = policy.rule_collection_groups[0]
    layout = azure_layout(
        kept, policy.sources, (GroupSpec(aks.name, aks.priority), GroupSpec("u", 1))
    )
    before = {d for r in policy.all_rules() for d in getattr(r, "target_fqdns", ())}
    after_policy = replace(policy, rule_collection_groups=layout.groups)
    after = {d for r in after_policy.all_rules() for d in getattr(r, "target_fqdns", ())}
    assert before - after == {"mcr.microsoft.com"}
