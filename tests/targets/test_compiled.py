"""Every target on real compiles (default, full policy, China, US Gov) against golden files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from egress.targets import TARGETS

from targets.cases import COMPILED, DEFAULT_TARGETS, compiled


@pytest.mark.parametrize("target_name", DEFAULT_TARGETS)
@pytest.mark.parametrize("case", list(COMPILED))
def test_compiled_target_matches_golden(
    golden: Callable[[str, str], None], case: str, target_name: str
):
    for relpath, text in TARGETS[target_name]().render(compiled(case)).items():
        golden(f"targets/{case}/{relpath}", text)


def test_full_policy_exercises_dnat_tags_and_scopes():
    policy = compiled("westeurope-full")
    files = TARGETS["k8s-services"]().render(policy)
    assert files["k8s-services.yaml"].count("kind: Service") == 2
    text = TARGETS["azure-policy"]().render(policy)["rule-collection-groups.json"]
    assert '"AzureKubernetesService"' in text
    assert '"type": "DNAT"' in text
    routes = {r.address_prefix: r for r in policy.route_table.routes}
    assert routes["20.10.10.10/32"].next_hop_type == "Internet"
    assert routes["0.0.0.0/0"].next_hop_ip_address == "10.42.2.4"
