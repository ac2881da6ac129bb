"""Saved plans: `egress plan --out FILE` writes the exact change set and the etags it was based on;
`egress apply FILE` applies exactly that, or refuses when anything it was based on has moved.

The file is versioned JSON, validated on load into the same frozen `Plan` the executor runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from egress.azure.diff import Action, Kind, Plan, Step, observed_etags
from egress.azure.state import AzureTarget, LiveState, SubnetRef
from egress.errors import AzureConflictError, EgressError, OutputError, PlanFileError
from egress.output import write_file

FORMAT = "egress-azure-plan"
VERSION = 1
_MAX_DEPTH = 64  # a group body is about 8 levels deep; anything far deeper is not a plan


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Target(_Strict):
    subscription_id: str = Field(min_length=1)
    resource_group: str = Field(min_length=1)
    firewall_policy: str = Field(min_length=1)
    route_table: str | None
    route_table_resource_group: str = Field(min_length=1)
    subnets: list[str]


class _Step(_Strict):
    kind: Kind = Field(strict=False)
    action: Action = Field(strict=False)
    name: str = Field(min_length=1)
    etag: str | None
    body: dict[str, Any] | None
    details: list[str]
    subnet: str | None


class _SavedPlan(_Strict):
    format: Literal["egress-azure-plan"]
    version: Literal[1]
    cloud: str = Field(min_length=1)
    target: _Target
    observed: dict[str, str | None]
    read_selectors: bool
    steps: list[_Step]
    kept: list[str]
    unmanaged: list[str]
    notes: list[str]


def plan_document(plan: Plan, *, cloud: str) -> dict[str, Any]:
    """The saved-plan JSON object for `plan` (keys in a stable order)."""
    t = plan.target
    return {
        "format": FORMAT,
        "version": VERSION,
        "cloud": cloud,
        "target": {
            "subscription_id": t.subscription_id,
            "resource_group": t.resource_group,
            "firewall_policy": t.firewall_policy,
            "route_table": t.route_table,
            "route_table_resource_group": t.route_table_resource_group,
            "subnets": [s.id for s in t.subnets],
        },
        "observed": dict(sorted(plan.observed.items())),
        "read_selectors": plan.read_selectors,
        "steps": [
            {
                "kind": str(s.kind),
                "action": str(s.action),
                "name": s.name,
                "etag": s.etag,
                "body": s.body,
                "details": list(s.details),
                "subnet": s.subnet.id if s.subnet else None,
            }
            for s in plan.steps
        ],
        "kept": list(plan.kept),
        "unmanaged": list(plan.unmanaged),
        "notes": list(plan.notes),
    }


def write_saved_plan(path: Path, plan: Plan, *, cloud: str) -> None:
    """Write through the one atomic writer: never a half-written plan."""
    text = json.dumps(plan_document(plan, cloud=cloud), indent=2) + "\n"
    folder = path.parent if str(path.parent) else Path()
    if not folder.is_dir():  # a saved plan never creates folders
        raise OutputError(
            f"cannot write the saved plan {path} (no folder {folder}); pass --out with a "
            "writable path."
        )
    try:
        write_file(path, text)
    except OutputError as error:
        cause = error.__cause__
        reason = getattr(cause, "strerror", None) or cause or error
        raise OutputError(
            f"cannot write the saved plan {path} ({reason}); pass --out with a writable path."
        ) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate key '{dupes[0]}'")
    return dict(pairs)


def _depth(value: Any, limit: int) -> int:
    stack, deepest = [(value, 1)], 0
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack += [(child, level + 1) for child in children]
    return deepest


def load_saved_plan(path: Path) -> tuple[Plan, str]:
    """Read and validate a saved plan: the Plan to execute and the cloud it was made for."""
    fix = "pass a file written by `egress plan --out`, or make a new one"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PlanFileError(
            f"cannot read the saved plan {path} ({error.strerror}); {fix}."
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise PlanFileError(f"saved plan {path} is not UTF-8 text; {fix}.") from None
    except RecursionError:
        raise PlanFileError(f"saved plan {path} is nested too deeply; {fix}.") from None
    except ValueError as error:
        raise PlanFileError(f"saved plan {path} is not valid JSON ({error}); {fix}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanFileError(f'{path} is not an egress saved plan (no "format": "{FORMAT}"); {fix}.')
    if data.get("version") != VERSION:
        raise PlanFileError(
            f"saved plan {path} has version {data.get('version')!r}, this egress reads version "
            f"{VERSION}; make a new plan with this egress."
        )
    if _depth(data, _MAX_DEPTH) > _MAX_DEPTH:
        raise PlanFileError(f"saved plan {path} is nested too deeply; {fix}.")
    try:
        saved = _SavedPlan.model_validate(data)
        return _to_plan(saved), saved.cloud
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise PlanFileError(
            f"saved plan {path}: field '{where}' {first['msg'].lower()}; {fix}."
        ) from None
    except EgressError as error:  # a malformed subnet id inside the plan
        raise PlanFileError(f"saved plan {path}: {error.message}") from None


def _to_plan(saved: _SavedPlan) -> Plan:
    t = saved.target
    subnets = {s: SubnetRef.parse(s) for s in t.subnets}
    target = AzureTarget(
        subscription_id=t.subscription_id,
        resource_group=t.resource_group,
        firewall_policy=t.firewall_policy,
        route_table=t.route_table,
        route_table_resource_group=t.route_table_resource_group,
        subnets=tuple(subnets.values()),
    )
    steps = []
    for step in saved.steps:
        subnet = None
        if step.subnet is not None:
            subnet = subnets.get(step.subnet) or SubnetRef.parse(step.subnet)
        if (step.kind is Kind.SUBNET) != (subnet is not None):
            raise PlanFileError(f"step {step.kind} '{step.name}' and its subnet field disagree.")
        if (step.action is Action.DELETE) != (step.body is None):
            raise PlanFileError(f"step {step.action} {step.kind} '{step.name}' has the wrong body.")
        steps.append(
            Step(
                step.kind, step.action, step.name, step.etag, step.body, tuple(step.details), subnet
            )
        )
    return Plan(
        target=target,
        steps=tuple(steps),
        kept=tuple(saved.kept),
        unmanaged=tuple(saved.unmanaged),
        notes=tuple(saved.notes),
        observed=dict(saved.observed),
        read_selectors=saved.read_selectors,
    )


def _label(resource_id: str) -> str:
    parts = resource_id.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else resource_id


def check_still_current(plan: Plan, live: LiveState, origin: Path) -> None:
    """Refuse a saved plan when any resource it was based on changed, appeared or went away."""
    now = observed_etags(live)
    moved = sorted(
        rid
        for rid in set(now) | set(plan.observed)
        if now.get(rid, "(absent)") != plan.observed.get(rid, "(absent)")
    )
    if moved:
        shown = ", ".join(_label(rid) for rid in moved[:5])
        more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
        raise AzureConflictError(
            f"saved plan {origin} is stale: {len(moved)} resource(s) it was based on changed "
            f"since it was made ({shown}{more}); nothing was written, run egress plan --out "
            f"{origin} again and review it."
        )
