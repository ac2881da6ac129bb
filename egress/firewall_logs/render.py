"""Terminal text and JSON for verify, explain and reconcile (one function per format)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from egress.firewall_logs.corroborate import Corroborated, CorroborationResult, Outcome

if TYPE_CHECKING:  # reconcile loads the Azure SDK (a third of a second verify never needs)
    from egress.firewall_logs.explain import Explanation
    from egress.firewall_logs.reconcile import Reconciliation


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


# --- verify --------------------------------------------------------------------------
def _check_document(c: Corroborated) -> dict[str, Any]:
    """A check's corroboration; keys already in sorted order (dumped without sorting)."""
    o = c.observed
    return {
        "assurance": c.assurance.value if c.assurance else None,
        "check_id": o.check_id,
        "corroboration": c.outcome.value,
        "expectation": o.expectation.value,
        "explanation": c.explanation,
        "probe_status": o.status.value,
        "probe_verdict": o.verdict.value,
        "rule": c.rule,
        "status": c.status.value,
        "verdict": c.verdict.value,
    }


# json's own string encoder (what json.dumps uses with ensure_ascii), for lines built by hand.
_encode: Callable[[str], str] = json.encoder.encode_basestring_ascii


class _Quoted(dict[Any, str]):
    """JSON text of repeated values (enum members, check ids, rule paths), encoded once."""

    def __missing__(self, value: Any) -> str:
        text = "null" if value is None else _encode(value)
        if len(self) < 10_000:
            self[value] = text
        return text


def _check_line(c: Corroborated, quoted: _Quoted) -> str:
    """``json.dumps(_check_document(c))``, byte for byte, without building the dict (a month
    of runs is ~260,000 checks; StrEnum members encode as their values)."""
    o = c.observed
    return (
        f'{{"assurance": {quoted[c.assurance]}, "check_id": {quoted[o.check_id]}, '
        f'"corroboration": {quoted[c.outcome]}, "expectation": {quoted[o.expectation]}, '
        f'"explanation": {_encode(c.explanation)}, "probe_status": {quoted[o.status]}, '
        f'"probe_verdict": {quoted[o.verdict]}, "rule": {quoted[c.rule]}, '
        f'"status": {quoted[c.status]}, "verdict": {quoted[c.verdict]}}}'
    )


def verify_json(result: CorroborationResult) -> Iterator[str]:
    """One JSON document, written a check per line so a month of runs streams out."""
    counts = Counter(c.outcome for c in result.checks)
    head = {
        "source": result.source,
        "logs_until": result.watermark.isoformat() if result.watermark else None,
        "records_read": result.records_read,
        "notes": list(result.notes),
        "counts": dict(sorted((outcome.value, n) for outcome, n in counts.items())),
    }
    yield json.dumps(head, sort_keys=True)[:-1] + ', "runs": [\n'
    quoted = _Quoted()
    for number, run in enumerate(result.runs):
        meta = {
            "run_id": run.run_id,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat(),
            "logs_arrived": run.logs_arrived,
            "status": run.status().value,
        }
        checks = ",\n".join([_check_line(check, quoted) for check in run.checks])
        yield (
            json.dumps(meta, sort_keys=True)[:-1]
            + ', "checks": [\n'
            + (checks + "\n" if checks else "")
            + "]}"
            + ("," if number < len(result.runs) - 1 else "")
            + "\n"
        )
    yield "]}\n"


def verify_text(result: CorroborationResult) -> Iterator[str]:
    yield f"firewall logs: {result.source} (logs until {_when(result.watermark)})\n"
    for note in result.notes:
        yield f"note: {note}\n"
    counts: Counter[Outcome] = Counter()
    for run in result.runs:
        arrived = "" if run.logs_arrived else "  [firewall logs not arrived yet]"
        yield f"\nrun {run.run_id} {run.started_at.isoformat()}: {run.status().words}{arrived}\n"
        for c in run.checks:
            counts[c.outcome] += 1
            before = c.observed.status
            change = (
                f"{before.value} -> {c.status.value}" if before is not c.status else before.value
            )
            yield f"  {c.outcome.value:<12} {c.observed.check_id}  {change}  ({c.explanation})\n"
    yield (
        f"\n{counts[Outcome.CONFIRMED]} confirmed, {counts[Outcome.CONTRADICTED]} contradicted, "
        f"{counts[Outcome.UNMATCHED]} unmatched\n"
    )


def _when(moment: Any) -> str:
    return moment.isoformat() if moment is not None else "none in the window"


# --- explain -------------------------------------------------------------------------
def explain_json(explanation: Explanation) -> str:
    return _dump(
        {
            "source": explanation.source,
            "since": explanation.since.isoformat(),
            "until": explanation.until.isoformat(),
            "decisions_read": explanation.decisions_read,
            "notes": list(explanation.notes),
            "denials": [
                {
                    "destination": d.destination,
                    "port": d.port,
                    "protocol": d.protocol,
                    "table": d.table.value,
                    "count": d.count,
                    "first": d.first.isoformat(),
                    "last": d.last.isoformat(),
                    "sources": list(d.sources),
                    "source_count": d.source_count,
                    "denied_by": list(d.denied_by),
                    "finding": d.finding.value,
                    "advice": d.advice,
                    "entry": d.entry,
                    "feature": d.feature,
                    "doc": d.doc,
                    "candidate": d.candidate_yaml,
                }
                for d in explanation.denials
            ],
        }
    )


def explain_text(explanation: Explanation) -> str:
    lines = [
        f"denied by the firewall ({explanation.source}), {explanation.since.isoformat()} to "
        f"{explanation.until.isoformat()}: {len(explanation.denials)} destination(s)"
    ]
    lines.extend(f"note: {n}" for n in explanation.notes)
    for d in explanation.denials:
        lines.append("")
        lines.append(
            f"{d.destination}:{d.port} {d.protocol} ({d.table.value}) denied {d.count}x from "
            f"{d.source_count} source(s), last {d.last.isoformat()}"
        )
        lines.append(f"  denied by: {'; '.join(d.denied_by)}")
        lines.append(f"  {d.finding.value}: {d.advice}")
        if d.candidate_yaml:
            lines.append("  candidate policy entry (review before adding; nothing was allowed):")
            lines.extend(f"    {line}" for line in d.candidate_yaml.rstrip().splitlines())
    if not explanation.denials:
        lines.append("no deny decisions for these sources in the window.")
    return "\n".join(lines) + "\n"


# --- reconcile -----------------------------------------------------------------------
def reconcile_json(result: Reconciliation) -> str:
    return _dump(
        {
            "cluster": result.cluster,
            "region": result.region,
            "features": list(result.features),
            "aks_endpoints": result.aks_endpoints,
            "drifted": result.drifted,
            "drifts": [
                {
                    "kind": d.kind.value,
                    "domain": d.domain,
                    "aks": d.aks,
                    "egress": d.ours,
                    "doc": d.doc,
                    "category": d.category,
                }
                for d in result.drifts
            ],
            "fqdn_tag": result.fqdn_tag,
            "not_covered_by_tag": list(result.not_in_tag),
        }
    )


def reconcile_text(result: Reconciliation) -> str:
    lines = [
        f"cluster {result.cluster} ({result.region}, features {', '.join(result.features)}): "
        f"{result.aks_endpoints} endpoint(s) listed by AKS, {len(result.drifts)} difference(s)"
    ]
    titles = {
        "missing": "missing in egress (AKS lists it)",
        "port": "port/protocol differs",
        "extra": "extra in egress (AKS does not list it)",
    }
    for d in result.drifts:
        detail = {
            "missing": f"AKS {d.aks}",
            "port": f"AKS {d.aks}; egress {d.ours}",
            "extra": f"egress {d.ours}; doc {d.doc}",
        }[d.kind.value]
        lines.append(f"  {titles[d.kind.value]}: {d.domain}  {detail}")
    if result.fqdn_tag:
        lines.append(
            f"the compiled policy uses the {result.fqdn_tag} FQDN tag, which covers only the "
            "core AKS service, not add-ons or extensions; these need their own rules:"
        )
        lines.extend(f"  {name}" for name in result.not_in_tag or ("(none enabled)",))
    if not result.drifts:
        lines.append("no drift: egress compiles what AKS lists.")
    return "\n".join(lines) + "\n"
