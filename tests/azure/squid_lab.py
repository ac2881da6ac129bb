"""A small squid firewall on loopback, and its access log turned into AZFWApplicationRule rows.

Stands in for the shared firewall lab (tests/lab) until it lands: squid is the proxy, an
http.server on 127.0.0.1 is every origin, and squid's hosts_file answers the test's names
(resolved locally, never contacted). Each allow ACL carries a `note rule <name>` so the
access log names the rule that allowed a request, as Azure Firewall's log does; a request no
rule allows is denied by squid's default (`http_access deny all`).

:func:`azfw_rows` converts squid's log lines into rows with Microsoft's documented column
names (learn.microsoft.com/azure/azure-monitor/reference/tables/azfwapplicationrule).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

POLICY = "fp-lab"
GROUP = "egress-lab"
COLLECTION = "lab-allow"
DEFAULT_REASON = "No rule matched. Proceeding with default action"


@dataclass(frozen=True)
class Request:
    host: str
    local_address: str
    local_port: int
    started_at: datetime
    finished_at: datetime
    status: int


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"origin\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SquidLab:
    """`with SquidLab(tmp, allow={"AllowMcr": ["mcr.microsoft.com"]}, deny={...}) as lab:`."""

    def __init__(
        self,
        workdir: Path,
        *,
        allow: dict[str, list[str]],
        deny: dict[str, list[str]] | None = None,
        names: list[str],
    ) -> None:
        # squid drops root (to user proxy), which cannot enter pytest's private tmp folders.
        self.dir = Path(tempfile.mkdtemp(prefix="egress-squid-"))
        self.dir.chmod(0o777)
        self.workdir = workdir
        self.allow, self.deny, self.names = allow, deny or {}, names
        self.port = _free_port()
        self.origin = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
        self.origin.daemon_threads = True
        self.origin_port = int(self.origin.server_address[1])
        self._origin_thread = threading.Thread(target=self.origin.serve_forever, daemon=True)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def _config(self) -> str:
        hosts = self.dir / "hosts"
        hosts.write_text("127.0.0.1 " + " ".join(self.names) + "\n")  # resolved locally
        lines = [
            f"http_port 127.0.0.1:{self.port}",
            f"pid_filename {self.dir}/squid.pid",
            f"cache_log {self.dir}/cache.log",
            "logformat azfw %ts.%03tu %>a %>p %rm %ru %>Hs %Ss %{rule}note",
            f"access_log stdio:{self.access_log} azfw",
            f"hosts_file {hosts}",
            "dns_nameservers 127.0.0.1",
            "cache deny all",
            "cache_mem 8 MB",
            f"coredump_dir {self.dir}",
            "shutdown_lifetime 0 seconds",
            "buffered_logs off",
            # Every allowed request goes to the one local origin, whatever name and port it
            # asked for, so requests keep their real ports (80) in the log.
            f"cache_peer 127.0.0.1 parent {self.origin_port} 0 no-query originserver name=origin",
            "never_direct allow all",
        ]
        for kind, rules in (("deny", self.deny), ("allow", self.allow)):
            for rule, domains in rules.items():
                acl = f"acl_{rule.lower()}"
                lines.append(f"acl {acl} dstdomain {' '.join(domains)}")
                lines.append(f"note rule {rule} {acl}")
                lines.append(f"http_access {kind} {acl}")
        lines.append("http_access deny all")
        return "\n".join(lines) + "\n"

    def __enter__(self) -> SquidLab:
        squid = shutil.which("squid")
        assert squid is not None, "squid (squid-openssl) is listed in .ci/apt-packages.txt"
        config = self.dir / "squid.conf"
        config.write_text(self._config())
        self._origin_thread.start()
        with (self.dir / "squid.out").open("wb") as errors:
            self._process = subprocess.Popen(
                [squid, "-f", str(config), "-N"], stdout=subprocess.DEVNULL, stderr=errors
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"squid did not start: {(self.dir / 'squid.out').read_text()}")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self.origin.shutdown()
        self.origin.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def get(self, host: str) -> Request:
        """One HTTP GET for http://host/ through the proxy, from a socket whose port we know."""
        request = f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        return self._send(host, request)

    def connect(self, host: str, port: int = 443) -> Request:
        """A CONNECT host:port (HTTPS through the proxy); only ever sent for denied names."""
        text = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        return self._send(host, text)

    def _send(self, host: str, request: str) -> Request:
        started = datetime.now(UTC)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            local_address, local_port = conn.getsockname()[:2]
            conn.sendall(request.encode())
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
        return Request(host, local_address, local_port, started, datetime.now(UTC), status)

    def wait_for_log(self, lines: int, timeout: float = 5.0) -> list[str]:
        """The access log once it holds `lines` requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.access_log.exists():
                found = [x for x in self.access_log.read_text().splitlines() if " error:" not in x]
                if len(found) >= lines:
                    return found
            time.sleep(0.05)
        raise AssertionError(f"squid logged fewer than {lines} lines")


def azfw_rows(lines: list[str]) -> list[dict[str, Any]]:
    """squid access-log lines (format azfw above) -> AZFWApplicationRule rows."""
    rows = []
    for line in lines:
        stamp, client, client_port, method, url, _status, squid_status, note = line.split(" ")
        if url.startswith("error:"):
            continue  # a connection that sent no request (the readiness check)
        tunnel = method == "CONNECT"
        parts = urlsplit(f"https://{url}" if tunnel else url)
        denied = squid_status.startswith("TCP_DENIED")
        rule = "" if note == "-" else note
        rows.append(
            {
                "TimeGenerated": datetime.fromtimestamp(float(stamp), UTC),
                "SourceIp": client,
                "SourcePort": int(client_port),
                "Fqdn": parts.hostname or "",
                "TargetUrl": "" if tunnel else url,
                "DestinationPort": parts.port or (443 if tunnel else 80),
                "Protocol": "HTTPS" if tunnel else "HTTP",
                "Action": "Deny" if denied else "Allow",
                "ActionReason": DEFAULT_REASON if denied and not rule else "",
                "Policy": POLICY if rule else "",
                "RuleCollectionGroup": GROUP if rule else "",
                "RuleCollection": COLLECTION
                if rule and not denied
                else ("lab-deny" if rule else ""),
                "Rule": rule,
                "IsTlsInspected": False,
                "IsExplicitProxyRequest": True,
                "WebCategory": "",
            }
        )
    return rows
