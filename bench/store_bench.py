"""Benchmark the result store: ingest throughput and bytes per check row, in both backends.

The fleet of issue 12 is 100 clusters x 2 node pools x 96 runs a day x 30 checks x 30 days
(about 17 million check rows). This writes a slice of it through the store's own write path
(`ResultStore.append_runs`, each run whole, as `report ingest` does), with realistic results:
per-run timings, attempt starts and source ports that change every run, a flapping endpoint
and a leaking canary whose evidence differs run to run.

    python bench/store_bench.py                      # 1 day of the fleet, both backends
    python bench/store_bench.py --days 30            # the whole fleet (long)
    python bench/store_bench.py --backend postgresql --dsn postgresql://...
    python bench/store_bench.py --backend postgresql --days 1 --report   # + `egress report`

Bytes are measured as written with autovacuum off for the store's tables (the worst case
between two autovacuum passes), then, in PostgreSQL, again after VACUUM FULL. --report
then times whole `egress report --format html` processes (wall, CPU, peak RSS) for the last 7
and 30 days of the slice.

The whole 30-day fleet for the report, quickly (PostgreSQL): --days 1 --replicate-to 30
writes the first day through append_runs, then copies it forward inside the server (new
runs with shifted times, result rows sharing the definitions and outcomes the real store
would share), recomputes the summaries with `rebuild_summaries` and runs VACUUM ANALYZE:

    python bench/store_bench.py --backend postgresql --days 1 --replicate-to 30 --report
    python bench/store_bench.py --backend postgresql --dsn ... --days 30 --report-only

Without --dsn a throw-away PostgreSQL server is started from Debian's binaries (the test
helper tests/store/pg_server.py). Results go to bench/results/store_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from egress.compliance import Assurance, CheckStatus
from egress.probe_plan import CheckKind, Expectation
from egress.results import (
    Attempt,
    CheckRecord,
    Location,
    Phase,
    RunReport,
    RunSummary,
    Verdict,
)
from egress.store import Connection, ResultStore
from egress.store import _store as store_internals  # its _stage (encoding) is timed apart
from egress.store._schema import rebuild_summaries
from egress.store._store import format_ts

CLUSTERS, POOLS, RUNS_PER_DAY, CHECKS = 100, 2, 96, 30
START = datetime(2026, 11, 1, tzinfo=UTC)
BATCH_RUNS = 500

# The host names are data only: nothing is resolved or contacted.
ENDPOINTS = [
    *[(f"req-{n:02d}.hcp.eastus.azmk8s.io/443", Expectation.ALLOW, True) for n in range(24)],
    ("nvidia.github.io/443", Expectation.ALLOW, False),
    ("packages.microsoft.com/443", Expectation.ALLOW, False),
    ("ntp.ubuntu.com/123", Expectation.ALLOW, False),
    *[(f"canary-{n}.example.com/443", Expectation.DENY, False) for n in range(3)],
]


M = TypeVar("M", bound=BaseModel)


def _builder(model: type[M]) -> Callable[..., M]:
    """`model.model_construct` without its per-field Python loop: the same instance (fields
    in declaration order, defaults filled in, nothing validated), ~10 times faster."""
    names = tuple(model.model_fields)
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if not field.is_required()
    }
    new, assign = model.__new__, object.__setattr__

    def build(**values: Any) -> M:
        given = defaults | values
        made = new(model)
        assign(made, "__dict__", {name: given[name] for name in names})
        assign(made, "__pydantic_fields_set__", set(values))
        assign(made, "__pydantic_extra__", None)
        assign(made, "__pydantic_private__", None)
        return made

    return build


_PHASE, _ATTEMPT = _builder(Phase), _builder(Attempt)
_CHECK, _RUN, _LOCATION = _builder(CheckRecord), _builder(RunReport), _builder(Location)


@dataclass(frozen=True)
class _Endpoint:
    """What a check's records share run after run (built once, reused by every run)."""

    index: int
    check_id: str
    host: str
    expectation: Expectation
    required: bool
    address: str
    fields: dict[str, Any]  # the CheckRecord fields that never change


def _endpoints() -> list[_Endpoint]:
    found = []
    for index, (check_id, expectation, required) in enumerate(ENDPOINTS):
        host = check_id.split("/")[0]
        found.append(
            _Endpoint(
                index=index,
                check_id=check_id,
                host=host,
                expectation=expectation,
                required=required,
                address=f"20.{index}.14.{7 + index % 3}",
                fields={
                    "check_id": check_id,
                    "host": host,
                    "port": 443,
                    "transport": "tcp",
                    "kind": CheckKind.HTTPS,
                    "expectation": expectation,
                    "destination": host,
                    "rule": f"aks-required/application/{host}",
                    "feature": "canary" if expectation is Expectation.DENY else "required",
                    "required": required,
                },
            )
        )
    return found


def _check(
    rng: random.Random,
    *,
    identity: dict[str, Any],
    started: datetime,
    endpoint: _Endpoint,
    leaking: bool,
) -> CheckRecord:
    """One result, built from parts that are valid by construction (as `model_construct` would: the
    validators would take ~20 times longer than the store's own write; `fleet_runs` checks a
    sample against them)."""
    index, expectation = endpoint.index, endpoint.expectation
    blocked = expectation is Expectation.DENY and not leaking
    flapping = index == 0 and rng.random() < 0.02
    verdict = Verdict.BLOCKED if blocked or flapping else Verdict.REACHABLE
    if expectation is Expectation.DENY:
        status = CheckStatus.LEAK if leaking else CheckStatus.PASS
    else:
        status = CheckStatus.FAIL if flapping else CheckStatus.PASS
    moment = started + timedelta(milliseconds=37 * index + rng.randint(0, 30))
    http_status = 470 if verdict is Verdict.BLOCKED else 200
    phase = _PHASE
    phases = (
        phase(
            name="dns",
            ok=True,
            duration_ms=round(rng.uniform(0.3, 9), 3),
            detail={"outcome": "answers", "address": endpoint.address},
        ),
        phase(
            name="tcp",
            ok=True,
            duration_ms=round(rng.uniform(0.5, 30), 3),
            detail={"outcome": "connected", "local_port": rng.randint(32768, 60999)},
        ),
        phase(
            name="http",
            ok=not blocked,
            duration_ms=round(rng.uniform(5, 120), 3),
            detail={"outcome": "response", "status": http_status},
        ),
    )
    evidence: dict[str, object] = {
        "dns": {"outcome": "answers", "address": endpoint.address},
        "tcp": {"outcome": "connected"},
        "http": {"outcome": "response", "status": http_status},
    }
    if leaking:  # a leak's evidence changes run to run and is kept whole
        evidence["http"] = {
            "outcome": "response",
            "status": 200,
            "server": f"edge-{rng.randint(1, 99)}",
        }
    reason = "Azure Firewall denied it (HTTP 470)" if verdict is Verdict.BLOCKED else "answered"
    finished = moment + timedelta(milliseconds=sum(p.duration_ms for p in phases))
    attempt = _ATTEMPT(started_at=moment, verdict=verdict, reason=reason, phases=phases)
    return _CHECK(
        **identity,
        **endpoint.fields,
        verdict=verdict,
        status=status,
        assurance=Assurance.STATED if verdict is Verdict.BLOCKED else None,
        reason=reason,
        evidence=evidence,
        attempts=(attempt,),
        started_at=moment,
        finished_at=finished,
    )


def fleet_runs(days: float, clusters: int, seed: int = 20261201) -> Iterator[RunReport]:
    """The slice, run by run; the first runs are checked against the models' validators."""
    rng = random.Random(seed)
    endpoints = _endpoints()
    slots = int(days * RUNS_PER_DAY)
    checked = 0
    for slot in range(slots):
        for cluster in range(clusters):
            for pool in range(POOLS):
                started = START + timedelta(minutes=15 * slot, seconds=cluster * 3 + pool)
                run_id = f"c{cluster:03d}-p{pool}-{slot:05d}"
                location = _LOCATION(
                    cluster=f"aks-{cluster:03d}",
                    node_pool=f"pool{pool}",
                    node=f"aks-pool{pool}-{slot % 3}",
                    pod=f"egress-probe-{run_id}",
                    namespace="egress-probe",
                )
                identity: dict[str, Any] = {
                    "run_id": run_id,
                    "plan_hash": "f" * 64,
                    "tool_version": "0.2.0",
                    "cloud": "AzureCloud",
                    "region": "eastus",
                    "location": location,
                }
                leaking = cluster == 7 and pool == 1 and slot % RUNS_PER_DAY in range(40, 44)
                checks = tuple(
                    _check(
                        rng,
                        identity=identity,
                        started=started,
                        endpoint=endpoint,
                        leaking=leaking and endpoint.index == 27,
                    )
                    for endpoint in endpoints[:CHECKS]
                )
                run = _RUN(
                    **identity,
                    started_at=started,
                    finished_at=max(c.finished_at for c in checks),
                    checks=checks,
                )
                if checked < 3 or (leaking and checked < 4):  # constructed == validated
                    validated = RunReport.model_validate_json(run.model_dump_json())
                    assert validated == run, f"run {run_id} is not what validation builds"
                    checked += 1
                yield run


def _size_bytes(store: ResultStore, location: str) -> int:
    if store.dialect.name == "postgresql":
        row = store.connection.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
        ).fetchone()
        return int(row[0])
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(location) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def measure(location: str, days: float, clusters: int) -> dict[str, Any]:
    """Write the slice in batches; time the writes (not generating the runs).

    `append_runs` encodes each result (definition, outcome, timing) in Python, the later
    chunks of a batch in a worker thread while the transaction writes the earlier ones; the
    encoding step (`_stage`) is timed where it runs, so each run is encoded once as in
    production (a separate encoding pass would fill the codec's caches before the timed
    write). The two overlap, so the encoding seconds (wall time in the worker, waits for
    the GIL included) are not to be subtracted from the write's. CPU seconds of this
    process inside `append_runs` are reported beside the wall seconds.
    """
    rows = runs = 0
    write_s = encode_s = write_cpu_s = 0.0
    stage = store_internals._stage

    def timed_stage(run: RunReport) -> Any:
        nonlocal encode_s
        began = time.perf_counter()
        try:
            return stage(run)
        finally:
            encode_s += time.perf_counter() - began

    def flush(batch: list[RunReport]) -> None:
        nonlocal rows, runs, write_s, write_cpu_s
        began, cpu = time.perf_counter(), time.process_time()
        store.append_runs(batch)
        write_s += time.perf_counter() - began
        write_cpu_s += time.process_time() - cpu
        runs += len(batch)
        rows += sum(len(r.checks) for r in batch)

    store_internals._stage = timed_stage
    try:
        with ResultStore(location) as store:
            if store.dialect.name == "postgresql":
                tables = store.connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                ).fetchall()
                for (table,) in tables:
                    store.connection.execute(
                        f"ALTER TABLE {table} SET (autovacuum_enabled = false)"
                    )
            batch: list[RunReport] = []
            for run in fleet_runs(days, clusters):
                batch.append(run)
                if len(batch) == BATCH_RUNS:
                    flush(batch)
                    batch = []
            if batch:
                flush(batch)
            load = os.getloadavg()
            size = _size_bytes(store, location)
            compact = None
            if store.dialect.name == "postgresql":  # upserted summary rows leave dead versions
                store.connection.execute("VACUUM FULL")
                compact = _size_bytes(store, location)
    finally:
        store_internals._stage = stage
    extra: dict[str, float] = {}
    if compact is not None:
        extra["bytes_per_check_row_vacuum_full"] = round(compact / rows, 1)
    return {
        "runs": runs,
        "check_rows": rows,
        "write_s": round(write_s, 2),
        "write_cpu_s": round(write_cpu_s, 2),
        "check_rows_per_s": round(rows / write_s),
        "encode_s": round(encode_s, 2),
        "encode_us_per_row": round(encode_s / rows * 1e6, 1),
        "load_average": [round(x, 2) for x in load],
        "bytes": size,
        "bytes_per_check_row": round(size / rows, 1),
        **extra,
    }


def _columns(conn: Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [name for (name,) in rows]


def _run_all(statements: list[tuple[str, list[object]]], tx: Connection) -> None:
    for sql, params in statements:
        tx.execute(sql, params)


def replicate(dsn: str, written_days: int, to_days: int) -> dict[str, float]:
    """Copy the written days forward inside the server until `to_days` days are stored.

    Each copy is a new run (new row id, run id and pod name, timestamps shifted by whole
    days) whose result rows reference the same check definitions and outcomes as the
    original's, as the real store would share them; the flapping endpoint and the leaking
    canary come along in every copy. The summaries are then recomputed from every stored
    check (`rebuild_summaries`, the bulk loaders' path) and the tables vacuumed and analysed,
    as autovacuum keeps a store in steady state.
    """
    began = time.perf_counter()
    with ResultStore(dsn) as store:
        conn = store.connection
        runs = [c for c in _columns(conn, "runs") if c != "id"]
        results = [c for c in _columns(conn, "checks") if c != "run"]
        new_run_id = "left(o.run_id, -5) || lpad((right(o.run_id, 5)::int + ?)::text, 5, '0')"
        select = []
        for column in runs:
            if column == "run_id":  # the bench's run ids end in a five-digit slot number
                select.append(new_run_id)
            elif column in ("started_at", "finished_at"):
                select.append(f"to_char(o.{column}::timestamp + ? * interval '1 day', ?)")
            elif column == "pod":  # the bench's pod names carry the run id
                select.append(f"replace(o.pod, o.run_id, {new_run_id})")
            else:
                select.append(f"o.{column}")
        copy_runs = (
            f"INSERT INTO runs ({', '.join(runs)}) SELECT {', '.join(select)} "
            "FROM runs AS o WHERE o.started_at < ? AND o.started_at < ?"
        )
        copy_results = (
            f"INSERT INTO checks (run, {', '.join(results)}) "
            f"SELECT n.id, {', '.join('c.' + c for c in results)} "
            "FROM runs AS o JOIN checks AS c ON c.run = o.id "
            f"JOIN runs AS n ON n.run_id = {new_run_id} "
            "WHERE o.started_at < ? AND o.started_at < ?"
        )
        stamp = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
        source_end = format_ts(START + timedelta(days=written_days))
        copies = 0
        for offset in range(written_days, to_days, written_days):
            slots = offset * RUNS_PER_DAY
            bounds = [source_end, format_ts(START + timedelta(days=to_days - offset))]
            params: list[object] = []
            for column in runs:
                if column in ("run_id", "pod"):
                    params.append(slots)
                elif column in ("started_at", "finished_at"):
                    params += [offset, stamp]

            statements = [(copy_runs, [*params, *bounds]), (copy_results, [slots, *bounds])]
            store._db.transaction(partial(_run_all, statements))  # one transaction per copy
            copies += 1
            print(f"replicated day {offset} of {to_days}", file=sys.stderr, flush=True)
        copied_s = time.perf_counter() - began
        store._db.transaction(rebuild_summaries)
        summarised_s = time.perf_counter() - began - copied_s
        conn.execute("VACUUM (ANALYZE)")
        rows = conn.execute("SELECT count(*) FROM checks").fetchone()[0]
        run_count = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        size = _size_bytes(store, dsn)
    return {
        "replicated_to_days": to_days,
        "copies": copies,
        "runs": int(run_count),
        "check_rows": int(rows),
        "copy_s": round(copied_s, 1),
        "rebuild_summaries_s": round(summarised_s, 1),
        "total_s": round(time.perf_counter() - began, 1),
        "bytes_per_check_row": round(size / int(rows), 1),
    }


def time_ingest(location: str, days: float, clusters: int, lines: Path) -> dict[str, Any]:
    """`egress report ingest` (a whole process) of the slice as JSON lines, into `location`.

    The lines are what `probe run` prints (one per check, then the run's summary), read
    back through the models' validators; wall and CPU seconds include the interpreter's
    start (about a second here).
    """
    rows = 0
    with lines.open("w", encoding="utf-8") as out:
        for run in fleet_runs(days, clusters):
            for check in run.checks:
                out.write(check.model_dump_json() + "\n")
            out.write(RunSummary.of(run).model_dump_json() + "\n")
            rows += len(run.checks)
    egress = str(Path(sys.executable).with_name("egress"))  # the console script beside python
    command = [egress, "report", "ingest", "--store", location]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([*command, str(lines)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines.unlink()
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "check_rows": rows,
        "exit_code": done.returncode,
        "said": done.stderr.strip().splitlines()[-1:],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # egress only: the server is not its child
        "check_rows_per_s": round(rows / wall),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def time_reports(location: str, days: float) -> dict[str, object]:
    """Wall seconds and peak RSS of whole `egress report` processes over the slice."""
    from report_bench import _REPORT_WITH_PEAK  # the same peak-RSS wrapper as report_bench

    end = (START + timedelta(days=days)).isoformat()
    timings: dict[str, object] = {}
    if location.startswith("postgresql://"):
        # The bytes were measured with autovacuum off; a served store has the planner
        # statistics autovacuum keeps, so take them before the reports are timed.
        with ResultStore(location) as store:
            store.connection.execute("ANALYZE")
    for window in (7, 30):
        command = [sys.executable, "-c", _REPORT_WITH_PEAK, "report", "--store", location]
        command += ["--format", "html", "--days", str(window), "--output", "/dev/null"]
        command += ["--now", end]
        began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        elapsed = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
        peaks = [line for line in done.stderr.decode().splitlines() if line.startswith("VmHWM")]
        timings[f"report_{window}d"] = {
            "wall_s": round(elapsed, 2),
            "cpu_s": round(cpu_s, 2),  # the report process alone; the server's is not in it
            "peak_rss_mb": round(int(peaks[-1].split()[1]) / 1024, 1) if peaks else None,
            "exit_code": done.returncode,
        }
    timings["load_average"] = os.getloadavg()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=1.0, help="days of the fleet (30: all)")
    parser.add_argument("--clusters", type=int, default=CLUSTERS)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--report", action="store_true", help="also time egress report")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only time egress report over the --days already stored at --dsn",
    )
    parser.add_argument(
        "--ingest", action="store_true", help="also time egress report ingest of JSON lines"
    )
    parser.add_argument("--dsn", help="an empty PostgreSQL database (default: a temporary one)")
    parser.add_argument(
        "--replicate-to",
        type=int,
        metavar="DAYS",
        help="PostgreSQL: copy the written --days forward in SQL to this many days",
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parent / "results"
    here.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"days": args.days, "clusters": args.clusters}
    if args.backend in ("sqlite", "both"):
        path = here / "store-bench.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        results["sqlite"] = measure(str(path), args.days, args.clusters)
        print("sqlite:", results["sqlite"], flush=True)
    if args.backend in ("postgresql", "both"):
        server = None
        dsn = args.dsn
        if dsn is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from store.pg_server import start_server

            server = start_server()
            dsn = server.dsn(server.create_database())
        try:
            if args.report_only:
                print("report:", time_reports(dsn, args.days), flush=True)
                return
            results["postgresql"] = measure(dsn, args.days, args.clusters)
            stored_days = args.days
            if args.replicate_to:
                results["postgresql_replicated"] = replicate(dsn, int(args.days), args.replicate_to)
                stored_days = args.replicate_to
                print("replicated:", results["postgresql_replicated"], flush=True)
            if args.report:
                results["postgresql_report"] = time_reports(dsn, stored_days)
            if args.ingest and server is not None:  # into a second, empty database
                ingest_dsn = server.dsn(server.create_database())
                lines = here / "store-bench-lines.jsonl"
                results["postgresql_ingest"] = time_ingest(
                    ingest_dsn, args.days, args.clusters, lines
                )
        finally:
            if server is not None:
                server.stop()
        print("postgresql:", results["postgresql"], flush=True)
        if args.report:
            print("report:", results["postgresql_report"], flush=True)
        if "postgresql_ingest" in results:
            print("report ingest:", results["postgresql_ingest"], flush=True)
    (here / "store_bench.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
