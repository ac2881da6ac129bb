"""The store's fast path (one template per stored outcome) against the proven slow path.

The slow path is the one verify used before: every row of the `check_results` view decoded
whole by the store's codec (egress.store._compact.join), its attempts handed to
FlowIndex.add. Both must index the same checks, flows and windows, on results with several
attempts, ports only on a phase or nowhere, the pod IP standing in for a missing address,
TLS inspection stored as a number, and numbers inside strings.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from egress.compliance import Assurance, Verdict, check_status
from egress.firewall_logs import stored
from egress.firewall_logs.corroborate import FlowIndex, Observed, RunInfo
from egress.probe_plan import CheckKind, Expectation
from egress.results import Attempt, CheckRecord, Location, Phase, RunReport
from egress.store import ResultStore, format_ts
from egress.store._compact import join

from store.pg_server import PgServer

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=3)
POD = "10.244.1.17"
NODE = "10.240.0.9"


def _slow_index(store: ResultStore, since: datetime, until: datetime) -> tuple[Any, FlowIndex]:
    """The path index_store replaced, kept here as the reference."""
    rows = store.connection.execute(
        """SELECT r.id, r.run_id, r.started_at, r.finished_at, r.node_ip, r.pod_ip, c.check_id,
                  c.host, c.port, c.expectation, c.required, c.verdict, c.status, c.assurance,
                  c.body, c.timing
           FROM runs AS r JOIN check_results AS c ON c.run = r.id
           WHERE r.started_at >= ? AND r.started_at < ?
           ORDER BY r.started_at, r.run_id, c.position""",
        (format_ts(since), format_ts(until)),
    )
    infos: list[RunInfo] = []
    index = FlowIndex(SKEW)
    last = None
    for row in rows:
        pk, run_id, started, finished, node_ip, pod_ip, check_id, host, port = row[:9]
        expectation, required, verdict, status, assurance, body, timing = row[9:]
        if pk != last:
            infos.append(
                RunInfo(run_id, datetime.fromisoformat(started), datetime.fromisoformat(finished))
            )
            last = pk
        joined = join(body, timing, infos[-1].started_at)
        observed = Observed(
            check_id=check_id,
            host=host.lower().rstrip("."),
            port=int(port),
            expectation=Expectation(expectation),
            required=bool(required),
            verdict=Verdict(verdict),
            status=stored._STATUSES[status],
            assurance=Assurance(assurance) if assurance else None,
            inspected=bool((joined.evidence.get("tls") or {}).get("inspection")),
            reason=joined.reason,
            attempted=bool(joined.attempts),
        )
        index.add(
            observed, joined.attempts, joined.finished_at, node_ip, pod_ip, run=len(infos) - 1
        )
    return infos, index


def _contents(index: FlowIndex) -> dict[str, Any]:
    """Everything the join reads of an index, flows by their key, check and window."""
    flows = {
        key: sorted(
            (
                index._check[f],
                index._start[f],
                index._end[f],
                index._addresses[f],
            )
            for f in numbers
        )
        for key, numbers in index.keys.items()
    }
    return {
        "observed": list(index.observed),
        "runs": list(index.runs),
        "recorded": index.recorded_ports,
        "flows": flows,
        "earliest": index.earliest,
        "latest": index.latest,
        "longest": index._longest,
        "sources": index.source_addresses,
    }


def _phase(name: str, duration: float, **detail: Any) -> Phase:
    return Phase(name=name, ok=True, duration_ms=duration, detail=detail)


def _check(check_id: str, attempts: tuple[Attempt, ...], **changes: Any) -> CheckRecord:
    deny = changes.pop("deny", False)
    verdict = Verdict.BLOCKED if deny else Verdict.REACHABLE
    assurance = Assurance.SIGNATURE if deny else None
    expectation = Expectation.DENY if deny else Expectation.ALLOW
    fields: dict[str, Any] = {
        "run_id": "run",
        "plan_hash": "0" * 64,
        "tool_version": "test",
        "cloud": "AzureCloud",
        "region": "eastus",
        "location": Location(),
        "check_id": check_id,
        "host": "Svc-443.Example.TEST.",  # data only, never contacted
        "port": 443,
        "transport": "tcp",
        "kind": CheckKind.HTTPS,
        "expectation": expectation,
        "destination": "svc-443.example.test",
        "rule": "r",
        "feature": "f",
        "required": not deny,
        "verdict": verdict,
        "status": check_status(expectation=expectation, verdict=verdict, assurance=assurance),
        "assurance": assurance,
        "reason": "tcp 443 answered in 12.5 ms after 3 retries",
        "evidence": {"note": "port 8443 in text", "bytes": 1234},
        "attempts": attempts,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2),
    }
    return CheckRecord(**(fields | changes))


def _run(number: int, *, node_ip: str | None, pod_ip: str | None) -> RunReport:
    began = T0 + timedelta(minutes=5 * number)
    shift = timedelta(minutes=5 * number)
    port = 30000 + number * 7

    def attempt(offset_ms: int, **fields: Any) -> Attempt:
        return Attempt(
            started_at=began + timedelta(milliseconds=offset_ms),
            verdict=Verdict.REACHABLE,
            reason="ok after 250 ms",
            **fields,
        )

    dns = _phase("dns", 1.25, answers=2, address="203.0.113.7")
    checks = [
        # Three attempts: own address and port on the attempt; phase durations as numbers.
        _check(
            "three-attempts-443",
            (
                attempt(0, phases=(dns, _phase("tcp", 40.0 + number)), local_address=POD),
                attempt(
                    900,
                    phases=(_phase("tcp", 0.0, address="203.0.113.8"),),
                    local_address=POD,
                    local_port=port + 1,
                ),
                attempt(1800, phases=(_phase("tcp", 1e3),), local_address=POD, local_port=port + 2),
            ),
        ),
        # The port only on the phase that opened the socket; no address anywhere: pod IP.
        _check(
            "phase-port",
            (attempt(10, phases=(_phase("tcp", 5.5, local_port=port + 3, address="198.18.0.1"),)),),
        ),
        # The address on the phase, not the attempt.
        _check(
            "phase-address",
            (
                attempt(
                    20,
                    phases=(_phase("tcp", 7.0, local_address="10.244.9.9", local_port=port + 4),),
                ),
            ),
        ),
        # No port recorded at all: never a flow.
        _check("no-port", (attempt(30, phases=(_phase("tcp", 9.0),), local_address=POD),)),
        # Not probed.
        _check("not-probed", ()),
        # TLS inspection as a number that changes run to run (the same stored outcome).
        _check(
            "tls-numbered",
            (attempt(40, phases=(_phase("tls", 3.0),), local_port=port + 5),),
            evidence={"tls": {"inspection": number % 2}},
        ),
        _check(
            "tls-seen",
            (attempt(50, phases=(_phase("tls", 3.0),), local_port=port + 6),),
            evidence={"tls": {"inspection": {"issuer": "CN=corp proxy 2"}}},
            deny=True,
        ),
        _check(
            "tls-empty",
            (attempt(60, phases=(_phase("tls", 3.0),), local_port=port + 7),),
            evidence={"tls": {}},
        ),
    ]
    records = tuple(
        c.model_copy(
            update={
                "run_id": f"run-{number}",
                "started_at": c.started_at + shift,
                "finished_at": c.finished_at + shift + timedelta(milliseconds=number),
            }
        )
        for c in checks
    )
    return RunReport(
        run_id=f"run-{number}",
        plan_hash="0" * 64,
        tool_version="test",
        cloud="AzureCloud",
        region="eastus",
        location=Location(cluster="aks-1", node_pool="pool", node_ip=node_ip, pod_ip=pod_ip),
        started_at=began,
        finished_at=began + timedelta(seconds=3),
        checks=records,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        location = str(tmp_path / "results.db")
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        location = server.dsn(server.create_database())
    runs = [
        _run(0, node_ip=NODE, pod_ip=POD),
        _run(1, node_ip=NODE, pod_ip=None),
        _run(2, node_ip=None, pod_ip=POD),
        _run(3, node_ip=None, pod_ip=None),
        _run(4, node_ip=POD, pod_ip=POD),
    ]
    with ResultStore(location) as result_store:
        result_store.append_runs(runs)
        yield result_store


WINDOW = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))


def test_the_template_path_indexes_what_the_codec_path_does(store: ResultStore) -> None:
    slow_infos, slow = _slow_index(store, *WINDOW)
    fast_infos, fast = stored.index_store(store, *WINDOW, SKEW)
    assert fast_infos == slow_infos
    assert _contents(fast) == _contents(slow)
    # The cases are there: flows of several attempts, unrecorded ports, inspection by run.
    # Six checks a run record a port; in the run without node or pod IP only the two whose
    # attempts name their own address have a source.
    assert sum(fast.recorded_ports) == 6 * 4 + 2
    assert {o.inspected for o in fast.observed if o.check_id == "tls-numbered"} == {True, False}
    assert all(o.inspected for o in fast.observed if o.check_id == "tls-seen")


def test_equal_checks_of_different_runs_share_one_value(store: ResultStore) -> None:
    _, index = stored.index_store(store, *WINDOW, SKEW)
    assert len({id(o) for o in index.observed}) < len(index.observed)
    assert all(sys.intern(o.check_id) is o.check_id for o in index.observed)


def test_an_outcome_without_a_template_is_decoded_row_by_row(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, slow = _slow_index(store, *WINDOW)
    monkeypatch.setattr(stored, "_template", lambda body, numbers, attempts: None)
    _, fallback = stored.index_store(store, *WINDOW, SKEW)
    assert _contents(fallback) == _contents(slow)


def test_a_template_finds_every_number_it_reads(store: ResultStore) -> None:
    """A deliberate slip (the wrong hole for an attempt's port) must change the index."""
    _, good = stored.index_store(store, *WINDOW, SKEW)
    real = stored._slot

    def shifted(value: Any, holes: int) -> Any:
        slot = real(value, holes)
        return (True, slot[1] + 1) if slot[0] and slot[1] + 1 < holes + 2 else slot

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stored, "_slot", shifted)
        _, bad = stored.index_store(store, *WINDOW, SKEW)
    assert _contents(bad)["flows"] != _contents(good)["flows"]


def test_rows_written_with_the_older_timing_list_index_the_same(store: ResultStore) -> None:
    """Stores written before the addresses' list became optional close every timing with
    it (all nulls as a rule): the template path reads both forms alike."""
    _, slow = _slow_index(store, *WINDOW)
    rows = store.connection.execute("SELECT run, position, timing FROM checks").fetchall()
    older = []
    for run, position, timing in rows:
        values = json.loads(timing)
        if values and type(values[-1]) is list:
            continue
        attempts = join(_body(store, run, position), timing, T0).attempts
        older.append((json.dumps([*values, [None] * len(attempts)]), run, position))
    assert older  # the usual rows of this store record no address
    store.write_transaction(
        lambda conn: [
            conn.execute("UPDATE checks SET timing = ? WHERE run = ? AND position = ?", row)
            for row in older
        ]
    )
    _, fast = stored.index_store(store, *WINDOW, SKEW)
    assert _contents(fast) == _contents(slow)


def _body(store: ResultStore, run: int, position: int) -> str:
    row = store.connection.execute(
        "SELECT body FROM check_results WHERE run = ? AND position = ?", (run, position)
    ).fetchone()
    return str(row[0])
