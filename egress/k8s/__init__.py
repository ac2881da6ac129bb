"""Kubernetes manifests that run the probe in-cluster as Jobs or CronJobs, one per node pool."""

from __future__ import annotations

from egress.k8s.render import render_manifest, render_objects, to_yaml, warnings
from egress.k8s.spec import (
    ManifestSpec,
    Target,
    any_node_target,
    pool_target,
    selector_target,
)

__all__ = [
    "ManifestSpec",
    "Target",
    "any_node_target",
    "pool_target",
    "render_manifest",
    "render_objects",
    "selector_target",
    "to_yaml",
    "warnings",
]
