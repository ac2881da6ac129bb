"""Each user error of plan/apply: one sentence on stderr, the right exit code, no traceback."""

from __future__ import annotations

import pytest
from emulator import ArmEmulator

from azure_hub import POLICY_ID, SUB, SUBNET_ID, Cli, seed_hub

UNKNOWN_SUB = "99999999-9999-4999-8999-999999999999"
OTHER_SUB = "22222222-2222-4222-8222-222222222222"  # of another tenant


def _assert_one_clean_error(result: object, code: int, *needles: str) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == code, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


def test_no_credential(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name)
    _assert_one_clean_error(cli.run("plan"), 4, "no Azure credential is available", "az login")
    assert cli.arm.count_by_method() == {}


def test_rejected_secret(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    _assert_one_clean_error(cli.run("plan"), 4, "Azure sign-in failed", "AADSTS7000215")


def test_wrong_subscription(cli: Cli) -> None:
    argv = ["plan", "--subscription", UNKNOWN_SUB, "--resource-group", "rg-hub"]
    argv += ["--firewall-policy", "fp-hub", "--route-table", "rt-aks"]
    _assert_one_clean_error(
        cli.run(*argv, scope=False),
        4,
        f"subscription '{UNKNOWN_SUB}' was not found or is not visible to the signed-in identity",
        "--subscription",
    )


def test_subscription_of_another_tenant(cli: Cli) -> None:
    cli.arm.foreign_subscriptions.add(OTHER_SUB)
    argv = ["plan", "--subscription", OTHER_SUB, "--resource-group", "rg-hub"]
    argv += ["--firewall-policy", "fp-hub", "--route-table", "rt-aks"]
    _assert_one_clean_error(
        cli.run(*argv, scope=False),
        4,
        f"subscription '{OTHER_SUB}' belongs to another Entra tenant than the credential",
    )


def test_missing_permission_names_the_exact_actions(cli: Cli) -> None:
    cli.arm.denied_actions.add("Microsoft.Network/virtualNetworks/subnets/write")
    stderr = _assert_one_clean_error(
        cli.run("apply", "--yes"),
        4,
        "may not access subnet 'vnet-aks/aks-subnet' (AuthorizationFailed)",
        "Microsoft.Network/virtualNetworks/subnets/write",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.Network/routeTables/join/action",
    )
    assert "hint:" in stderr
    subnet = cli.arm.resource(SUBNET_ID)
    assert subnet is not None and "routeTable" not in subnet["properties"]


def test_plan_needs_only_read_permissions(cli: Cli) -> None:
    cli.arm.denied_actions.update(
        {
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
            "Microsoft.Network/routeTables/write",
            "Microsoft.Network/virtualNetworks/subnets/write",
        }
    )
    assert cli.run("plan").exit_code == 3


def test_firewall_policy_not_found_lists_the_ones_that_exist(cli: Cli) -> None:
    cli.arm.seed(POLICY_ID.replace("fp-hub", "fp-spoke"), {"properties": {}})
    argv = ["plan", "--subscription", SUB, "--resource-group", "rg-hub"]
    argv += ["--firewall-policy", "fp-hbu", "--route-table", "rt-aks"]
    _assert_one_clean_error(
        cli.run(*argv, scope=False),
        4,
        "firewall policy 'fp-hbu' was not found in resource group 'rg-hub' "
        "(policies there: fp-hub, fp-spoke)",
    )


def test_resource_group_not_found(cli: Cli) -> None:
    argv = ["plan", "--subscription", SUB, "--resource-group", "rg-nope"]
    argv += ["--firewall-policy", "fp-hub", "--route-table", "rt-aks"]
    _assert_one_clean_error(
        cli.run(*argv, scope=False), 4, "Resource group 'rg-nope' could not be found"
    )


def test_dns_proxy_disabled_while_network_rules_use_fqdns(cli: Cli, arm: ArmEmulator) -> None:
    seed_hub(arm, dns_proxy=False)
    for command in (["plan"], ["apply", "--yes"]):
        _assert_one_clean_error(
            cli.run(*command),
            4,
            "firewall policy 'fp-hub' has DNS proxy disabled but the compiled network rules use "
            "FQDNs",
            "ntp.ubuntu.com",
            "--enable-dns-proxy true",
        )
    assert arm.writes == 0


def test_apply_without_a_terminal_and_without_yes_refuses(cli: Cli) -> None:
    _assert_one_clean_error(cli.run("apply"), 2, "refusing to apply without confirmation", "--yes")
    assert cli.arm.writes == 0


def test_missing_scope_is_a_usage_error(cli: Cli) -> None:
    _assert_one_clean_error(
        cli.run("plan", scope=False),
        2,
        "no Azure scope for --subscription, --resource-group, --firewall-policy",
    )


def test_malformed_subnet_id_is_a_usage_error(cli: Cli) -> None:
    argv = ["plan", "--subscription", SUB, "--resource-group", "rg-hub"]
    argv += ["--firewall-policy", "fp-hub", "--subnet-id", "aks-subnet"]
    _assert_one_clean_error(
        cli.run(*argv, scope=False), 2, "subnet id 'aks-subnet' is not a subnet resource id"
    )


@pytest.mark.parametrize(("answer", "code", "writes"), [("n\n", 2, 0), ("y\n", 0, 3)])
def test_apply_on_a_terminal_asks_first(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, answer: str, code: int, writes: int
) -> None:
    from egress.cli import azure_cmds

    monkeypatch.setattr(azure_cmds, "stdin_is_terminal", lambda: True)
    result = cli.run("apply", stdin=answer)
    assert result.exit_code == code, result.output
    assert "Apply these 3 change(s)? [y/N]" in result.stderr
    assert cli.arm.writes == writes
    if code:
        assert "Cancelled; nothing was written." in result.stderr
