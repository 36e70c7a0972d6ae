"""Raw bytes → ``InboundMail``: the one place that knows MIME.

mail-parser does the MIME walk (bodies, charsets, attachments); the headers that
threading and loop detection depend on are read here with the standard library so
their exact values are under our control.  Nothing here raises on broken mail that
can still be read: defects are recorded instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr

import html2text
import mailparser

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class InboundMail:
    """Everything the decision core needs to know about one message."""

    raw_sha256: str
    message_id: str | None
    from_address: str | None
    from_name: str
    from_header: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    content_type: str = "text/plain"
    report_type: str | None = None
    envelope_from: str | None = None
    defects: tuple[str, ...] = ()

    @property
    def dedup_key(self) -> str:
        """Same Message-ID, or the same bytes when there is none, means the same message."""
        if self.message_id:
            return f"mid:{self.message_id}"
        return f"sha256:{self.raw_sha256}"

    @property
    def referenced_ids(self) -> tuple[str, ...]:
        """In-Reply-To first (the most direct parent), then References newest first."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def message_ids(value: str | None) -> tuple[str, ...]:
    """All ``<id>`` tokens of a Message-ID, In-Reply-To or References header, in order."""
    if not value:
        return ()
    return tuple(_MESSAGE_ID.findall(value))


def _unescape_8bit(value: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or legacy Latin-1) as real text."""
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_header_text(value: str | None) -> str:
    """Decode RFC 2047 words; never raise; fold whitespace and drop control characters."""
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError, binascii.Error):
        text = str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(_CONTROL.sub(" ", text).split())


def _addresses(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for _, address in getaddresses([decode_header_text(v) for v in values]):
        address = address.strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return tuple(found)


def _sender(value: str | None) -> tuple[str | None, str]:
    """The From address when it is one unambiguous mailbox; otherwise no address."""
    if not value:
        return None, ""
    decoded = decode_header_text(value)
    pairs = getaddresses([decoded])
    if len(pairs) != 1:
        return None, decoded
    name, address = pairs[0]
    address = address.strip().lower()
    if address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
        return None, name or decoded
    if parseaddr(decoded)[1].strip().lower() != address:
        return None, decoded
    return address, name


def _parse_date(parsed: mailparser.MailParser) -> datetime | None:
    try:
        value = parsed.date
    except Exception:  # mail-parser raises a variety of errors for odd dates
        return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _attachments(parsed: mailparser.MailParser) -> tuple[Attachment, ...]:
    found = []
    for item in parsed.attachments:
        payload = item.get("payload") or ""
        if item.get("binary"):
            try:
                content = base64.b64decode(payload)
            except (binascii.Error, ValueError):
                content = payload.encode("utf-8", "replace")
        else:
            content = payload.encode("utf-8", "replace")
        found.append(
            Attachment(
                filename=decode_header_text(item.get("filename") or "attachment"),
                content_type=(item.get("mail_content_type") or "application/octet-stream").lower(),
                content=content,
                content_id=(item.get("content-id") or "").strip("<> "),
            )
        )
    return tuple(found)


def html_to_text(html: str) -> str:
    """Readable text from HTML, keeping links and list structure."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    return converter.handle(html).strip()


def parse(raw: bytes, envelope_from: str | None = None) -> InboundMail:
    """Parse one raw RFC 5322 message."""
    parsed = mailparser.parse_from_bytes(raw)
    msg = parsed.message
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), ())
        headers[name.lower()] += (_unescape_8bit(str(value)),)

    def first(name: str) -> str | None:
        values = headers.get(name.lower())
        return values[0] if values else None

    def joined(name: str) -> str:
        return " ".join(headers.get(name.lower(), ()))

    text_parts = [t for t in parsed.text_plain if t and t.strip()]
    html_parts = [h for h in parsed.text_html if h and h.strip()]
    html = "\n".join(html_parts) or None
    text = "\n\n".join(text_parts)
    if not text and html:
        text = html_to_text(html)

    from_address, from_name = _sender(first("From"))
    ids = message_ids(first("Message-ID"))
    content_type = msg.get_content_type()
    report_type = msg.get_param("report-type") if content_type == "multipart/report" else None
    defects = tuple(str(d) for d in getattr(msg, "defects", ()))

    return InboundMail(
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        message_id=ids[0] if ids else None,
        from_address=from_address,
        from_name=from_name,
        from_header=decode_header_text(first("From")),
        to=_addresses(list(headers.get("to", ()))),
        cc=_addresses(list(headers.get("cc", ()))),
        subject=decode_header_text(first("Subject")),
        date=_parse_date(parsed),
        in_reply_to=message_ids(joined("In-Reply-To")),
        references=message_ids(joined("References")),
        text=text,
        html=html,
        attachments=_attachments(parsed),
        headers=headers,
        content_type=content_type,
        report_type=str(report_type).lower() if report_type else None,
        envelope_from=envelope_from,
        defects=defects,
    )
