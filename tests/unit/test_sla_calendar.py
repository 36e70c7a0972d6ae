"""Business-time arithmetic with the POLICY.md defaults: weekends, holidays, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.config import parse_settings
from mailbot.pipeline.severity import Severity
from mailbot.sla.calendar import BusinessCalendar, NoBusinessTime, holiday_dates
from mailbot.sla.clocks import ServiceClocks

PT = ZoneInfo("America/Los_Angeles")
MINIMAL = {
    "mailbot": {"support_address": "support@example.com"},
    "outbound": {"from_address": "support@example.com"},
}


def clocks(**sla: object) -> ServiceClocks:
    return ServiceClocks.from_settings(parse_settings({**MINIMAL, "sla": sla}, Path(".")).sla)


def pt(year: int, month: int, day: int, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    """A Pacific wall-clock time as the store keeps it: naive UTC."""
    local = datetime(year, month, day, hour, minute, tzinfo=PT, fold=fold)
    return local.astimezone(UTC).replace(tzinfo=None)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute)


DEFAULT = clocks()


def test_friday_afternoon_high_is_due_monday_morning() -> None:
    # Friday 2025-11-21 17:30: half an hour left on Friday, 3.5 hours on Monday.
    assert DEFAULT.first_response_due(Severity.HIGH, pt(2025, 11, 21, 17, 30)) == pt(
        2025, 11, 24, 9, 30
    )


def test_emergency_is_wall_clock_even_on_sunday_night() -> None:
    assert DEFAULT.first_response_due(Severity.EMERGENCY, pt(2025, 11, 23, 3)) == pt(
        2025, 11, 23, 4
    )


def test_outside_hours_the_clock_starts_at_the_next_opening() -> None:
    saturday = pt(2025, 11, 29, 14)
    assert DEFAULT.first_response_due(Severity.HIGH, saturday) == pt(2025, 12, 1, 10)
    # Normal: one business day (12 business hours) = the whole of Monday.
    assert DEFAULT.first_response_due(Severity.NORMAL, saturday) == pt(2025, 12, 1, 18)
    # Low: two business days.
    assert DEFAULT.first_response_due(Severity.LOW, saturday) == pt(2025, 12, 2, 18)
    early = pt(2025, 12, 2, 4, 15)  # Tuesday before opening
    assert DEFAULT.first_response_due(Severity.HIGH, early) == pt(2025, 12, 2, 10)


def test_a_us_federal_holiday_does_not_count() -> None:
    # Thanksgiving, Thursday 2025-11-27.
    assert DEFAULT.first_response_due(Severity.HIGH, pt(2025, 11, 27, 10)) == pt(2025, 11, 28, 10)
    # Wednesday 17:00 Normal: 1 hour on Wednesday, Thursday skipped, 11 hours on Friday.
    assert DEFAULT.first_response_due(Severity.NORMAL, pt(2025, 11, 26, 17)) == pt(2025, 11, 28, 17)


def test_extra_holidays_from_the_config() -> None:
    with_friday_off = clocks(extra_holidays=["2025-11-28"])
    assert with_friday_off.first_response_due(Severity.NORMAL, pt(2025, 11, 26, 17)) == pt(
        2025, 12, 1, 17
    )


def test_no_official_holidays_when_no_country() -> None:
    assert clocks(holidays_country="").first_response_due(
        Severity.HIGH, pt(2025, 11, 27, 10)
    ) == pt(2025, 11, 27, 14)


def test_across_the_march_dst_change() -> None:
    # 2026-03-08 02:00 PST → 03:00 PDT.  Friday 17:00 PST + 4 business hours = Monday
    # 09:00 PDT, which is 16:00 UTC (it would be 17:00 UTC in winter).
    due = DEFAULT.first_response_due(Severity.HIGH, pt(2026, 3, 6, 17))
    assert due == pt(2026, 3, 9, 9) == utc(2026, 3, 9, 16)
    # An hour after 01:30 PST on the night of the change is 03:30 PDT.
    due = DEFAULT.first_response_due(Severity.EMERGENCY, pt(2026, 3, 8, 1, 30))
    assert due == pt(2026, 3, 8, 3, 30) == utc(2026, 3, 8, 10, 30)
    # A business week spanning the change still has 12-hour days on the local clock.
    cal = DEFAULT.calendar
    friday = pt(2026, 3, 6, 6).replace(tzinfo=UTC)
    monday_close = pt(2026, 3, 9, 18).replace(tzinfo=UTC)
    assert cal.business_time_between(friday, monday_close) == timedelta(hours=24)


def test_across_the_november_dst_change() -> None:
    # 2025-11-02 02:00 PDT → 01:00 PST.  Friday 17:00 PDT + 4 business hours = Monday
    # 09:00 PST = 17:00 UTC.
    due = DEFAULT.first_response_due(Severity.HIGH, pt(2025, 10, 31, 17))
    assert due == pt(2025, 11, 3, 9) == utc(2025, 11, 3, 17)
    # One elapsed hour after the first 01:30 (PDT) is the second 01:30 (PST).
    due = DEFAULT.first_response_due(Severity.EMERGENCY, pt(2025, 11, 2, 1, 30))
    assert due == pt(2025, 11, 2, 1, 30, fold=1) == utc(2025, 11, 2, 9, 30)


def test_dst_change_inside_opening_hours() -> None:
    """A 24-hour business day on the local clock is 23 or 25 hours long on DST days."""
    cal = BusinessCalendar(PT, time(0, 0), time(23, 59), range(7))
    start = datetime(2025, 11, 2, 0, 0, tzinfo=PT).astimezone(UTC)
    # 2025-11-02 has 25 hours: 00:00 → 23:59 local is 24h59m elapsed.
    assert cal.business_time_between(start, start + timedelta(days=2)) >= timedelta(hours=24)
    due = cal.add_business_time(start, timedelta(hours=24, minutes=59))
    assert due.astimezone(PT).replace(tzinfo=None) == datetime(2025, 11, 2, 23, 59)


def test_wall_clock_targets_can_be_configured_per_severity() -> None:
    custom = clocks(targets={"high": {"first_response": "4h", "first_response_clock": "wall"}})
    assert custom.first_response_due(Severity.HIGH, pt(2025, 11, 21, 17, 30)) == pt(
        2025, 11, 21, 21, 30
    )
    # The rest of High keeps its defaults: a business-day status cadence.
    assert custom.next_update_due(Severity.HIGH, pt(2025, 11, 21, 17, 30)) == pt(
        2025, 11, 24, 17, 30
    )


def test_other_opening_hours_and_days() -> None:
    custom = clocks(
        timezone="Europe/Berlin",
        business_hours_start="09:00",
        business_hours_end="17:00",
        working_days=["mon", "tue", "wed", "thu", "fri", "sat"],
        holidays_country="DE",
    )
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 11, 21, 16, 0, tzinfo=berlin).astimezone(UTC).replace(tzinfo=None)
    due = custom.first_response_due(Severity.HIGH, start)  # 1h Friday, 3h Saturday
    assert due == datetime(2025, 11, 22, 12, 0, tzinfo=berlin).astimezone(UTC).replace(tzinfo=None)
    assert custom.describe(due) == "12:00 PM CET on Saturday, November 22"


def test_status_update_cadence() -> None:
    start = pt(2025, 11, 21, 10)
    assert DEFAULT.next_update_due(Severity.EMERGENCY, start) == pt(2025, 11, 21, 11)
    assert DEFAULT.next_update_due(Severity.HIGH, start) == pt(2025, 11, 24, 10)
    assert DEFAULT.next_update_due(Severity.NORMAL, start) is None
    # With no update, the hourly cadence keeps ticking; the newest missed point counts.
    due = pt(2025, 11, 21, 11)
    assert DEFAULT.latest_update_due(Severity.EMERGENCY, due, pt(2025, 11, 21, 10, 59)) == due
    assert DEFAULT.latest_update_due(Severity.EMERGENCY, due, pt(2025, 11, 21, 13, 30)) == pt(
        2025, 11, 21, 13
    )


def test_due_times_in_the_customers_terms() -> None:
    saturday = pt(2025, 11, 29, 14)
    due = DEFAULT.first_response_due(Severity.HIGH, saturday)
    assert DEFAULT.describe(due, saturday) == "10:00 AM PT on Monday, December 1"
    # New Year's Day is a holiday; the year is named when it is not the current one.
    new_year_eve = pt(2025, 12, 31, 17)
    due = DEFAULT.first_response_due(Severity.HIGH, new_year_eve)
    assert DEFAULT.describe(due, new_year_eve) == "9:00 AM PT on Friday, January 2, 2026"
    assert clocks(timezone_label="Pacific").describe(pt(2025, 7, 4, 12, 5)) == (
        "12:05 PM Pacific on Friday, July 4"
    )


def test_a_calendar_without_business_time_says_so() -> None:
    every_day = [date(2025, 1, 1) + timedelta(days=n) for n in range(4 * 366)]
    cal = BusinessCalendar(PT, time(6), time(18), extra_holidays=every_day)
    with pytest.raises(NoBusinessTime):
        cal.add_business_time(datetime(2025, 1, 1, 12, tzinfo=UTC), timedelta(hours=1))


instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=200, deadline=None)
@given(start=instants, minutes=st.integers(min_value=1, max_value=5 * 12 * 60))
def test_adding_business_time_then_measuring_it_gives_it_back(
    start: datetime, minutes: int
) -> None:
    cal = DEFAULT.calendar
    amount = timedelta(minutes=minutes)
    due = cal.add_business_time(start, amount)
    assert due > start
    assert cal.business_time_between(start, due) == amount
    local = due.astimezone(PT)
    assert cal.is_business_day(local.date())
    assert time(6) < local.time() <= time(18)


def test_one_country_of_the_holidays_package_is_loaded_not_all() -> None:
    """The package's ``holidays.countries`` imports all 250 countries (7 MB per process);
    mailbot loads only the configured one, and the package still works in full after."""
    import subprocess
    import sys

    script = """
import sys
from datetime import date
from mailbot.sla.calendar import official_holidays
california = official_holidays("US", "CA")
print(date(2025, 7, 4) in california, date(2025, 3, 31) in california)
print(" ".join(sorted(m for m in sys.modules if m.startswith("holidays.countries"))))
import holidays.countries
module = sys.modules["holidays.countries.united_states"]
print(holidays.countries.UnitedStates is module.UnitedStates)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    holidays_right, loaded, whole_package_works = result.stdout.splitlines()
    assert holidays_right == "True True"  # Independence Day; César Chávez Day in California
    assert loaded == "holidays.countries.united_states"
    assert whole_package_works == "True"


def test_holidays_handed_over_as_dates_count_like_the_package() -> None:
    """The worker process gets dates (``holiday_dates``) instead of the package."""
    handed_over = holiday_dates("US", "", range(2025, 2027))
    assert {date(2025, 7, 4), date(2025, 11, 27), date(2026, 12, 25)} <= handed_over
    sla = parse_settings(MINIMAL, Path(".")).sla
    wednesday_before_thanksgiving = pt(2025, 11, 26, 17)
    due = ServiceClocks.from_settings(sla, handed_over).first_response_due(
        Severity.NORMAL, wednesday_before_thanksgiving
    )
    assert due == pt(2025, 11, 28, 17)  # Thursday is off, as with the package itself
    assert holiday_dates("", "", range(2025, 2027)) == frozenset()


@settings(max_examples=100, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from([utc(2025, 11, 28, 17), utc(2025, 11, 29, 3), utc(2025, 12, 1, 16)]),
            st.sampled_from(list(Severity)),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_remembered_due_times_are_the_calendars_in_any_order(
    calls: list[tuple[datetime, Severity, bool]],
) -> None:
    """``ServiceClocks.add`` remembers its last sums (a chunk shares one ``now``)."""
    remembering = clocks()
    for start, severity, update in calls:
        fresh = clocks()  # remembers nothing yet
        if update:
            assert remembering.next_update_due(severity, start) == fresh.next_update_due(
                severity, start
            )
        else:
            assert remembering.first_response_due(severity, start) == fresh.first_response_due(
                severity, start
            )


def test_remembered_due_times_stay_few() -> None:
    remembering = clocks()
    for minute in range(500):
        remembering.first_response_due(
            Severity.HIGH, utc(2025, 12, 1, 9) + timedelta(minutes=minute)
        )
    assert len(remembering._sums) <= 64
