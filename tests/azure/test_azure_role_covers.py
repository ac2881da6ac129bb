"""The custom role `egress compile` writes grants every action plan and apply may ask for."""

from __future__ import annotations

from egress import azure_facts as permissions
from egress.targets.role_definition import actions

from targets.fixtures import full_policy


def test_the_role_grants_every_action_plan_and_apply_need() -> None:
    granted = set(actions(full_policy()))
    assert set(permissions.APPLY_ACTIONS) <= granted
    assert "Microsoft.Network/firewallPolicies/kubeSelectorGroups/write" in granted
