"""Building raw RFC 5322 test messages."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

_counter = itertools.count(1)


def make_mail(
    subject: str = "Help",
    *,
    sender: str = "alice@customer.example",
    sender_name: str = "Alice Customer",
    to: str = "support@example.com",
    cc: str | None = None,
    body: str = "Something is wrong.\n",
    message_id: str | None = "auto",
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    """A plain customer message; ``message_id='auto'`` makes a unique one, None omits it."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{sender_name} <{sender}>" if sender_name else sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    if message_id == "auto":
        message_id = f"test-{next(_counter)}-{id(msg)}@customer.example"
    if message_id:
        msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is not None and not body:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def header(raw: bytes, name: str) -> str | None:
    from email import message_from_bytes
    from email.policy import default

    value = message_from_bytes(raw, policy=default).get(name)
    return None if value is None else str(value)


def message_id_of(raw: bytes) -> str:
    value = header(raw, "Message-ID") or ""
    return value.strip().strip("<>")


def send(
    port: int,
    raw: bytes,
    *,
    mail_from: str = "alice@customer.example",
    rcpt: list[str] | None = None,
    **options,
) -> dict:  # type: ignore[no-untyped-def]
    """Send one message over SMTP to the daemon on loopback; returns refused recipients."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(mail_from, rcpt or ["support@example.com"], raw, **options)
