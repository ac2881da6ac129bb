"""Benchmark `egress firewall verify` and `egress firewall explain` on a month of one pool.

Generates 30 days of five-minute runs of one node pool with 30 checks each (8,640 runs,
259,200 check results, each attempt with its source address and port) and 1,000,000
AZFWApplicationRule / AZFWNetworkRule rows as JSON lines (one decision per attempt, the rest
other traffic of the same nodes), then times each whole process. Goals: verify <= 10 s and
<= 300 MB peak RSS; explain <= 5 s.

    .venv/bin/python bench/fwlogs_bench.py            # generate (once) and measure
    .venv/bin/python bench/fwlogs_bench.py --regenerate --repeat 3

Data goes to bench/results/ (git-ignored) and is reused when it exists. Host names are data
only: nothing is resolved or contacted.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from egress.compliance import Assurance, Verdict, check_status
from egress.probe_plan import CheckKind, Expectation
from egress.results import Attempt, CheckRecord, Location, Phase, RunReport
from egress.store import ResultStore

DAYS = 30
RUNS_PER_DAY = 288
ROWS = 1_000_000
END = datetime(2026, 11, 28, tzinfo=UTC)
NODE_IP = "10.240.0.4"
# 30 checks: 26 allow (HTTPS app rules), 1 NTP (network rule), 3 deny canaries.
CHECKS = [
    *[(f"req-{n:02d}-443", f"req{n}.hcp.eastus.azmk8s.io", 443, "allow") for n in range(26)],
    ("ntp-123", "ntp.ubuntu.com", 123, "allow"),
    *[(f"canary-{n}-443", f"canary{n}.example.test", 443, "deny") for n in range(3)],
]


def _run(slot: int, start: datetime) -> tuple[RunReport, list[str]]:
    moment = start + timedelta(minutes=5 * slot)
    records, rows = [], []
    for index, (check_id, host, port, expectation) in enumerate(CHECKS):
        began = moment + timedelta(milliseconds=200 * index)
        local_port = 20000 + (slot * 30 + index) % 40000
        deny = expectation == "deny"
        verdict = Verdict.BLOCKED if deny else Verdict.REACHABLE
        assurance = Assurance.SIGNATURE if deny else None
        tcp = Phase(
            name="tcp",
            ok=True,
            duration_ms=12.0,
            detail={"address": "20.1.2.3", "local_address": NODE_IP, "local_port": local_port},
        )
        attempt = Attempt(started_at=began, verdict=verdict, reason="", phases=(tcp,))
        records.append(
            CheckRecord(
                run_id=f"run-{slot:05d}",
                plan_hash="f" * 64,
                tool_version="0.1.0",
                cloud="AzureCloud",
                region="eastus",
                location=Location(cluster="aks-prod", node_pool="system", node="aks-system-0"),
                check_id=check_id,
                host=host,
                port=port,
                transport="udp" if port == 123 else "tcp",
                kind=CheckKind.NTP if port == 123 else CheckKind.HTTPS,
                expectation=Expectation(expectation),
                destination=host,
                rule=f"aks/rules/{check_id}",
                feature="canary" if deny else "required",
                required=not deny,
                verdict=verdict,
                status=check_status(
                    expectation=Expectation(expectation), verdict=verdict, assurance=assurance
                ),
                assurance=assurance,
                reason="as observed",
                evidence={"host": host},
                attempts=(attempt,),
                started_at=began,
                finished_at=began + timedelta(milliseconds=60),
            )
        )
        rows.append(_row(began + timedelta(milliseconds=20), local_port, host, port, deny))
    first = records[0]
    run = RunReport(
        run_id=first.run_id,
        plan_hash=first.plan_hash,
        tool_version=first.tool_version,
        cloud=first.cloud,
        region=first.region,
        location=first.location,
        started_at=moment,
        finished_at=records[-1].finished_at,
        checks=tuple(records),
    )
    return run, rows


def _row(moment: datetime, port: int, host: str, dport: int, deny: bool) -> str:
    if dport == 123:
        return json.dumps(
            {
                "Type": "AZFWNetworkRule",
                "TimeGenerated": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "SourceIp": NODE_IP,
                "SourcePort": port,
                "DestinationIp": "20.1.2.3",
                "DestinationPort": dport,
                "Protocol": "UDP",
                "Action": "Allow",
                "ActionReason": "",
                "Policy": "fp-hub",
                "RuleCollectionGroup": "egress-required",
                "RuleCollection": "aks-net",
                "Rule": "ntp",
            }
        )
    return json.dumps(
        {
            "Type": "AZFWApplicationRule",
            "TimeGenerated": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "SourceIp": NODE_IP,
            "SourcePort": port,
            "Fqdn": host,
            "TargetUrl": "",
            "DestinationPort": dport,
            "Protocol": "HTTPS",
            "Action": "Deny" if deny else "Allow",
            "ActionReason": "No rule matched. Proceeding with default action" if deny else "",
            "Policy": "" if deny else "fp-hub",
            "RuleCollectionGroup": "" if deny else "egress-required",
            "RuleCollection": "" if deny else "aks-app",
            "Rule": "" if deny else "aks-required",
            "IsTlsInspected": False,
        }
    )


def generate(store_path: Path, logs: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    rng = random.Random(20261128)
    start = END - timedelta(days=DAYS)
    written = 0
    with ResultStore(store_path) as store, logs.open("w") as out:
        for slot in range(DAYS * RUNS_PER_DAY):
            run, rows = _run(slot, start)
            store.append_run(run)
            out.write("\n".join(rows) + "\n")
            written += len(rows)
        # Other traffic of the cluster's nodes (kubelet, image pulls, apps): never matches.
        span = int((END - start).total_seconds())
        while written < ROWS:
            moment = start + timedelta(seconds=rng.randrange(span))
            host = rng.choice(("mcr.microsoft.com", "github.com", "unknown.example.test"))
            deny = host != "mcr.microsoft.com"
            out.write(_row(moment, rng.randrange(1024, 65535), host, 443, deny) + "\n")
            written += 1


_WITH_PEAK = """
import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        sys.stderr.write(next(line for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
from egress.cli import main
main()
"""


def measure(args: list[str]) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS (MB), exit code and CPU seconds of one whole process."""
    command = [sys.executable, "-c", _WITH_PEAK, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    peaks = [line for line in done.stderr.decode().splitlines() if line.startswith("VmHWM:")]
    if not peaks:
        raise SystemExit(done.stderr.decode())
    return elapsed, int(peaks[-1].split()[1]) / 1024, done.returncode, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent / "results"
    parser.add_argument("--store", type=Path, default=here / "fwlogs-bench.sqlite")
    parser.add_argument("--logs", type=Path, default=here / "fwlogs-bench.jsonl")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.store.parent.mkdir(parents=True, exist_ok=True)
    if args.regenerate or not args.store.exists() or not args.logs.exists():
        began = time.perf_counter()
        generate(args.store, args.logs)
        print(f"generated in {time.perf_counter() - began:.1f}s")
    now = ["--now", END.isoformat()]
    verify = ["firewall", "verify", "--logs", str(args.logs), "--store", str(args.store)]
    verify += ["--days", "31", "--format", "json", "--output", str(args.store) + ".json", *now]
    explain = ["firewall", "explain", "--logs", str(args.logs), "--source", "10.240.0.0/16"]
    explain += ["--region", "eastus", "--days", "31", "--format", "json", *now]
    explain += ["--output", str(args.store) + ".explain.json"]
    for name, command in (("verify", verify), ("explain", explain)):
        results = [measure(command) for _ in range(args.repeat)]
        walls = [r[0] for r in results]
        print(
            f"{name}: wall median {statistics.median(walls):.2f}s (min {min(walls):.2f}s), "
            f"CPU median {statistics.median(r[3] for r in results):.2f}s, "
            f"peak RSS {max(r[1] for r in results):.0f} MB, exit {results[0][2]}"
        )


if __name__ == "__main__":
    main()
