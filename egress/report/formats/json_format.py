"""The report as one schema-versioned JSON document (for tools and dashboards)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from egress.compliance import RunStatus, Tally
from egress.report.corroboration import ReportCorroboration
from egress.report.formats.base import ReportFormat
from egress.report.model import (
    REPORT_SCHEMA_VERSION,
    ClusterView,
    ComplianceReport,
    Finding,
    Fleet,
    PoolCell,
)


def _counts(tally: Tally) -> dict[str, Any]:
    return {
        "by_status": {status.value: n for status, n in tally.by_status.items()},
        "by_verdict": {verdict.value: n for verdict, n in tally.by_verdict.items()},
        "blocked_by_assurance": dict(tally.blocked_by_assurance),
        "pass_rate": None if tally.pass_rate is None else round(tally.pass_rate, 4),
    }


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _finding(finding: Finding) -> dict[str, Any]:
    latest = finding.latest
    return {
        "cluster": finding.cluster,
        "node_pool": finding.node_pool,
        "check_id": finding.check_id,
        "host": finding.host,
        "port": finding.port,
        "transport": finding.transport,
        "kind": finding.kind,
        "expectation": finding.expectation,
        "destination": finding.destination,
        "rule": finding.rule,
        "feature": finding.feature,
        "required": finding.required,
        "category": finding.category.value,
        "results": finding.total,
        "passed": finding.passed,
        "failed": finding.failed,
        "unjudged": finding.unjudged,
        "unproven": finding.unproven,
        "counts": _counts(finding.tally),
        "pass_rate": None if finding.pass_rate is None else round(finding.pass_rate, 4),
        "flapping": finding.flapping,
        "first_failure": _ts(finding.first_failure),
        "last_failure": _ts(finding.last_failure),
        "latest_failure": None
        if latest is None
        else {
            "run_id": latest.run_id,
            "node": latest.node,
            "pod": latest.pod,
            "run_started_at": _ts(latest.run_started_at),
            "verdict": latest.verdict,
            "status": latest.status.value,
            "assurance": None if latest.assurance is None else latest.assurance.value,
            "assumption": latest.assumption,
            "reason": latest.reason,
            "duration_ms": latest.duration_ms,
            **json.loads(latest.details_json),
        },
        "timeline": [
            {"hour": _ts(p.hour), "results": p.total, "passed": p.passed, "failed": p.failed}
            for p in finding.timeline
        ],
    }


def _pool(cell: PoolCell) -> dict[str, Any]:
    gap = cell.gap
    return {
        "node_pool": cell.node_pool,
        "region": cell.region,
        "status": cell.status.value,
        "reasons": list(cell.reasons),
        "runs": cell.runs,
        "nodes": cell.nodes,
        "last_run": _ts(cell.last_run),
        "stale_after_seconds": cell.stale_after.total_seconds(),
        "gap": None
        if gap is None
        else {"kind": gap.kind.value, "silent_for_seconds": gap.silent_for.total_seconds()},
        "findings": [{"category": f.category.value, "check_id": f.check_id} for f in cell.findings],
        "drift_changes": None if cell.drift is None else len(cell.drift.changes),
    }


def _cluster(cluster: ClusterView) -> dict[str, Any]:
    return {
        "cluster": cluster.cluster,
        "regions": list(cluster.regions),
        "status": cluster.status.value,
        "reasons": list(cluster.reasons),
        "leaks": cluster.leaks,
        "pools": [_pool(p) for p in cluster.pools],
    }


def _fleet(fleet: Fleet) -> dict[str, Any]:
    return {
        "filters": {"clusters": list(fleet.scope.clusters), "regions": list(fleet.scope.regions)},
        "stale_after_seconds": None
        if fleet.stale_after is None
        else fleet.stale_after.total_seconds(),
        "node_pools": list(fleet.node_pools),
        "clusters": [_cluster(c) for c in fleet.clusters],
        "gaps": [
            {"cluster": c.cluster, "node_pool": c.node_pool, "region": c.region} for c in fleet.gaps
        ],
    }


def _corroboration(c: ReportCorroboration) -> dict[str, Any]:
    return {
        "source": c.source,
        "watermark": _ts(c.watermark),
        "records_read": c.records_read,
        "runs": c.runs,
        "pending_runs": list(c.pending_runs),
        "confirmed": c.confirmed,
        "contradicted": c.contradicted,
        "unmatched": c.unmatched,
        "status": c.judgement.status.value,
        "reasons": list(c.judgement.reasons),
        "notes": list(c.notes),
        "checks": [
            {
                "check_id": x.check_id,
                "host": x.host,
                "port": x.port,
                "expectation": x.expectation,
                "confirmed": x.confirmed,
                "contradicted": x.contradicted,
                "unmatched": x.unmatched,
                "counts": _counts(x.tally),
                "contradictions": [
                    {
                        "run_id": y.run_id,
                        "status": y.status.value,
                        "rule": y.rule,
                        "explanation": y.explanation,
                    }
                    for y in x.contradictions
                ],
            }
            for x in c.checks
        ],
    }


class JsonFormat(ReportFormat):
    """Every section of the report, with times in ISO 8601 UTC."""

    name = "json"
    suffix = ".json"

    def render(self, report: ComplianceReport) -> str:
        document = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "generated_at": _ts(report.generated_at),
            "window": {"since": _ts(report.window.since), "until": _ts(report.window.until)},
            "status": report.status.value,
            "status_words": report.status.words,
            "reasons": list(report.reasons),
            "compliant": report.status is RunStatus.COMPLIANT,  # not proven is not compliant
            "strict": report.strict,
            "require_assurance": None
            if report.require_assurance is None
            else report.require_assurance.value,
            "runs": report.runs,
            "results": report.results,
            "unjudged": report.unjudged,
            "counts": _counts(report.tally),
            "fleet": _fleet(report.fleet),
            "leaks": [_finding(f) for f in report.leaks],
            "failed_required": [_finding(f) for f in report.failed_required],
            "failed_optional": [_finding(f) for f in report.failed_optional],
            "unproven": [_finding(f) for f in report.unproven],
            "flapping": [
                {"cluster": f.cluster, "node_pool": f.node_pool, "check_id": f.check_id}
                for f in report.flapping
            ],
            "coverage": [
                {
                    "cluster": c.cluster,
                    "node_pool": c.node_pool,
                    "runs": c.runs,
                    "nodes": c.nodes,
                    "first_run": _ts(c.first_run),
                    "probed_in_window": c.runs > 0,
                    "last_run": _ts(c.last_run),
                }
                for c in report.coverage
            ],
            "drift": [
                {
                    "cluster": d.cluster,
                    "node_pool": d.node_pool,
                    "previous_run_id": d.previous_run_id,
                    "previous_at": _ts(d.previous_at),
                    "latest_run_id": d.latest_run_id,
                    "latest_at": _ts(d.latest_at),
                    "changes": [
                        {
                            "check_id": c.check_id,
                            "before": c.before,
                            "after": c.after,
                            "before_status": c.before_status,
                            "after_status": c.after_status,
                        }
                        for c in d.changes
                    ],
                }
                for d in report.drift
            ],
            "endpoints": [
                {
                    "cluster": e.cluster,
                    "node_pool": e.node_pool,
                    "check_id": e.check_id,
                    "results": e.total,
                    "passed": e.passed,
                    "failed": e.failed,
                    "unjudged": e.unjudged,
                    "counts": _counts(e.tally),
                    "category": None if e.category is None else e.category.value,
                }
                for e in report.endpoints
            ],
        }
        if report.corroboration is not None:
            document["corroboration"] = _corroboration(report.corroboration)
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
