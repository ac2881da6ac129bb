"""Helpers for compiler tests: write a policy file and compile it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from egress.compiler import CompileRequest, compile_request
from egress.model import ApplicationRule, CompiledPolicy, NetworkRule


def write_policy(tmp_path: Path, data: dict[str, Any], name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def compile_with(
    tmp_path: Path,
    data: dict[str, Any] | None = None,
    *,
    cloud: str = "AzureCloud",
    region: str = "eastus",
    features: tuple[str, ...] = (),
) -> CompiledPolicy:
    path = write_policy(tmp_path, data) if data is not None else None
    return compile_request(
        CompileRequest(cloud=cloud, region=region, features=features, policy_path=path)
    )


def app_allowed(policy: CompiledPolicy, fqdn: str, protocol: str, port: int) -> bool:
    """True when an application rule admits fqdn on protocol:port (wildcards never the apex)."""
    for rule in policy.all_rules():
        if not isinstance(rule, ApplicationRule):
            continue
        if not any(
            p.protocol_type.value.lower() == protocol and p.port == port for p in rule.protocols
        ):
            continue
        for target in rule.target_fqdns:
            if target == fqdn:
                return True
            if (
                target.startswith("*.")
                and fqdn.endswith(target[1:])
                and (not fqdn.startswith("*.") or len(fqdn) > len(target))
            ):
                return True
    return False


def net_allowed(policy: CompiledPolicy, destination: str, protocol: str, port: int) -> bool:
    """True when a network rule carries destination (address, tag or FQDN) on protocol/port."""
    for rule in policy.all_rules():
        if not isinstance(rule, NetworkRule):
            continue
        if protocol.upper() not in {p.value for p in rule.ip_protocols}:
            continue
        ports_ok = any(
            int(r.partition("-")[0]) <= port <= int(r.partition("-")[2] or r)
            for r in rule.destination_ports
        )
        if ports_ok and destination in (*rule.destination_addresses, *rule.destination_fqdns):
            return True
    return False
