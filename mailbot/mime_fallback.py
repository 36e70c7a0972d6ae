"""Reading a message mail-parser gives up on, with the standard library alone.

mail-parser raises on some broken structures (found by the property tests: a
multipart nested in itself under the same boundary, never closed).  Such mail must
still become a ticket, not a quarantined traceback, so ``message.parse`` falls back
to this: the same few attributes of ``mailparser.MailParser`` it reads, filled by
walking the stdlib's tolerant parse.  Nothing is executed or unpacked.
"""

from __future__ import annotations

import base64
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Any


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


class FallbackParse:
    """``message``, ``text_plain``, ``text_html``, ``attachments``, ``date`` like mail-parser."""

    def __init__(self, raw: bytes) -> None:
        self.message: Message = message_from_bytes(raw, policy=compat32)
        self.text_plain: list[str] = []
        self.text_html: list[str] = []
        self.attachments: list[dict[str, Any]] = []
        for part in self.message.walk():
            if part.is_multipart():
                continue
            content_type = part.get_content_type()
            filename = part.get_filename()
            if filename is None and content_type == "text/plain":
                self.text_plain.append(_text(part))
            elif filename is None and content_type == "text/html":
                self.text_html.append(_text(part))
            else:
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                self.attachments.append(
                    {
                        "filename": filename or "attachment",
                        "mail_content_type": content_type,
                        "binary": True,
                        "payload": base64.b64encode(data).decode("ascii"),
                        "content-id": part.get("Content-ID", ""),
                    }
                )

    @property
    def date(self) -> datetime | None:
        value = self.message.get("Date")
        if not value:
            return None
        try:
            return parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return None
