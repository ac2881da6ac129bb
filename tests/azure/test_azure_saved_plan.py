"""Saved plans: `egress plan --out FILE`, then `egress apply FILE` writes exactly it, or refuses."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from egress.azure.diff import Kind
from egress.cli import app

from azure_hub import POLICY, SUBNET_ID, TABLE_ID, Cli, rcg_id

GROUP = rcg_id("egress-aks")


def _saved(cli: Cli, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "plan.json"
    result = cli.run("plan", "--out", str(out), *extra)
    assert result.exit_code == 3, result.output
    assert f"Saved the plan to {out}" in result.stderr
    return out


def _apply_file(cli: Cli, path: Path, *extra: str) -> Any:
    return cli.run("apply", str(path), "--yes", *extra, scope=False)


def test_a_saved_plan_is_applied_exactly_and_then_nothing_is_pending(
    cli: Cli, tmp_path: Path
) -> None:
    out = _saved(cli, tmp_path)
    document = json.loads(out.read_text())
    assert (document["format"], document["version"], document["cloud"]) == (
        "egress-azure-plan",
        1,
        "AzureCloud",
    )
    assert [(s["action"], s["kind"], s["name"]) for s in document["steps"]] == [
        ("create", "route table", "rt-aks"),
        ("create", "rule collection group", "egress-aks"),
        ("update", "subnet", "vnet-aks/aks-subnet"),
    ]
    subnet_etag = cli.arm.resource(SUBNET_ID)["etag"]  # type: ignore[index]
    assert document["observed"][SUBNET_ID.lower()] == subnet_etag
    assert cli.arm.writes == 0  # plan --out only reads

    applied = _apply_file(cli, out)
    assert applied.exit_code == 0, applied.output
    assert cli.arm.accepted_writes() == [f"PUT {TABLE_ID}", f"PUT {GROUP}", f"PUT {SUBNET_ID}"]
    sent = [e.conditions for e in cli.arm.log if e.method == "PUT"]
    assert sent == [{"If-None-Match": "*"}, {"If-None-Match": "*"}, {"If-Match": subnet_etag}]
    group = cli.arm.resource(GROUP)
    assert group is not None
    saved_group = document["steps"][1]["body"]["properties"]
    assert group["properties"]["priority"] == saved_group["priority"]
    assert [c["name"] for c in group["properties"]["ruleCollections"]] == [
        c["name"] for c in saved_group["ruleCollections"]
    ]
    cli.arm.reset_log()
    assert cli.run("plan").exit_code == 0
    assert cli.arm.writes == 0


def test_the_saved_plan_needs_no_compiled_input_at_apply_time(cli: Cli, tmp_path: Path) -> None:
    compiled = tmp_path / "compiled"
    done = CliRunner().invoke(app, ["compile", "--region", "eastus", "--output", str(compiled)])
    assert done.exit_code == 0, done.output
    out = _saved(cli, tmp_path, "--from", str(compiled))
    shutil.rmtree(compiled)  # what was reviewed is in the file, not recompiled
    applied = _apply_file(cli, out)
    assert applied.exit_code == 0, applied.output
    assert len(cli.arm.accepted_writes()) == 3


@pytest.mark.parametrize("moved", ["written group", "subnet", "unrelated group appears"])
def test_a_saved_plan_whose_etags_moved_is_refused_before_any_write(
    cli: Cli, tmp_path: Path, moved: str
) -> None:
    assert cli.run("apply", "--yes").exit_code == 0
    # Drift the group so the saved plan updates it.
    body = copy.deepcopy(cli.arm.resource(GROUP))
    assert body is not None
    body["properties"]["ruleCollections"][0]["rules"][0]["destinationPorts"] = ["9999"]
    cli.arm.seed(GROUP, body)
    out = _saved(cli, tmp_path)
    if moved == "written group":
        cli.arm.seed(GROUP, body)  # same content, new etag: still a change by someone else
    elif moved == "subnet":
        subnet = cli.arm.resource(SUBNET_ID)
        assert subnet is not None
        cli.arm.seed(SUBNET_ID, {"properties": subnet["properties"]})
    else:
        cli.arm.seed(
            rcg_id("DefaultNetworkRuleCollectionGroup"),
            {"properties": {"priority": 200, "ruleCollections": []}},
        )
    cli.arm.reset_log()
    refused = _apply_file(cli, out)
    assert refused.exit_code == 4, refused.output
    assert f"saved plan {out} is stale: 1 resource(s) it was based on changed" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert cli.arm.writes == 0


def test_a_saved_plan_without_changes_applies_as_a_no_op(cli: Cli, tmp_path: Path) -> None:
    assert cli.run("apply", "--yes").exit_code == 0
    out = tmp_path / "same.json"
    assert cli.run("plan", "--out", str(out)).exit_code == 0
    cli.arm.reset_log()
    applied = _apply_file(cli, out)
    assert applied.exit_code == 0, applied.output
    assert "No changes" in applied.stderr
    assert cli.arm.writes == 0


def test_a_saved_plan_fixes_the_scope_so_scope_flags_are_refused(cli: Cli, tmp_path: Path) -> None:
    out = _saved(cli, tmp_path)
    result = cli.run(
        "apply", str(out), "--yes", "--prune", "--firewall-policy", POLICY, scope=False
    )
    assert result.exit_code == 2
    assert "leave out --firewall-policy, --prune" in result.stderr
    assert cli.arm.writes == 0


def _valid(cli: Cli, tmp_path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_saved(cli, tmp_path).read_text())
    return document


BROKEN: dict[str, tuple[Any, str]] = {
    "not json": (b"{", "is not valid JSON"),
    "not utf-8": (b"\xe6\x08", "is not UTF-8 text"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "not a plan": (b'{"steps": []}', "is not an egress saved plan"),
    "duplicate key": (
        b'{"format": "egress-azure-plan", "format": "egress-azure-plan"}',
        "duplicate key 'format'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_are_refused_with_one_sentence(cli: Cli, tmp_path: Path, case: str) -> None:
    raw, expected = BROKEN[case]
    path = tmp_path / "broken.json"
    path.write_bytes(raw)
    result = _apply_file(cli, path)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert cli.arm.writes == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(version=2), "has version 2, this egress reads version 1"),
        (lambda d: d.pop("observed"), "field 'observed' field required"),
        (lambda d: d.update(extra=1), "field 'extra' extra inputs are not permitted"),
        (lambda d: d["steps"][0].update(kind="dns zone"), "field 'steps.0.kind'"),
        (lambda d: d["steps"][0].update(etag=7), "field 'steps.0.etag'"),
        (lambda d: d["target"].update(subnets=["/nope"]), "is not a subnet resource id"),
        (lambda d: d["steps"][2].update(subnet=None), "its subnet field disagree"),
    ],
)
def test_invalid_contents_name_the_field(
    cli: Cli, tmp_path: Path, change: Any, expected: str
) -> None:
    document = _valid(cli, tmp_path)
    change(document)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    result = _apply_file(cli, path)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert cli.arm.writes == 0


def test_an_unwritable_out_path_is_an_environment_error(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("plan", "--out", str(tmp_path / "missing-dir" / "plan.json"))
    assert result.exit_code == 5
    assert "cannot write the saved plan" in result.stderr
    assert not list(tmp_path.glob("missing-dir*"))


def test_a_saved_plan_reads_back_as_the_same_plan(tmp_path: Path) -> None:
    from egress.azure.diff import build_plan
    from egress.azure.saved_plan import load_saved_plan, write_saved_plan
    from egress.azure.state import AzureTarget, DesiredState, LiveState, SubnetRef

    target = AzureTarget("sub-1", "rg-hub", POLICY, "rt", "rg-net", (SubnetRef.parse(SUBNET_ID),))
    selector = {"properties": {"podSelector": {"matchLabels": {"app": "web"}}}}
    route = {
        "name": "egress-r",
        "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "None"},
    }
    desired = DesiredState(
        "egress",
        {},
        {"location": "eastus", "tags": {"managed-by": "egress"}, "properties": {"routes": [route]}},
        dns_proxy_required=False,
        kube_selector_groups={"egress-web": selector},
    )
    live = LiveState(
        {"id": "/p", "etag": "p", "name": POLICY, "properties": {}},
        kube_selector_groups={"egress-old": {"id": "/p/k", "etag": "k", **selector}},
        subnets={SUBNET_ID: {"id": SUBNET_ID, "etag": "s", "properties": {}}},
        read_selectors=True,
    )
    plan = build_plan(desired, live, target, prune=True)
    assert {s.kind for s in plan.steps} == {
        Kind.ROUTE_TABLE,
        Kind.SELECTOR,
        Kind.SUBNET,
    }
    path = tmp_path / "p.json"
    write_saved_plan(path, plan, cloud="AzureUSGovernment")
    assert load_saved_plan(path) == (plan, "AzureUSGovernment")
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # no temporary file left
