"""The compliance report: a pure builder over the result store and one module per format."""

from __future__ import annotations

from egress.report.build import build_report, parse_moment, resolve_window
from egress.report.formats import FORMATS, FormatName, ReportFormat, make_format
from egress.report.model import ComplianceReport, Window

__all__ = [
    "FORMATS",
    "ComplianceReport",
    "FormatName",
    "ReportFormat",
    "Window",
    "build_report",
    "make_format",
    "parse_moment",
    "resolve_window",
]
