"""Pure helpers: resolver option parsing, the NTP packet, plan-to-work planning."""

from __future__ import annotations

import pytest
from conftest import make_check, make_plan

from egress.errors import UsageError
from egress.probe import ntp
from egress.probe.dns_client import parse_resolver_option
from egress.probe.work import plan_work
from egress.probe_plan import HostSource


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("10.0.0.10", ("10.0.0.10", 53)),
        ("10.0.0.10:5353", ("10.0.0.10", 5353)),
        ("[fd00::a]:5300", ("fd00::a", 5300)),
        ("fd00::a", ("fd00::a", 53)),
    ],
)
def test_resolver_option(option: str, expected: tuple[str, int]) -> None:
    assert parse_resolver_option(option) == expected


@pytest.mark.parametrize(
    "option", ["dns.internal", "10.0.0.10:0", "10.0.0.10:x", "[fd00::a]:99999"]
)
def test_bad_resolver_option_is_a_usage_error(option: str) -> None:
    with pytest.raises(UsageError, match="--resolver"):
        parse_resolver_option(option)


def test_ntp_request_and_reply_validation() -> None:
    request, transmit = ntp.client_request()
    assert len(request) == 48 and request[0] & 0x07 == 3 and request[40:48] == transmit
    assert ntp.client_request()[1] != transmit  # a fresh nonce every time
    reply = bytearray(48)
    reply[0] = (4 << 3) | 4
    reply[24:32] = transmit
    assert ntp.reply_problem(bytes(reply), transmit) is None
    assert "origin" in (ntp.reply_problem(bytes(reply[:24]) + bytes(24), transmit) or "")
    reply[0] = (4 << 3) | 3
    assert "mode" in (ntp.reply_problem(bytes(reply), transmit) or "")
    assert "bytes" in (ntp.reply_problem(b"\x24", transmit) or "")


def test_plan_work_takes_the_api_server_host_or_names_the_problem() -> None:
    plan = make_plan(
        make_check("api", "placeholder.test", 443, host_source=HostSource.API_SERVER),
        make_check("mcr", "mcr.microsoft.com", 443),  # data only, never contacted
    )
    known = plan_work(plan, "aks-1.hcp.eastus.azmk8s.io")  # data only, never contacted
    assert [(w.host, w.problem) for w in known] == [
        ("aks-1.hcp.eastus.azmk8s.io", None),
        ("mcr.microsoft.com", None),
    ]
    unknown = plan_work(plan, None)
    assert unknown[0].problem is not None and unknown[0].host == "placeholder.test"
