"""Stored runs, read straight into the flow index (a month of one pool is ~260,000 checks).

Reads only the columns corroboration needs from the result store's `runs` and its
`check_results` view (schema v4), so no full record is built; the stored status is the one
compliance rule's (the store computes it on write).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.firewall_logs.corroborate import FlowIndex, Observed, RunInfo
from egress.probe_plan import Expectation
from egress.store import ResultStore, format_ts
from egress.store._compact import join

# Stored values are the enums' own (the store writes them): plain lookups in the hot loop.
_EXPECTATIONS = {e.value: e for e in Expectation}
_VERDICTS = {v.value: v for v in Verdict}
_ASSURANCES = {a.value: a for a in Assurance}
_STATUSES = {s.value: s for s in CheckStatus}


def index_store(
    store: ResultStore,
    since: datetime,
    until: datetime,
    skew: timedelta,
    *,
    clusters: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
) -> tuple[list[RunInfo], FlowIndex]:
    """Runs starting in [since, until) (of `clusters`, in `regions`: empty is any) and their
    checks' flows.

    Attempts come back through the store's own codec (egress.store._compact.join); each run's
    node and pod IP are the sources a firewall sees behind SNAT or with routable pod IPs.
    """
    rows = store.connection.execute(
        """SELECT r.id, r.run_id, r.started_at, r.finished_at, r.node_ip, r.pod_ip, c.check_id,
                  c.host, c.port, c.expectation, c.required, c.verdict, c.status, c.assurance,
                  c.body, c.timing
           FROM runs AS r JOIN check_results AS c ON c.run = r.id
           WHERE r.started_at >= ? AND r.started_at < ?"""
        + "".join(
            f" AND r.{column} IN ({', '.join('?' * len(values))})"
            for column, values in (("cluster", clusters), ("region", regions))
            if values
        )
        + " ORDER BY r.started_at, r.run_id, c.position",
        (format_ts(since), format_ts(until), *clusters, *regions),
    )
    infos: list[RunInfo] = []
    index = FlowIndex(skew)
    last_pk = None
    run_started = since
    for (
        pk,
        run_id,
        started,
        finished,
        node_ip,
        pod_ip,
        check_id,
        host,
        port,
        expectation,
        required,
        verdict,
        stored_status,
        stored_assurance,
        body,
        timing,
    ) in rows:
        if pk != last_pk:
            run_started = datetime.fromisoformat(started)
            infos.append(RunInfo(run_id, run_started, datetime.fromisoformat(finished)))
            last_pk = pk
        joined = join(body, timing, run_started)
        evidence = joined.evidence
        inspected = bool((evidence.get("tls") or {}).get("inspection"))
        expect = _EXPECTATIONS[expectation]
        judged = _VERDICTS[verdict]
        assured = _ASSURANCES[stored_assurance] if stored_assurance else None
        observed = Observed(
            run=len(infos) - 1,
            check_id=sys.intern(check_id),
            host=sys.intern(host.lower().rstrip(".")),
            port=int(port),
            expectation=expect,
            required=bool(required),
            verdict=judged,
            status=_STATUSES[stored_status],
            assurance=assured,
            inspected=inspected,
            reason=sys.intern(joined.reason),
            attempted=bool(joined.attempts),
        )
        index.add(observed, joined.attempts, joined.finished_at, node_ip, pod_ip)
    return infos, index
