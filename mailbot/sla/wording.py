"""Due times as customers read them: ``10:00 AM PT on Monday, December 1``."""

from __future__ import annotations

from datetime import datetime

# Generic names that stay right across DST (PT, not PST/PDT) for the common US zones;
# elsewhere the zone's own abbreviation of the moment (CET/CEST, JST, ...) is used.
_GENERIC_LABELS = {
    "America/Los_Angeles": "PT",
    "US/Pacific": "PT",
    "America/Denver": "MT",
    "US/Mountain": "MT",
    "America/Phoenix": "MST",
    "America/Chicago": "CT",
    "US/Central": "CT",
    "America/New_York": "ET",
    "US/Eastern": "ET",
    "Pacific/Honolulu": "HT",
    "America/Anchorage": "AKT",
}


def zone_label(zone_key: str, local: datetime) -> str:
    return _GENERIC_LABELS.get(zone_key) or local.tzname() or zone_key


def due_phrase(local: datetime, label: str, reference: datetime | None = None) -> str:
    """Clock time, zone, weekday and date; the year only when it differs from ``reference``."""
    hour = local.hour % 12 or 12
    meridiem = "AM" if local.hour < 12 else "PM"
    phrase = f"{hour}:{local.minute:02d} {meridiem} {label} on {local:%A}, {local:%B} {local.day}"
    if reference is not None and reference.year != local.year:
        phrase += f", {local.year}"
    return phrase
