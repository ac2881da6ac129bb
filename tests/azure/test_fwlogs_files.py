"""Firewall log files: every export shape, bad input, and `egress firewall explain` on them.

The rows come from real requests through squid (squid_lab), written out the way the CLI, the
portal and a storage account's diagnostic setting write them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from egress.cli import app
from egress.policy import load_policy

from squid_lab import SquidLab, azfw_rows

# All names below are resolved locally by squid's hosts file, never contacted.
ALLOWED = "mcr.microsoft.com"
SHADOWED = "github.com"  # the user's policy allows it; an earlier deny rule wins
NOT_APPLIED = "charts.example.test"  # the user's policy allows it; no rule on the firewall yet
CATALOG_HTTP = "security.ubuntu.com"  # catalog feature ubuntu-updates, not enabled
CATALOG_HTTPS = "nvidia.github.io"  # catalog feature gpu, not enabled
UNKNOWN = "unknown.example.test"
NAMES = [ALLOWED, SHADOWED, NOT_APPLIED, CATALOG_HTTP, CATALOG_HTTPS, UNKNOWN]
RESOURCE = (
    "/SUBSCRIPTIONS/SUB-1/RESOURCEGROUPS/RG-HUB/PROVIDERS/MICROSOFT.NETWORK/AZUREFIREWALLS/FW-HUB"
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("lab")
    with SquidLab(
        workdir, allow={"AllowMcr": [ALLOWED]}, deny={"DenyGithub": [SHADOWED]}, names=NAMES
    ) as lab:
        for name in (ALLOWED, SHADOWED, SHADOWED, NOT_APPLIED, CATALOG_HTTP, UNKNOWN):
            lab.get(name)
        lab.connect(CATALOG_HTTPS)
        return azfw_rows(lab.wait_for_log(7))


def _cli_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def write_cli_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    """`az monitor log-analytics query -o json`: objects of strings, plus TableName."""
    items = [
        {"TableName": "PrimaryResult", "Type": "AZFWApplicationRule"}
        | {k: _cli_value(v) for k, v in r.items()}
        for r in rows
    ]
    path.write_text(json.dumps(items, indent=2))
    return path


def write_json_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    lines = [
        json.dumps({"Type": "AZFWApplicationRule"} | {k: _cli_value(v) for k, v in r.items()})
        for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_api_document(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The query API's own answer (no Type column: --table names the table)."""
    names = list(rows[0])
    document = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [{"name": n, "type": "string"} for n in names],
                "rows": [
                    [_cli_value(r[n]) if n == "TimeGenerated" else r[n] for n in names]
                    for r in rows
                ],
            }
        ]
    }
    path.write_text(json.dumps(document))
    return path


def write_portal_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The portal's "Export to CSV (all columns)": zone in the header, US-style times."""
    names = list(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["TimeGenerated [UTC]", *names[1:], "Type"])
        for r in rows:
            moment: datetime = r["TimeGenerated"]
            half = "PM" if moment.hour >= 12 else "AM"
            stamp = (
                f"{moment.month}/{moment.day}/{moment.year}, {moment.hour % 12 or 12}:"
                f"{moment:%M:%S}.{moment.microsecond // 1000:03d} {half}"
            )
            writer.writerow([stamp, *[r[n] for n in names[1:]], "AZFWApplicationRule"])
    return path


def write_storage_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A storage account's diagnostic JSON lines: time, category, properties."""
    lines = []
    for r in rows:
        properties = {k: v for k, v in r.items() if k != "TimeGenerated"}
        lines.append(
            json.dumps(
                {
                    "time": _cli_value(r["TimeGenerated"]),
                    "resourceId": RESOURCE,
                    "category": "AZFWApplicationRule",
                    "operationName": "AzureFirewallApplicationRuleLog",
                    "properties": properties,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "allow": [
                    {"name": "github", "fqdn": SHADOWED, "ports": ["http:80"]},
                    {"name": "charts", "fqdn": NOT_APPLIED, "ports": ["http:80"]},
                ]
            }
        )
    )
    return path


def explain(logs: Path, policy: Path | None, *extra: str) -> tuple[int, str, str]:
    args = ["firewall", "explain", "--logs", str(logs), "--source", "127.0.0.0/8"]
    args += ["--region", "eastus", "--days", "2", *extra]
    if policy is not None:
        args += ["--policy", str(policy)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.output


WRITERS = {
    "cli.json": write_cli_json,
    "rows.jsonl": write_json_lines,
    "api.json": write_api_document,
    "portal.csv": write_portal_csv,
    "storage.json": write_storage_lines,
}


@pytest.fixture
def exports(tmp_path: Path, rows: list[dict[str, Any]]) -> Iterator[dict[str, Path]]:
    yield {name: writer(tmp_path / name, rows) for name, writer in WRITERS.items()}


def test_every_export_shape_reads_the_same_decisions(
    exports: dict[str, Path], policy: Path
) -> None:
    answers = {}
    for name, path in exports.items():
        extra = ("--table", "AZFWApplicationRule") if name == "api.json" else ()
        code, out, _ = explain(path, policy, "--format", "json", *extra)
        assert code == 0, (name, out)
        document = json.loads(out)
        answers[name] = document["denials"]
        assert document["decisions_read"] == 7
    first = answers["cli.json"]
    assert len(first) == 5
    for name, denials in answers.items():
        assert denials == first, name


def test_explain_names_the_catalog_entry_the_policy_and_a_candidate(
    exports: dict[str, Path], policy: Path
) -> None:
    code, out, _ = explain(exports["rows.jsonl"], policy, "--format", "json")
    assert code == 0
    denials = {d["destination"]: d for d in json.loads(out)["denials"]}
    assert ALLOWED not in denials  # allowed traffic is not a denial
    ubuntu = denials[CATALOG_HTTP]
    assert (ubuntu["finding"], ubuntu["feature"], ubuntu["entry"]) == (
        "enable-feature",
        "ubuntu-updates",
        "ubuntu-updates/ubuntu-security",
    )
    assert ubuntu["doc"].startswith("https://learn.microsoft.com/")
    assert ubuntu["denied_by"] == ["default action (no rule matched)"]
    gpu = denials[CATALOG_HTTPS]
    assert (gpu["finding"], gpu["feature"], gpu["port"]) == ("enable-feature", "gpu", 443)
    shadowed = denials[SHADOWED]
    assert shadowed["finding"] == "shadowed" and shadowed["count"] == 2
    assert "fp-lab/egress-lab/lab-deny/DenyGithub" in shadowed["advice"]
    assert denials[NOT_APPLIED]["finding"] == "not-applied"
    assert denials[NOT_APPLIED]["entry"] == "policy/allow[1] charts"
    unknown = denials[UNKNOWN]
    assert unknown["finding"] == "unknown"
    candidate = policy.with_name("candidate.yaml")
    candidate.write_text(unknown["candidate"])
    allowed = load_policy(candidate).allow  # the candidate is a valid policy entry
    assert (allowed[0].fqdn, allowed[0].ports) == (UNKNOWN, ("http:80",))


def test_explain_without_the_policy_says_enable_nothing_for_the_users_hosts(
    exports: dict[str, Path],
) -> None:
    code, out, _ = explain(exports["portal.csv"], None)
    assert code == 0
    assert (
        "enable-feature: enable feature ubuntu-updates (entry ubuntu-updates/ubuntu-security" in out
    )
    assert "candidate policy entry (review before adding; nothing was allowed):" in out
    assert "fqdn: charts.example.test" in out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cut.jsonl", None, "cut.jsonl:7: is not a JSON object (a truncated"),
        ("garbage.csv", "\x00\x01binary\n\xff", "is not"),
        (
            "threat.jsonl",
            '{"Type": "AZFWThreatIntel", "TimeGenerated": "2026-12-01T00:00:00Z"}\n',
            "rows of table AZFWThreatIntel are not firewall decisions",
        ),
        (
            "legacy.jsonl",
            '{"category": "AzureFirewallApplicationRule", "properties": {}}\n',
            "rows of table AzureFirewallApplicationRule are not firewall decisions",
        ),
        (
            "nocol.csv",
            "TimeGenerated [UTC],SourceIp,Fqdn,DestinationPort,Type\n"
            "2026-12-01T00:00:00Z,10.0.0.4,a.example.test,443,AZFWApplicationRule\n",
            "nocol.csv:2: AZFWApplicationRule row has no column Action",
        ),
        (
            "local.csv",
            "TimeGenerated [Local Time],SourceIp,Fqdn,DestinationPort,Action,Type\n"
            '"12/1/2026, 9:00:00.000 AM",10.0.0.4,a.example.test,443,Deny,AZFWApplicationRule\n',
            "local.csv:2: TimeGenerated '12/1/2026, 9:00:00.000 AM' has no time zone",
        ),
        (
            "notable.jsonl",
            '{"TimeGenerated": "2026-12-01T00:00:00Z", "SourceIp": "10.0.0.4"}\n',
            "notable.jsonl:1: the row names no table",
        ),
    ],
)
def test_bad_files_name_the_file_line_and_fix(
    tmp_path: Path, exports: dict[str, Path], name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is None:
        text = exports["rows.jsonl"].read_text()
        path.write_text(text[: len(text) - 40])  # cut inside the last line
    else:
        path.write_bytes(content.encode("latin-1") if "\x00" in content else content.encode())
    code, out, full = explain(path, None)
    assert code == 2, full
    assert out == ""  # no partial output
    assert message in " ".join(full.split()), full
    assert "Traceback" not in full


def test_a_time_zone_option_places_local_times_and_unknown_zones_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "local.csv"
    path.write_text(
        "TimeGenerated [Local Time],SourceIp,SourcePort,Fqdn,DestinationPort,Action,Type\n"
        '"12/1/2026, 10:30:00.000 AM",127.0.0.4,40000,a.example.test,443,Deny,AZFWApplicationRule\n'
    )
    code, out, full = explain(
        path, None, "--time-zone", "Europe/Berlin", "--format", "json", "--now", "2026-12-02"
    )
    assert code == 0, full
    assert json.loads(out)["denials"][0]["first"] == "2026-12-01T09:30:00+00:00"
    code, _, full = explain(path, None, "--time-zone", "Mars/Olympus")
    assert code == 2 and "--time-zone 'Mars/Olympus' is not a known time zone" in full


def test_zero_records_is_a_clean_empty_answer(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    code, out, _ = explain(path, None)
    assert code == 0
    assert "no deny decisions for these sources in the window." in out
