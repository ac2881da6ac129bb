"""Bad environment and flags at the Azure boundary: the tool's own one-sentence error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from azure_hub import Cli


def _one_error(result: object, code: int, *needles: str) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == code, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("error:")], stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


def test_a_bogus_azure_token_credentials_is_a_usage_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "bogus")
    _one_error(cli.run("plan"), 2, "AZURE_TOKEN_CREDENTIALS", "'bogus'", "environmentcredential")
    assert cli.arm.count_by_method() == {}


def test_the_ca_file_vanishing_in_the_middle_of_an_apply_is_a_clean_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca-copy.pem"
    shutil.copy(cli.arm.ca_path, ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    record = cli.arm.record

    def vanish_after_first_write(
        method: str, path: str, status: int, conditions: dict[str, str] | None = None
    ) -> None:
        record(method, path, status, conditions)
        if method == "PUT":
            ca.unlink(missing_ok=True)

    monkeypatch.setattr(cli.arm, "record", vanish_after_first_write)
    stderr = _one_error(cli.run("apply", "--yes"), 4, str(ca))
    assert cli.arm.count_by_method()["PUT"] == 1, stderr


@pytest.mark.parametrize("subscription", ["sub-1", "00000000-0000-0000-0000-00000000000", " ", "x"])
def test_a_subscription_id_that_is_not_a_guid(cli: Cli, subscription: str) -> None:
    argv = ["plan", "--subscription", subscription, "--resource-group", "rg-hub"]
    argv += ["--firewall-policy", "fp-hub", "--route-table", "rt-aks"]
    _one_error(cli.run(*argv, scope=False), 2, f"--subscription '{subscription}'", "GUID")
    assert cli.arm.count_by_method() == {}


@pytest.mark.parametrize(
    "content",
    [b"\xe6\x08", b"[" * 100_000 + b"]" * 100_000, b'{"a": 1,}'],
    ids=["utf8", "deep", "bad"],
)
def test_a_broken_compiled_folder_is_a_usage_error(
    cli: Cli, tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "rule-collection-groups.json").write_bytes(content)
    argv = ["plan", "--from", str(tmp_path)]
    _one_error(cli.run(*argv), 2, str(tmp_path / "rule-collection-groups.json"))
    assert cli.arm.count_by_method() == {}
