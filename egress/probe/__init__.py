"""The in-cluster probe agent: climbs a protocol ladder per check and judges it on evidence."""

from __future__ import annotations

from egress.probe.dns_client import DnspythonResolver, Resolver
from egress.probe.judge import judge
from egress.probe.runner import ProbeRun
from egress.probe.settings import ProbeSettings

__all__ = ["DnspythonResolver", "ProbeRun", "ProbeSettings", "Resolver", "judge"]
