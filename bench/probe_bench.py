"""Benchmark `egress probe run` on 1,000 checks against local peers (not a test; needs root).

Everything happens inside a network namespace this script creates (only loopback, so no
packet can leave the machine): a DNS server and a TLS/HTTP server run in a separate peer
process, nftables silently drops 127.66.0.0/16 there, and the probe runs as its own
process so wall time, CPU time and peak RSS are the whole probe process's numbers.

Plan: 60% reachable (HTTPS allow checks, DNS -> TLS with SNI -> HTTP 200), 20% reset
(allow checks to a closed network-rule port: RST, so the path worked: unhealthy), 20%
black-holed (deny canaries whose SYNs are dropped: a 3 s TCP timeout on a network-rule port,
judged blocked (signature) as declared canary servers, then re-probed once to rule
out a lost packet, so two timeouts).

The sequential baseline runs a stratified sample of the same plan with --concurrency 1
(one check after the other, like a curl loop) and extrapolates linearly to 1,000 checks.

    sudo python bench/probe_bench.py [--checks 1000] [--sample 50] [--timeout 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "probe"))  # reuse the test peers

DNS = ("127.53.0.1", 5353)
TLS_PORT, CLOSED_PORT = 8443, 9443
BLACKHOLE_NET = "127.66.0.0/16"
ENTRY = "from egress.cli import main; main()"


def address(prefix: int, index: int) -> str:
    return f"127.{prefix}.{index // 250}.{index % 250 + 1}"


def build_plan(total: int) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The plan (as JSON data) and the DNS zone the peer process serves for it."""
    reachable, reset = int(total * 0.6), int(total * 0.2)
    checks: list[dict[str, Any]] = []
    zone: dict[str, list[str]] = {}
    for i in range(total):
        if i < reachable:
            kind, prefix, port, expectation, group = "https", 20, TLS_PORT, "allow", "ok"
        elif i < reachable + reset:
            kind, prefix, port, expectation, group = "https", 30, CLOSED_PORT, "allow", "rst"
        else:
            kind, prefix, port, expectation, group = "https", 66, TLS_PORT, "deny", "drop"
        host = f"{group}{i:04d}.bench.test"
        zone[f"{host}."] = [address(prefix, i)]
        checks.append(
            {
                "id": f"{group}/{i:04d}",
                "host": host,
                "port": port,
                "transport": "tcp",
                "kind": kind,
                "expectation": expectation,
                "destination": host,
                "rule": "bench/rules/r" if expectation == "allow" else "canary/bench",
                "feature": "required" if expectation == "allow" else "canary",
                "required": expectation == "allow",
                # deny canaries stand for servers that answer whenever let through: only then
                # is a network-rule timeout a block
                "canary_server": expectation == "deny",
            }
        )
    plan = {
        "schema_version": 1,
        "cloud": "AzureCloud",
        "region": "eastus",
        "generated_by": "bench",
        "checks": checks,
    }
    return plan, zone


def sample_plan(plan: dict[str, Any], size: int) -> dict[str, Any]:
    """A stratified sample keeping the 60/20/20 mix, in plan order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for check in plan["checks"]:
        groups.setdefault(check["id"].split("/")[0], []).append(check)
    total = len(plan["checks"])
    picked = [
        check
        for members in groups.values()
        for check in members[: max(1, round(size * len(members) / total))]
    ]
    return {**plan, "checks": picked}


# --------------------------------------------------------------------------- peer process


def serve(workdir: Path) -> None:
    """Peer process (inside the namespace): DNS + one TLS/HTTP server, until stdin closes."""
    import trustme

    from probe_peers import DnsZone, TcpPeer, always, close_all

    zone = DnsZone(records=json.loads((workdir / "zone.json").read_text()))
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))

    async def main() -> None:
        keep: list[Any] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("*.bench.test").configure_cert(context)
        await start_dns_fixed(zone, keep)
        peer = TcpPeer("0.0.0.0", always("serve"), tls=context)  # only loopback exists here
        await peer.start(keep, port=TLS_PORT)
        (workdir / "ready").write_text("ok")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await close_all(keep)

    async def start_dns_fixed(zone: DnsZone, keep: list[Any]) -> None:
        from probe_peers import DnsPeer

        loop = asyncio.get_running_loop()
        peer = DnsPeer(zone)
        transport, _ = await loop.create_datagram_endpoint(lambda: peer, local_addr=DNS)
        keep.append(transport)
        keep.append(await asyncio.start_server(peer.serve_tcp, *DNS))

    asyncio.run(main())


# --------------------------------------------------------------------------- driver


def run_probe(
    netns: str, workdir: Path, plan: Path, concurrency: int, timeout: float
) -> dict[str, Any]:
    """Run the probe as its own process; wall, CPU and peak RSS come from wait4()."""
    report = plan.with_suffix(".report.json")
    command = [
        "ip", "netns", "exec", netns, sys.executable, "-c", ENTRY, "probe", "run",
        "--plan", str(plan), "--resolver", f"{DNS[0]}:{DNS[1]}", "--trust-store",
        str(workdir / "ca.pem"), "--format", "jsonl", "--report", str(report),
        "--concurrency", str(concurrency), "--timeout", str(timeout), "--deadline", "900",
    ]  # fmt: skip
    began = time.perf_counter()
    with Path(os.devnull).open("w") as sink:
        process = subprocess.Popen(command, stdout=sink)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    data = json.loads(report.read_text())
    verdicts: dict[str, int] = {}
    for check in data["checks"]:
        key = f"{check['check_id'].split('/')[0]}:{check['verdict']}"
        verdicts[key] = verdicts.get(key, 0) + 1
    return {
        "checks": len(data["checks"]),
        "exit_code": process.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "verdicts": dict(sorted(verdicts.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=50, help="checks in the sequential sample")
    parser.add_argument("--timeout", type=float, default=3.0, help="per-phase timeout (s)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if os.geteuid() != 0:
        print("needs root: the benchmark creates a network namespace and nftables rules")
        return 2
    netns = f"egress-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    peers: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        rules = (
            "table inet bench {\n chain input {\n  type filter hook input priority 0; "
            f"policy accept;\n  ip daddr {BLACKHOLE_NET} drop\n }}\n}}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules, text=True, check=True
        )
        with tempfile.TemporaryDirectory(prefix="egress-bench-") as temp:
            workdir = Path(temp)
            plan, zone = build_plan(args.checks)
            (workdir / "zone.json").write_text(json.dumps(zone))
            full = workdir / "plan.json"
            full.write_text(json.dumps(plan))
            sample = workdir / "sample.json"
            sample.write_text(json.dumps(sample_plan(plan, args.sample)))
            peers = subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, __file__, "--serve", temp],
                stdin=subprocess.PIPE,
            )
            deadline = time.monotonic() + 30
            while not (workdir / "ready").exists():
                if time.monotonic() > deadline or peers.poll() is not None:
                    raise RuntimeError("the peer process did not start")
                time.sleep(0.1)
            concurrent = run_probe(netns, workdir, full, args.concurrency, args.timeout)
            sequential = run_probe(netns, workdir, sample, 1, args.timeout)
    finally:
        if peers is not None and peers.stdin is not None:
            peers.stdin.close()
            peers.wait(10)
        subprocess.run(["ip", "netns", "del", netns], check=False)
    per_check = sequential["wall_s"] / sequential["checks"]
    extrapolated = per_check * concurrent["checks"]
    result = {
        "plan": f"{args.checks} checks: 60% reachable, 20% reset, 20% black-holed",
        "per_phase_timeout_s": args.timeout,
        "concurrent": concurrent,
        "sequential_sample": sequential,
        "sequential_extrapolated_wall_s": round(extrapolated, 1),
        "speedup_vs_sequential": round(extrapolated / concurrent["wall_s"], 1),
        "wall_over_timeout": round(concurrent["wall_s"] / args.timeout, 2),
        "goals": {
            "wall < 1.5 x timeout": concurrent["wall_s"] < 1.5 * args.timeout,
            "peak RSS < 120 MB": concurrent["peak_rss_mb"] < 120,
            "speedup > 100x": extrapolated / concurrent["wall_s"] > 100,
        },
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
