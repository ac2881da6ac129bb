"""Per-workload probes: one Job/CronJob per workload selector, proving its egress from there.

Each workload's pods carry its pod labels and run in a namespace its namespace selector
matches: the namespace named by ``kubernetes.io/metadata.name`` when the selector pins one,
else a namespace egress creates with the selector's labels. Each gets the plan of what its
pods may reach: the cluster-wide checks plus the checks of its own rules, and the canaries.
The node-pool probes get the cluster-wide checks only.
"""

from __future__ import annotations

from dataclasses import replace

from egress.k8s import objects
from egress.k8s.objects import Obj
from egress.k8s.spec import ManifestSpec, Target
from egress.model import CompiledPolicy, NatRule, WorkloadSelector
from egress.probe_plan import Check, CheckKind, Expectation, ProbePlan
from egress.targets._k8s import NAMESPACE_NAME_LABEL


def rule_workloads(policy: CompiledPolicy) -> dict[str, tuple[str, ...]]:
    """Rule path '<group>/<collection>/<rule>' -> names of the workloads it is limited to."""
    limited: dict[str, tuple[str, ...]] = {}
    for group in policy.rule_collection_groups:
        for collection in group.collections:
            for rule in collection.rules:
                if not isinstance(rule, NatRule):
                    path = f"{group.name}/{collection.name}/{rule.name}"
                    limited[path] = tuple(w.name for w in rule.sources.workloads)
    return limited


def isolation_check(check: Check) -> Check:
    """The same endpoint, expected blocked: pods outside a workload must not reach its rules."""
    return check.model_copy(
        update={
            "id": f"isolation/{check.id}"[:200],
            "expectation": Expectation.DENY,
            "required": False,
            "purpose": f"only other workloads may reach this ({check.purpose})".strip(),
        }
    )


def _plan_for(plan: ProbePlan, limited: dict[str, tuple[str, ...]], who: str | None) -> ProbePlan:
    """Allowed: cluster-wide checks and this workload's; expected blocked: other workloads'."""
    checks: list[Check] = []
    for check in plan.checks:
        only = limited.get(check.rule, ())
        if not only or who in only:
            checks.append(check)
        elif check.expectation is Expectation.ALLOW and check.kind is not CheckKind.UNVERIFIABLE:
            checks.append(isolation_check(check))
    unique = {c.id: c for c in checks}  # a check shared by two other workloads: once
    return plan.model_copy(update={"checks": tuple(unique.values())})


def split_plan(policy: CompiledPolicy) -> tuple[ProbePlan, dict[str, ProbePlan]]:
    """(the node pools' plan, workload name -> that workload's plan)."""
    limited = rule_workloads(policy)
    plan = policy.probe_plan
    per = {w.name: _plan_for(plan, limited, w.name) for w in workloads(policy)}
    return _plan_for(plan, limited, None), per


def workloads(policy: CompiledPolicy) -> tuple[WorkloadSelector, ...]:
    seen = {w.name: w for a in policy.allowances for w in a.sources.workloads}
    return tuple(seen[name] for name in sorted(seen))


def workload_namespace(spec: ManifestSpec, workload: WorkloadSelector) -> tuple[str, bool]:
    """(namespace, whether egress creates it): a pinned name is the user's own namespace."""
    pinned = dict(workload.namespace_labels).get(NAMESPACE_NAME_LABEL)
    if pinned is not None:
        return pinned, False
    return f"{spec.namespace}-{workload.name}"[:63].rstrip("-"), True


def workload_objects(spec: ManifestSpec, workload: WorkloadSelector, plan: ProbePlan) -> list[Obj]:
    """Namespace (when egress owns it), ServiceAccount, plan, storage and the probe workload."""
    namespace, create = workload_namespace(spec, workload)
    target = Target(
        name=f"workload-{workload.name}"[:40],
        node_selector=(),
        node_pool=None,
        pod_labels=workload.pod_labels,
    )
    local = replace(spec, namespace=namespace, targets=(target,))
    rendered: list[Obj] = []
    if create:
        created = objects.namespace(local)
        created["metadata"]["labels"] = {
            **dict(workload.namespace_labels),
            **created["metadata"]["labels"],
        }
        rendered.append(created)
    plan_hash = plan.plan_hash
    rendered += [
        objects.service_account(local),
        objects.plan_config_map(local, plan.to_json(), plan_hash),
    ]
    if local.store_size is not None:
        rendered.append(objects.store_claim(local, target))
    if local.schedule is None:
        rendered.append(objects.probe_job(local, target, plan_hash))
    else:
        rendered.append(objects.probe_cron_job(local, target, plan_hash))
    return rendered


def render_with_workloads(policy: CompiledPolicy, spec: ManifestSpec) -> tuple[str, ProbePlan, int]:
    """(manifest, the node pools' plan, workload probes): pools plus one probe per workload."""
    from egress.k8s.render import render_manifest, render_objects, to_yaml

    if not workloads(policy):
        return render_manifest(policy.probe_plan, spec), policy.probe_plan, 0
    base, per = split_plan(policy)
    rendered = render_objects(base, spec)
    for workload in workloads(policy):
        rendered += workload_objects(spec, workload, per[workload.name])
    return to_yaml(rendered), base, len(per)
