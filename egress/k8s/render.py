"""Turn a probe plan and a ManifestSpec into the ordered objects and their YAML text."""

from __future__ import annotations

from typing import Any

import yaml

from egress.errors import UsageError
from egress.k8s import objects
from egress.k8s.objects import Obj
from egress.k8s.spec import ManifestSpec, check_options, schedule_warnings
from egress.probe_plan import ProbePlan

# ConfigMaps are limited to 1 MiB in total; keep room for metadata.
MAX_PLAN_BYTES = 1_000_000


def render_objects(plan: ProbePlan, spec: ManifestSpec) -> list[Obj]:
    """Every object, in apply order: namespace, identity, plan, storage, workloads."""
    check_options(spec)
    plan_json = plan.to_json()
    if len(plan_json.encode()) > MAX_PLAN_BYTES:
        raise UsageError(
            f"the probe plan is {len(plan_json.encode())} bytes, more than a ConfigMap holds "
            f"({MAX_PLAN_BYTES}); compile it with fewer --feature groups or a smaller policy."
        )
    plan_hash = plan.plan_hash
    rendered: list[Obj] = [
        objects.namespace(spec),
        objects.service_account(spec),
        objects.plan_config_map(spec, plan_json, plan_hash),
    ]
    if spec.store_size is not None:
        rendered += [objects.store_claim(spec, target) for target in spec.targets]
    for target in spec.targets:
        if spec.schedule is None:
            rendered.append(objects.probe_job(spec, target, plan_hash))
        else:
            rendered.append(objects.probe_cron_job(spec, target, plan_hash))
    if spec.store_size is not None and spec.store_secret is None:  # a per-pool SQLite store
        rendered += [objects.report_reader(spec, target) for target in spec.targets]
    if spec.alerts:
        rendered.append(objects.alert_rule(spec))
    return rendered


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (plan JSON, shell script) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(documents: list[Obj]) -> str:
    """Multi-document YAML with sorted keys: byte-for-byte stable for the same input."""
    parts: list[str] = []
    for document in documents:
        parts.append(_dump(document))
    return "---\n" + "---\n".join(parts)


def _dump(document: Any) -> str:
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def warnings(spec: ManifestSpec) -> list[str]:
    """Valid but probably unintended choices, for stderr."""
    found = schedule_warnings(spec, objects.job_deadline_seconds(spec))
    if spec.store_secret is not None and spec.store_size is None:
        found.append(
            "without --store-pvc, a run the database cannot take waits only in the pod's /tmp "
            "and its log (kubectl logs | egress report ingest); add --store-pvc 1Gi to keep it."
        )
    return found


def render_manifest(plan: ProbePlan, spec: ManifestSpec) -> str:
    """The YAML stream for `kubectl apply -f -`."""
    return to_yaml(render_objects(plan, spec))
