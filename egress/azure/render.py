"""Plan rendering with rich: one line per change, rule-level, coloured by +/-/~ on a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from egress.azure.diff import Action, Plan

_STYLES = {"+": "green", "-": "red", "~": "yellow"}
_VERBS = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "delete"}
_SIGNS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}


def _line(text: str, indent: int) -> Text:
    sign = text[:1]
    return Text(" " * indent + text, style=_STYLES.get(sign, ""))


def render_plan(plan: Plan, console: Console) -> None:
    """Print the plan: scope, each write with its rule-level details, then a summary."""
    target = plan.target
    console.print(
        Text(
            f"Firewall policy {target.firewall_policy} in resource group {target.resource_group} "
            f"(subscription {target.subscription_id})",
            style="bold",
        )
    )
    if target.route_table:
        subnets = ", ".join(f"{s.vnet}/{s.name}" for s in target.subnets) or "none"
        console.print(
            f"Route table {target.route_table} in resource group "
            f"{target.route_table_resource_group}; subnets: {subnets}",
            markup=False,
        )
    console.print()
    for step in plan.steps:
        sign = _SIGNS[step.action]
        console.print(_line(f"{sign} {_VERBS[step.action]} {step.kind} {step.name}", 2))
        for detail in step.details:
            console.print(_line(detail, 6))
    if plan.steps:
        console.print()
    if plan.unmanaged:
        console.print(
            f"Left alone (not managed by egress): {', '.join(plan.unmanaged)}", markup=False
        )
    if plan.kept:
        console.print(
            "Kept (managed by egress, no longer compiled; pass --prune to delete): "
            + ", ".join(plan.kept),
            markup=False,
        )
    for note in plan.notes:
        console.print(f"Note: {note}", markup=False)
    if not plan.has_changes:
        console.print(Text("No changes: Azure matches the compiled policy.", style="bold green"))
        return
    console.print(
        Text(
            f"Plan: {plan.count(Action.CREATE)} to create, {plan.count(Action.UPDATE)} to update, "
            f"{plan.count(Action.DELETE)} to delete.",
            style="bold",
        )
    )
