"""Compile the catalog and the user policy into the frozen CompiledPolicy every target reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from egress.catalog import load_catalog
from egress.compiler.intents import (
    Intent,
    IntentKey,
    collect,
    intent_key,
    merge,
    resolve_features,
    resolve_region,
)
from egress.compiler.probes import build_probe_plan
from egress.compiler.settings import Resolved, nat_rules, resolve_settings, service_publications
from egress.errors import CompileError
from egress.model import (
    AzureScope,
    CompiledPolicy,
    FirewallSettings,
    NetworkRule,
    RuleCollectionGroup,
)
from egress.policy import Policy, load_policy
from egress.targets.azure_layout import azure_layout

__all__ = ["CompileRequest", "compile_checked", "compile_policy", "compile_request"]


@dataclass(frozen=True, slots=True)
class CompileRequest:
    """What to compile: cloud, region, extra features, and optional policy/catalog locations."""

    cloud: str = "AzureCloud"
    region: str = "eastus"
    features: tuple[str, ...] = ()
    policy_path: Path | None = None
    catalog_dir: Path | None = None


def compile_request(request: CompileRequest) -> CompiledPolicy:
    """Compile one cluster's egress; raises EgressError subclasses on bad input."""
    policy = load_policy(request.policy_path) if request.policy_path else Policy()
    return compile_checked(request, policy)


def compile_checked(request: CompileRequest, policy: Policy) -> CompiledPolicy:
    """Lint the loaded policy, compile it, lint the result; errors raise one CompileError."""
    from egress.compiler.lint import lint_compiled, lint_policy, raise_on_errors

    origin = str(request.policy_path or "(no policy file)")
    findings = lint_policy(policy)
    try:
        compiled = compile_policy(request, policy)
    except CompileError as error:
        raise_on_errors(findings, origin=origin, also=error.message)  # keep lint errors too
        raise
    findings += lint_compiled(compiled)
    warnings = raise_on_errors(findings, origin=origin)
    if not warnings:
        return compiled
    return _with_warnings(compiled, warnings)


def compile_policy(request: CompileRequest, policy: Policy) -> CompiledPolicy:
    """Compile without lint (lint runs on the result); used by compile_request and lint."""
    catalog = load_catalog(request.cloud, request.catalog_dir)
    catalog_dir = request.catalog_dir
    source = (
        f"fqdn_lists/{catalog.cloud.value}.yaml"
        if catalog_dir is None
        else str(catalog_dir / f"{catalog.cloud.value}.yaml")
    )
    region = resolve_region(catalog, request.region)
    features = resolve_features(catalog, (*request.features, *policy.features))
    settings = resolve_settings(policy, region)
    collected = collect(
        catalog,
        region,
        features,
        policy,
        source=source,
        policy_source=str(request.policy_path or "policy"),
    )
    allowances = merge(collected.intents, settings.sources)
    layout = azure_layout(
        tuple(allowances.values()),
        settings.sources,
        (settings.aks_group, settings.user_group),
        nat_rules(policy, str(request.policy_path or "policy")),
    )
    groups = list(layout.groups)
    firewall = _firewall_settings(groups, settings, policy)
    plan = build_probe_plan(
        cloud=catalog.cloud.value,
        region=region,
        first=_first_intents(collected.intents),
        covered=collected.tag_covered,
        rule_of=layout.rule_of,
        groups=tuple(groups),
        policy=policy,
    )
    return CompiledPolicy(
        cloud=catalog.cloud,
        region=region,
        features=features,
        network_plugin=policy.cluster.network_plugin,
        sources=settings.sources,
        firewall=firewall,
        rule_collection_groups=tuple(groups),
        route_table=settings.route_table,
        services=service_publications(policy),
        probe_plan=plan,
        managed_prefix=policy.managed_prefix,
        azure=AzureScope(
            subscription_id=policy.azure.subscription_id,
            resource_group=policy.azure.resource_group,
            firewall_policy=policy.azure.firewall_policy,
            route_table_resource_group=policy.azure.route_table.resource_group,
        ),
        warnings=(*settings.warnings, *collected.warnings),
        skipped=tuple(sorted(collected.skipped)),
        allowances=tuple(allowances.values()),
        tag_members=tuple(merge(collected.tag_covered, settings.sources).values()),
    )


def _first_intents(intents: tuple[Intent, ...]) -> dict[IntentKey, Intent]:
    """The first intent of each allowance, which the probe plan reads for its hints."""
    first: dict[IntentKey, Intent] = {}
    for intent in intents:
        first.setdefault(intent_key(intent), intent)
    return first


def _firewall_settings(
    groups: list[RuleCollectionGroup], settings: Resolved, policy: Policy
) -> FirewallSettings:
    fqdn_rules = [
        (group.name, collection.name, rule)
        for group in groups
        for collection in group.collections
        for rule in collection.rules
        if isinstance(rule, NetworkRule) and rule.destination_fqdns
    ]
    if not fqdn_rules:
        return FirewallSettings(
            settings.private_ip,
            settings.public_ip,
            dns_proxy_required=False,
            dns_proxy_reason="no network rule uses an FQDN",
        )
    listing = "; ".join(
        f"{g}/{c}/{r.name}: {', '.join(r.destination_fqdns)} "
        f"({', '.join(p.entry_id for p in r.provenance)})"
        for g, c, r in fqdn_rules
    )
    if not policy.firewall.dns_proxy:
        raise CompileError(
            "network rules need the firewall's DNS proxy for FQDN destinations but the policy "
            f"sets firewall.dns_proxy: false; offending entries: {listing}; fix: set "
            "firewall.dns_proxy: true, or list those catalog entries under exclude and allow "
            "their addresses by cidr instead."
        )
    return FirewallSettings(
        settings.private_ip,
        settings.public_ip,
        dns_proxy_required=True,
        dns_proxy_reason=_proxy_reason(fqdn_rules),
    )


def _with_warnings(compiled: CompiledPolicy, warnings: tuple[str, ...]) -> CompiledPolicy:
    from dataclasses import replace

    return replace(compiled, warnings=(*compiled.warnings, *warnings))


def _proxy_reason(fqdn_rules: list[tuple[str, str, NetworkRule]]) -> str:
    """Short summary for the compile output: the first few FQDNs and how many in total."""
    fqdns = sorted({f for _, _, rule in fqdn_rules for f in rule.destination_fqdns})
    shown = ", ".join(fqdns[:5]) + (f" and {len(fqdns) - 5} more" if len(fqdns) > 5 else "")
    rules = ", ".join(f"{g}/{c}/{r.name}" for g, c, r in fqdn_rules)
    return f"network rules {rules} carry FQDNs ({shown}); the firewall must resolve them"
