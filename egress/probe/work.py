"""Pure planning: a probe plan becomes work items with the concrete host each check probes."""

from __future__ import annotations

from dataclasses import dataclass

from egress.probe_plan import Check, HostSource, ProbePlan


@dataclass(frozen=True)
class WorkItem:
    """One check and the concrete host to probe (or why there is none)."""

    check: Check
    host: str  # the host probed; the plan's placeholder when `problem` is set
    problem: str | None = None  # set when the host cannot be known from here

    @property
    def destination(self) -> str:
        """Key of the per-destination bound."""
        return self.host.lower()


def plan_work(plan: ProbePlan, api_server: str | None) -> list[WorkItem]:
    """Resolve host sources in plan order; an unknown API server host is a finding, not an error."""
    items: list[WorkItem] = []
    for check in plan.checks:
        if check.host_source is HostSource.API_SERVER:
            if api_server:
                items.append(WorkItem(check, api_server))
            else:
                problem = (
                    "the API server host is unknown: KUBERNETES_SERVICE_HOST is not an FQDN "
                    "and --api-server was not given"
                )
                items.append(WorkItem(check, check.host, problem))
        else:
            items.append(WorkItem(check, check.host))
    return items
