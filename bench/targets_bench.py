"""Benchmark the targets: every target at once on 10,000 FQDNs, and Service Tags expansion.

Run from the repository root:  .venv/bin/python bench/targets_bench.py [--repeat N]

Scenarios:
  1. `egress compile --target all --service-tags FILE` with a policy of 10,000 generated
     application FQDNs, one fresh process (interpreter start and imports count)
                                                              goal: <= 2 s wall, <= 200 MB
  2. load a synthetic Service Tags file of about 4 MB and 3,000 tags and expand every
     eastus tag (in process, file read and JSON parse included)        goal: <= 1 s
Nothing here touches the network: the generated names use the reserved .test TLD and
the prefixes are test ranges; both are data only, never contacted or resolved.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from compile_bench import EGRESS, Run, run_process, ten_thousand_fqdn_policy  # noqa: E402

REGIONS = [
    "eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus",
    "southcentralus", "westcentralus", "canadacentral", "canadaeast", "brazilsouth",
    "northeurope", "westeurope", "uksouth", "ukwest", "francecentral", "germanywestcentral",
    "norwayeast", "switzerlandnorth", "swedencentral", "polandcentral", "italynorth",
    "spaincentral", "uaenorth", "qatarcentral", "southafricanorth", "centralindia",
    "southindia", "westindia", "japaneast", "japanwest", "koreacentral", "koreasouth",
    "eastasia", "southeastasia", "australiaeast", "australiasoutheast", "australiacentral",
    "newzealandnorth", "israelcentral", "mexicocentral", "chilecentral", "indonesiacentral",
    "malaysiawest", "taiwannorth", "austriaeast", "belgiumcentral", "denmarkeast",
    "finlandcentral",
]  # fmt: skip
SERVICES = 60  # 60 services x 50 regions = 3,000 tags


def synthetic_service_tags(path: Path, seed: int = 7) -> tuple[int, int]:
    """A ServiceTags_Public_*.json-shaped file; test prefixes (198.18.0.0/15, 2001:db8::/32)."""
    rng = random.Random(seed)
    values = []
    base = ipaddress.ip_network("198.18.0.0/15").network_address
    for service in range(SERVICES):
        for region in REGIONS:
            count = rng.randint(5, 50)
            prefixes = [
                str(ipaddress.ip_network((int(base) + rng.randrange(0, 2**15) * 4, 30)))
                for _ in range(count)
            ] + [f"2001:db8:{rng.randrange(0, 65535):x}::/48" for _ in range(count // 4)]
            name = "AzureCloud." + region if service == 0 else f"Service{service:02d}.{region}"
            values.append(
                {
                    "name": name,
                    "id": name,
                    "properties": {
                        "changeNumber": rng.randint(1, 400),
                        "region": region,
                        "regionId": REGIONS.index(region),
                        "platform": "Azure",
                        "systemService": f"Service{service:02d}",
                        "addressPrefixes": prefixes,
                        "networkFeatures": ["API", "NSG", "UDR", "FW"],
                    },
                }
            )
    document = {"changeNumber": 421, "cloud": "Public", "values": values}
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return len(values), path.stat().st_size


def expand_eastus(path: Path) -> tuple[float, int, int]:
    """(seconds, tags expanded, prefixes) for load + expanding every tag of region eastus."""
    from egress.service_tags import load_service_tags

    started = time.perf_counter()
    data = load_service_tags(path)
    eastus = [name for name in data.prefixes if name.lower().endswith(".eastus")]
    prefixes = sum(len(data.expand(name) or ()) for name in eastus)
    return time.perf_counter() - started, len(eastus), prefixes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="egress-bench-") as tmp:
        work = Path(tmp)
        tags = work / "ServiceTags_Public_20261123.json"
        count, size = synthetic_service_tags(tags)
        policy = work / "10k.yaml"
        ten_thousand_fqdn_policy(policy)
        args = [
            *EGRESS, "compile", "--region", "eastus", "--policy", str(policy),
            "--target", "all", "--service-tags", str(tags), "--output", str(work / "out"),
        ]  # fmt: skip
        runs: list[Run] = sorted(
            (run_process(args) for _ in range(options.repeat)), key=lambda r: r.wall
        )
        median = runs[len(runs) // 2]
        files = sorted(p.name for p in (work / "out").rglob("*") if p.is_file())
        verdict = "goal met" if median.wall <= 2.0 and median.peak_rss_mb <= 200 else "GOAL MISSED"
        print(
            f"every target, 10,000 FQDNs: median {median.wall:.3f} s (best {runs[0].wall:.3f} s),"
            f" peak RSS {median.peak_rss_mb:.1f} MB, {len(files)} files ({verdict})"
        )
        timings = [expand_eastus(tags) for _ in range(options.repeat)]
        seconds = statistics.median(t[0] for t in timings)
        _, expanded, prefixes = timings[0]
        verdict = "goal met" if seconds <= 1.0 else "GOAL MISSED"
        print(
            f"service tags: {count} tags, {size / 1e6:.1f} MB; load + expand {expanded} eastus "
            f"tags ({prefixes} prefixes): median {seconds:.3f} s ({verdict})"
        )


if __name__ == "__main__":
    main()
