"""The business calendar: opening hours in a time zone, working days, holidays.

All arithmetic on instants is done in UTC and only the *window* of each business
day is built in local time, so DST changes are handled by ``zoneinfo``: a business
day is "06:00 to 18:00 on the local clock", whatever its length in UTC.  (Adding a
``timedelta`` to an aware local datetime would do wall-clock arithmetic instead of
elapsed-time arithmetic, which is wrong across a DST change.)
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# Even a calendar with one working day a week and many holidays finds a window well
# within this many days; more means the configuration leaves no business time at all.
_MAX_DAYS_SEARCHED = 3 * 366


class NoBusinessTime(ValueError):
    """The calendar has no business time left to count (e.g. every day is a holiday)."""


def supported_countries() -> frozenset[str]:
    """The country codes the ``holidays`` package knows (with aliases such as UK, USA)."""
    from holidays.registry import EntityLoader

    return frozenset(EntityLoader.get_country_codes())


def official_holidays(
    country: str, subdivision: str | None = None, years: Iterable[int] = ()
) -> Container[date]:
    """Public holidays of a country from the ``holidays`` package (other years load lazily).

    The package is imported here, not with this module: the worker process gets plain
    dates (``holiday_dates``) and never loads it.
    """
    import holidays

    _import_one_country(country)
    return holidays.country_holidays(country, subdiv=subdivision or None, years=years)


def holiday_dates(country: str, subdivision: str | None, years: range) -> frozenset[date]:
    """The public holidays of ``years`` as plain dates, for a process to take over."""
    if not country:
        return frozenset()
    return frozenset(official_holidays(country, subdivision, years))  # type: ignore[arg-type]


def _import_one_country(code: str) -> None:
    """Import the module of one country of the ``holidays`` package, not those of all 250.

    The package loads countries lazily, but through ``holidays.countries``, whose
    ``__init__`` imports every country: 300 modules, 7 MB more in each of the daemon's
    processes.  With the country's module already imported, the lazy loader takes it
    from ``sys.modules``; so it is imported here under a stand-in for its package,
    which is removed again at once.
    """
    import holidays
    from holidays.registry import COUNTRIES

    modules = [f"holidays.countries.{name}" for name, codes in COUNTRIES.items() if code in codes]
    if not modules or modules[0] in sys.modules or "holidays.countries" in sys.modules:
        return
    module = modules[0]
    stand_in = types.ModuleType("holidays.countries")
    stand_in.__path__ = [str(Path(holidays.__file__).parent / "countries")]
    sys.modules["holidays.countries"] = stand_in
    try:
        importlib.import_module(module)
    finally:
        del sys.modules["holidays.countries"]


@dataclass(frozen=True)
class _Holidays:
    """Official holidays plus extra dates from the configuration."""

    official: Container[date] | None
    extra: frozenset[date]

    def __contains__(self, day: object) -> bool:
        return day in self.extra or (self.official is not None and day in self.official)


class BusinessCalendar:
    """Opening hours ``opens``–``closes`` (local time) on working days that are not holidays."""

    def __init__(
        self,
        tz: ZoneInfo,
        opens: time,
        closes: time,
        working_days: Iterable[int] = (0, 1, 2, 3, 4),
        official: Container[date] | None = None,
        extra_holidays: Iterable[date] = (),
    ) -> None:
        if not opens < closes:
            raise ValueError("business hours must open before they close")
        self.tz = tz
        self.opens = opens
        self.closes = closes
        self.working_days = frozenset(working_days)  # Monday = 0
        if not self.working_days:
            raise ValueError("at least one working day is needed")
        self.holidays = _Holidays(official, frozenset(extra_holidays))

    @property
    def day_length(self) -> timedelta:
        """The nominal length of one business day (used for "1 business day" = "12h" here)."""
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The day's opening and closing instants, in UTC (DST-correct)."""
        start = datetime.combine(day, self.opens, tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(day, self.closes, tzinfo=self.tz).astimezone(UTC)
        return start, end

    def _business_windows(self, after: datetime) -> Iterable[tuple[datetime, datetime]]:
        """Business windows (UTC) that end after ``after``, in order."""
        day = after.astimezone(self.tz).date()
        for _ in range(_MAX_DAYS_SEARCHED):
            if self.is_business_day(day):
                start, end = self.window(day)
                if end > after:
                    yield max(start, after), end
            day += timedelta(days=1)
        raise NoBusinessTime(f"no business day within {_MAX_DAYS_SEARCHED} days of {after}")

    def is_open(self, instant: datetime) -> bool:
        start, _ = next(iter(self._business_windows(_utc(instant))))
        return start <= _utc(instant)

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when ``amount`` of business time has passed since ``start`` (aware, UTC).

        Time outside opening hours does not count; starting outside them, the clock
        starts at the next opening.  The result is the exact instant, e.g. Friday
        17:30 plus 4 business hours (06:00–18:00) is Monday 09:30.
        """
        cursor = _utc(start)
        if amount <= timedelta(0):
            return cursor
        remaining = amount
        for window_start, window_end in self._business_windows(cursor):
            available = window_end - window_start
            if remaining <= available:
                return window_start + remaining
            remaining -= available
        raise AssertionError("unreachable: _business_windows raises when it runs out")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much business time lies between two instants (zero if ``end`` <= ``start``)."""
        begin, finish = _utc(start), _utc(end)
        total = timedelta(0)
        if finish <= begin:
            return total
        for window_start, window_end in self._business_windows(begin):
            if window_start >= finish:
                break
            total += min(window_end, finish) - window_start
        return total

    def local(self, instant: datetime) -> datetime:
        return _utc(instant).astimezone(self.tz)


def _utc(instant: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC (the store's convention)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)
