"""Run the ARM emulator by hand (loopback only) to try `egress plan`/`apply` end to end.

    .venv/bin/python tests/azure/run_emulator.py --seconds 600

It seeds the test hub (firewall policy fp-hub, vnet-aks/aks-subnet in rg-hub of subscription
11111111-1111-4111-8111-111111111111), prints
the environment and flags to use, and stops after --seconds (or Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator import ArmEmulator

from azure_hub import POLICY, RG, SUB, SUBNET_ID, TABLE, seed_hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ArmEmulator(Path(tmp), lro_retry_after="1") as arm:
        # ARM answers a long-running write with a positive Retry-After; the tests' 0 reads as
        # 'none' to the SDK, which then waits egress's default poll interval (30 s) per write.
        seed_hub(arm)
        print(
            f"export AZURE_TOKEN_CREDENTIALS=EnvironmentCredential AZURE_TENANT_ID=tenant-1 "
            f"AZURE_CLIENT_ID=client-1 AZURE_CLIENT_SECRET=secret-1 "
            f"REQUESTS_CA_BUNDLE={arm.ca_path}\n"
            f"egress plan --subscription {SUB} --resource-group {RG} --firewall-policy {POLICY} "
            f"--route-table {TABLE} --subnet-id {SUBNET_ID} "
            f"--arm-endpoint {arm.url} --authority-host {arm.url}",
            flush=True,
        )
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        except KeyboardInterrupt:
            pass
        print(f"served {len(arm.log)} requests ({arm.writes} writes)")


if __name__ == "__main__":
    main()
