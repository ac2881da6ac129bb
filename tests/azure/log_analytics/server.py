"""A loopback HTTPS Log Analytics query API and Entra token endpoint.

Faithful to what azure-monitor-query relies on (learn.microsoft.com/azure/azure-monitor/logs/
api/overview): ``POST /v1/workspaces/{id}/query`` with ``{"query", "timespan"}`` and a
``Prefer: wait=N`` header; a bearer token whose audience is the API itself (the token
endpoint records the scope it was issued for, and the API refuses tokens for another
audience); answers ``{"tables": [{"name", "columns": [{"name", "type"}], "rows"}]}``, adds an
``error`` beside ``tables`` for a partial result, 403 ``InsufficientAccessError`` for a
workspace the identity cannot read, 400 ``SemanticError`` for an unknown table, 429 with
Retry-After when throttled. Rows become visible only after the ingestion lag.

The KQL understood is the subset egress sends (the table, ``where TimeGenerated between``,
``ipv4_is_in_any_range``, ``Action in``, ``project``, ``take``, ``summarize max``); anything
else is a 400 syntax error, so a change in egress's query fails the tests instead of passing
silently.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

# Column types per Microsoft's table reference pages (the types the API reports).
COLUMN_TYPES: dict[str, str] = {
    "TimeGenerated": "datetime",
    "SourcePort": "int",
    "DestinationPort": "int",
    "TranslatedPort": "int",
    "IsTlsInspected": "bool",
    "IsExplicitProxyRequest": "bool",
}


@dataclass
class QueryFault:
    """Answer the next `times` queries (whose text contains `contains`) with a fault."""

    kind: str  # "throttle" (429), "partial" (rows + error), "status" (status + body)
    contains: str = ""
    times: int = 1
    status: int = 500
    retry_after: str = "1"
    body: dict[str, Any] | None = None


@dataclass
class _Row:
    values: dict[str, Any]
    visible_at: float


@dataclass
class LogAnalyticsEmulator:
    workdir: Path
    tenant: str = "tenant-1"
    lag_seconds: float = 0.0
    tables: dict[str, list[_Row]] = field(default_factory=dict)
    readable: set[str] = field(default_factory=set)  # workspace ids the identity may query
    faults: list[QueryFault] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # token -> scope it was issued for
        ca = trustme.CA()
        self.ca_path = self.workdir / "log-analytics-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LogAnalyticsEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- seeding ------------------------------------------------------------------------
    def ingest(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Add rows (Microsoft's column names); they show after the ingestion lag."""
        visible = time.monotonic() + self.lag_seconds
        with self._lock:
            self.tables.setdefault(table, []).extend(_Row(dict(r), visible) for r in rows)

    # --- tokens -------------------------------------------------------------------------
    def issue_token(self, scope: str) -> dict[str, Any]:
        token = f"la-{uuid.uuid4()}"
        with self._lock:
            self._tokens[token] = scope
        return {"token_type": "Bearer", "expires_in": 3600, "access_token": token}

    def audience_ok(self, token: str) -> bool | None:
        scope = self._tokens.get(token)
        if scope is None:
            return None
        return scope.rstrip("/") in (f"{self.url}/.default", f"{self.url}//.default")

    def take_fault(self, query: str) -> QueryFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.contains in query:
                    fault.times -= 1
                    return fault
        return None

    # --- the query API ------------------------------------------------------------------
    def run_query(self, workspace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.queries.append({"workspace": workspace, **body})
        if workspace not in self.readable:
            return 403, _error(
                "InsufficientAccessError",
                "The provided credentials have insufficient access to perform the requested "
                "operation",
            )
        text = str(body.get("query") or "")
        fault = self.take_fault(text)
        if fault is not None and fault.kind == "throttle":
            return 429, _error("ThrottledError", "Too many requests; retry later.")
        if fault is not None and fault.kind == "status":
            return fault.status, fault.body or _error("InternalServerError", "Try again.")
        try:
            _, columns, rows = self._evaluate(text, body.get("timespan"))
        except _SemanticError as problem:
            return 400, {
                "error": {
                    "message": "The request had some invalid properties",
                    "code": "BadArgumentError",
                    "innererror": {
                        "code": problem.code,
                        "message": "A semantic error occurred.",
                        "innererror": {"code": problem.inner, "message": str(problem)},
                    },
                }
            }
        result: dict[str, Any] = {
            "tables": [
                {
                    "name": "PrimaryResult",
                    "columns": [
                        {"name": c, "type": COLUMN_TYPES.get(c, "string")} for c in columns
                    ],
                    "rows": rows,
                }
            ]
        }
        if fault is not None and fault.kind == "partial":
            result["tables"][0]["rows"] = rows[: len(rows) // 2]
            result["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [
                    {
                        "code": "EngineError",
                        "message": "Something went wrong processing your query on the server.",
                        "innererror": {"code": "-2133196797", "message": "Query was cancelled"},
                    }
                ],
            }
        return 200, result

    def _evaluate(self, text: str, timespan: Any) -> tuple[str, list[str], list[list[Any]]]:
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        if not lines:
            raise _SemanticError("Query could not be parsed", "SyntaxError", "SYN0002")
        table = lines[0]
        with self._lock:
            if table not in self.tables:
                raise _SemanticError(
                    f"'{table}' could not be resolved to a table, function or expression",
                    "SemanticError",
                    "SEM0100",
                )
            now = time.monotonic()
            rows = [r.values for r in self.tables[table] if r.visible_at <= now]
        rows = _in_timespan(rows, timespan)
        columns = sorted({c for r in rows for c in r}) or ["TimeGenerated"]
        for step in lines[1:]:
            if not step.startswith("|"):
                raise _SemanticError(f"unexpected '{step}'", "SyntaxError", "SYN0002")
            rows, columns = _apply(step[1:].strip(), rows, columns)
        return table, columns, [[_json_value(r.get(c)) for c in columns] for r in rows]


class _SemanticError(Exception):
    def __init__(self, message: str, code: str, inner: str) -> None:
        super().__init__(message)
        self.code, self.inner = code, inner


_BETWEEN = re.compile(
    r"^where TimeGenerated between \(datetime\(([^)]+)\) \.\. datetime\(([^)]+)\)\)$"
)
_RANGES = re.compile(r"^where ipv4_is_in_any_range\(SourceIp, dynamic\((\[.*\])\)\)$")
_ACTION_IN = re.compile(r'^where Action in \(((?:"[A-Za-z]+"(?:, )?)+)\)$')
_PROJECT = re.compile(r"^project ([A-Za-z_, ]+)$")
_TAKE = re.compile(r"^take (\d+)$")
_MAX = re.compile(r"^summarize (\w+) = max\(TimeGenerated\)$")


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _in_timespan(rows: list[dict[str, Any]], timespan: Any) -> list[dict[str, Any]]:
    if not timespan:
        return rows
    start_text, _, end_text = str(timespan).partition("/")
    start, end = _moment(start_text), _moment(end_text)
    return [r for r in rows if start <= _moment(r["TimeGenerated"]) <= end]


def _apply(
    step: str, rows: list[dict[str, Any]], columns: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    if found := _BETWEEN.match(step):
        start, end = _moment(found.group(1)), _moment(found.group(2))
        return [r for r in rows if start <= _moment(r["TimeGenerated"]) <= end], columns
    if found := _RANGES.match(step):
        networks = [ipaddress.ip_network(n, strict=False) for n in json.loads(found.group(1))]
        return [
            r for r in rows if any(ipaddress.ip_address(r["SourceIp"]) in n for n in networks)
        ], columns
    if found := _ACTION_IN.match(step):
        wanted = set(re.findall(r'"([A-Za-z]+)"', found.group(1)))
        return [r for r in rows if r.get("Action") in wanted], columns
    if found := _PROJECT.match(step):
        names = [n.strip() for n in found.group(1).split(",")]
        known = {c for r in rows for c in r} | set(columns) | set(COLUMN_TYPES)
        unknown = [n for n in names if n not in known]
        if unknown and rows:
            raise _SemanticError(
                f"Failed to resolve scalar expression named '{unknown[0]}'",
                "SemanticError",
                "SEM0100",
            )
        return rows, names
    if found := _TAKE.match(step):
        return rows[: int(found.group(1))], columns
    if found := _MAX.match(step):
        times = [_moment(r["TimeGenerated"]) for r in rows]
        latest = max(times) if times else None
        return [{found.group(1): latest}], [found.group(1)]
    raise _SemanticError(f"Query could not be parsed at '{step}'", "SyntaxError", "SYN0002")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(emulator: LogAnalyticsEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            tenant = emulator.tenant
            if urlsplit(self.path).path == f"/{tenant}/v2.0/.well-known/openid-configuration":
                base = f"{emulator.url}/{tenant}"
                self._send(
                    200,
                    {
                        "issuer": f"{base}/v2.0",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    },
                )
                return
            self._send(404, _error("PathNotFoundError", f"No route for {self.path}."))

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if path == f"/{emulator.tenant}/oauth2/v2.0/token":
                form = parse_qs(raw.decode())
                if form.get("client_secret") != ["secret-1"]:
                    self._send(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.",
                        },
                    )
                    return
                self._send(200, emulator.issue_token(form.get("scope", [""])[0]))
                return
            found = re.fullmatch(r"/v1/workspaces/([^/]+)/query", path)
            if not found:
                self._send(404, _error("PathNotFoundError", f"No route for {path}."))
                return
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            audience = emulator.audience_ok(token)
            if audience is not True:
                self._send(
                    401,
                    _error(
                        "InvalidTokenError",
                        "The provided authentication is not valid for this resource"
                        if audience is False
                        else "Valid authentication was not provided",
                    ),
                )
                return
            status, body = emulator.run_query(found.group(1), json.loads(raw or b"{}"))
            headers = {"Retry-After": "1"} if status == 429 else {}
            self._send(status, body, headers)

        def _send(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
