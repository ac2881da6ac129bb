"""Per-workload sources in the policy file: selectors, references and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from egress.errors import PolicyError
from egress.policy import validate_policy

ALLOW = {"fqdn": "api.stripe.test", "ports": ["https:443"]}  # data, never contacted


def policy(**fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, **fields}


def test_a_workload_is_named_by_allow_entries_and_its_labels_are_sorted():
    loaded = validate_policy(
        policy(
            workloads=[{"name": "payments", "pod_labels": {"tier": "b", "app": "a"}}],
            allow=[{**ALLOW, "workloads": ["payments"]}],
        ),
        origin="p.yaml",
    )
    assert list(loaded.workloads[0].pod_labels) == ["app", "tier"]
    assert loaded.allow[0].workloads == ("payments",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"allow": [{**ALLOW, "workloads": ["nope"]}]},
            "allow[0] names workload 'nope' that is not under workloads",
        ),
        (
            {"workloads": [{"name": "a", "pod_labels": {"x": "1"}}] * 2},
            "workloads has duplicate names: a",
        ),
        ({"workloads": [{"name": "a"}]}, "would select every pod"),
        ({"workloads": [{"name": "a", "pod_labels": {"x": "not valid!"}}]}, "label value"),
        ({"workloads": [{"name": "Bad_Name", "pod_labels": {"x": "1"}}]}, "workloads"),
    ],
)
def test_bad_workloads_are_one_sentence_naming_the_entry(fields: dict[str, Any], message: str):
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_policy(policy(**fields), origin="p.yaml")
