"""Terraform (azurerm >= 4) for the rule collection groups and the route table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from egress.model import (
    ApplicationRule,
    CompiledPolicy,
    NatRule,
    NetworkRule,
    RuleCollection,
    RuleCollectionGroup,
    Sources,
)
from egress.targets.base import Files, Target
from egress.targets.features import AZURE_RULE_FEATURES, Feature
from egress.targets.route_table import managed_tags

_INDENT = "  "
_MAX_LINE = 100


_HCL_ESCAPES = {"b": "\\u0008", "f": "\\u000c"}  # JSON escapes HCL does not know


def hcl_string(value: str) -> str:
    """A quoted HCL string; `${` and `%{` are escaped so nothing is interpolated."""
    quoted = json.dumps(value, ensure_ascii=False)
    quoted = re.sub(r"\\(.)", lambda m: _HCL_ESCAPES.get(m.group(1), m.group(0)), quoted)
    return quoted.replace("${", "$${").replace("%{", "%%{")


def _list(values: Iterable[str]) -> list[str]:
    """An HCL list value: the writer puts it on one line or one item per line."""
    return [hcl_string(v) for v in values]


def _optional_string(value: str) -> str | None:
    return hcl_string(value) if value else None


Value = str | list[str] | None


def resource_label(name: str) -> str:
    """A Terraform resource name from an Azure name (letters, digits, _ and -)."""
    label = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return label if re.match(r"[A-Za-z_]", label) else f"_{label}"


class _Writer:
    """Collects indented HCL lines with aligned `=` inside each block."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def open(self, header: str) -> None:
        self.lines.append(f"{_INDENT * self.depth}{header} {{")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.lines.append(f"{_INDENT * self.depth}}}")

    def attributes(self, pairs: Iterable[tuple[str, Value]]) -> None:
        present = [(key, value) for key, value in pairs if value is not None]
        width = max((len(key) for key, _ in present), default=0)
        indent = _INDENT * self.depth
        for key, value in present:
            head = f"{indent}{key.ljust(width)} = "
            if isinstance(value, str):
                self.lines.append(head + value)
                continue
            one_line = head + "[" + ", ".join(value) + "]"
            if len(one_line) <= _MAX_LINE:
                self.lines.append(one_line)
                continue
            self.lines.append(head + "[")
            self.lines.extend(f"{indent}{_INDENT}{item}," for item in value)
            self.lines.append(f"{indent}]")

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _sources(sources: Sources) -> list[tuple[str, Value]]:
    return [
        ("source_addresses", _list(sources.addresses) if sources.addresses else None),
        ("source_ip_groups", _list(sources.ip_groups) if sources.ip_groups else None),
    ]


def _application_rule(w: _Writer, rule: ApplicationRule) -> None:
    w.open("rule")
    w.attributes(
        [
            ("name", hcl_string(rule.name)),
            ("description", _optional_string(rule.description)),
            *_sources(rule.sources),
            ("destination_fqdns", _list(rule.target_fqdns) if rule.target_fqdns else None),
            ("destination_fqdn_tags", _list(rule.fqdn_tags) if rule.fqdn_tags else None),
        ]
    )
    for protocol in rule.protocols:
        w.open("protocols")
        w.attributes(
            [("type", hcl_string(str(protocol.protocol_type))), ("port", str(protocol.port))]
        )
        w.close()
    w.close()


def _network_rule(w: _Writer, rule: NetworkRule) -> None:
    w.open("rule")
    w.attributes(
        [
            ("name", hcl_string(rule.name)),
            ("description", _optional_string(rule.description)),
            ("protocols", _list(str(p) for p in rule.ip_protocols)),
            *_sources(rule.sources),
            (
                "destination_addresses",
                _list(rule.destination_addresses) if rule.destination_addresses else None,
            ),
            (
                "destination_fqdns",
                _list(rule.destination_fqdns) if rule.destination_fqdns else None,
            ),
            ("destination_ports", _list(rule.destination_ports)),
        ]
    )
    w.close()


def _nat_rule(w: _Writer, rule: NatRule) -> None:
    w.open("rule")
    w.attributes(
        [
            ("name", hcl_string(rule.name)),
            ("description", _optional_string(rule.description)),
            ("protocols", _list(str(p) for p in rule.ip_protocols)),
            ("source_addresses", _list(rule.source_addresses)),
            ("destination_address", hcl_string(rule.destination_address)),
            ("destination_ports", _list([rule.destination_port])),
            ("translated_address", hcl_string(rule.translated_address)),
            # azurerm takes an int here although the REST field is a string.
            ("translated_port", str(int(rule.translated_port))),
        ]
    )
    w.close()


def _collection(w: _Writer, collection: RuleCollection) -> None:
    kinds = {type(rule) for rule in collection.rules}
    if collection.is_nat:
        block, action = "nat_rule_collection", "Dnat"  # azurerm spells the REST "DNAT" so
    elif kinds <= {ApplicationRule}:
        block, action = "application_rule_collection", str(collection.action)
    else:
        block, action = "network_rule_collection", str(collection.action)
    w.open(block)
    w.attributes(
        [
            ("name", hcl_string(collection.name)),
            ("priority", str(collection.priority)),
            ("action", hcl_string(action)),
        ]
    )
    for rule in collection.rules:
        if isinstance(rule, ApplicationRule):
            _application_rule(w, rule)
        elif isinstance(rule, NetworkRule):
            _network_rule(w, rule)
        else:
            _nat_rule(w, rule)
    w.close()


def _group(w: _Writer, group: RuleCollectionGroup, previous: str | None) -> None:
    w.open(
        f'resource "azurerm_firewall_policy_rule_collection_group" '
        f"{hcl_string(resource_label(group.name))}"
    )
    w.attributes(
        [
            ("name", hcl_string(group.name)),
            ("firewall_policy_id", "var.firewall_policy_id"),
            ("priority", str(group.priority)),
        ]
    )
    if previous is not None:
        # Azure updates one group of a policy at a time.
        w.attributes(
            [("depends_on", f"[azurerm_firewall_policy_rule_collection_group.{previous}]")]
        )
    for collection in group.collections:
        w.blank()
        _collection(w, collection)
    w.close()


def _variables(w: _Writer, policy: CompiledPolicy) -> None:
    variables = [
        ("firewall_policy_id", "Resource id of the existing Azure Firewall Policy.", None),
        ("resource_group_name", "Resource group of the route table.", None),
        ("location", "Region of the route table.", policy.region),
    ]
    for name, description, default in variables:
        w.open(f"variable {hcl_string(name)}")
        w.attributes(
            [
                ("type", "string"),
                ("description", hcl_string(description)),
                ("default", hcl_string(default) if default is not None else None),
            ]
        )
        w.close()
        w.blank()


def _route_table(w: _Writer, policy: CompiledPolicy) -> None:
    table = policy.route_table
    w.open(f'resource "azurerm_route_table" {hcl_string(resource_label(table.name))}')
    w.attributes(
        [
            ("name", hcl_string(table.name)),
            ("location", "var.location"),
            ("resource_group_name", "var.resource_group_name"),
            (
                "bgp_route_propagation_enabled",
                "false" if table.disable_bgp_route_propagation else "true",
            ),
        ]
    )
    w.open("tags =")
    w.attributes([(hcl_string(k), hcl_string(v)) for k, v in sorted(managed_tags(policy).items())])
    w.close()
    for route in table.routes:
        w.blank()
        w.open("route")
        w.attributes(
            [
                ("name", hcl_string(route.name)),
                ("address_prefix", hcl_string(route.address_prefix)),
                ("next_hop_type", hcl_string(str(route.next_hop_type))),
                (
                    "next_hop_in_ip_address",
                    hcl_string(route.next_hop_ip_address) if route.next_hop_ip_address else None,
                ),
            ]
        )
        w.close()
    w.close()


def terraform_text(policy: CompiledPolicy) -> str:
    """The whole .tf file."""
    w = _Writer()
    w.lines.append(f"# AKS egress for {policy.cloud} {policy.region}, generated by egress.")
    w.open("terraform")
    w.open("required_providers")
    w.open("azurerm =")
    w.attributes([("source", '"hashicorp/azurerm"'), ("version", '">= 4.0"')])
    w.close()
    w.close()
    w.close()
    w.blank()
    _variables(w, policy)
    previous: str | None = None
    for group in policy.rule_collection_groups:
        _group(w, group, previous)
        w.blank()
        previous = resource_label(group.name)
    _route_table(w, policy)
    return w.text()


class TerraformTarget(Target):
    """azurerm resources; DNAT ports must be single ports 1-64000 (provider validation)."""

    name = "terraform"
    files = ("egress.tf",)
    description = "Terraform: azurerm_firewall_policy_rule_collection_group and azurerm_route_table"
    supports = (AZURE_RULE_FEATURES - {Feature.NAT_PORT_RANGES}) | {Feature.ROUTES}
    ignores = frozenset({Feature.SERVICE_PUBLICATIONS})

    def _render(self, policy: CompiledPolicy) -> Files:
        return {self.files[0]: terraform_text(policy)}
