"""An endpoint's hour-by-hour results as a small inline SVG bar chart (no script, no assets)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from html import escape

from egress.report.formats.base import when
from egress.report.model import Finding, Window

WIDTH = 720.0
BAR_HEIGHT = 28.0
PASS_COLOUR = "#2f9e44"
FAIL_COLOUR = "#d9480f"
LEAK_COLOUR = "#a51111"
UNJUDGED_COLOUR = "#adb5bd"


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


_HEIGHT = _n(BAR_HEIGHT)


@lru_cache(maxsize=8192)
def _bar(hour: datetime, since: datetime, until: datetime) -> tuple[str, str] | None:
    """The x and width (as written) of one hour's bar, None when it falls outside the chart;
    the same for every finding of a report, so each hour is laid out once."""
    span = (until - since).total_seconds()
    bar_width = max(1.0, 3600 / span * WIDTH)
    offset = (hour - since).total_seconds() / span * WIDTH
    x = max(0.0, offset)
    width = min(bar_width + min(0.0, offset), WIDTH - x)
    return None if width <= 0 else (_n(x), _n(width))


def timeline_svg(finding: Finding, window: Window) -> str:
    """Bars per clock hour across the window: the red share is the share of failed results."""
    fail_colour = LEAK_COLOUR if finding.category == "leak" else FAIL_COLOUR
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{_n(WIDTH)}" '
        f'height="{_n(BAR_HEIGHT + 16)}" viewBox="0 0 {_n(WIDTH)} {_n(BAR_HEIGHT + 16)}" '
        f'role="img" aria-label="hourly results of {escape(finding.check_id)}">',
        f'<rect x="0" y="0" width="{_n(WIDTH)}" height="{_n(BAR_HEIGHT)}" fill="#f1f3f5"/>',
    ]
    for point in finding.timeline:
        bar = _bar(point.hour, window.since, window.until) if point.total else None
        if bar is None:
            continue
        x, width = bar
        base = PASS_COLOUR if point.passed or point.failed else UNJUDGED_COLOUR
        parts.append(f'<rect x="{x}" y="0" width="{width}" height="{_HEIGHT}" fill="{base}"/>')
        if point.failed:
            height = BAR_HEIGHT * point.failed / point.total
            parts.append(
                f'<rect x="{x}" y="0" width="{width}" height="{_n(height)}" '
                f'fill="{fail_colour}"><title>{escape(when(point.hour))}: {point.failed} of '
                f"{point.total} failed</title></rect>"
            )
    parts += [
        f'<text x="0" y="{_n(BAR_HEIGHT + 12)}" font-size="10" fill="#495057">'
        f"{escape(when(window.since))}</text>",
        f'<text x="{_n(WIDTH)}" y="{_n(BAR_HEIGHT + 12)}" font-size="10" fill="#495057" '
        f'text-anchor="end">{escape(when(window.until))}</text>',
        "</svg>",
    ]
    return "".join(parts)
