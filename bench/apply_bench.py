"""Benchmark `egress apply` against the ARM emulator with realistic latency: requests and time.

Run: python bench/apply_bench.py [--latency-min 0.05 --latency-max 0.2 --polls 3]
It starts the loopback emulator (tests/azure/emulator), applies the eastus default policy from
empty, then applies again (a no-op), and prints ARM requests by method and wall time for each.
Goals: the no-op re-apply makes only GET requests; the first apply makes one write per
changed resource.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "azure"))

from azure.identity import ClientSecretCredential
from emulator import ArmEmulator

from egress.azure import make_plan
from egress.azure.boundary import RetrySettings
from egress.azure.cloud import Connection, endpoints_for, network_client
from egress.azure.executor import Executor
from egress.azure.state import AzureTarget, SubnetRef, desired_from_policy
from egress.compiler import CompileRequest, compile_request

from azure_hub import POLICY, RG, SUB, SUBNET_ID, TABLE, seed_hub


def _apply(arm: ArmEmulator, connection: Connection, target: AzureTarget) -> dict[str, object]:
    desired = desired_from_policy(compile_request(CompileRequest(region="eastus")))
    arm.reset_log()
    started = time.perf_counter()
    with network_client(connection) as client:
        plan = make_plan(client, desired, target)
        writes = Executor(client, plan, timeout=1800, retry=connection.retry).run().writes
    seconds = time.perf_counter() - started
    methods: Counter[str] = arm.count_by_method()
    return {
        "changed_resources": len(plan.steps),
        "writes": arm.writes,
        "executor_writes": writes,
        "requests": dict(sorted(methods.items())),
        "total_requests": sum(methods.values()),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-min", type=float, default=0.05)
    parser.add_argument("--latency-max", type=float, default=0.2)
    parser.add_argument("--polls", type=int, default=3, help="status polls before an LRO ends")
    parser.add_argument("--retry-after", default="1", help="Retry-After seconds on LRO polls")
    args = parser.parse_args()
    rng = random.Random(7)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ArmEmulator(
            Path(tmp),
            lro_polls=args.polls,
            lro_seconds=3600,
            lro_retry_after=args.retry_after,
            latency=lambda: rng.uniform(args.latency_min, args.latency_max),
        ) as arm,
    ):
        seed_hub(arm)
        credential = ClientSecretCredential(
            "tenant-1",
            "client-1",
            "secret-1",
            authority=arm.url,
            disable_instance_discovery=True,
            connection_verify=str(arm.ca_path),
        )
        connection = Connection(
            subscription_id=SUB,
            endpoints=endpoints_for("AzureCloud", arm_endpoint=arm.url, authority_host=arm.url),
            credential=credential,
            connection_verify=str(arm.ca_path),
            retry=RetrySettings(),
        )
        target = AzureTarget(SUB, RG, POLICY, TABLE, RG, (SubnetRef.parse(SUBNET_ID),))
        print(
            f"emulator latency {args.latency_min}-{args.latency_max}s per request, "
            f"LRO done after {args.polls} polls, Retry-After {args.retry_after}s"
        )
        for name in ("first apply", "no-op re-apply"):
            result = _apply(arm, connection, target)
            print(f"{name}: {result}")
        credential.close()


if __name__ == "__main__":
    main()
