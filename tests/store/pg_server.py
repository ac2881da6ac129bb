"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster, a unix socket.

The server runs as an unprivileged user (`nobody` when the tests run as root, as in CI),
listens on no TCP address at all (`listen_addresses=''`), only on a socket in its own
temporary folder, and asks for a password (scram-sha-256) so bad credentials can be tested.
Nothing here needs a system service; the process is stopped when the session ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

import psycopg

USER = "egress"
PASSWORD = "egress-test-password"  # a test-only secret for a server that only this run can reach


def find_bin_dir() -> Path | None:
    found = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    newest = sorted(found, key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return newest[-1].parent if newest else None


@dataclass
class PgServer:
    """One running cluster; `dsn(db)` names a database on it."""

    root: Path
    socket_dir: Path
    process: subprocess.Popen[bytes]
    bin_dir: Path
    as_user: list[str]

    def dsn(self, dbname: str, *, password: str | None = PASSWORD, user: str = USER) -> str:
        secret = f":{quote(password)}" if password is not None else ""
        # sslmode=disable: a unix socket is a local file, TLS does not apply to it (egress
        # itself defaults to verify-full, see egress/store/_postgres.py).
        return (
            f"postgresql://{user}{secret}@/{dbname}?host={quote(str(self.socket_dir), safe='')}"
            "&sslmode=disable"
        )

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn("postgres"), autocommit=True)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(as_user: list[str], command: list[str]) -> None:
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=120,
        user=as_user[0] if as_user else None,
        group="nogroup" if as_user else None,
        extra_groups=[] if as_user else None,
    )


def _spawn_server(
    as_user: list[str], bin_dir: Path, data: Path, sockets: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=",  # no TCP at all: only the unix socket
            "-c",
            "fsync=off",  # a throw-away cluster; the client-side crash tests do not need it
            "-c",
            "max_connections=100",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        user=as_user[0] if as_user else None,
        group="nogroup" if as_user else None,
        extra_groups=[] if as_user else None,
    )


def start_server() -> PgServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("Debian's postgresql package is missing (see .ci/apt-packages.txt)")
    root = Path(tempfile.mkdtemp(prefix="egress-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    (root / "pw").write_text(PASSWORD + "\n")
    as_user: list[str] = []  # [user name] to drop root for initdb and the server
    if os.geteuid() == 0:  # postgres refuses to run as root
        as_user = ["nobody"]
        root.chmod(0o755)
        for path in (root, sockets, root / "pw"):
            shutil.chown(path, "nobody", "nogroup")
    _run(
        as_user,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--pwfile",
            str(root / "pw"),
            "--auth-local=scram-sha-256",
            "--auth-host=reject",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    with (root / "server.log").open("wb") as log:  # the server keeps its own copy open
        process = _spawn_server(as_user, bin_dir, data, sockets, log)
    server = PgServer(root, sockets, process, bin_dir, as_user)
    deadline = time.monotonic() + 60
    while True:
        try:
            with server.admin():
                return server
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = (root / "server.log").read_text(errors="replace")[-2000:]
                server.stop()
                raise RuntimeError(f"postgres did not start: {output}") from None
            time.sleep(0.1)
