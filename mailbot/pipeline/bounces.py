"""Delivery-status reports and other bounces: recognised, read, never answered.

A bounce of our acknowledgement must not open a ticket (and must not be acknowledged,
or two mail systems answer each other forever).  It belongs to the ticket whose
mail bounced, found by the original Message-ID inside the report, and the address
that failed gets no automatic mail for a while (``[security] bounce_suppression_seconds``).

Recognised: ``multipart/report; report-type=delivery-status`` (RFC 3464, 6533), and
bounces without it: mail from MAILER-DAEMON/postmaster, or from the null sender with
a bounce-like subject.  Pure functions over the parsed mail and its raw bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from mailbot.message import InboundMail, message_ids
from mailbot.pipeline.threading_rules import TicketView

_BOUNCE_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|not (?:be )?delivered|delivery (?:status notification|failure|has failed|"
    r"problem|incomplete)|failure notice|returned mail|mail delivery (?:failed|failure|"
    r"subsystem)|non-?delivery|unzustellbar|no se puede entregar|non remis",
    re.IGNORECASE,
)
_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_QUOTED_MESSAGE_ID = re.compile(rb"(?im)^[ \t>]*(?:X-Original-)?Message-ID:[ \t]*(<[^<>\s]+>)")


@dataclass(frozen=True)
class BounceReport:
    kind: str  # why it counts as a bounce
    original_ids: tuple[str, ...]  # Message-IDs of the message(s) that bounced
    recipients: tuple[str, ...]  # recipients the report lists (empty: no DSN fields)
    failed: tuple[str, ...]  # of those, the ones whose Action is "failed"


@dataclass(frozen=True)
class AttachBounce:
    """A decision: add the bounce to the ticket of our bounced mail; suppress addresses."""

    ticket: TicketView
    suppress: tuple[str, ...]
    note: str
    suppress_seconds: float = 0.0  # how long no automatic mail goes to ``suppress``


def bounce_kind(mail: InboundMail) -> str | None:
    """Why the message is a bounce, or None."""
    if mail.content_type == "multipart/report" and mail.report_type == "delivery-status":
        return "delivery-status report"
    sender = (mail.from_address or mail.from_header or "").lower()
    local = sender.rsplit("@", 1)[0].rsplit("<", 1)[-1].strip()
    if local in _BOUNCE_LOCAL_PARTS:
        return f"bounce from {local.upper() if local == 'mailer-daemon' else local}"
    null_sender = mail.envelope_from is not None and mail.envelope_from.strip("<> ") == ""
    if null_sender and _BOUNCE_SUBJECT.search(mail.subject):
        return "bounce (null sender, bounce subject)"
    return None


def _address(field: str) -> str:
    """``rfc822; Alice@Example.com`` → ``alice@example.com``."""
    return field.split(";", 1)[-1].strip().strip("<>").lower()


def _dsn_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # some parsers leave it as text: blocks split by blank lines
        return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\r?\n", payload)]
    return []


def _ids_of(part: Message) -> list[str]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [i for p in payload if isinstance(p, Message) for i in message_ids(p["Message-ID"])]
    if isinstance(payload, str):
        headers = HeaderParser().parsestr(payload, headersonly=True)
        return list(message_ids(headers["Message-ID"]))
    return []


def read_report(mail: InboundMail, raw: bytes, kind: str) -> BounceReport:
    """The original Message-IDs and the failed recipients a bounce tells of."""
    ids: list[str] = []
    recipients: list[str] = []
    failed: list[str] = []
    message = message_from_bytes(raw, policy=compat32)
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in _DSN_TYPES:
            for block in _dsn_blocks(part):
                field = block["Final-Recipient"] or block["Original-Recipient"]
                if not field:
                    continue
                address = _address(str(field))
                recipients.append(address)
                if str(block["Action"] or "").strip().lower().startswith("failed"):
                    failed.append(address)
        elif content_type in _ORIGINAL_TYPES:
            ids += _ids_of(part)
    if not ids:  # a bounce without structure: the original's headers quoted in the text
        blank = _BLANK_LINE.search(raw)
        body = raw[blank.end() :] if blank else b""
        for found in _QUOTED_MESSAGE_ID.finditer(body):
            ids += message_ids(found.group(1).decode("ascii", "replace"))
    ids += mail.referenced_ids  # some MTAs thread their bounces
    own = mail.message_id
    unique = tuple(dict.fromkeys(i for i in ids if i and i != own))
    return BounceReport(
        kind, unique, tuple(dict.fromkeys(recipients)), tuple(dict.fromkeys(failed))
    )
