"""Stored runs, read straight into the flow index (a month of one pool is ~260,000 checks).

Reads only the columns corroboration needs from the result store's `runs` and `checks`
tables, so no full record is built; `status`/`assurance` columns are read when the store
has them, else the status comes from the one compliance rule, as for old JSON lines.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta

from egress.compliance import Assurance, CheckStatus, Verdict, check_status
from egress.firewall_logs.corroborate import FlowIndex, Observed, RunInfo
from egress.probe_plan import Expectation
from egress.store import ResultStore, format_ts


def _columns(store: ResultStore, table: str) -> set[str]:
    return {str(row[1]) for row in store.connection.execute(f"PRAGMA table_info({table})")}


def index_store(
    store: ResultStore, since: datetime, until: datetime, skew: timedelta
) -> tuple[list[RunInfo], FlowIndex]:
    """Runs starting in [since, until) and their checks' flows."""
    have = _columns(store, "checks")
    status = "c.status" if "status" in have else "NULL"
    assurance = "c.assurance" if "assurance" in have else "NULL"
    node_ip = "r.node_ip" if "node_ip" in _columns(store, "runs") else "NULL"
    rows = store.connection.execute(
        f"""SELECT r.id, r.run_id, r.started_at, r.finished_at, {node_ip}, c.check_id, c.host,
                   c.port, c.expectation, c.required, c.verdict, {status}, {assurance},
                   CASE WHEN instr(c.evidence, '"inspection"') THEN c.evidence END,
                   c.attempts, c.finished_at, c.reason
            FROM runs AS r JOIN checks AS c ON c.run = r.id
            WHERE r.started_at >= ? AND r.started_at < ?
            ORDER BY r.started_at, r.run_id, c.id""",
        (format_ts(since), format_ts(until)),
    )
    infos: list[RunInfo] = []
    index = FlowIndex(skew)
    last_pk = None
    for (
        pk,
        run_id,
        started,
        finished,
        node,
        check_id,
        host,
        port,
        expectation,
        required,
        verdict,
        stored_status,
        stored_assurance,
        evidence_text,
        attempts_text,
        check_finished,
        reason,
    ) in rows:
        if pk != last_pk:
            infos.append(
                RunInfo(run_id, datetime.fromisoformat(started), datetime.fromisoformat(finished))
            )
            last_pk = pk
        # Read only when it holds what is needed (evidence is large; most checks lack it).
        evidence = json.loads(evidence_text) if evidence_text else {}
        inspected = bool((evidence.get("tls") or {}).get("inspection"))
        expect = Expectation(expectation)
        judged = Verdict(verdict)
        assured = Assurance(stored_assurance) if stored_assurance else None
        observed = Observed(
            run=len(infos) - 1,
            check_id=sys.intern(check_id),
            host=sys.intern(host.lower().rstrip(".")),
            port=int(port),
            expectation=expect,
            required=bool(required),
            verdict=judged,
            status=CheckStatus(stored_status)
            if stored_status
            else check_status(
                expectation=expect, verdict=judged, assurance=assured, inspected=inspected
            ),
            assurance=assured,
            inspected=inspected,
            reason=sys.intern(reason),
            attempted=attempts_text not in ("[]", ""),
        )
        index.add(
            observed,
            json.loads(attempts_text),
            datetime.fromisoformat(check_finished),
            node,
        )
    return infos, index
