"""Sections of the core path: addresses, database, intake, worker, outbound, acknowledgements."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mailbot.config.base import Section, lower_address


class MailbotSection(Section):
    support_address: str
    aliases: list[str] = Field(default_factory=list)
    ticket_prefix: str = Field(default="SUP", pattern=r"^[A-Z][A-Z0-9]{0,9}$")

    _check_address = field_validator("support_address")(lower_address)

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, values: list[str]) -> list[str]:
        return [lower_address(v) for v in values]

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset([self.support_address, *self.aliases])


class DatabaseSection(Section):
    url: str = "sqlite:///var/mailbot.db"
    busy_timeout: float = Field(default=5.0, gt=0)


class SmtpIntakeSection(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=0, le=65535)
    protocol: Literal["smtp", "lmtp"] = "smtp"
    max_message_size: int = Field(default=26_214_400, gt=0)
    hostname: str | None = None
    # Flow control (mailbot/intake/pacing.py): while more than this many received messages
    # wait for the worker, a 250 waits up to pace_max_delay seconds.  0: never.
    pace_backlog: int = Field(default=50, ge=0)
    pace_max_delay: float = Field(default=5.0, gt=0, le=60)


class ImapIntakeSection(Section):
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


class IntakeSection(Section):
    smtp: SmtpIntakeSection = SmtpIntakeSection()
    imap: ImapIntakeSection = ImapIntakeSection()


class WorkerSection(Section):
    # A worker process beside the daemon's own (mailbot/worker_process.py); 0: in-process.
    # At most one: a single worker decides messages in the order they arrived, so a reply
    # never overtakes the message it answers.
    processes: int = Field(default=1, ge=0, le=1)
    poll_interval: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=50, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)


class OutboundSection(Section):
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

    _check_from = field_validator("from_address")(lower_address)

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.username else None


class AcknowledgementSection(Section):
    enabled: bool = True
    acknowledge_replies: bool = False
    max_per_sender_per_hour: int = Field(default=5, ge=0)
    templates: str = "templates"
    # Send the acknowledgement to the requester with the ticket's other participants on Cc.
    cc_participants: bool = True


class SeverityTarget(Section):
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


class PolicySection(Section):
    support_hours: str = "6:00 to 18:00 Pacific Time, Monday to Friday, excluding holidays"
    targets: dict[Literal["emergency", "high", "normal", "low"], SeverityTarget] = Field(
        default_factory=_policy_targets
    )

    @field_validator("targets")
    @classmethod
    def _fill_missing(cls, value: dict[str, SeverityTarget]) -> dict[str, SeverityTarget]:
        return {**_policy_targets(), **value}


class HttpSection(Section):
    """Health (``/healthz``) and Prometheus metrics (``/metrics``); loopback by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9125, ge=0, le=65535)
    # A worker/sender loop that has not come round for this long counts as stuck.
    stuck_after: float = Field(default=300.0, gt=0)
