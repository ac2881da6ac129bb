"""Fuzz command lines and the environment variables egress reads, for every offline command.

`probe run` is left out (a valid command line would probe the network) and `plan` always gets
loopback ARM and Entra endpoints with only the environment credential, which is unset, so
no case sends a packet off this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_cli import LOOPBACK_ARM, fuzz_settings, remove, run, scratch
from fuzz_strategies import PLAUSIBLE_TEXT

# Paths stay inside the case folder (relative names; the test runs there).
NAMES = st.sampled_from(["out", "o.json", "store.sqlite", "policy.yaml", "plan.json", "missing",
                         ".", "..", "out/nested", "empty.sqlite", "logs.jsonl"])  # fmt: skip
VALUES = st.one_of(PLAUSIBLE_TEXT, st.text(max_size=20).filter(lambda v: not v.startswith("/")))
COMMON = {"--region": VALUES, "--cloud": VALUES, "--feature": VALUES, "--policy": NAMES}
COMMANDS: dict[tuple[str, ...], dict[str, st.SearchStrategy[str] | None]] = {
    ("compile",): {**COMMON, "--target": VALUES, "--stdout": VALUES, "-o": NAMES,
                   "--output": NAMES, "--catalog-dir": NAMES},
    ("catalog",): {"--cloud": VALUES, "--feature": VALUES, "--region": VALUES},
    ("lint",): dict(COMMON),
    ("report",): {"--store": NAMES, "--days": VALUES, "--since": VALUES, "--until": VALUES,
                  "--format": VALUES, "-o": NAMES, "--now": VALUES},
    ("report", "ingest"): {"--store": NAMES, "--ignore-non-json": None},
    ("report", "prune"): {"--store": NAMES, "--keep-days": VALUES, "--now": VALUES},
    ("probe", "manifest"): {**COMMON, "--plan": NAMES, "--node-pool": VALUES,
                            "--node-selector": VALUES, "--schedule": VALUES,
                            "--store-pvc": VALUES, "--storage-class": VALUES, "--image": VALUES,
                            "--namespace": VALUES, "--cluster": VALUES, "--deadline": VALUES,
                            "-o": NAMES},
    ("plan",): {**COMMON, "--subscription": VALUES, "--resource-group": VALUES,
                "--firewall-policy": VALUES, "--route-table": VALUES, "--subnet-id": VALUES,
                "--from": NAMES, "--prune": None, "--managed-prefix": VALUES},
}  # fmt: skip
# An environment cannot hold NUL; and only the (unset) environment credential may be chosen,
# never one that would ask IMDS or a developer tool for a token.
OTHER_CREDENTIALS = {"dev", "prod", "azureclicredential", "azuredeveloperclicredential",
                     "azurepowershellcredential", "interactivebrowsercredential",
                     "managedidentitycredential", "visualstudiocodecredential",
                     "workloadidentitycredential"}  # fmt: skip
ENV_VALUES = VALUES.filter(lambda v: "\x00" not in v and v.strip().lower() not in OTHER_CREDENTIALS)
ENV = st.fixed_dictionaries(
    {},
    optional={
        "EGRESS_STORE": NAMES,
        "EGRESS_REPORT_NOW": ENV_VALUES,
        "AZURE_TOKEN_CREDENTIALS": ENV_VALUES,
        "AZURE_AUTHORITY_HOST": st.sampled_from(["https://127.0.0.1:9", "http://x", "", "x"]),
    },
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[command]
    argv = list(command)
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)):
        value = options[flag]
        argv.append(flag)
        if value is not None and draw(st.integers(0, 9)):  # sometimes the value is missing
            argv.append(draw(value))
    if command == ("report", "ingest"):
        argv += draw(st.lists(NAMES, max_size=2))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(VALUES))  # a stray argument
    if command == ("plan",):
        argv += LOOPBACK_ARM  # last wins: ARM and Entra stay on a closed loopback port
    return argv


@pytest.fixture(scope="module")
def case_dir() -> Iterator[Path]:
    with scratch("fuzz-flags-") as folder:
        # One level down, so `-o ..` names a folder of this test's own (never /dev/shm or /tmp).
        path = Path(folder) / "cases"
        path.mkdir()
        (path.parent / "keep").write_text("not egress output\n")
        (path / "empty.sqlite").write_bytes(b"")
        (path / "policy.yaml").write_text(
            "allow:\n  - fqdn: a.example.net\n    ports: [https:443]\n"
        )
        (path / "logs.jsonl").write_text('{"record": "check"}\n')
        yield path


@fuzz_settings(2500)
@given(argv=command_lines(), env=ENV)
def test_command_lines(
    case_dir: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str]
) -> None:
    monkeypatch.chdir(case_dir)
    before = set(case_dir.iterdir())
    run(argv, env=env)
    for path in set(case_dir.iterdir()) - before:
        remove(path)  # each case starts from the same folder
