"""Due times per severity: first response and status updates, wall-clock or business time.

Times in and out are naive UTC, the store's convention.  A target is an amount
(``"1h"``, ``"4h"``, ``"2d"``, ``"1h30m"``) plus a clock: ``wall`` counts elapsed
time around the clock, ``business`` counts only opening hours, and there a day
(``"1d"``) is one business day (``closes - opens``, 12 hours for 06:00–18:00).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mailbot.pipeline.severity import Severity
from mailbot.sla.calendar import BusinessCalendar, official_holidays
from mailbot.sla.wording import due_phrase, zone_label

if TYPE_CHECKING:
    from mailbot.config import SlaSection

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Duration:
    """``days`` are kept apart: their length depends on the clock (24h, or a business day)."""

    days: int
    rest: timedelta

    def length(self, day: timedelta) -> timedelta:
        return self.days * day + self.rest


def parse_duration(text: str) -> Duration | None:
    """``"1d"``, ``"4h"``, ``"90m"``, ``"1h30m"`` → Duration; ``""`` → None (no target)."""
    compact = "".join(text.lower().split())
    if not compact:
        return None
    match = _DURATION.fullmatch(compact)
    if match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (use e.g. '1h', '4h', '1d', '1h30m')")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    duration = Duration(days, timedelta(hours=hours, minutes=minutes))
    if duration.days == 0 and duration.rest == timedelta(0):
        raise ValueError(f"duration must be more than zero: {text!r}")
    return duration


def parse_clock_time(text: str) -> time:
    """``"06:00"`` → time(6, 0)."""
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time of day: {text!r} (use HH:MM, e.g. '06:00')") from None


# How many (start, target) sums ServiceClocks.add keeps before it starts afresh.
_REMEMBERED_SUMS = 64


@dataclass(frozen=True)
class Target:
    amount: Duration
    business: bool


class ServiceClocks:
    """Computes due times from the calendar and the per-severity targets."""

    def __init__(
        self,
        calendar: BusinessCalendar,
        first_response: Mapping[Severity, Target],
        status_update: Mapping[Severity, Target | None],
        label: str = "",
    ) -> None:
        self.calendar = calendar
        self.first_response = dict(first_response)
        self.status_update = dict(status_update)
        self.label = label
        self._sums: dict[tuple[datetime, Target], datetime] = {}

    @classmethod
    def from_settings(
        cls, sla: SlaSection, official: Container[date] | None = None
    ) -> ServiceClocks:
        """``official``: the public holidays as dates, when a process was handed them;
        by default they come from the ``holidays`` package."""
        extra = list(sla.extra_holidays)
        if official is None and sla.holidays_country:
            official = official_holidays(sla.holidays_country, sla.holidays_subdivision)
        calendar = BusinessCalendar(
            ZoneInfo(sla.timezone),
            parse_clock_time(sla.business_hours_start),
            parse_clock_time(sla.business_hours_end),
            [WEEKDAYS.index(d) for d in sla.working_days],
            official,
            extra,
        )
        first: dict[Severity, Target] = {}
        updates: dict[Severity, Target | None] = {}
        for label, target in sla.targets.items():
            severity = Severity.from_label(label)
            amount = parse_duration(target.first_response)
            assert amount is not None  # the config schema requires a first-response target
            first[severity] = Target(amount, target.first_response_clock == "business")
            cadence = parse_duration(target.status_update)
            updates[severity] = (
                Target(cadence, target.status_update_clock == "business") if cadence else None
            )
        return cls(calendar, first, updates, label=sla.timezone_label)

    def add(self, start: datetime, target: Target) -> datetime:
        """``start`` (naive UTC) plus the target on its clock, as naive UTC.

        Remembered for the last few starts: the worker gives every message of a chunk
        the same ``now``, and walking the business calendar cost a twentieth of
        applying a message.
        """
        key = (start, target)
        due = self._sums.get(key)
        if due is None:
            if len(self._sums) >= _REMEMBERED_SUMS:
                self._sums.clear()
            due = self._sums[key] = self._sum(start, target)
        return due

    def _sum(self, start: datetime, target: Target) -> datetime:
        if target.business:
            amount = target.amount.length(self.calendar.day_length)
            due = self.calendar.add_business_time(start.replace(tzinfo=UTC), amount)
            return due.astimezone(UTC).replace(tzinfo=None)
        return start + target.amount.length(timedelta(days=1))

    def first_response_due(self, severity: Severity, start: datetime) -> datetime:
        return self.add(start, self.first_response[severity])

    def next_update_due(self, severity: Severity, start: datetime) -> datetime | None:
        cadence = self.status_update.get(severity)
        return self.add(start, cadence) if cadence is not None else None

    def latest_update_due(self, severity: Severity, first_due: datetime, now: datetime) -> datetime:
        """The most recent point of the update cadence at or before ``now``.

        With no staff update since ``first_due``, the cadence keeps ticking: an hourly
        Emergency due at 10:00 is due again at 11:00, 12:00, ...  Only the newest
        missed point is returned, so a daemon that was down for hours reminds once.
        """
        cadence = self.status_update.get(severity)
        due = first_due
        if cadence is None:
            return due
        for _ in range(10_000):
            following = self.add(due, cadence)
            if following > now or following <= due:
                return due
            due = following
        return due

    def describe(self, instant: datetime, reference: datetime | None = None) -> str:
        """A due time in the customer's terms: ``10:00 AM PT on Monday, December 1``."""
        local = self.calendar.local(instant)
        label = self.label or zone_label(self.calendar.tz.key, local)
        ref = self.calendar.local(reference) if reference is not None else None
        return due_phrase(local, label, ref)
