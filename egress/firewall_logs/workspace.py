"""A Log Analytics workspace as a firewall log source, through azure-monitor-query.

One bounded KQL query per table (see :func:`kql`, documented in docs/firewall-logs.md), sent
with the window as the query's timespan too. Partial results are used and noted; a row bound
hit is noted; throttling (429) and 5xx are retried by the SDK pipeline with a cap; a table the
workspace does not have (nothing was ever logged to it) is noted, not fatal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from egress.azure.boundary import BoundedRetryPolicy, RetrySettings, map_azure_errors
from egress.errors import AzureApplyError, UsageError
from egress.firewall_logs.model import (
    COLUMNS,
    FirewallDecision,
    LogTable,
    RowError,
    decision_from_columns,
)
from egress.firewall_logs.source import LogQuery, SourceNotes, raw_selects
from egress.firewall_logs.timeparse import parse_time
from egress.model import Cloud

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.query import LogsQueryClient

# The query API of each cloud (its own token audience): Azure Monitor's sovereign-cloud docs.
LOG_ANALYTICS_ENDPOINTS: dict[Cloud, str] = {
    Cloud.AZURE_CLOUD: "https://api.loganalytics.io",
    Cloud.AZURE_CHINA_CLOUD: "https://api.loganalytics.azure.cn",
    Cloud.AZURE_US_GOVERNMENT: "https://api.loganalytics.us",
}
ROW_BOUND = 500_000  # the query API's own cap per query; hitting it is reported, never silent
QUERY_PERMISSION = (
    "Microsoft.OperationalInsights/workspaces/query/read (the Log Analytics Reader role)",
)


def _kql_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kql(table: LogTable, query: LogQuery, *, bound: int = ROW_BOUND) -> str:
    """The one query egress sends for one table (bounded by time, sources and row count)."""
    lines = [
        table.value,
        f"| where TimeGenerated between (datetime({_kql_time(query.since)}) .. "
        f"datetime({_kql_time(query.until)}))",
    ]
    if query.sources:
        ranges = json.dumps(list(query.sources))
        lines.append(f"| where ipv4_is_in_any_range(SourceIp, dynamic({ranges}))")
    if query.denies_only and table in (LogTable.APPLICATION_RULE, LogTable.NETWORK_RULE):
        lines.append('| where Action in ("Deny", "Drop")')
    lines.append(f"| project {', '.join(COLUMNS[table])}")
    lines.append(f"| take {bound}")
    return "\n".join(lines)


def kql_latest(table: LogTable) -> str:
    """How far the table's logs have arrived (any source): the ingestion watermark."""
    return f"{table.value}\n| summarize Latest = max(TimeGenerated)"


@dataclass(frozen=True, slots=True)
class WorkspaceSettings:
    workspace_id: str
    cloud: Cloud = Cloud.AZURE_CLOUD
    endpoint: str | None = None  # override (private link, tests); its audience is itself
    credential: TokenCredential | None = None  # None: DefaultAzureCredential for the cloud
    authority_host: str | None = None  # override the cloud's Entra authority
    server_timeout_seconds: int = 180
    bound: int = ROW_BOUND
    retry: RetrySettings = field(default_factory=RetrySettings)
    connection_verify: str | bool = True


class WorkspaceSource:
    """Decisions queried from a Log Analytics workspace."""

    def __init__(self, settings: WorkspaceSettings) -> None:
        endpoint = settings.endpoint or LOG_ANALYTICS_ENDPOINTS[settings.cloud]
        if not endpoint.startswith("https://"):
            raise UsageError(f"--workspace-endpoint must be an https:// URL, got '{endpoint}'.")
        self.settings = settings
        self.endpoint = endpoint.rstrip("/")
        self._notes = SourceNotes()
        self._client: LogsQueryClient | None = None
        self._owned: Any = None

    @property
    def name(self) -> str:
        return f"workspace {self.settings.workspace_id}"

    @property
    def notes(self) -> SourceNotes:
        return self._notes

    @property
    def complete(self) -> bool:
        return False  # logs keep arriving, minutes late

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._owned is not None:
            self._owned.close()

    def _sdk(self) -> LogsQueryClient:
        if self._client is None:
            from azure.monitor.query import LogsQueryClient

            from egress.azure.cloud import default_credential, endpoints_for

            credential = self.settings.credential
            if credential is None:
                verify = self.settings.connection_verify
                extra = {} if verify is True else {"connection_verify": verify}
                cloud = endpoints_for(
                    self.settings.cloud.value, authority_host=self.settings.authority_host
                )
                self._owned = credential = default_credential(cloud, **extra)
            self._client = LogsQueryClient(
                credential,
                endpoint=self.endpoint,
                audience=self.endpoint,
                retry_policy=BoundedRetryPolicy(self.settings.retry),
                connection_verify=self.settings.connection_verify,
            )
        return self._client

    def _run(self, table: LogTable, text: str, query: LogQuery) -> list[dict[str, Any]] | None:
        """Rows of one query as column dicts; None when the workspace lacks the table."""
        from azure.core.exceptions import HttpResponseError
        from azure.monitor.query import LogsQueryPartialResult

        resource = f"Log Analytics {self.name} (table {table.value})"
        try:
            with map_azure_errors(resource, needs=QUERY_PERMISSION):
                try:
                    result = self._sdk().query_workspace(
                        self.settings.workspace_id,
                        text,
                        timespan=(query.since, query.until),
                        server_timeout=self.settings.server_timeout_seconds,
                    )
                except HttpResponseError as error:
                    if error.status_code == 400 and _unknown_table(error):
                        self._notes.add(
                            f"{self.name} has no table {table.value} (nothing was ever sent "
                            "to it); check the firewall's diagnostic setting."
                        )
                        return None
                    raise
        except AzureApplyError as error:
            if "timed out" in error.message.lower() or "timeout" in error.message.lower():
                raise AzureApplyError(
                    f"the query of {resource} timed out; narrow --since/--until or the source "
                    "addresses and re-run."
                ) from None
            raise
        tables = result.tables if not isinstance(result, LogsQueryPartialResult) else None
        if isinstance(result, LogsQueryPartialResult):
            partial = result.partial_error
            self._notes.incomplete = True
            self._notes.add(
                f"{self.name} returned partial results for {table.value} "
                f"({getattr(partial, 'code', '')}: {getattr(partial, 'message', partial)}); "
                "decisions may be missing, so unmatched checks may be unmatched for that reason."
            )
            tables = result.partial_data
        rows: list[dict[str, Any]] = []
        for result_table in tables or []:
            names = list(result_table.columns)
            rows.extend(dict(zip(names, row, strict=True)) for row in result_table.rows)
        return rows

    def decisions(self, query: LogQuery) -> Iterator[FirewallDecision]:
        self._notes.records = 0
        for table in query.tables:
            text = kql(table, query, bound=self.settings.bound)
            rows = self._run(table, text, query)
            if rows is None:
                continue
            self._notes.records += len(rows)
            if len(rows) >= self.settings.bound:
                self._notes.incomplete = True
                self._notes.add(
                    f"{table.value} hit the {self.settings.bound:,}-row bound of one query; "
                    "narrow --since/--until so no decision is left out."
                )
            for number, row in enumerate(rows, start=1):
                if not raw_selects(query, row):
                    continue
                try:
                    yield decision_from_columns(table, row, lambda v: parse_time(v, UTC))
                except RowError as error:
                    raise AzureApplyError(
                        f"{self.name} answered a {table.value} row ({number}) egress cannot "
                        f"read: {error}; check the workspace's table schema."
                    ) from None

    def latest(self, query: LogQuery) -> datetime | None:
        newest: datetime | None = None
        for table in query.tables:
            rows = self._run(table, kql_latest(table), query)
            for row in rows or []:
                value = row.get("Latest")
                if value in (None, ""):
                    continue
                moment = parse_time(value, UTC)
                newest = moment if newest is None or moment > newest else newest
        return newest


def _unknown_table(error: Any) -> bool:
    text = f"{getattr(error, 'message', '')} {error}".lower()
    return "could not be resolved" in text or "failed to resolve table" in text
