"""Service Tags data from a file or from the SDK's service_tags.list answer, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from azure.mgmt.network.models import ServiceTagsListResult
from typer.testing import CliRunner

from egress.cli import app
from egress.service_tags import from_sdk, load_service_tags

DATA = Path(__file__).parents[1] / "data" / "service_tags" / "ServiceTags_Public_20261123.json"


def test_the_sdk_answer_and_the_file_give_the_same_prefixes():
    # The SDK model deserialises exactly the REST answer of service_tags.list(location).
    result = ServiceTagsListResult(json.loads(DATA.read_text()))
    from_api = from_sdk(result, "eastus")
    from_file = load_service_tags(DATA)
    assert from_api.change_number == from_file.change_number == "321"
    assert dict(from_api.prefixes) == dict(from_file.prefixes)
    assert from_api.expand("AzureCloud.eastus") == (
        "198.18.90.0/24",
        "198.18.91.0/24",
        "2001:db8:90::/48",
    )
    assert from_api.source == "service_tags.list(eastus)"


def test_compile_refuses_an_opt_in_target_without_data_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["compile", "--region", "eastus", "--target", "appliance", "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "target 'appliance' cannot use Azure service tag 'AzureCloud.eastus'" in result.stderr
    assert "--service-tags" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    result = runner.invoke(app, [*args, "--service-tags", str(DATA)])
    assert result.exit_code == 0, result.stderr
    assert (out / "appliance" / "squid.conf").is_file()
    assert not (out / "rule-collection-groups.json").exists()  # only what was asked for


def test_a_plain_compile_writes_only_the_default_targets(tmp_path: Path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compile", "--region", "eastus", "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert "rule-collection-groups.json" in names
    assert not names & {"allowlist.csv", "nsg-rules.json", "cilium-policy.yaml", "appliance"}


def test_a_bad_appliance_resolver_is_exit_2(tmp_path: Path):
    args = ["compile", "--target", "allowlist", "--appliance-dns", "dns.local"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--appliance-dns: 'dns.local' is not a valid IP address" in result.stderr


def test_stdout_refuses_a_target_of_several_files():
    result = CliRunner().invoke(app, ["compile", "--stdout", "allowlist"])
    assert result.exit_code == 2
    assert "target 'allowlist' writes allowlist.csv, allowlist.json" in result.stderr
    result = CliRunner().invoke(app, ["compile", "--stdout", "nsg"])
    assert result.exit_code == 0 and '"securityRules"' in result.stdout
