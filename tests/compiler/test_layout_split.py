"""Size-aware layout: rules and groups split under the budget, every destination kept once."""

from __future__ import annotations

from egress.model import (
    ApplicationRule,
    AppProtocol,
    AppProtocolType,
    CollectionAction,
    IpProtocol,
    NetworkRule,
    Rule,
    Sources,
)

# Every host name and address in this file is compiler input/output data: never contacted.
from egress.targets.azure_layout import GroupSpec, estimate_size, pack_groups

SOURCES = Sources(addresses=("10.42.1.0/24",))


def _app(name: str, fqdns: list[str]) -> ApplicationRule:
    return ApplicationRule(
        name=name,
        description="egress: policy",
        sources=SOURCES,
        protocols=(AppProtocol(AppProtocolType.HTTPS, 443),),
        target_fqdns=tuple(fqdns),
    )


def test_oversized_rule_and_group_are_split_without_losing_destinations() -> None:
    fqdns = [f"host-{i:05d}.contoso.com" for i in range(3000)]
    network = NetworkRule(
        name="tcp-5432",
        description="egress: policy",
        sources=SOURCES,
        ip_protocols=(IpProtocol.TCP,),
        destination_ports=("5432",),
        destination_addresses=tuple(f"10.50.{i // 250}.{i % 250}" for i in range(1000)),
    )
    collections: list[tuple[str, CollectionAction, list[Rule]]] = [
        ("allow-network", CollectionAction.ALLOW, [network]),
        ("allow-application", CollectionAction.ALLOW, [_app("https-443", fqdns)]),
    ]
    budget = 20_000
    groups, paths = pack_groups(GroupSpec("egress-user", 500), collections, budget)
    assert len(groups) > 2
    assert [g.priority for g in groups] == list(range(500, 500 + len(groups)))
    assert groups[0].name == "egress-user" and groups[1].name == "egress-user-2"
    kept: list[str] = []
    for group in groups:
        assert sum(estimate_size(r) for c in group.collections for r in c.rules) <= budget
        names = [(c.name, r.name) for c in group.collections for r in c.rules]
        assert len(names) == len(set(names))
        kept += [
            f
            for c in group.collections
            for r in c.rules
            if isinstance(r, ApplicationRule)
            for f in r.target_fqdns
        ]
    assert sorted(kept) == fqdns
    # every destination maps to the group/collection/rule part that really carries it
    where = paths[("allow-application/https-443", "host-02999.contoso.com")]
    group_name, collection, rule_name = where.split("/")
    group = next(g for g in groups if g.name == group_name)
    rule = next(
        r for c in group.collections if c.name == collection for r in c.rules if r.name == rule_name
    )
    assert isinstance(rule, ApplicationRule) and "host-02999.contoso.com" in rule.target_fqdns


def test_small_input_stays_in_one_group() -> None:
    groups, _ = pack_groups(
        GroupSpec("egress-aks", 400),
        [("application", CollectionAction.ALLOW, [_app("https-443", ["a.contoso.com"])])],
        1_400_000,
    )
    assert [g.name for g in groups] == ["egress-aks"]
    assert groups[0].collections[0].priority == 300


def test_many_groups_warn_about_the_group_count_limit() -> None:
    from dataclasses import replace

    from egress.compiler import CompileRequest, compile_request
    from egress.compiler.lint_rules import lint_compiled
    from egress.model import RuleCollectionGroup

    policy = compile_request(CompileRequest())
    base = policy.rule_collection_groups[0]
    many = tuple(
        RuleCollectionGroup(f"egress-aks-{i}", 400 + i, base.collections) for i in range(51)
    )
    codes = [f.code for f in lint_compiled(replace(policy, rule_collection_groups=many))]
    assert "LIM007" in codes
    assert "LIM007" not in [f.code for f in lint_compiled(policy)]
