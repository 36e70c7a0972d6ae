"""Building outgoing RFC 5322 messages with safe headers.

Uses the ``compat32`` MIME classes rather than ``EmailMessage`` with the modern policy:
the output is the same standard MIME, and building it costs a fraction of the time
(the header-object machinery of ``policy.default`` dominated a profile of the intake
path).  Every header value passes through ``header_safe`` first, so nothing a customer
wrote can add a header or a recipient.
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from collections.abc import Iterable
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formataddr, formatdate

_LINE_BREAKS = re.compile(r"[\r\n\x00-\x1f\x7f]+")
_POLICY = compat32.clone(linesep="\r\n")
_FROM_LINE = re.compile(r"^From ", re.MULTILINE)
MAX_LINE = 78  # compat32's folding width


def _boundary() -> str:
    """A multipart boundary that cannot occur in our parts: they are quoted-printable,
    where "=" is always followed by two hex digits or a line break, never by "_".  The
    generator then need not search the parts for it (a pattern compiled per message)."""
    return f"=_{secrets.token_hex(12)}"


def header_safe(value: str, limit: int = 900) -> str:
    """One line of header text: CR, LF and other controls become spaces."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split())[:limit]


def encoded_header(value: str) -> str | Header:
    """ASCII as-is; anything else as RFC 2047 encoded words."""
    value = header_safe(value)
    return value if value.isascii() else Header(value, "utf-8")


class Unfolded:
    """A header value written on one line as it is (compat32 folds at 78 characters).

    For a single ``<msg-id>``: folding could only put it on a line of its own, which
    is legal but shows up as a leading space in some readers.  Also for any ASCII value
    whose line fits (``as_written``), which folding would leave as it is anyway.
    """

    def __init__(self, value: str) -> None:
        self.value = value

    def encode(self, linesep: str = "\n", maxlinelen: int | None = None) -> str:
        return self.value

    def __str__(self) -> str:
        return self.value


def as_written(name: str, value: str) -> str | Unfolded:
    """``value`` to be written as it is when compat32 would not change it.

    compat32 passes every header through ``email.header.Header`` to fold it, which was
    most of the time spent writing an acknowledgement; an ASCII value on one line that
    fits in ``MAX_LINE`` comes out of it unchanged, so it skips that.
    """
    fits = len(name) + 2 + len(value) <= MAX_LINE
    if fits and value.isascii() and not _LINE_BREAKS.search(value):
        return Unfolded(value)
    return value


def make_message_id(domain: str, token: str = "") -> str:
    """A new globally unique Message-ID (without angle brackets).

    ``token``: the ticket's reply token (outbound/reply_token.py), ending the local part.
    """
    local = f"{int(time.time() * 1000):x}.{secrets.token_hex(10)}"
    return f"{local}.{token}@{domain}" if token else f"{local}@{domain}"


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1]


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    """A UTF-8 text part, quoted-printable: the encoding is done by ``binascii`` (C), which
    is several times faster than the ``email`` package's pure-Python encoder."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    lines = body.replace("\r\n", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(lines, istext=True).decode("ascii")
    # "From " at a line start becomes ">From " in an mbox; encoded, it survives as it is.
    encoded = _FROM_LINE.sub("=46rom ", encoded)
    part.set_payload(encoded.replace("\n", "\r\n"))
    part["Content-Transfer-Encoding"] = "quoted-printable"
    for name, value in part.items():
        part.replace_header(name, as_written(name, value))
    return part


def _address(address: str) -> str:
    return header_safe(address)


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
    if html:
        msg: MIMEMultipart | MIMENonMultipart = MIMEMultipart("alternative", boundary=_boundary())
        msg.attach(_text_part(text, "plain"))
        msg.attach(_text_part(html, "html"))
    else:
        msg = _text_part(text, "plain")
    headers: list[tuple[str, str | Header | Unfolded]] = []

    def add(name: str, value: str | Header) -> None:
        headers.append((name, as_written(name, value) if isinstance(value, str) else value))

    add("From", formataddr((header_safe(from_name), from_address), charset="utf-8"))
    add("To", ", ".join(_address(a) for a in to))
    cc_list = [_address(a) for a in cc]
    if cc_list:
        add("Cc", ", ".join(cc_list))
    add("Subject", encoded_header(subject))
    add("Date", formatdate(date or time.time(), usegmt=True))
    headers.append(("Message-ID", Unfolded(f"<{header_safe(message_id)}>")))
    if in_reply_to:
        headers.append(("In-Reply-To", Unfolded(f"<{header_safe(in_reply_to)}>")))
    refs = [f"<{header_safe(r)}>" for r in references]
    if refs:
        add("References", " ".join(refs))
    if auto_reply:
        add("Auto-Submitted", "auto-replied")
        add("X-Auto-Response-Suppress", "All")
    add("X-Loop", from_address)
    # Headers first, MIME-Version/Content-Type after: the usual order, easier to read.
    for name in ("MIME-Version", "Content-Type", "Content-Transfer-Encoding"):
        for value in msg.get_all(name, ()):
            add(name, value)
        del msg[name]
    for name, value in headers:
        msg[name] = value  # type: ignore[assignment]
    return msg.as_bytes(policy=_POLICY)
