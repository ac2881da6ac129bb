"""A loopback Log Analytics query API emulator (the REST endpoint azure-monitor-query calls)."""

from .server import LogAnalyticsEmulator, QueryFault

__all__ = ["LogAnalyticsEmulator", "QueryFault"]
