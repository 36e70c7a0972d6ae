"""Building outgoing RFC 5322 messages with safe headers."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

_LINE_BREAKS = re.compile(r"[\r\n\x00-\x1f\x7f]+")


def header_safe(value: str, limit: int = 900) -> str:
    """One line of header text: CR, LF and other controls become spaces."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split())[:limit]


def make_message_id(domain: str) -> str:
    """A new globally unique Message-ID (without angle brackets)."""
    return f"{int(time.time() * 1000):x}.{secrets.token_hex(10)}@{domain}"


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1]


def compose(
    *,
    from_address: str,
    from_name: str,
    to: Iterable[str],
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    cc: Iterable[str] = (),
    auto_reply: bool = True,
    date: float | None = None,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((header_safe(from_name), from_address))
    msg["To"] = ", ".join(header_safe(a) for a in to)
    cc = [header_safe(a) for a in cc]
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = header_safe(subject)
    msg["Date"] = format_datetime(datetime.fromtimestamp(date or time.time()).astimezone())
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{header_safe(in_reply_to)}>"
    refs = [f"<{header_safe(r)}>" for r in references]
    if refs:
        msg["References"] = " ".join(refs)
    if auto_reply:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = from_address
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()
