"""The HTTP side of the emulator: token endpoints, bearer check, faults, then ARM semantics."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .store import ArmError

if TYPE_CHECKING:
    from .server import ArmEmulator


def handler_for(emulator: ArmEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            split = urlsplit(self.path)
            path, query = split.path, parse_qs(split.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if emulator.latency is not None:
                time.sleep(emulator.latency())
            fault = emulator.take_fault(self.command, path)
            if fault is not None and fault.kind == "drop":
                emulator.record(self.command, path, 0)
                self._drop()
                return
            if fault is not None and fault.kind == "status":
                emulator.record(self.command, path, fault.status)
                self._send(fault.status, fault.headers, fault.body)
                return
            status, headers, body = self._answer(path, query, raw)
            if fault is not None and fault.kind == "drop_after":
                emulator.record(self.command, path, 0)
                self._drop()
                return
            emulator.record(self.command, path, status, self._conditions())
            self._send(status, headers, body)

        def _answer(
            self, path: str, query: dict[str, list[str]], raw: bytes
        ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
            tenant = emulator.tenant
            if path == f"/{tenant}/v2.0/.well-known/openid-configuration":
                base = f"{emulator.url}/{tenant}"
                return (
                    200,
                    {},
                    {
                        "issuer": f"{base}/v2.0",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    },
                )
            if path == f"/{tenant}/oauth2/v2.0/token" and self.command == "POST":
                form = parse_qs(raw.decode())
                if form.get("client_secret") != ["secret-1"]:
                    return (
                        401,
                        {},
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.",
                        },
                    )
                return 200, {}, emulator.issue_token()
            auth = self.headers.get("Authorization", "")
            if auth.removeprefix("Bearer ") not in emulator.tokens:
                return 401, {}, {"error": {"code": "AuthenticationFailed", "message": "No token."}}
            try:
                body = json.loads(raw) if raw else None
                return emulator.handle_arm(self.command, path, query, body, self._conditions())
            except ArmError as error:
                err = {"error": {"code": error.code, "message": error.message}}
                return error.status, error.headers, err

        def _conditions(self) -> dict[str, str]:
            return {
                name: value
                for name in ("If-Match", "If-None-Match")
                if (value := self.headers.get(name)) is not None
            }

        def _send(self, status: int, headers: dict[str, str], body: dict[str, Any] | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _serve  # noqa: N815

    return Handler
