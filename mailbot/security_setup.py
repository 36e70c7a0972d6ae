"""Building the hostile-mail parts from settings: the reply-token key and the policy values."""

from __future__ import annotations

import logging
import os

from mailbot.config import Settings
from mailbot.outbound.reply_token import ReplyTokens, configured_secret, stored_secret
from mailbot.pipeline.limits import Limits
from mailbot.pipeline.security import SecurityPolicy
from mailbot.store.db import Store

log = logging.getLogger("mailbot.security")


def _configured(settings: Settings) -> bytes | None:
    sec = settings.security
    path = sec.reply_token_secret_file
    resolved = str(settings.resolve_path(path)) if path else None
    return configured_secret(sec.reply_token_secret_env, resolved)


def secret_source(settings: Settings) -> str:
    """Where the reply-token secret comes from; ConfigError when the configured one is bad."""
    sec = settings.security
    if _configured(settings) is None:
        return "secret generated on first start and kept in the database"
    if sec.reply_token_secret_env and os.environ.get(sec.reply_token_secret_env):
        return f"secret from ${sec.reply_token_secret_env}"
    return f"secret from {settings.resolve_path(sec.reply_token_secret_file or '')}"


def reply_tokens(settings: Settings, store: Store) -> ReplyTokens:
    """The reply-token signer: the configured secret, else the one kept in the database."""
    secret = _configured(settings)
    if secret is None:
        with store.transaction() as session:
            secret = stored_secret(session)
        log.debug("reply tokens: using the secret stored in the database")
    return ReplyTokens(secret)


def limits(settings: Settings) -> Limits:
    cfg = settings.limits
    return Limits(
        max_headers=cfg.max_headers,
        max_header_line_length=cfg.max_header_line_length,
        max_mime_parts=cfg.max_mime_parts,
        max_mime_depth=cfg.max_mime_depth,
        max_attachments=cfg.max_attachments,
        max_attachment_bytes=cfg.max_attachment_bytes,
    )


def security_policy(settings: Settings, tokens: ReplyTokens) -> SecurityPolicy:
    sec = settings.security
    return SecurityPolicy(
        append_policy=sec.append_policy,
        unauthorised_reference=sec.unauthorised_reference,
        tokens=tokens,
        authserv_id=sec.authserv_id.strip().lower(),
        require_dmarc_for_paging=sec.dmarc_required_for_paging,
        require_auth_for_staff=sec.auth_required_for_staff,
        max_automatic_per_ticket_per_hour=sec.max_automatic_per_ticket_per_hour,
        bounce_suppression_seconds=sec.bounce_suppression_seconds,
        limits=limits(settings),
    )
