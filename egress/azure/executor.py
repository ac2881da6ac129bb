"""Run a plan's writes one at a time, checking etags first and following each long operation."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from egress.azure import permissions as perms
from egress.azure.boundary import (
    RetrySettings,
    call_with_conflict_retry,
    get_or_none,
    map_azure_errors,
)
from egress.azure.diff import Action, Kind, Plan, Step
from egress.azure.state import read_subnet
from egress.errors import AzureApplyError, AzureConflictError

if TYPE_CHECKING:
    from azure.core.polling import LROPoller
    from azure.mgmt.network import NetworkManagementClient


class Reporter(Protocol):
    """Progress sink: the CLI shows a spinner per operation; tests record the calls."""

    def begin(self, label: str) -> None: ...
    def waiting(self, label: str, status: str, elapsed: float) -> None: ...
    def end(self, label: str, elapsed: float) -> None: ...
    def note(self, text: str) -> None: ...


class SilentReporter:
    def begin(self, label: str) -> None:
        return

    def waiting(self, label: str, status: str, elapsed: float) -> None:
        return

    def end(self, label: str, elapsed: float) -> None:
        return

    def note(self, text: str) -> None:
        return


@dataclass(frozen=True, slots=True)
class ApplyResult:
    writes: int
    seconds: float


def _label(step: Step) -> str:
    return f"{step.action} {step.kind} {step.name}"


class Executor:
    """Applies one plan with one writer (so one write at a time per firewall policy)."""

    def __init__(
        self,
        client: NetworkManagementClient,
        plan: Plan,
        *,
        timeout: float,
        retry: RetrySettings,
        reporter: Reporter | None = None,
    ) -> None:
        self._client = client
        self._plan = plan
        self._target = plan.target
        self._retry = retry
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._reporter = reporter or SilentReporter()

    def run(self) -> ApplyResult:
        started = time.monotonic()
        writes = 0
        for step in self._plan.steps:
            label = _label(step)
            self._reporter.begin(label)
            step_started = time.monotonic()
            fresh = self._fresh(step)
            if (fresh or {}).get("etag") != step.etag:
                raise AzureConflictError(
                    f"{step.kind} '{step.name}' changed in Azure since the plan was made "
                    f"(etag {step.etag or 'absent'} is now "
                    f"{(fresh or {}).get('etag') or 'absent'}); nothing was overwritten, run "
                    "egress apply again to review the new plan."
                )
            poller = self._write(step, fresh)
            writes += 1
            if poller is not None:
                self._follow(poller, label, step_started)
            self._reporter.end(label, time.monotonic() - step_started)
        return ApplyResult(writes=writes, seconds=time.monotonic() - started)

    # --- reads just before each write -------------------------------------------------
    def _fresh(self, step: Step) -> dict[str, Any] | None:
        t, c = self._target, self._client
        found: Any
        if step.kind is Kind.GROUP:
            found = get_or_none(
                lambda: c.firewall_policy_rule_collection_groups.get(
                    t.resource_group, t.firewall_policy, step.name
                ),
                resource=f"rule collection group '{step.name}'",
                needs=perms.READ_GROUPS,
            )
        elif step.kind in (Kind.ROUTE_TABLE, Kind.TABLE_TAGS):
            found = get_or_none(
                lambda: c.route_tables.get(t.route_table_resource_group, str(t.route_table)),
                resource=f"route table '{t.route_table}'",
                needs=perms.READ_ROUTE_TABLE,
            )
        elif step.kind is Kind.ROUTE:
            found = get_or_none(
                lambda: c.routes.get(t.route_table_resource_group, str(t.route_table), step.name),
                resource=f"route '{step.name}'",
                needs=perms.READ_ROUTES,
            )
        else:
            assert step.subnet is not None
            return read_subnet(c, step.subnet)
        return dict(found.as_dict()) if found is not None else None

    # --- writes ----------------------------------------------------------------------
    def _write(self, step: Step, fresh: dict[str, Any] | None) -> LROPoller[Any] | None:
        from azure.mgmt.network import models

        t, c = self._target, self._client
        rg, table_rg, table = t.resource_group, t.route_table_resource_group, str(t.route_table)
        body = step.body or {}
        call: Callable[[], Any]
        needs: tuple[str, ...]
        if step.kind is Kind.GROUP and step.action is Action.DELETE:
            groups = c.firewall_policy_rule_collection_groups
            call, needs = (
                lambda: groups.begin_delete(rg, t.firewall_policy, step.name),
                perms.DELETE_GROUP,
            )
        elif step.kind is Kind.GROUP:
            groups = c.firewall_policy_rule_collection_groups
            call, needs = (
                lambda: groups.begin_create_or_update(
                    rg, t.firewall_policy, step.name, models.FirewallPolicyRuleCollectionGroup(body)
                ),
                perms.WRITE_GROUP,
            )
        elif step.kind is Kind.ROUTE_TABLE:
            call, needs = (
                lambda: c.route_tables.begin_create_or_update(
                    table_rg, table, models.RouteTable(body)
                ),
                perms.WRITE_ROUTE_TABLE,
            )
        elif step.kind is Kind.TABLE_TAGS:
            with map_azure_errors(f"route table '{table}'", needs=perms.WRITE_ROUTE_TABLE):
                c.route_tables.update_tags(table_rg, table, models.TagsObject(tags=body["tags"]))
            return None
        elif step.kind is Kind.ROUTE and step.action is Action.DELETE:
            call, needs = (
                lambda: c.routes.begin_delete(table_rg, table, step.name),
                perms.DELETE_ROUTE,
            )
        elif step.kind is Kind.ROUTE:
            call, needs = (
                lambda: c.routes.begin_create_or_update(
                    table_rg, table, step.name, models.Route(body)
                ),
                perms.WRITE_ROUTE,
            )
        else:
            subnet = step.subnet
            assert subnet is not None and fresh is not None
            subnet_body = _with_route_table(fresh, t.route_table_id)
            call, needs = (
                lambda: c.subnets.begin_create_or_update(
                    subnet.resource_group, subnet.vnet, subnet.name, models.Subnet(subnet_body)
                ),
                perms.WRITE_SUBNET,
            )
        poller: LROPoller[Any] = call_with_conflict_retry(
            call,
            resource=f"{step.kind} '{step.name}'",
            needs=needs,
            settings=self._retry,
            deadline=self._deadline,
            on_wait=lambda text, _wait: self._reporter.note(text),
        )
        return poller

    def _follow(self, poller: LROPoller[Any], label: str, started: float) -> None:
        while not poller.done():
            if time.monotonic() >= self._deadline:
                raise AzureApplyError(
                    f"timed out after {self._timeout:g}s (--timeout) waiting for {label}; Azure "
                    "may still finish it, re-run egress apply to converge."
                )
            poller.wait(min(0.25, max(0.0, self._deadline - time.monotonic())))
            self._reporter.waiting(label, str(poller.status()), time.monotonic() - started)
        with map_azure_errors(label):
            poller.result()


def _with_route_table(subnet: dict[str, Any], route_table_id: str) -> dict[str, Any]:
    """The subnet as read, with only properties.routeTable changed (NSG etc. survive)."""
    body = copy.deepcopy(subnet)
    for read_only in ("etag", "type"):
        body.pop(read_only, None)
    props = body.setdefault("properties", {})
    props.pop("provisioningState", None)
    props["routeTable"] = {"id": route_table_id}
    return body
