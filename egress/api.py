"""The library API: compile a cluster's egress and render targets, without the CLI.

The CLI commands are a shell over these functions; other programs import them::

    from egress.api import CompileRequest, compile_egress, render

    policy = compile_egress(CompileRequest(region="eastus"))
    rendered = render(policy, ["azure-policy", "appliance"], service_tags=None)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path

from egress.compiler import CompileRequest, compile_request
from egress.errors import UnsupportedFeatureError, UsageError
from egress.inputs import check_guid
from egress.model import AzureScope, CompiledPolicy
from egress.service_tags import ServiceTags, load_service_tags
from egress.targets import TARGETS, Files
from egress.targets.base import RenderInputs

__all__ = [
    "CompileRequest",
    "RenderInputs",
    "Rendered",
    "Scope",
    "compile_egress",
    "default_targets",
    "load_service_tags",
    "parse_targets",
    "render",
    "resolve_scope",
    "suggestion",
]


def compile_egress(request: CompileRequest) -> CompiledPolicy:
    """Compile one cluster's egress (catalog + optional policy file), linted."""
    return compile_request(request)


def suggestion(word: str, choices: list[str]) -> str:
    """'did you mean ...?' for the nearest valid names, or the full list."""
    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    near += [c for c in choices if c not in near and (c in word or word in c)]
    if near:
        return "did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
    return "valid names: " + ", ".join(choices)


def default_targets() -> list[str]:
    """The targets a plain `egress compile` writes (the Azure ones), in registry order."""
    return [name for name, target in TARGETS.items() if target.on_by_default]


def parse_targets(names: list[str]) -> list[str]:
    """Validate --target values in registry order; none means the defaults, 'all' every target."""
    known = list(TARGETS)
    for name in names:
        if name not in TARGETS and name != "all":
            raise UsageError(f"unknown target '{name}'; {suggestion(name, [*known, 'all'])}")
    if not names:
        return default_targets()
    if "all" in names:
        return known
    return [name for name in known if name in names]


@dataclass(frozen=True, slots=True)
class Rendered:
    """Every file of the requested targets, plus the warnings they raised."""

    files: Files
    warnings: tuple[str, ...] = field(default=())


def render(
    policy: CompiledPolicy,
    names: list[str],
    *,
    service_tags: ServiceTags | None = None,
    inputs: RenderInputs | None = None,
) -> Rendered:
    """Render every named target; one error lists every entry any of them cannot express."""
    inputs = inputs or RenderInputs()
    if service_tags is not None:
        inputs = replace(inputs, service_tags=service_tags)
    files: Files = {}
    warnings: list[str] = []
    problems: list[str] = []
    for name in names:
        target = TARGETS[name](inputs)
        try:
            rendered = target.render(policy)
        except UnsupportedFeatureError as error:
            problems.append(error.message)
            continue
        clash = sorted(set(rendered) & set(files))
        if clash:
            raise RuntimeError(f"targets write the same file: {', '.join(clash)}")
        files.update(rendered)
        warnings.extend(target.warnings(policy))
    if problems:
        raise UnsupportedFeatureError(" ".join(problems))
    return Rendered(files, tuple(warnings))


@dataclass(frozen=True, slots=True)
class Scope:
    """Where `egress plan`/`apply` write: flags override what the policy file says."""

    subscription_id: str
    resource_group: str
    firewall_policy: str
    route_table_resource_group: str | None


def resolve_scope(
    scope: AzureScope,
    *,
    subscription: str | None = None,
    resource_group: str | None = None,
    firewall_policy: str | None = None,
    route_table_resource_group: str | None = None,
) -> Scope:
    """Merge flag values over the policy's azure: section; name every missing one."""
    subscription = subscription or scope.subscription_id
    resource_group = resource_group or scope.resource_group
    firewall_policy = firewall_policy or scope.firewall_policy
    missing = [
        flag
        for flag, value in (
            ("--subscription", subscription),
            ("--resource-group", resource_group),
            ("--firewall-policy", firewall_policy),
        )
        if not value
    ]
    if missing or not (subscription and resource_group and firewall_policy):
        raise UsageError(
            f"no Azure scope for {', '.join(missing)}: pass the flag(s) or set them under "
            "azure: in the policy file."
        )
    return Scope(
        subscription_id=check_guid(subscription, flag="--subscription"),
        resource_group=resource_group,
        firewall_policy=firewall_policy,
        route_table_resource_group=route_table_resource_group or scope.route_table_resource_group,
    )


def read_service_tags(path: Path | None) -> ServiceTags | None:
    """The --service-tags file, or None."""
    return None if path is None else load_service_tags(path)
