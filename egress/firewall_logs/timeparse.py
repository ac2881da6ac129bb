"""Timestamps as the CLI, the portal and diagnostic settings write them, and time zones."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from egress.errors import UsageError
from egress.firewall_logs.model import RowError

# The portal's CSV export: "12/1/2026, 9:42:43.123 AM" (US style), zone named in the header.
_PORTAL = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?\s*([AP]M)$", re.I
)
_HEADER_ZONE = re.compile(r"^TimeGenerated\s*\[(.+)\]$", re.I)
_OFFSET = re.compile(r"^UTC\s*([+-])(\d{1,2}):?(\d{2})?$", re.I)


def zone_named(name: str, *, option: str = "--time-zone") -> tzinfo:
    """An IANA zone (Europe/Berlin), UTC, or a fixed offset such as UTC+01:00."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    offset = _OFFSET.match(text)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return timezone(sign * delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"{option} '{name}' is not a known time zone; give an IANA name such as "
            "Europe/Berlin, UTC, or an offset such as UTC+01:00."
        ) from None


def header_zone(header: str) -> tuple[str, tzinfo | None, bool]:
    """`TimeGenerated [UTC]` -> ("TimeGenerated", UTC, True). Local Time -> (.., None, True)."""
    found = _HEADER_ZONE.match(header.strip())
    if not found:
        return header.strip(), None, False
    label = found.group(1).strip()
    if label.lower() in ("local time", "local"):
        return "TimeGenerated", None, True
    try:
        return "TimeGenerated", zone_named(label), True
    except UsageError:
        raise RowError(
            f"column '{header}' names an unknown time zone '{label}'; re-export in UTC"
        ) from None


def parse_time(value: object, zone: tzinfo | None) -> datetime:
    """An aware UTC datetime; a time without zone needs `zone` (from the header or option)."""
    if type(value) is str and value[-1:] == "Z":  # the common case: ISO 8601 in UTC
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass  # the full path below names the problem
        else:
            if moment.tzinfo is UTC:
                return moment
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value or "").strip()
        if not text:
            raise RowError("column TimeGenerated is empty")
        try:
            moment = datetime.fromisoformat(text)  # any fraction digits (LA writes 7)
        except ValueError:
            portal = _PORTAL.match(text)
            if not portal:
                raise RowError(f"TimeGenerated '{text}' is not a date and time") from None
            month, day, year, hour, minute, second, frac, half = portal.groups()
            hour_24 = int(hour) % 12 + (12 if half.upper() == "PM" else 0)
            micros = int((frac or "0").ljust(6, "0")[:6])
            moment = datetime(
                int(year), int(month), int(day), hour_24, int(minute), int(second), micros
            )
    if moment.tzinfo is None:
        if zone is None:
            raise RowError(
                f"TimeGenerated '{value}' has no time zone; export in UTC or pass --time-zone"
            )
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
