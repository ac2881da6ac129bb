"""Discriminator values typed as azure-mgmt-network enums for mypy, plain strings at run time.

Importing ``azure.mgmt.network`` costs about 0.45 s (its package import loads the whole
client), which alone would break the compile time budget; the TypedDicts in
``azure.mgmt.network.types`` are therefore only imported for type checking. The enums
are ``str`` subclasses, so ``json.dumps`` writes exactly these strings either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

API_VERSION: Final = "2026-03-01"

if TYPE_CHECKING:
    from azure.mgmt.network.models import FirewallPolicyRuleCollectionType as _Collection
    from azure.mgmt.network.models import FirewallPolicyRuleType

    APPLICATION_RULE: Final = FirewallPolicyRuleType.APPLICATION_RULE
    NETWORK_RULE: Final = FirewallPolicyRuleType.NETWORK_RULE
    NAT_RULE: Final = FirewallPolicyRuleType.NAT_RULE
    FILTER_COLLECTION: Final = _Collection.FIREWALL_POLICY_FILTER_RULE_COLLECTION
    NAT_COLLECTION: Final = _Collection.FIREWALL_POLICY_NAT_RULE_COLLECTION
else:
    APPLICATION_RULE = "ApplicationRule"
    NETWORK_RULE = "NetworkRule"
    NAT_RULE = "NatRule"
    FILTER_COLLECTION = "FirewallPolicyFilterRuleCollection"
    NAT_COLLECTION = "FirewallPolicyNatRuleCollection"
