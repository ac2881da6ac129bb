"""The library API: compile and render without the CLI, target selection and scope resolution."""

from __future__ import annotations

import pytest

from egress import api
from egress.errors import UsageError
from egress.model import AzureScope
from egress.targets import TARGETS


def test_a_program_compiles_and_renders_the_default_targets():
    policy = api.compile_egress(api.CompileRequest(region="eastus"))
    rendered = api.render(policy, api.parse_targets([]))
    expected = {path for name in api.default_targets() for path in TARGETS[name].files}
    # no DNAT: no Services; no workloads: no kube selector groups
    assert set(rendered.files) == expected - {"k8s-services.yaml", "kube-selector-groups.json"}
    assert rendered.files["probe-plan.json"] == policy.probe_plan.to_json()


def test_defaults_are_the_azure_targets_and_all_means_every_target():
    defaults = api.parse_targets([])
    assert defaults == [name for name, t in TARGETS.items() if t.on_by_default]
    assert {"azure-policy", "arm", "terraform", "route-table", "probe-plan"} <= set(defaults)
    assert api.parse_targets(["all"]) == list(TARGETS)
    assert api.parse_targets(["terraform", "arm"]) == ["arm", "terraform"]  # registry order
    with pytest.raises(UsageError, match="unknown target 'terraform2'; did you mean 'terraform'"):
        api.parse_targets(["terraform2"])


def test_scope_flags_override_the_policy_and_every_missing_flag_is_named():
    sub = "00000000-0000-0000-0000-000000000001"
    scope = AzureScope(subscription_id=sub, resource_group="rg", firewall_policy=None)
    resolved = api.resolve_scope(scope, firewall_policy="fw", resource_group="rg2")
    assert (resolved.subscription_id, resolved.resource_group, resolved.firewall_policy) == (
        sub,
        "rg2",
        "fw",
    )
    with pytest.raises(UsageError, match="--subscription 'sub' is not a subscription id"):
        api.resolve_scope(scope, subscription="sub", firewall_policy="fw")
    with pytest.raises(UsageError, match="no Azure scope for --resource-group, --firewall-policy"):
        api.resolve_scope(AzureScope(subscription_id="sub"))
