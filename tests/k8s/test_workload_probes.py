"""`egress probe manifest --policy` with workload selectors: one probe per workload, restricted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from typer.testing import CliRunner

from egress.cli import app
from egress.probe_plan import Expectation, parse_plan

from .restricted import violations

POLICY = Path(__file__).parents[1] / "targets" / "policies" / "workloads.yaml"
ARGS = ["probe", "manifest", "--region", "eastus", "--policy", str(POLICY), "--node-pool", "user"]


def render(*extra: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, [*ARGS, *extra])
    assert result.exit_code == 0, result.stderr
    assert "plus 2 per-workload probe(s)" in result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in documents
        if d["kind"] == kind
    }


def plan_of(documents: list[dict[str, Any]], namespace: str) -> set[str]:
    (config_map,) = [
        d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == namespace
    ]
    plan = parse_plan(config_map["data"]["probe-plan.json"], origin=namespace)
    return {c.id for c in plan.checks}


def test_each_workload_gets_a_restricted_probe_carrying_its_labels_in_a_matching_namespace():
    documents = render()
    for document in documents:
        kubernetes_validate.validate(document, "1.31", strict=True)
        assert violations(document) == [], document["metadata"]["name"]
    namespaces = by_kind(documents, "Namespace")
    created = namespaces[("", "egress-probe-payments")]["metadata"]["labels"]
    assert created["team"] == "payments"  # the selector's namespace labels
    assert created["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ("", "reporting") not in namespaces  # pinned by name: the user's own namespace
    jobs = by_kind(documents, "Job")
    payments = jobs[("egress-probe-payments", "egress-probe-workload-payments")]
    labels = payments["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "checkout"  # the selector's pod labels
    assert ("reporting", "egress-probe-workload-reports") in jobs
    assert ("egress-probe", "egress-probe-user") in jobs


def test_each_probe_proves_what_its_pods_may_reach_and_the_canaries():
    documents = render()
    pool = plan_of(documents, "egress-probe")
    payments = plan_of(documents, "egress-probe-payments")
    reports = plan_of(documents, "reporting")
    stripe = "policy/stripe/https-443"
    warehouse = "policy/warehouse/tcp-5432"
    assert stripe in payments and warehouse in payments
    assert warehouse in reports and stripe not in reports
    assert stripe not in pool and warehouse not in pool  # only those workloads may reach them
    # ... and from everywhere else they are proven blocked
    assert f"isolation/{stripe}" in pool and f"isolation/{stripe}" in reports
    assert f"isolation/{stripe}" not in payments
    assert f"isolation/{warehouse}" not in pool  # a CIDR without probe_host: unverifiable
    assert "policy/github/https-443" in pool & payments & reports
    (config_map,) = [
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == "egress-probe"
    ]
    canaries = {
        c.id
        for c in parse_plan(config_map["data"]["probe-plan.json"], origin="pool").checks
        if c.rule.startswith("canary/")
    }
    assert canaries and canaries <= pool & payments & reports
    isolation = [
        c
        for c in parse_plan(config_map["data"]["probe-plan.json"], origin="p").checks
        if c.id.startswith("isolation/")
    ]
    assert {c.expectation for c in isolation} == {Expectation.DENY}
    assert not any(c.required for c in isolation)


def test_cron_jobs_per_workload_too():
    documents = render("--schedule", "*/5 * * * *")
    cron = by_kind(documents, "CronJob")
    assert ("egress-probe-payments", "egress-probe-workload-payments") in cron
    for document in documents:
        assert violations(document) == []
