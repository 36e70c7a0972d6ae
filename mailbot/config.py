"""TOML configuration → validated, typed settings.

One pydantic schema, mirrored line by line by ``config.example.toml``.  Unknown
keys are errors (a typo must not silently fall back to a default), and every
error names the dotted key it is about.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailbot.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _lower_address(value: str) -> str:
    value = value.strip().lower()
    if "@" not in value or value.startswith("@") or value.endswith("@"):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


class MailbotSection(_Section):
    support_address: str
    aliases: list[str] = Field(default_factory=list)
    ticket_prefix: str = Field(default="SUP", pattern=r"^[A-Z][A-Z0-9]{0,9}$")

    _check_address = field_validator("support_address")(_lower_address)

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, values: list[str]) -> list[str]:
        return [_lower_address(v) for v in values]

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset([self.support_address, *self.aliases])


class DatabaseSection(_Section):
    url: str = "sqlite:///var/mailbot.db"
    busy_timeout: float = Field(default=5.0, gt=0)


class SmtpIntakeSection(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=0, le=65535)
    protocol: Literal["smtp", "lmtp"] = "smtp"
    max_message_size: int = Field(default=26_214_400, gt=0)
    hostname: str | None = None


class ImapIntakeSection(_Section):
    """IMAP intake (mailbot/intake/imap.py).  The password never lives in the TOML."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)  # None: 993 implicit, else 143
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    verify_certificates: bool = True
    ca_file: str | None = None
    username: str | None = None
    password_env: str = "MAILBOT_IMAP_PASSWORD"
    password_file: str | None = None
    folder: str = "INBOX"
    processed_folder: str = "mailbot-processed"
    quarantine_folder: str = "mailbot-quarantine"
    idle: bool = True
    idle_renew: float = Field(default=300.0, gt=0, le=600)
    poll_interval: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=100, gt=0, le=1000)
    max_message_size: int = Field(default=26_214_400, gt=0)
    reconnect_max: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _check_imap(self) -> ImapIntakeSection:
        if self.enabled and not self.username:
            raise ValueError("'username' is required when IMAP intake is enabled")
        folders = (self.folder, self.processed_folder, self.quarantine_folder)
        if len(set(folders)) != len(folders):
            raise ValueError("folder, processed_folder and quarantine_folder must all differ")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.tls == "implicit" else 143


class IntakeSection(_Section):
    smtp: SmtpIntakeSection = SmtpIntakeSection()
    imap: ImapIntakeSection = ImapIntakeSection()


class WorkerSection(_Section):
    poll_interval: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=50, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)


class OutboundSection(_Section):
    transport: Literal["smtp", "maildir"] = "smtp"
    from_address: str
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=0, le=65535)
    tls: Literal["none", "starttls", "implicit"] = "none"
    verify_certificates: bool = True
    username: str | None = None
    password_env: str = "MAILBOT_SMTP_PASSWORD"
    timeout: float = Field(default=30.0, gt=0)
    maildir: str = "var/outbox"
    max_attempts: int = Field(default=15, gt=0)
    retry_initial: float = Field(default=30.0, gt=0)
    retry_max: float = Field(default=3600.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    # Seconds a claimed outbox row stays reserved for one sender (after a crash: this long).
    lease_seconds: float = Field(default=120.0, gt=0)

    _check_from = field_validator("from_address")(_lower_address)

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.username else None


class AcknowledgementSection(_Section):
    enabled: bool = True
    acknowledge_replies: bool = False
    max_per_sender_per_hour: int = Field(default=5, ge=0)
    templates: str = "templates"
    # Send the acknowledgement to the requester with the ticket's other participants on Cc.
    cc_participants: bool = True


class SeverityTarget(_Section):
    initial_response: str
    status_updates: str


def _policy_targets() -> dict[str, SeverityTarget]:
    return {
        "emergency": SeverityTarget(
            initial_response="within 1 hour, around the clock",
            status_updates="every hour until the issue is solved",
        ),
        "high": SeverityTarget(
            initial_response="within 4 business hours",
            status_updates="every business day",
        ),
        "normal": SeverityTarget(
            initial_response="within 1 business day",
            status_updates="as needed during business hours",
        ),
        "low": SeverityTarget(
            initial_response="within 2 business days",
            status_updates="as needed during business hours",
        ),
    }


class PolicySection(_Section):
    support_hours: str = "6:00 to 18:00 Pacific Time, Monday to Friday, excluding holidays"
    targets: dict[Literal["emergency", "high", "normal", "low"], SeverityTarget] = Field(
        default_factory=_policy_targets
    )

    @field_validator("targets")
    @classmethod
    def _fill_missing(cls, value: dict[str, SeverityTarget]) -> dict[str, SeverityTarget]:
        return {**_policy_targets(), **value}


class HttpSection(_Section):
    """Health (``/healthz``) and Prometheus metrics (``/metrics``); loopback by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9125, ge=0, le=65535)
    # A worker/sender loop that has not come round for this long counts as stuck.
    stuck_after: float = Field(default=300.0, gt=0)


# ---------------------------------------------------------------- service levels and paging

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


def _domain(value: str) -> str:
    value = value.strip().lower().lstrip("@")
    if not value or "@" in value or " " in value:
        raise ValueError(f"not a domain: {value!r}")
    return value


class SlaTarget(_Section):
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


class SlaSection(_Section):
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
        import holidays

        value = value.strip().upper()
        if value and value not in holidays.list_supported_countries():
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


class StaffSection(_Section):
    addresses: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    resolve_marker: str = "[resolved]"
    # Relay staff replies to the requester with the other participants on Cc.
    cc_participants: bool = True

    @field_validator("addresses")
    @classmethod
    def _check_addresses(cls, values: list[str]) -> list[str]:
        return [_lower_address(v) for v in values]

    @field_validator("domains")
    @classmethod
    def _check_domains(cls, values: list[str]) -> list[str]:
        return [_domain(v) for v in values]


class PagingSection(_Section):
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
        return _lower_address(value) if value.strip() else ""

    @field_validator("allowed_addresses")
    @classmethod
    def _check_allowed(cls, values: list[str]) -> list[str]:
        return [_lower_address(v) for v in values]

    @field_validator("allowed_domains")
    @classmethod
    def _check_allowed_domains(cls, values: list[str]) -> list[str]:
        return [_domain(v) for v in values]

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.oncall_address)

    def key(self) -> str:
        """The PagerDuty routing key: from the config, else from the environment."""
        return self.routing_key or os.environ.get(self.routing_key_env, "")


class RemindersSection(_Section):
    team_address: str = ""
    interval: float = Field(default=60.0, gt=0)
    status_update_severities: list[_SEVERITY] = Field(default_factory=lambda: ["emergency"])
    notify_on_call: bool = True

    @field_validator("team_address")
    @classmethod
    def _check_team(cls, value: str) -> str:
        return _lower_address(value) if value.strip() else ""


# ---------------------------------------------------------------- hostile mail (issue 5)


class SecuritySection(_Section):
    """Who may append to a ticket, reply tokens, sender authenticity, loop and bounce limits."""

    append_policy: Literal["participants", "anyone"] = "participants"
    unauthorised_reference: Literal["new-ticket", "quarantine"] = "new-ticket"
    reply_token_secret_env: str = "MAILBOT_REPLY_TOKEN_SECRET"
    reply_token_secret_file: str | None = None
    authserv_id: str = ""
    require_dmarc_for_paging: bool | None = None  # None: true when authserv_id is set
    require_auth_for_staff: bool | None = None  # None: true when authserv_id is set
    max_automatic_per_ticket_per_hour: int = Field(default=10, ge=0)
    bounce_suppression_seconds: float = Field(default=604_800.0, ge=0)

    @property
    def dmarc_required_for_paging(self) -> bool:
        if self.require_dmarc_for_paging is None:
            return bool(self.authserv_id)
        return self.require_dmarc_for_paging

    @property
    def auth_required_for_staff(self) -> bool:
        if self.require_auth_for_staff is None:
            return bool(self.authserv_id)
        return self.require_auth_for_staff


class LimitsSection(_Section):
    """Structural limits checked before a message is parsed (size: ``intake.*``)."""

    max_headers: int = Field(default=500, gt=0)
    max_header_line_length: int = Field(default=16_384, gt=0)
    max_mime_parts: int = Field(default=200, gt=0)
    max_mime_depth: int = Field(default=20, gt=0)
    max_attachments: int = Field(default=100, ge=0)
    max_attachment_bytes: int = Field(default=26_214_400, ge=0)


class ThreadsSection(_Section):
    """How messages read in a thread, and who takes part in it (mailbot/pipeline/content.py)."""

    # Languages of reply headers and closings that quote stripping recognises
    # (mail-parser-reply codes: en de fr es it nl pl cs da sv ja ko zh).
    reply_languages: list[str] = Field(default_factory=lambda: ["en", "de", "fr", "es", "it", "nl"])
    # At most this many participants on the Cc of one acknowledgement or relay.
    max_cc: int = Field(default=10, ge=0)

    @field_validator("reply_languages")
    @classmethod
    def _check_languages(cls, values: list[str]) -> list[str]:
        from mailparser_reply.constants import MAIL_LANGUAGES

        known = sorted(k for k in MAIL_LANGUAGES if len(k) == 2)
        for value in values:
            if value.strip().lower() not in known:
                raise ValueError(f"unknown language {value!r} (known: {' '.join(known)})")
        return [v.strip().lower() for v in values]


class Settings(_Section):
    mailbot: MailbotSection
    database: DatabaseSection = DatabaseSection()
    intake: IntakeSection = IntakeSection()
    worker: WorkerSection = WorkerSection()
    outbound: OutboundSection
    acknowledgement: AcknowledgementSection = AcknowledgementSection()
    policy: PolicySection = PolicySection()
    sla: SlaSection = SlaSection()
    staff: StaffSection = StaffSection()
    paging: PagingSection = PagingSection()
    reminders: RemindersSection = RemindersSection()
    threads: ThreadsSection = ThreadsSection()
    http: HttpSection = HttpSection()
    security: SecuritySection = SecuritySection()
    limits: LimitsSection = LimitsSection()
    base_dir: Path = Path(".")

    def resolve_path(self, value: str) -> Path:
        """Relative paths in the config are relative to the config file."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the config file."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = url[len(prefix) :]
            if not path.startswith("/"):
                return prefix + str(self.resolve_path(path).resolve())
        return url


def _format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "__root__")


def _describe(error: dict) -> str:
    key = _format_location(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    if error["type"] == "missing":
        return f"missing required key '{key}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"key '{key}': {message}"


def parse_settings(data: dict, base_dir: Path, source: str = "config") -> Settings:
    """Validate a decoded TOML document; raise ConfigError naming the first bad key."""
    if "base_dir" in data:
        raise ConfigError(f"{source}: unknown key 'base_dir'")
    try:
        return Settings.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read and validate a TOML config file."""
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {config_path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    return parse_settings(data, config_path.resolve().parent, source=str(config_path))
