"""The probe plan built from the compiled rules: allow checks, hints and deny canaries."""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
import ipaddress
from pathlib import Path

import pytest

from egress.compiler import CompileRequest, compile_request
from egress.errors import UsageError
from egress.model import CompiledPolicy
from egress.probe_plan import (
    Check,
    CheckKind,
    Enforcement,
    Expectation,
    HostSource,
    TlsInspection,
    parse_plan,
)

from .helpers import app_allowed, compile_with

APP, NET = Enforcement.APPLICATION_RULE, Enforcement.NETWORK_RULE
CANARIES = {
    "canary/unlisted-fqdn-https",
    "canary/unlisted-fqdn-http",
    "canary/direct-ip",
    "canary/allowed-fqdn-wrong-port",
    "canary/dns-outside-resolver",
    "canary/ssh",
}


def _checks(policy: CompiledPolicy) -> dict[str, Check]:
    return {c.id: c for c in policy.probe_plan.checks}


def test_every_allow_check_points_at_a_real_rule() -> None:
    policy = compile_request(CompileRequest(features=("all",)))
    paths = {
        f"{g.name}/{c.name}/{r.name}"
        for g in policy.rule_collection_groups
        for c in g.collections
        for r in c.rules
    }
    allow = [c for c in policy.probe_plan.checks if c.expectation is Expectation.ALLOW]
    assert allow
    assert {c.rule for c in allow} <= paths


def test_check_kinds_and_hints() -> None:
    checks = {c.id: c for c in compile_request(CompileRequest(features=("all",))).probe_plan.checks}
    hcp = checks["required/hcp/https-443"]
    assert (hcp.host_source, hcp.kind, hcp.port) == (HostSource.API_SERVER, CheckKind.HTTPS, 443)
    tunnel = checks["required/tunnel-tcp-9000/tcp-9000"]
    assert (tunnel.host_source, tunnel.kind, tunnel.transport) == (
        HostSource.API_SERVER,
        CheckKind.TCP,
        "tcp",
    )
    udp = checks["required/tunnel-udp-1194/udp-1194"]
    assert udp.kind is CheckKind.UNVERIFIABLE and udp.unverifiable_reason
    ntp = checks["required/ntp/udp-123"]
    assert (ntp.host, ntp.kind, ntp.transport, ntp.port) == (
        "ntp.ubuntu.com",
        CheckKind.NTP,
        "udp",
        123,
    )
    data = checks["required/mcr-data/https-443"]
    assert data.host == "eastus.data.mcr.microsoft.com"
    assert data.destination == "*.data.mcr.microsoft.com"
    ubuntu = checks["ubuntu-updates/ubuntu-security/http-80"]
    assert (ubuntu.kind, ubuntu.port, ubuntu.required) == (CheckKind.HTTP, 80, False)
    assert checks["required/mcr/https-443"].required
    metrics = checks["azure-monitor/monitor-metrics/https-443"]
    assert metrics.host == "eastus.monitoring.azure.com"


def test_default_deny_canaries() -> None:
    policy = compile_request(CompileRequest())
    checks = _checks(policy)
    assert set(checks) >= CANARIES
    deny = [c for c in policy.probe_plan.checks if c.expectation is Expectation.DENY]
    assert {c.id for c in deny} == CANARIES
    unlisted = checks["canary/unlisted-fqdn-https"]
    assert not app_allowed(policy, unlisted.host, "https", 443)
    direct = checks["canary/direct-ip"]
    assert ipaddress.ip_address(direct.host).is_global
    assert (direct.kind, direct.port, direct.enforcement) == (CheckKind.TCP, 853, NET)
    dns = checks["canary/dns-outside-resolver"]
    assert (dns.kind, dns.port, dns.transport) == (CheckKind.DNS, 53, "udp")
    assert dns.dns_query_name and dns.enforcement is Enforcement.DNS_PROXY
    wrong = checks["canary/allowed-fqdn-wrong-port"]
    assert app_allowed(policy, wrong.host, "https", 443)
    assert not app_allowed(policy, wrong.host, "http", 80)  # a 470 the firewall states
    assert (wrong.kind, wrong.port, wrong.enforcement) == (CheckKind.HTTP, 80, APP)
    assert checks["canary/unlisted-fqdn-http"].enforcement is APP
    assert (checks["canary/ssh"].port, checks["canary/ssh"].enforcement) == (22, NET)
    for canary in deny:  # no canary can only ever be inconclusive: TLS always carries an SNI
        if canary.kind in (CheckKind.HTTPS, CheckKind.TLS):
            assert not _is_ip(canary.host), canary.id


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def test_every_check_records_its_enforcement_from_the_compiled_rules(tmp_path: Path) -> None:
    data = {  # data: never contacted
        "allow": [
            {"name": "web", "fqdn": "app.contoso.com", "ports": ["https:8443"]},
            {
                "name": "db",
                "cidr": "10.50.0.0/24",
                "ports": ["tcp:5432"],
                "probe_host": "db.contoso.com",
            },
        ]
    }
    plan = compile_with(tmp_path, data).probe_plan
    assert all(c.enforcement is not None for c in plan.checks)
    checks = {c.id: c for c in plan.checks}
    assert checks["policy/web/https-8443"].enforcement is APP  # an application-rule port
    assert checks["policy/db/tcp-5432"].enforcement is NET
    assert checks["required/ntp/udp-123"].enforcement is NET
    assert checks["required/mcr/https-443"].enforcement is APP
    wrong_tcp = [c for c in plan.checks if c.kind is CheckKind.TCP and c.port == 8443]
    assert not wrong_tcp  # 8443 is proxied now: never a network-rule canary port


def test_the_api_server_forbids_tls_inspection(tmp_path: Path) -> None:
    checks = _checks(compile_request(CompileRequest()))
    assert checks["required/hcp/https-443"].tls_inspection is TlsInspection.FORBIDDEN
    assert checks["required/mcr/https-443"].tls_inspection is TlsInspection.ALLOWED
    data = {  # data: never contacted
        "allow": [
            {
                "name": "bank",
                "fqdn": "api.bank.example",
                "ports": ["https:443"],
                "tls_inspection": "forbidden",
            }
        ]
    }
    own = _checks(compile_with(tmp_path, data))
    assert own["policy/bank/https-443"].tls_inspection is TlsInspection.FORBIDDEN


def test_the_policy_declares_canaries(tmp_path: Path) -> None:
    data = {  # data: never contacted
        "canaries": [
            {
                "name": "ours",
                "destination": "canary.contoso.com",
                "port": 2222,
                "kind": "tcp",
                "canary_server": True,
            },
            {
                "name": "ssh",
                "destination": "gitlab.com",
                "port": 22,
                "kind": "tcp",
                "canary_server": True,
            },
            {
                "name": "doh",
                "destination": "9.9.9.9",  # data: never contacted
                "port": 53,
                "kind": "dns",
                "dns_query_name": "example.com",
                "canary_server": True,
            },
        ]
    }
    plan = compile_with(tmp_path, data).probe_plan
    checks = {c.id: c for c in plan.checks}
    ours = checks["canary/ours"]
    assert (ours.host, ours.port, ours.canary_server, ours.enforcement) == (
        "canary.contoso.com",
        2222,
        True,
        NET,
    )
    assert (ours.expectation, ours.required) == (Expectation.DENY, True)
    assert checks["canary/ssh"].host == "gitlab.com"  # replaces the default of the same name
    assert checks["canary/doh"].dns_query_name == "example.com"
    assert "canary/unlisted-fqdn-https" in checks  # the defaults stay
    only = compile_with(tmp_path, {**data, "default_canaries": False}).probe_plan
    assert {c.id for c in only.checks if c.expectation is Expectation.DENY} == {
        "canary/ours",
        "canary/ssh",
        "canary/doh",
    }


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ({"name": "x", "destination": "mcr.microsoft.com", "port": 443, "kind": "tls"}, "allow"),
        ({"name": "x", "destination": "203.0.113.9", "port": 443, "kind": "https"}, "sends no SNI"),
        ({"name": "x", "destination": "10.50.0.9", "port": 5432, "kind": "tcp"}, "rules allow"),
        ({"name": "x", "destination": "sftp.contoso.com", "port": 22, "kind": "tcp"}, "never be"),
        ({"name": "x", "destination": "192.0.2.53", "port": 53, "kind": "dns"}, "never be shown"),
    ],
)  # fmt: skip
def test_a_canary_the_rules_allow_or_that_can_never_be_shown_blocked_is_refused(
    tmp_path: Path, canary: dict[str, object], message: str
) -> None:
    data = {
        "allow": [{"name": "db", "cidr": "10.50.0.0/24", "ports": ["tcp:5432"]}],
        "canaries": [canary],
    }
    with pytest.raises(UsageError, match=message) as info:
        compile_with(tmp_path, data)
    assert "canaries entry 'x'" in str(info.value)


def test_canaries_avoid_what_the_policy_allows(tmp_path: Path) -> None:
    data = {
        "allow": [
            # data: never contacted
            {"name": "org", "fqdn": "example.org", "ports": ["https:443", "http:80"]},
            {"name": "alt", "cidr": "1.1.1.0/24", "ports": ["tcp:853"]},  # data: never contacted
            {"name": "web", "fqdn": "app.contoso.com", "ports": ["https:8443"]},
        ],
        "cluster": {"custom_dns_servers": ["8.8.8.8"]},  # data only: never contacted
    }
    checks = _checks(compile_with(tmp_path, data))
    assert checks["canary/unlisted-fqdn-https"].host == "example.net"  # data: never contacted
    assert checks["canary/direct-ip"].host == "9.9.9.9"  # data: never contacted
    resolver = checks["canary/dns-outside-resolver"].host
    assert resolver not in ("8.8.8.8", "1.1.1.1")  # data: never contacted
    assert checks["canary/allowed-fqdn-wrong-port"].port != 8443


def test_probe_hosts_make_a_wildcard_verifiable(tmp_path: Path) -> None:
    data = {
        "features": ["azure-monitor"],
        "probe_hosts": {"monitor-ods": "ws1.ods.opinsights.azure.com"},
    }
    checks = _checks(compile_with(tmp_path, data))
    ods = checks["azure-monitor/monitor-ods/https-443"]
    assert (ods.kind, ods.host) == (CheckKind.HTTPS, "ws1.ods.opinsights.azure.com")
    oms = checks["azure-monitor/monitor-oms/https-443"]
    assert oms.kind is CheckKind.UNVERIFIABLE


def test_user_allow_checks(tmp_path: Path) -> None:
    data = {
        "allow": [
            {
                "name": "gh",
                "fqdn": "*.githubusercontent.com",
                "ports": ["https:443"],
                "probe_host": "raw.githubusercontent.com",
            },
            {"name": "wild", "fqdn": "*.contoso.com", "ports": ["https:443"]},
            {"name": "pg", "cidr": "10.50.0.0/24", "ports": ["tcp:5432"]},
            {"name": "one", "cidr": "10.60.0.7", "ports": ["tcp:6379"]},
        ]
    }
    checks = _checks(compile_with(tmp_path, data))
    assert checks["policy/gh/https-443"].host == "raw.githubusercontent.com"
    assert checks["policy/wild/https-443"].kind is CheckKind.UNVERIFIABLE
    assert checks["policy/pg/tcp-5432"].kind is CheckKind.UNVERIFIABLE
    redis = checks["policy/one/tcp-6379"]
    assert (redis.host, redis.kind, redis.feature, redis.required) == (
        "10.60.0.7",
        CheckKind.TCP,
        "policy",
        False,
    )


def test_plan_round_trips_and_orders_required_first() -> None:
    plan = compile_request(CompileRequest(features=("all",))).probe_plan
    assert parse_plan(plan.to_json(), origin="test") == plan
    kinds = [(c.expectation is Expectation.DENY, c.feature != "required") for c in plan.checks]
    assert kinds == sorted(kinds)
    assert plan.cloud == "AzureCloud" and plan.region == "eastus"


def test_named_allowance_check_ids_survive_reordering(tmp_path: Path) -> None:
    first = {"name": "gh", "fqdn": "github.com", "ports": ["https:443"]}
    second = {"fqdn": "api.contoso.com", "ports": ["https:443"]}
    one = _checks(compile_with(tmp_path, {"allow": [first, second]}))
    two = _checks(compile_with(tmp_path, {"allow": [second, first]}))
    assert "policy/gh/https-443" in one and "policy/gh/https-443" in two
    assert "policy/allow-1/https-443" in one and "policy/allow-0/https-443" in two


def test_probe_hosts_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"probe_hosts names unknown catalog entry 'monitor-odss'"):
        compile_with(tmp_path, {"probe_hosts": {"monitor-odss": "ws.ods.opinsights.azure.com"}})
    with pytest.raises(UsageError, match=r"'ws\.contoso\.com' is not under \*\.ods"):
        compile_with(
            tmp_path,
            {"features": ["azure-monitor"], "probe_hosts": {"monitor-ods": "ws.contoso.com"}},
        )


def test_tag_mode_keeps_an_allowed_name_on_a_wrong_port(tmp_path: Path) -> None:
    policy = compile_with(tmp_path, {"fqdn_mode": "tag"})
    wrong = _checks(policy)["canary/allowed-fqdn-wrong-port"]
    assert (wrong.host, wrong.kind, wrong.port) == ("mcr.microsoft.com", CheckKind.HTTP, 80)
    unlisted = _checks(policy)["canary/unlisted-fqdn-https"]
    assert unlisted.host == "example.org"  # data: never contacted


def test_the_policy_names_the_firewall_profile(tmp_path: Path) -> None:
    assert compile_request(CompileRequest()).probe_plan.firewall_profile.value == "azure-firewall"
    plan = compile_with(tmp_path, {"firewall": {"profile": "generic"}}).probe_plan
    assert plan.firewall_profile.value == "generic"
