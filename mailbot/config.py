"""TOML configuration → validated, typed settings.

One pydantic schema, mirrored line by line by ``config.example.toml``.  Unknown
keys are errors (a typo must not silently fall back to a default), and every
error names the dotted key it is about.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class IntakeSection(_Section):
    smtp: SmtpIntakeSection = SmtpIntakeSection()


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

    _check_from = field_validator("from_address")(_lower_address)

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.username else None


class AcknowledgementSection(_Section):
    enabled: bool = True
    acknowledge_replies: bool = False
    max_per_sender_per_hour: int = Field(default=5, ge=0)
    templates: str = "templates"


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


class Settings(_Section):
    mailbot: MailbotSection
    database: DatabaseSection = DatabaseSection()
    intake: IntakeSection = IntakeSection()
    worker: WorkerSection = WorkerSection()
    outbound: OutboundSection
    acknowledgement: AcknowledgementSection = AcknowledgementSection()
    policy: PolicySection = PolicySection()
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
