"""The compliance report: a pure builder over the result store and one module per format."""

from __future__ import annotations

from egress.report.build import (
    build_report,
    now_from_flag,
    parse_moment,
    resolve_window,
    window_from_flags,
)
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
    "now_from_flag",
    "parse_moment",
    "resolve_window",
    "window_from_flags",
]
