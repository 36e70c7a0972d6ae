"""A staff reply passed on to the requester, from the support address.

The customer sees one conversation with support: the message comes from the support
address, carries ``[SUP-n]`` in the subject and threads under what they already
have (the staff member's In-Reply-To/References, which point at the customer's
messages or our earlier ones).  It is written by a person, so it is not marked
``Auto-Submitted``.  The resolve marker is removed from what the customer reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import encoders, message_from_bytes
from email.message import Message
from email.mime.base import MIMEBase
from email.policy import compat32

from mailbot.message import Attachment, InboundMail
from mailbot.outbound.compose import (
    Unfolded,
    compose,
    domain_of,
    header_safe,
    make_message_id,
)
from mailbot.outbound.reply_token import no_token
from mailbot.pipeline.staff import StaffReply, strip_resolve_marker
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store.apply import OutgoingMail
from mailbot.store.models import Ticket

_CONTENT_HEADERS = ("Content-Type", "Content-Transfer-Encoding")


def with_attachments(payload: bytes, attachments: Sequence[Attachment]) -> bytes:
    """The composed message with the staff member's files appended (multipart/mixed)."""
    if not attachments:
        return payload
    msg = message_from_bytes(payload, policy=compat32)
    for name in ("Message-ID", "In-Reply-To"):  # keep them on one line (compose.Unfolded)
        if msg[name] is not None:
            msg.replace_header(name, Unfolded(str(msg[name]).strip()))
    body = Message()
    for name in _CONTENT_HEADERS:
        if msg[name] is not None:
            body[name] = msg[name]
            del msg[name]
    body.set_payload(msg.get_payload())
    msg["Content-Type"] = "multipart/mixed"
    parts: list[Message] = [body]
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if not subtype or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        part = MIMEBase(maintype, subtype)
        part.set_payload(item.content)
        encoders.encode_base64(part)
        filename = header_safe(item.filename, 200) or "attachment"
        part.add_header(
            "Content-Disposition",
            "attachment",
            filename=filename if filename.isascii() else ("utf-8", "", filename),
        )
        parts.append(part)
    msg.set_payload(parts)
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n"))


@dataclass(frozen=True)
class RelaySettings:
    prefix: str
    reference: re.Pattern[str]
    from_address: str  # the support address: customers' replies come back to it
    envelope_from: str
    from_name: str = "Support"
    resolve_marker: str = ""
    reply_token: Callable[[int], str] = no_token  # outbound/reply_token.py


class RelayComposer:
    """Callable ``(ticket, staff mail, StaffReply) -> OutgoingMail`` (kind ``relay``)."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings

    def subject(self, ticket: Ticket, mail: InboundMail) -> str:
        subject = strip_resolve_marker(mail.subject, self.settings.resolve_marker)
        ref = format_reference(self.settings.prefix, ticket.number)
        named = [int(m.group(1)) for m in self.settings.reference.finditer(subject)]
        if ticket.number not in named:
            subject = f"[{ref}] {subject or ticket.subject}"
        return subject

    def sender_name(self, mail: InboundMail) -> str:
        return f"{mail.from_name} ({self.settings.from_name})" if mail.from_name else "Support"

    def __call__(
        self, ticket: Ticket, mail: InboundMail, reply: StaffReply, *, cc: Sequence[str] = ()
    ) -> OutgoingMail:
        """The relay to the requester; ``cc``: participants the staff member didn't write to."""
        assert reply.relay_to is not None
        text = strip_resolve_marker(mail.text, self.settings.resolve_marker, multiline=True)
        subject = self.subject(ticket, mail)
        token = self.settings.reply_token(ticket.number)
        message_id = make_message_id(domain_of(self.settings.from_address), token)
        parent = mail.in_reply_to[0] if mail.in_reply_to else None
        payload = compose(
            from_address=self.settings.from_address,
            from_name=self.sender_name(mail),
            to=[reply.relay_to],
            cc=cc,
            subject=subject,
            text=text,
            html=None,
            message_id=message_id,
            in_reply_to=parent,
            references=mail.references or ((parent,) if parent else ()),
            auto_reply=False,
        )
        payload = with_attachments(payload, mail.attachments)
        return OutgoingMail(
            kind="relay",
            message_id=message_id,
            envelope_from=self.settings.envelope_from,
            recipients=(reply.relay_to, *cc),
            subject=subject,
            text=text,
            payload=payload,
            cc=tuple(cc),
        )
