"""Benchmark `egress compile`: whole-process wall time and peak memory, and rule counts.

Run from the repository root:  python bench/compile_bench.py [--repeat N]

Scenarios (each a fresh `egress` process, so interpreter start and imports count):
  1. `egress compile --region eastus --feature all`           goal: < 0.6 s wall
  2. every region of all three clouds, `--feature all`, one process per region
  3. a policy with 10,000 generated application FQDNs         goal: < 2 s wall
For each compile the rule count is reported against a naive compile that writes one rule
per destination, protocol and port. Nothing here touches the network: the generated
FQDNs use the reserved .test TLD and are data only, never contacted or resolved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The console script's own entry point, run by the interpreter running this benchmark.
EGRESS = [sys.executable, "-c", "from egress.cli import main; main()"]
GOALS = {"eastus --feature all": 0.6, "10,000 FQDN policy": 2.0}


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, whole process
    peak_rss_mb: float


def run_process(args: list[str]) -> Run:
    """Run one process; wait4 gives the peak RSS of exactly that child."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}):\n{stderr}")
    return Run(wall=wall, peak_rss_mb=usage.ru_maxrss / 1024)  # ru_maxrss is KiB on Linux


def rule_counts(out_dir: Path) -> tuple[int, int]:
    """(rules written, rules a one-per-destination/protocol/port compile would write)."""
    groups: dict[str, Any] = json.loads((out_dir / "rule-collection-groups.json").read_text())
    rules = naive = 0
    for group in groups.values():
        for collection in group["properties"]["ruleCollections"]:
            for rule in collection["rules"]:
                rules += 1
                if rule["ruleType"] == "ApplicationRule":
                    destinations = len(rule.get("targetFqdns", [])) + len(rule.get("fqdnTags", []))
                    naive += destinations * len(rule["protocols"])
                elif rule["ruleType"] == "NetworkRule":
                    destinations = len(rule.get("destinationAddresses", [])) + len(
                        rule.get("destinationFqdns", [])
                    )
                    naive += destinations * len(rule["ipProtocols"]) * len(rule["destinationPorts"])
                else:
                    naive += 1
    return rules, naive


def compile_args(out_dir: Path, *extra: str) -> list[str]:
    return [*EGRESS, "compile", "--output", str(out_dir), *extra]


def repeated(args: list[str], repeat: int) -> tuple[Run, Run]:
    """(median run, best run) by wall time."""
    runs = sorted((run_process(args) for _ in range(repeat)), key=lambda r: r.wall)
    median = runs[len(runs) // 2]
    return median, runs[0]


def regions() -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT))
    from egress.catalog import load_catalog
    from egress.model import Cloud

    return [(cloud.value, region) for cloud in Cloud for region in load_catalog(cloud).regions]


def ten_thousand_fqdn_policy(path: Path, count: int = 10_000) -> None:
    lines = ["schema_version: 1", "allow:"]
    for index in range(count):
        # Reserved .test names: data only, never contacted or resolved.
        lines.append(
            f"  - {{fqdn: svc{index:05d}.team{index % 97:02d}.bench.test, ports: [https:443]}}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def report(name: str, median: Run, best: Run, counts: tuple[int, int] | None) -> dict[str, Any]:
    goal = GOALS.get(name)
    verdict = "" if goal is None else (" (goal met)" if median.wall < goal else " (GOAL MISSED)")
    line = (
        f"{name:<28} median {median.wall:6.3f} s  best {best.wall:6.3f} s  "
        f"peak RSS {median.peak_rss_mb:6.1f} MB{verdict}"
    )
    if counts:
        line += f"  rules {counts[0]} vs naive {counts[1]}"
    print(line)
    return {
        "median_wall_s": round(median.wall, 4),
        "best_wall_s": round(best.wall, 4),
        "peak_rss_mb": round(median.peak_rss_mb, 1),
        "rules": counts[0] if counts else None,
        "naive_rules": counts[1] if counts else None,
        "goal_s": goal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per single scenario")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    options = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="egress-bench-") as tmp:
        work = Path(tmp)
        out = work / "out"

        args = compile_args(out, "--region", "eastus", "--feature", "all")
        median, best = repeated(args, options.repeat)
        name = "eastus --feature all"
        results[name] = report(name, median, best, rule_counts(out))

        per_region: list[Run] = []
        totals = [0, 0]
        started = time.perf_counter()
        for cloud, region in regions():
            per_region.append(
                run_process(
                    compile_args(out, "--cloud", cloud, "--region", region, "--feature", "all")
                )
            )
            rules, naive = rule_counts(out)
            totals[0] += rules
            totals[1] += naive
        elapsed = time.perf_counter() - started
        walls = [r.wall for r in per_region]
        print(
            f"{'all regions, 3 clouds':<28} {len(per_region)} processes in {elapsed:6.2f} s  "
            f"per region median {statistics.median(walls):6.3f} s  max {max(walls):6.3f} s  "
            f"peak RSS {max(r.peak_rss_mb for r in per_region):6.1f} MB  "
            f"rules {totals[0]} vs naive {totals[1]}"
        )
        results["all regions"] = {
            "regions": len(per_region),
            "total_wall_s": round(elapsed, 3),
            "median_wall_s": round(statistics.median(walls), 4),
            "max_wall_s": round(max(walls), 4),
            "peak_rss_mb": round(max(r.peak_rss_mb for r in per_region), 1),
            "rules": totals[0],
            "naive_rules": totals[1],
        }

        policy = work / "10k.yaml"
        ten_thousand_fqdn_policy(policy)
        args = compile_args(out, "--region", "eastus", "--policy", str(policy))
        median, best = repeated(args, max(1, options.repeat // 2))
        name = "10,000 FQDN policy"
        results[name] = report(name, median, best, rule_counts(out))
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
