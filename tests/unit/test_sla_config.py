"""``[sla]``, ``[staff]``, ``[paging]``, ``[reminders]``: defaults, overrides, clear errors."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from mailbot.config import parse_settings
from mailbot.errors import ConfigError
from mailbot.sla.breach import breached
from mailbot.sla.clocks import Duration, parse_duration

MINIMAL = {
    "mailbot": {"support_address": "support@example.com"},
    "outbound": {"from_address": "support@example.com"},
}


def settings(**sections: object):  # type: ignore[no-untyped-def]
    return parse_settings({**MINIMAL, **sections}, Path("."))


def test_defaults_follow_the_support_policy() -> None:
    sla = settings().sla
    assert sla.timezone == "America/Los_Angeles"
    assert (sla.business_hours_start, sla.business_hours_end) == ("06:00", "18:00")
    assert sla.working_days == ["mon", "tue", "wed", "thu", "fri"]
    assert sla.holidays_country == "US"
    targets = {k: (v.first_response, v.first_response_clock) for k, v in sla.targets.items()}
    assert targets == {
        "emergency": ("1h", "wall"),
        "high": ("4h", "business"),
        "normal": ("1d", "business"),
        "low": ("2d", "business"),
    }
    assert sla.targets["emergency"].status_update_clock == "wall"
    assert sla.targets["high"].status_update == "1d"
    assert sla.targets["normal"].status_update == ""
    assert not settings().paging.enabled


def test_single_keys_can_be_overridden() -> None:
    sla = settings(
        sla={"targets": {"low": {"first_response": "3d"}}, "extra_holidays": ["2025-12-26"]}
    ).sla
    assert sla.targets["low"].first_response == "3d"
    assert sla.targets["low"].first_response_clock == "business"
    assert sla.targets["high"].first_response == "4h"
    assert sla.extra_holidays == [date(2025, 12, 26)]


def test_addresses_and_domains_are_normalised() -> None:
    cfg = settings(
        staff={"addresses": ["Dan@Example.COM"], "domains": ["@Example.com"]},
        paging={"allowed_domains": ["Customer.Example"], "oncall_address": "OnCall@example.com"},
    )
    assert cfg.staff.addresses == ["dan@example.com"]
    assert cfg.staff.domains == ["example.com"]
    assert cfg.paging.allowed_domains == ["customer.example"]
    assert cfg.paging.enabled


def test_routing_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOT_PAGING_ROUTING_KEY", "from-env")
    assert settings(paging={"webhook_url": "https://x.example/"}).paging.key() == "from-env"
    assert settings(paging={"routing_key": "inline"}).paging.key() == "inline"


@pytest.mark.parametrize(
    ("sections", "fragment"),
    [
        ({"sla": {"timezone": "Pacific/Nowhere"}}, "key 'sla.timezone': unknown time zone"),
        ({"sla": {"business_hours_start": "6am"}}, "key 'sla.business_hours_start'"),
        ({"sla": {"business_hours_start": "19:00"}}, "must be before business_hours_end"),
        ({"sla": {"working_days": []}}, "key 'sla.working_days'"),
        ({"sla": {"working_days": ["monday"]}}, "key 'sla.working_days.0'"),
        ({"sla": {"holidays_country": "XX"}}, "key 'sla.holidays_country': no holiday calendar"),
        ({"sla": {"holidays_subdivision": "ZZ"}}, "holidays_subdivision"),
        ({"sla": {"extra_holidays": ["tomorrow"]}}, "key 'sla.extra_holidays.0'"),
        (
            {"sla": {"targets": {"high": {"first_response": "4 hours"}}}},
            "key 'sla.targets.high.first_response': not a duration",
        ),
        (
            {"sla": {"targets": {"high": {"first_response": ""}}}},
            "a first-response target is required",
        ),
        ({"sla": {"targets": {"high": {"first_response": "0h"}}}}, "more than zero"),
        (
            {"sla": {"targets": {"high": {"status_update_clock": "lunar"}}}},
            "key 'sla.targets.high.status_update_clock'",
        ),
        ({"sla": {"targets": {"urgent": {}}}}, "sla.targets.urgent"),
        ({"sla": {"targets": {"high": {"typo": "1h"}}}}, "unknown key 'sla.targets.high.typo'"),
        ({"staff": {"domains": ["a@b.c"]}}, "key 'staff.domains': not a domain: 'a@b.c'"),
        ({"paging": {"webhook_url": "events.pagerduty.com"}}, "key 'paging.webhook_url'"),
        ({"paging": {"oncall_address": "oncall"}}, "key 'paging.oncall_address'"),
        ({"paging": {"max_pages_per_sender_per_hour": -1}}, "max_pages_per_sender_per_hour"),
        ({"reminders": {"interval": 0}}, "key 'reminders.interval'"),
        ({"reminders": {"status_update_severities": ["urgent"]}}, "status_update_severities"),
    ],
)
def test_bad_values_name_their_key(sections: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**sections)
    assert fragment in str(caught.value)


def test_durations() -> None:
    assert parse_duration("1h30m") == Duration(0, parse_duration("90m").rest)  # type: ignore[union-attr]
    assert parse_duration(" 2d ") == Duration(2, parse_duration("2d").rest)  # type: ignore[union-attr]
    assert parse_duration("") is None
    for bad in ("1.5h", "h", "1w", "-1h", "1m1h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def ticket(**fields: object) -> SimpleNamespace:
    base = {
        "status": "open",
        "first_response_due": datetime(2025, 1, 1, 12),
        "first_response_at": None,
        "next_update_due": None,
        "resolved_at": None,
    }
    return SimpleNamespace(**{**base, **fields})


def test_breached() -> None:
    before, after = datetime(2025, 1, 1, 11), datetime(2025, 1, 1, 13)
    assert not breached(ticket(), before)  # type: ignore[arg-type]
    assert breached(ticket(), after)  # type: ignore[arg-type]
    assert not breached(ticket(first_response_at=before), after)  # type: ignore[arg-type]
    assert breached(ticket(first_response_at=after), after)  # type: ignore[arg-type]
    # Resolved without a reply before the due time: no breach, ever.
    resolved = ticket(status="resolved", resolved_at=before)
    assert not breached(resolved, datetime(2030, 1, 1))  # type: ignore[arg-type]
    # An overdue status update of an open ticket.
    late_update = ticket(first_response_at=before, next_update_due=datetime(2025, 1, 1, 12, 30))
    assert breached(late_update, after)  # type: ignore[arg-type]
    assert not breached(late_update, datetime(2025, 1, 1, 12, 15))  # type: ignore[arg-type]
