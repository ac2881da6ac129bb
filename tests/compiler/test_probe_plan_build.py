"""The probe plan built from the compiled rules: allow checks, hints and deny canaries."""

from __future__ import annotations

# Every host name and address in this file is compiler input/output data: never contacted.
import ipaddress
from pathlib import Path

import pytest

from egress.compiler import CompileRequest, compile_request
from egress.errors import UsageError
from egress.model import CompiledPolicy
from egress.probe_plan import Check, CheckKind, Expectation, HostSource, parse_plan

from .helpers import app_allowed, compile_with

CANARIES = {
    "canary/unlisted-fqdn-https",
    "canary/unlisted-fqdn-http",
    "canary/direct-ip-https",
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
    direct = checks["canary/direct-ip-https"]
    assert ipaddress.ip_address(direct.host).is_global
    dns = checks["canary/dns-outside-resolver"]
    assert (dns.kind, dns.port, dns.transport) == (CheckKind.DNS, 53, "udp")
    assert dns.dns_query_name
    wrong = checks["canary/allowed-fqdn-wrong-port"]
    assert app_allowed(policy, wrong.host, "https", 443)
    assert wrong.port not in (80, 443)
    assert checks["canary/ssh"].port == 22


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
    assert checks["canary/direct-ip-https"].host == "9.9.9.9"  # data: never contacted
    # data: never contacted
    assert checks["canary/dns-outside-resolver"].host not in ("8.8.8.8", "1.1.1.1")
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
