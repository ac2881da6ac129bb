"""Every generated appliance file is accepted by the real tool: nft, dnsmasq and squid."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import trustme

from egress.service_tags import load_service_tags
from egress.targets import TARGETS
from egress.targets.appliance import CERTGEN
from egress.targets.base import RenderInputs

from targets.cases import compiled

pytestmark = pytest.mark.netns

DATA = Path(__file__).parents[1] / "data" / "service_tags" / "ServiceTags_Public_20261123.json"


@pytest.mark.parametrize("case", ["eastus-default", "eastus-neutral"])
def test_the_tools_accept_the_generated_files(case: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace (CI runs the suite as root)")
    missing = [t for t in ("ip", "nft", "squid", "dnsmasq") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/apt-packages.txt installs them)")
    root = Path(tempfile.mkdtemp(prefix="egress-appliance-"))
    netns = f"egress-cfg-{uuid.uuid4().hex[:8]}"
    try:
        home = root / "appliance"
        inputs = RenderInputs(service_tags=load_service_tags(DATA), appliance_dir=str(home))
        files = TARGETS["appliance"](inputs).render(compiled(case))
        for relpath, text in files.items():
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            (root / relpath).write_text(text)
        ca = trustme.CA()
        ca.issue_cert("egress-appliance").private_key_and_cert_chain_pem.write_to_path(
            str(home / "tls.pem")
        )
        subprocess.run([CERTGEN, "-c", "-s", str(home / "ssl_db"), "-M", "4MB"], check=True)
        subprocess.run(["ip", "netns", "add", netns], check=True)
        loaded = subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "-f", str(home / "nftables.nft")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert loaded.returncode == 0, loaded.stderr
        listed = subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "list", "table", "inet", "egress"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "policy drop" in listed and "redirect to :" in listed
        checked = subprocess.run(
            ["dnsmasq", "--test", "-C", str(home / "dnsmasq.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        parsed = subprocess.run(
            ["squid", "-k", "parse", "-f", str(home / "squid.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        problems = [
            line
            for line in parsed.stderr.splitlines()
            if "FATAL" in line or "ERROR" in line or "WARNING" in line
        ]
        assert parsed.returncode == 0 and not problems, problems or parsed.stderr[-2000:]
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
