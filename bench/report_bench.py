"""Benchmark `egress report --format html` on a large result store (time and peak RSS).

Generates 30 days of five-minute runs on 10 node pools with 30 checks each (86,400 runs,
2,592,000 check rows) with a few realistic failures, then times the whole `egress report`
process for the last 7 and 30 days. Goal: under 2 s and 200 MB for 30 days.

    python bench/report_bench.py            # generate (once) and measure
    python bench/report_bench.py --regenerate --repeat 5

The store goes to bench/results/ (git-ignored); it is reused when it already exists.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from egress.compliance import Assurance, Verdict, check_status
from egress.probe_plan import Expectation
from egress.store import ResultStore, format_ts, rebuild_summaries
from egress.store._compact import (
    DEF_COLUMNS,
    OUTCOME_COLUMNS,
    Outcome,
    definition_digest,
    intern,
    split_parts,
)

DAYS = 30
RUNS_PER_DAY = 288  # every five minutes
POOLS = 10
CHECKS = 30
END = datetime(2026, 11, 28, tzinfo=UTC)

# 30 checks: 24 required allow endpoints, 2 optional, 1 NTP (inconclusive), 3 deny canaries.
# The host names are data only: nothing is resolved or contacted.
ENDPOINTS = [
    *[(f"req-{n:02d}-443", f"req{n}.hcp.eastus.azmk8s.io", "allow", 1) for n in range(24)],
    ("opt-nvidia-443", "nvidia.github.io", "allow", 0),
    ("opt-packages-443", "packages.microsoft.com", "allow", 0),
    ("ntp-123", "ntp.ubuntu.com", "allow", 0),
    *[(f"canary-{n}-443", f"canary{n}.invalid", "deny", 0) for n in range(3)],
]


def _details(verdict: str, status: int) -> tuple[dict[str, object], dict[str, object]]:
    evidence: dict[str, object] = {
        "resolver": "127.0.0.53:53",
        "answers": ["127.0.0.20"],
        "status": status,
    }
    phases = [
        {"name": "dns", "ok": True, "duration_ms": 2.5, "detail": {"rcode": "NOERROR"}},
        {"name": "tcp", "ok": True, "duration_ms": 11.0, "detail": {}},
        {"name": "http", "ok": status == 200, "duration_ms": 40.0, "detail": {"status": status}},
    ]
    attempt: dict[str, object] = {"verdict": verdict, "reason": "", "phases": phases}
    return evidence, attempt


def _verdict(
    check_id: str, expectation: str, pool: int, moment: datetime, rng: random.Random
) -> str:
    """The verdict of one check in one run: mostly healthy."""
    day = (moment - (END - timedelta(days=DAYS))).days
    if check_id == "ntp-123":
        return "inconclusive"
    if expectation == "deny":
        leaking = pool == 3 and check_id == "canary-0-443" and day == 25 and moment.hour in (9, 10)
        return "reachable" if leaking else "blocked"
    if check_id == "opt-nvidia-443" and pool == 7:
        return "blocked"
    if check_id == "req-00-443" and pool == 1 and rng.random() < 0.02:
        return "blocked"  # a flapping required endpoint
    if pool == 5 and day == 28 and 2 <= moment.hour < 8 and check_id < "req-05":
        return "blocked"  # a six-hour outage of five required endpoints on one pool
    return "reachable"


def _status(expectation: str, verdict: str) -> str:
    """The stored status, from the one rule (every block here is an HTTP 470: stated)."""
    assurance = Assurance.STATED if verdict == "blocked" else None
    return check_status(
        expectation=Expectation(expectation), verdict=Verdict(verdict), assurance=assurance
    ).value


def generate(path: Path) -> None:
    """Bulk-load the store inside one transaction with the store's own row codecs."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    ResultStore(path).close()  # creates the latest schema
    rng = random.Random(20261128)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("BEGIN")
    start = END - timedelta(days=DAYS)
    run_length = timedelta(seconds=9)
    defs = {}
    for check_id, host, expectation, required in ENDPOINTS:
        port, transport, kind = (
            (123, "udp", "ntp") if check_id == "ntp-123" else (443, "tcp", "https")
        )
        feature = "canary" if expectation == "deny" else "required"
        values = (check_id, host, port, transport, kind, expectation, host)
        defs[check_id] = (*values, f"aks/rules/{check_id}", feature, required)
    keys = {check_id: definition_digest(values) for check_id, values in defs.items()}
    interned = intern(conn, "check_defs", DEF_COLUMNS, {keys[c]: v for c, v in defs.items()})
    def_ids = {check_id: interned[key] for check_id, key in keys.items()}
    # One outcome (and one timing, as every run here takes the same time) per combination.
    combos: dict[tuple[str, str], tuple[Outcome, str]] = {}
    for expectation in ("allow", "deny"):
        for verdict in ("reachable", "blocked", "inconclusive"):
            evidence, attempt = _details(verdict, 470 if verdict == "blocked" else 200)
            combos[(expectation, verdict)] = split_parts(
                run_started_at=start,
                started_at=start,
                finished_at=start + run_length,
                attempts=[(start, attempt)],
                evidence=evidence,
                reason=f"{verdict} as observed by the probe",
                assumption=None,
                verdict=verdict,
                status=_status(expectation, verdict),
                assurance="stated" if verdict == "blocked" else None,
            )
    outcome_ids = intern(
        conn, "outcomes", OUTCOME_COLUMNS, {o.digest: o.row for o, _ in combos.values()}
    )
    run_pk = 0
    for slot in range(DAYS * RUNS_PER_DAY):
        runs, checks = [], []
        for pool in range(POOLS):
            run_pk += 1
            moment = start + timedelta(minutes=5 * slot, seconds=pool * 7)
            started, finished = format_ts(moment), format_ts(moment + run_length)
            runs.append(
                (
                    run_pk,
                    f"run-{slot:05d}-{pool}",
                    "aks-prod",
                    "eastus",
                    "AzureCloud",
                    f"pool{pool:02d}",
                    f"aks-pool{pool:02d}-{slot % 3}",
                    f"egress-probe-{slot}",
                    "egress-probe",
                    "f" * 64,
                    "0.1.0",
                    started,
                    finished,
                    "10.240.0.4",  # node IP
                    f"10.244.{pool}.{slot % 250 + 1}",  # pod IP
                )
            )
            for position, (check_id, _, expectation, _) in enumerate(ENDPOINTS):
                verdict = _verdict(check_id, expectation, pool, moment, rng)
                outcome, timing = combos[(expectation, verdict)]
                checks.append(
                    (run_pk, position, def_ids[check_id], outcome_ids[outcome.digest], timing)
                )
        conn.executemany(f"INSERT INTO runs VALUES ({', '.join('?' * 15)})", runs)
        conn.executemany("INSERT INTO checks VALUES (?, ?, ?, ?, ?)", checks)
    rebuild_summaries(conn)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


# Runs the real CLI and prints the process's own peak RSS (VmHWM) at exit: getrusage of a
# child would also count the memory of the parent it was forked from.
_REPORT_WITH_PEAK = """
import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        sys.stderr.write(next(line for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
from egress.cli import main
main()
"""


def measure(store: Path, days: int, output: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code of one whole `egress report` process."""
    command = [sys.executable, "-c", _REPORT_WITH_PEAK, "report", "--store", str(store)]
    command += ["--format", "html", "--days", str(days), "--output", str(output)]
    command += ["--now", END.isoformat()]
    began = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - began
    peaks = [line for line in done.stderr.decode().splitlines() if line.startswith("VmHWM:")]
    return elapsed, int(peaks[-1].split()[1]) / 1024, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent / "results"
    parser.add_argument("--store", type=Path, default=here / "report-bench.sqlite")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.store)
        return
    args.store.parent.mkdir(parents=True, exist_ok=True)
    if args.regenerate or not args.store.exists():
        began = time.perf_counter()
        # in a child process, so that this one stays small while it times the report
        generator = [sys.executable, __file__, "--generate-only", "--store", str(args.store)]
        subprocess.run(generator, check=True)
        print(f"generated {args.store} in {time.perf_counter() - began:.1f} s")
    with sqlite3.connect(args.store) as conn:
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM checks").fetchone()[0]
    size_mb = args.store.stat().st_size / 2**20
    print(f"store: {runs} runs, {rows} check rows, {size_mb:.0f} MB")
    results = {}
    for days in (7, 30):
        output = args.store.with_name(f"report-{days}d.html")
        samples = [measure(args.store, days, output) for _ in range(args.repeat)]
        seconds = [s[0] for s in samples]
        peak = max(s[1] for s in samples)
        codes = {s[2] for s in samples}
        results[f"{days}d"] = {
            "median_s": round(statistics.median(seconds), 3),
            "max_s": round(max(seconds), 3),
            "peak_rss_mb": round(peak, 1),
            "exit_codes": sorted(codes),
            "html_kb": round(output.stat().st_size / 1024, 1),
        }
        print(
            f"last {days:2d} days: median {statistics.median(seconds):.2f} s, "
            f"max {max(seconds):.2f} s, peak RSS {peak:.0f} MB, exit {sorted(codes)}, "
            f"HTML {output.stat().st_size / 1024:.0f} KB"
        )
    summary = {"runs": runs, "check_rows": rows, "store_mb": round(size_mb), **results}
    (args.store.parent / "report_bench.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
