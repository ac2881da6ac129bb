"""Run a plan's writes one at a time, each conditional on the etag the plan saw (If-Match)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from azure.core import exceptions as core
from azure.mgmt.core.polling.arm_polling import ARMPolling

from egress import azure_facts as perms
from egress.azure.boundary import (
    RetrySettings,
    call_with_conflict_retry,
    get_or_none,
    map_azure_errors,
)
from egress.azure.diff import Action, Kind, Plan, Step, already_applied
from egress.azure.state import read_subnet
from egress.errors import AzureApplyError, AzureConflictError

if TYPE_CHECKING:
    from azure.core.polling import LROPoller
    from azure.mgmt.network import NetworkManagementClient

T = TypeVar("T")


class PollingDeadlineError(Exception):
    """Raised inside the SDK's polling thread when --timeout is reached (ends the thread)."""


class DeadlinePolling(ARMPolling):
    """ARM polling that honours Retry-After but never sleeps past the run's deadline."""

    def __init__(
        self, interval: float, *, deadline: float, on_status: Callable[[str], None]
    ) -> None:
        super().__init__(interval)
        self._deadline = deadline
        self._on_status = on_status

    def _delay(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise PollingDeadlineError
        self._sleep(min(self._extract_delay(), remaining))
        if time.monotonic() >= self._deadline:
            raise PollingDeadlineError

    def update_status(self) -> None:
        super().update_status()
        self._on_status(str(self.status()))


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
        poll_interval: float = 30.0,
    ) -> None:
        self._client = client
        self._plan = plan
        self._target = plan.target
        self._retry = retry
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._reporter = reporter or SilentReporter()
        self._poll_interval = poll_interval  # used only when Azure sends no Retry-After

    def run(self) -> ApplyResult:
        started = time.monotonic()
        writes = 0
        for step in self._plan.steps:
            label = _label(step)
            if time.monotonic() >= self._deadline:
                raise AzureApplyError(
                    f"timed out after {self._timeout:g}s (--timeout) before {label}; the writes "
                    "so far are complete, re-run egress apply to finish."
                )
            self._reporter.begin(label)
            step_started = time.monotonic()
            poller = self._write(step, step_started)
            writes += 1
            if poller is not None:
                self._follow(poller, label)
            self._reporter.end(label, time.monotonic() - step_started)
        return ApplyResult(writes=writes, seconds=time.monotonic() - started)

    # --- reads (only after a 412, to tell our own re-sent write from someone else's) ---
    def _read(self, step: Step) -> dict[str, Any] | None:
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
        elif step.kind is Kind.SELECTOR:
            found = get_or_none(
                lambda: c.firewall_policy_kube_selector_groups.get(
                    t.resource_group, t.firewall_policy, step.name
                ),
                resource=f"kube selector group '{step.name}'",
                needs=perms.READ_SELECTORS,
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

    def _conditional(self, step: Step, call: Callable[[], T]) -> Callable[[], T | None]:
        """`call` sent with the plan's precondition; a 412 stops the run (None: already done).

        The SDK pipeline re-sends a write whose answer was lost; that second copy meets its own
        first copy and gets 412. If Azure already holds exactly the planned body, the write landed
        and nothing of anyone else's is lost; otherwise someone else changed the resource.
        """

        def attempt() -> T | None:
            try:
                return call()
            except core.HttpResponseError as error:
                if error.status_code != 412:
                    raise
            if already_applied(step, self._read(step)):
                return None
            condition = f"If-Match {step.etag}" if step.etag else "If-None-Match *"
            raise AzureConflictError(
                f"{step.kind} '{step.name}' was changed by someone else since the plan (Azure "
                f"answered 412 Precondition Failed to {condition}); nothing was overwritten and "
                "nothing further was written, run egress plan again to review the new state."
            )

        return attempt

    # --- writes ----------------------------------------------------------------------
    def _write(self, step: Step, started: float) -> LROPoller[Any] | None:
        from azure.mgmt.network import models

        label = _label(step)

        def poll() -> DeadlinePolling:
            def on_status(status: str) -> None:
                self._reporter.waiting(label, status, time.monotonic() - started)

            return DeadlinePolling(
                self._poll_interval, deadline=self._deadline, on_status=on_status
            )

        t, c = self._target, self._client
        rg, table_rg, table = t.resource_group, t.route_table_resource_group, str(t.route_table)
        body = step.body or {}
        headers = preconditions(step)
        call: Callable[[], Any]
        needs: tuple[str, ...]
        # The policy's child resources: rule collection groups and kube selector groups.
        children: dict[Kind, tuple[Any, Any, tuple[str, ...], tuple[str, ...]]] = {
            Kind.GROUP: (
                c.firewall_policy_rule_collection_groups,
                models.FirewallPolicyRuleCollectionGroup,
                perms.WRITE_GROUP,
                perms.DELETE_GROUP,
            ),
            Kind.SELECTOR: (
                c.firewall_policy_kube_selector_groups,
                models.FirewallPolicyKubeSelectorGroup,
                perms.WRITE_SELECTOR,
                perms.DELETE_SELECTOR,
            ),
        }
        if step.kind in children:
            operations, model, write_needs, delete_needs = children[step.kind]
            if step.action is Action.DELETE:
                call, needs = (
                    lambda: operations.begin_delete(
                        rg, t.firewall_policy, step.name, polling=poll(), headers=headers
                    ),
                    delete_needs,
                )
            else:
                call, needs = (
                    lambda: operations.begin_create_or_update(
                        rg,
                        t.firewall_policy,
                        step.name,
                        model(body),
                        polling=poll(),
                        headers=headers,
                    ),
                    write_needs,
                )
        elif step.kind is Kind.ROUTE_TABLE:
            call, needs = (
                lambda: c.route_tables.begin_create_or_update(
                    table_rg, table, models.RouteTable(body), polling=poll(), headers=headers
                ),
                perms.WRITE_ROUTE_TABLE,
            )
        elif step.kind is Kind.TABLE_TAGS:
            tags = models.TagsObject(tags=body["tags"])
            tag_call = self._conditional(
                step, lambda: c.route_tables.update_tags(table_rg, table, tags, headers=headers)
            )
            with map_azure_errors(f"route table '{table}'", needs=perms.WRITE_ROUTE_TABLE):
                tag_call()
            return None
        elif step.kind is Kind.ROUTE and step.action is Action.DELETE:
            call, needs = (
                lambda: c.routes.begin_delete(
                    table_rg, table, step.name, polling=poll(), headers=headers
                ),
                perms.DELETE_ROUTE,
            )
        elif step.kind is Kind.ROUTE:
            call, needs = (
                lambda: c.routes.begin_create_or_update(
                    table_rg, table, step.name, models.Route(body), polling=poll(), headers=headers
                ),
                perms.WRITE_ROUTE,
            )
        else:
            subnet = step.subnet
            assert subnet is not None
            call, needs = (
                lambda: c.subnets.begin_create_or_update(
                    subnet.resource_group,
                    subnet.vnet,
                    subnet.name,
                    models.Subnet(body),
                    polling=poll(),
                    headers=headers,
                ),
                perms.WRITE_SUBNET,
            )
        poller: LROPoller[Any] | None = call_with_conflict_retry(
            self._conditional(step, call),
            resource=f"{step.kind} '{step.name}'",
            needs=needs,
            settings=self._retry,
            deadline=self._deadline,
            on_wait=lambda text, _wait: self._reporter.note(text),
        )
        return poller

    def _follow(self, poller: LROPoller[Any], label: str) -> None:
        """Wait for the operation; DeadlinePolling ends the SDK's polling thread at --timeout."""
        try:
            with map_azure_errors(label, operation=True):
                poller.result()
        except PollingDeadlineError:
            raise AzureApplyError(
                f"timed out after {self._timeout:g}s (--timeout) waiting for {label}; Azure "
                "may still finish it, re-run egress apply to converge."
            ) from None


def preconditions(step: Step) -> dict[str, str]:
    """The request headers that make a write conditional on the state the plan saw."""
    if step.action is Action.CREATE:
        return {"If-None-Match": "*"}
    return {"If-Match": step.etag or "*"}
