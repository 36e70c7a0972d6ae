"""Sections for hostile mail and readable threads: security, limits, threads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mailbot.config.base import Section


class SecuritySection(Section):
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


class LimitsSection(Section):
    """Structural limits checked before a message is parsed (size: ``intake.*``)."""

    max_headers: int = Field(default=500, gt=0)
    max_header_line_length: int = Field(default=16_384, gt=0)
    max_mime_parts: int = Field(default=200, gt=0)
    max_mime_depth: int = Field(default=20, gt=0)
    max_attachments: int = Field(default=100, ge=0)
    max_attachment_bytes: int = Field(default=26_214_400, ge=0)


class ThreadsSection(Section):
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
