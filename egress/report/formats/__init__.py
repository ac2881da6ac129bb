"""Every report format, registered in one place and chosen by name."""

from __future__ import annotations

from enum import StrEnum

from egress.report.formats.base import ReportFormat
from egress.report.formats.html_format import HtmlFormat
from egress.report.formats.json_format import JsonFormat
from egress.report.formats.junit import JunitFormat
from egress.report.formats.markdown import MarkdownFormat
from egress.report.formats.terminal import TerminalFormat


class FormatName(StrEnum):
    """The values of `egress report --format`."""

    TERMINAL = "terminal"
    HTML = "html"
    MARKDOWN = "markdown"
    JSON = "json"
    JUNIT = "junit"


FORMATS: dict[FormatName, type[ReportFormat]] = {
    FormatName.TERMINAL: TerminalFormat,
    FormatName.HTML: HtmlFormat,
    FormatName.MARKDOWN: MarkdownFormat,
    FormatName.JSON: JsonFormat,
    FormatName.JUNIT: JunitFormat,
}


def make_format(name: FormatName, *, color: bool = False, width: int = 120) -> ReportFormat:
    """An instance of the named format; only the terminal view takes colour and width."""
    if name is FormatName.TERMINAL:
        return TerminalFormat(color=color, width=width)
    return FORMATS[name]()


__all__ = ["FORMATS", "FormatName", "ReportFormat", "make_format"]
