"""Raw bytes → ``InboundMail``: the one place that knows MIME.

mail-parser does the MIME walk (bodies, charsets, attachments: ``mailbot.mime_walk``);
the headers that threading and loop detection depend on are read here with the
standard library so their exact values are under our control.  Nothing here raises on
broken mail that can still be read: defects are recorded instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import TYPE_CHECKING

from mailbot import htmltext
from mailbot.feed_parser import BoundaryParser
from mailbot.mime_fallback import FallbackParse

if TYPE_CHECKING:
    from mailbot.mime_walk import MimeWalk

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
FEED_CHUNK = 1 << 16


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
    # The new content alone (quoted history and signature removed), when already computed.
    new_text: str | None = None

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


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_UNDECODABLE = (LookupError, UnicodeError, ValueError, binascii.Error, HeaderParseError)


def _decoded_word(found: re.Match[str]) -> str:
    try:
        return str(make_header(decode_header(found.group(0))))
    except _UNDECODABLE:
        return found.group(0)


def decode_header_text(value: str | None) -> str:
    """Decode RFC 2047 words; never raise; fold whitespace and drop control characters."""
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except _UNDECODABLE:  # one broken word: decode the others, keep it as written
        text = _ENCODED_WORD.sub(_decoded_word, str(value))
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(_CONTROL.sub(" ", text).split())


def _unfolded(value: str) -> str:
    """A raw header value on one line, encoded words left as they are."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _addresses(values: list[str]) -> tuple[str, ...]:
    # Parsed before decoding: an encoded word is only ever a display name, so whatever
    # it decodes to (commas, <...>) cannot add or change an address.
    found: list[str] = []
    for _, address in getaddresses([_unfolded(v) for v in values]):
        address = address.strip().lower()
        if "@" in address and "?=" not in address and "=?" not in address and address not in found:
            found.append(address)
    return tuple(found)


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_ANGLE_ADDR = re.compile(r"<[^<>]*>")


def _is_group(raw: str) -> bool:
    """Group syntax (``team: a@x, b@y;``, ``undisclosed:;``): never one sender."""
    bare = _ANGLE_ADDR.sub("", _COMMENT.sub("", _QUOTED.sub("", raw)))
    return ":" in bare


_MASK = re.compile(r"=mbw(\d+)=")


def _sender(value: str | None) -> tuple[str | None, str]:
    """The From address when it is one unambiguous mailbox; otherwise no address.

    The raw value is parsed with its encoded words masked as plain atoms and only the
    display name is decoded, so a name that decodes to CR/LF, ``Bcc:``, ``<victim@…>``
    or a comma stays text and cannot change whose address this is.
    """
    if not value:
        return None, ""
    words: list[str] = []

    def mask(found: re.Match[str]) -> str:
        words.append(found.group(0))
        return f"=mbw{len(words) - 1}="

    def unmask(found: re.Match[str]) -> str:
        index = int(found.group(1))
        return words[index] if index < len(words) else found.group(0)

    raw = _ENCODED_WORD.sub(mask, _unfolded(str(value)))
    decoded = decode_header_text(value)
    if _is_group(raw):
        return None, decoded
    pairs = getaddresses([raw])
    if len(pairs) != 1:
        return None, decoded
    name, address = pairs[0]
    name = decode_header_text(_MASK.sub(unmask, name))
    address = address.strip().lower()
    if address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
        return None, name or decoded
    if _MASK.search(address) or parseaddr(raw)[1].strip().lower() != address:
        return None, decoded
    return address, name


def _parse_date(parsed: MimeWalk | FallbackParse) -> datetime | None:
    try:
        value = parsed.date
    except Exception:  # mail-parser raises a variety of errors for odd dates
        return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _attachments(parsed: MimeWalk | FallbackParse) -> tuple[Attachment, ...]:
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


def _iso2022(text: str) -> str:
    """Decode ISO-2022 escape sequences mail-parser leaves in 7-bit parts (Japanese mail).

    mail-parser returns a 7bit part's text as it is, which for ISO-2022-JP (-KR, -CN)
    is ASCII full of ``ESC $ B`` shifts; iso2022_jp_2 reads the JP, KR and CN sets.
    """
    if "\x1b" not in text:
        return text
    try:
        return text.encode("ascii").decode("iso2022_jp_2")
    except UnicodeError:
        return text


def html_to_text(html: str) -> str:
    """Readable text from HTML, keeping links and list structure (``mailbot.htmltext``)."""
    return htmltext.html_to_text(html)


def _message_from_bytes(raw: bytes) -> Message:
    """``email.message_from_bytes`` without its copies of the whole message.

    The stdlib decodes the whole message to one string and reads it through a
    ``StringIO`` at 4 bytes a character: about 200 MB at once for a 27 MB message.
    Fed in chunks, the same parser (same policy, same result) needs about 70 MB;
    ``BoundaryParser`` is that parser without a regular expression compiled per MIME
    boundary.
    """
    parser = BoundaryParser()
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(raw[start : start + FEED_CHUNK])
    return parser.close()


def parse(raw: bytes, envelope_from: str | None = None) -> InboundMail:
    """Parse one raw RFC 5322 message."""
    # Here, not at the top: the daemon's own process stores mail and never parses it
    # (mail-parser with what it imports was about 0.5 MB of it).
    from mailbot.mime_walk import MimeWalk

    parsed: MimeWalk | FallbackParse
    try:
        parsed = MimeWalk(_message_from_bytes(raw))
    except Exception:  # it gives up on some broken structures: read it with the stdlib
        parsed = FallbackParse(raw)
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

    text_parts = [_iso2022(t) for t in parsed.text_plain if t and t.strip()]
    html_parts = [_iso2022(h) for h in parsed.text_html if h and h.strip()]
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
