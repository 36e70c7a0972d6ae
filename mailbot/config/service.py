"""Sections for service levels: SLA clocks, staff, paging, reminders."""

from __future__ import annotations

import os
from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mailbot.config.base import Section, domain_name, lower_address

_WEEKDAY = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SEVERITY = Literal["emergency", "high", "normal", "low"]
_CLOCK = Literal["wall", "business"]

# POLICY.md: 1h around the clock / 4 business hours / 1 / 2 business days; updates
# hourly for Emergency, every business day for High, as needed otherwise.
_SLA_DEFAULTS: dict[str, dict[str, str]] = {
    "emergency": {
        "first_response": "1h",
        "first_response_clock": "wall",
        "status_update": "1h",
        "status_update_clock": "wall",
    },
    "high": {"first_response": "4h", "first_response_clock": "business", "status_update": "1d"},
    "normal": {"first_response": "1d", "first_response_clock": "business"},
    "low": {"first_response": "2d", "first_response_clock": "business"},
}


class SlaTarget(Section):
    first_response: str
    first_response_clock: _CLOCK
    status_update: str = ""
    status_update_clock: _CLOCK = "business"

    @field_validator("first_response")
    @classmethod
    def _check_first(cls, value: str) -> str:
        from mailbot.sla.clocks import parse_duration

        if parse_duration(value) is None:
            raise ValueError("a first-response target is required (e.g. '4h')")
        return value

    @field_validator("status_update")
    @classmethod
    def _check_update(cls, value: str) -> str:
        from mailbot.sla.clocks import parse_duration

        parse_duration(value)
        return value


class SlaSection(Section):
    timezone: str = "America/Los_Angeles"
    timezone_label: str = ""
    business_hours_start: str = "06:00"
    business_hours_end: str = "18:00"
    working_days: list[_WEEKDAY] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    holidays_country: str = "US"
    holidays_subdivision: str = ""
    extra_holidays: list[date] = Field(default_factory=list)
    targets: dict[_SEVERITY, SlaTarget] = Field(
        default_factory=lambda: {k: SlaTarget(**v) for k, v in _SLA_DEFAULTS.items()}
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _merge_defaults(cls, value: object) -> object:
        """Override single keys of a severity; the others keep the POLICY.md defaults."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, object] = {k: dict(v) for k, v in _SLA_DEFAULTS.items()}
        for key, override in value.items():
            current = merged.get(key)
            if isinstance(current, dict) and isinstance(override, dict):
                merged[key] = {**current, **override}
            else:
                merged[key] = override
        return merged

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. 'America/Los_Angeles')") from None
        return value

    @field_validator("business_hours_start", "business_hours_end")
    @classmethod
    def _check_clock_time(cls, value: str) -> str:
        from mailbot.sla.clocks import parse_clock_time

        parse_clock_time(value)
        return value

    @field_validator("holidays_country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        from mailbot.sla.calendar import supported_countries

        value = value.strip().upper()
        if value and value not in supported_countries():
            raise ValueError(f"no holiday calendar for country {value!r} (use e.g. 'US', or '')")
        return value

    @model_validator(mode="after")
    def _check_calendar(self) -> SlaSection:
        from mailbot.sla.calendar import official_holidays
        from mailbot.sla.clocks import parse_clock_time

        if parse_clock_time(self.business_hours_start) >= parse_clock_time(self.business_hours_end):
            raise ValueError("business_hours_start must be before business_hours_end")
        if self.holidays_subdivision:
            try:
                official_holidays(self.holidays_country, self.holidays_subdivision)
            except NotImplementedError as exc:
                raise ValueError(f"holidays_subdivision: {exc}") from None
        return self


class StaffSection(Section):
    addresses: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    resolve_marker: str = "[resolved]"
    # Relay staff replies to the requester with the other participants on Cc.
    cc_participants: bool = True

    @field_validator("addresses")
    @classmethod
    def _check_addresses(cls, values: list[str]) -> list[str]:
        return [lower_address(v) for v in values]

    @field_validator("domains")
    @classmethod
    def _check_domains(cls, values: list[str]) -> list[str]:
        return [domain_name(v) for v in values]


class PagingSection(Section):
    webhook_url: str = ""
    routing_key: str = ""
    routing_key_env: str = "MAILBOT_PAGING_ROUTING_KEY"
    webhook_timeout: float = Field(default=10.0, gt=0)
    oncall_address: str = ""
    allowed_addresses: list[str] = Field(default_factory=list)
    allowed_domains: list[str] = Field(default_factory=list)
    max_pages_per_sender_per_hour: int = Field(default=3, ge=0)

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("oncall_address")
    @classmethod
    def _check_oncall(cls, value: str) -> str:
        return lower_address(value) if value.strip() else ""

    @field_validator("allowed_addresses")
    @classmethod
    def _check_allowed(cls, values: list[str]) -> list[str]:
        return [lower_address(v) for v in values]

    @field_validator("allowed_domains")
    @classmethod
    def _check_allowed_domains(cls, values: list[str]) -> list[str]:
        return [domain_name(v) for v in values]

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.oncall_address)

    def key(self) -> str:
        """The PagerDuty routing key: from the config, else from the environment."""
        return self.routing_key or os.environ.get(self.routing_key_env, "")


class RemindersSection(Section):
    team_address: str = ""
    interval: float = Field(default=60.0, gt=0)
    status_update_severities: list[_SEVERITY] = Field(default_factory=lambda: ["emergency"])
    notify_on_call: bool = True

    @field_validator("team_address")
    @classmethod
    def _check_team(cls, value: str) -> str:
        return lower_address(value) if value.strip() else ""
