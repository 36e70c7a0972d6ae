"""TOML configuration → validated, typed settings.

One pydantic schema, mirrored line by line by ``config.example.toml``.  Unknown
keys are errors (a typo must not silently fall back to a default), and every
error names the dotted key it is about.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from mailbot.config.base import Section
from mailbot.config.core import (
    AcknowledgementSection,
    DatabaseSection,
    HttpSection,
    ImapIntakeSection,
    IntakeSection,
    MailbotSection,
    OutboundSection,
    PolicySection,
    SmtpIntakeSection,
    WorkerSection,
)
from mailbot.config.hardening import LimitsSection, SecuritySection, ThreadsSection
from mailbot.config.service import PagingSection, RemindersSection, SlaSection, StaffSection
from mailbot.errors import ConfigError

__all__ = [
    "AcknowledgementSection",
    "ConfigError",
    "DatabaseSection",
    "HttpSection",
    "ImapIntakeSection",
    "IntakeSection",
    "LimitsSection",
    "MailbotSection",
    "OutboundSection",
    "PagingSection",
    "PolicySection",
    "RemindersSection",
    "SecuritySection",
    "Settings",
    "SlaSection",
    "SmtpIntakeSection",
    "StaffSection",
    "ThreadsSection",
    "WorkerSection",
    "load_settings",
    "parse_settings",
]


class Settings(Section):
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
