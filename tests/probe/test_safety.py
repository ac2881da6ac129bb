"""Safety: the probe never listens or binds, and sends no credentials or request bodies."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from conftest import DNS_HOST, Lab, make_check, make_plan

from egress.probe_plan import CheckKind, Expectation


async def test_a_run_of_every_kind_never_listens_or_binds(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original_listen, original_bind = socket.socket.listen, socket.socket.bind

    def listen(self: socket.socket, *args: Any) -> None:
        calls.append("listen")
        original_listen(self, *args)

    def bind(self: socket.socket, address: Any) -> None:
        calls.append(f"bind {address}")
        original_bind(self, address)

    monkeypatch.setattr(socket.socket, "listen", listen)
    monkeypatch.setattr(socket.socket, "bind", bind)
    plan = make_plan(
        lab.check("good"),
        lab.check("plain", kind=CheckKind.HTTP),
        lab.check("inspected", kind=CheckKind.TLS),
        lab.check("plain", id="tcp", kind=CheckKind.TCP),
        make_check("ntp", "ntp.probe.test", lab.ntp_port, kind=CheckKind.NTP),
        make_check("dns", DNS_HOST, lab.dns_port, kind=CheckKind.DNS, expectation=Expectation.DENY),
    )
    run = await lab.run(plan)
    assert len(run.checks) == 6
    assert all("probe" not in r.evidence for r in run.checks)  # no unexpected local errors
    assert calls == []
    with socket.socket() as probe_of_the_patch:  # the hooks do see a bind when one happens
        probe_of_the_patch.bind(("127.0.0.1", 0))
    assert calls == ["bind ('127.0.0.1', 0)"]


async def test_requests_carry_no_body_and_no_credentials(lab: Lab) -> None:
    peer = lab.peers["plain"]
    before = len(peer.requests)
    await lab.run(make_plan(lab.check("plain", kind=CheckKind.HTTP)))
    (request,) = peer.requests[before:]
    head = request.decode("latin-1").lower()
    assert head.startswith("get / http/1.1\r\n")
    for header in ("authorization", "cookie", "content-length", "transfer-encoding", "proxy-"):
        assert header not in head
