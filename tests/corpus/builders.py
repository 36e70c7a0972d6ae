"""Building raw test messages byte by byte (broken ones included), and the case list.

Used by the corpus modules (cases_*.py); ``build_corpus.py`` writes the files.
"""

from __future__ import annotations

import base64
import quopri
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

SUPPORT = "support@example.com"
ALICE = "alice@customer.example"
BOB = "bob@customer.example"
CAROL = "carol@customer.example"
DAVE = "dave@other.example"
MALLORY = "mallory@attacker.example"
DATE = "Tue, 04 Mar 2025 09:30:00 -0800"
SUBJECT1 = "Export to CSV fails"


@dataclass(frozen=True)
class Case:
    file: str
    outcome: str
    ack: bool
    ticket: str | None  # SUP-1001 | SUP-1002 | new | None
    note: str
    mail_from: str = "sender@customer.example"  # the SMTP envelope sender ("" = <>)
    text: str = ""  # the stored thread entry's text must contain this (readable charsets)


CASES: list[tuple[Case, bytes]] = []


def msg(headers: Iterable[tuple[str, str | bytes]], body: bytes | str = b"Hello.\r\n") -> bytes:
    """Raw message bytes exactly as given: headers in order, CRLF, the body."""
    lines = []
    for name, value in headers:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        lines.append(name.encode() + b": " + raw)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def add(
    slug: str,
    raw: bytes,
    outcome: str,
    ack: bool,
    ticket: str | None,
    note: str,
    mail_from: str | None = None,
    text: str = "",
) -> None:
    name = f"{len(CASES) + 1:03d}-{slug}.eml"
    envelope = mail_from if mail_from is not None else "sender@customer.example"
    CASES.append((Case(name, outcome, ack, ticket, note, envelope, text), raw))


def new(
    slug: str,
    raw: bytes,
    note: str,
    ack: bool = True,
    mail_from: str | None = None,
    text: str = "",
) -> None:
    add(slug, raw, "created", ack, "new", note, mail_from, text)


def basic(
    sender: str,
    subject: str | bytes,
    mid: str | None,
    body: bytes | str = b"Hello, something is broken.\r\n",
    extra: Iterable[tuple[str, str | bytes]] = (),
    ctype: str = "text/plain; charset=utf-8",
) -> bytes:
    headers: list[tuple[str, str | bytes]] = [
        ("From", sender),
        ("To", SUPPORT),
        ("Subject", subject),
        ("Date", DATE),
    ]
    if mid is not None:
        headers.append(("Message-ID", f"<{mid}>"))
    headers += [("MIME-Version", "1.0"), ("Content-Type", ctype), *extra]
    return msg(headers, body)


def ew(text: str, charset: str, enc: str = "B") -> str:
    """One RFC 2047 encoded word."""
    data = text.encode(charset)
    if enc == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    q = quopri.encodestring(data, header=True).decode().replace("=\n", "")
    return f"=?{charset}?Q?{q}?="


def cp1258(text: str) -> bytes:
    """Vietnamese in Windows-1258: base letter (maybe precomposed) plus combining tones."""
    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        base, marks = decomposed[0], decomposed[1:]
        for i in range(len(marks)):
            try:
                head = unicodedata.normalize("NFC", base + marks[i]).encode("cp1258")
                out += head + (marks[:i] + marks[i + 1 :]).encode("cp1258")
                break
            except UnicodeEncodeError:
                continue
        else:
            out += base.encode("cp1258") + marks.encode("cp1258")
    return out


def encode_text(text: str, charset: str) -> bytes:
    return cp1258(text) if charset == "windows-1258" else text.encode(charset)


def mp(boundary: str, parts: Iterable[bytes], ctype: str = "multipart/mixed") -> tuple[str, bytes]:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return f'{ctype}; boundary="{boundary}"', body + b"--" + boundary.encode() + b"--\r\n"


TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe export fails."


# ---------------------------------------------------------------- B. client reply shapes

QUOTE_HEADERS = {
    "outlook": (
        "\r\n________________________________\r\nFrom: Support <support@example.com>\r\n"
        "Sent: Tuesday, March 4, 2025 9:00 AM\r\nTo: Alice <alice@customer.example>\r\n"
        f"Subject: [SUP-1001] {SUBJECT1}\r\n\r\nThank you for contacting support.\r\n"
    ),
    "gmail": (
        "\r\nOn Tue, Mar 4, 2025 at 9:00 AM Support <support@example.com> wrote:\r\n\r\n"
        "> Thank you for contacting support.\r\n>\r\n> Reference: SUP-1001\r\n"
    ),
    "apple": (
        "\r\n> On 4 Mar 2025, at 09:00, Support <support@example.com> wrote:\r\n>\r\n"
        "> Thank you for contacting support.\r\n"
    ),
    "thunderbird": (
        "\r\nOn 04/03/2025 09:00, Support wrote:\r\n> Thank you for contacting support.\r\n"
    ),
}


def reply(
    shape: str,
    sender: str,
    mid: str,
    *,
    subject: str = f"Re: [SUP-1001] {SUBJECT1}",
    in_reply_to: str | None = "@@ACK1@@",
    references: str | None = "<base1@customer.example> <@@ACK1@@>",
    text: str = "Here are more details about the failing export.",
) -> bytes:
    headers: list[tuple[str, str | bytes]] = [
        ("From", sender),
        ("To", f"Support <{SUPPORT}>"),
        ("Subject", subject),
        ("Date", DATE),
        ("Message-ID", f"<{mid}>"),
    ]
    if in_reply_to:
        headers.append(("In-Reply-To", f"<{in_reply_to}>"))
    if references:
        headers.append(("References", references))
    quote = QUOTE_HEADERS.get(shape, QUOTE_HEADERS["gmail"])
    plain = (text + "\r\n" + quote).encode()
    html = (
        f"<html><body><div>{text}</div><blockquote>Thank you for contacting support."
        "</blockquote></body></html>"
    ).encode()
    if shape == "outlook":
        headers += [
            ("Thread-Topic", SUBJECT1),
            ("Thread-Index", "AdmOyz1234567890abcdefABCDEF=="),
            ("X-MS-Has-Attach", ""),
            ("Content-Language", "en-US"),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/alternative; boundary="_000_OUTLOOK_"'),
        ]
        body = (
            b'--_000_OUTLOOK_\r\nContent-Type: text/plain; charset="us-ascii"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + quopri.encodestring(plain)
            + b'\r\n--_000_OUTLOOK_\r\nContent-Type: text/html; charset="us-ascii"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + quopri.encodestring(html)
            + b"\r\n--_000_OUTLOOK_--\r\n"
        )
    elif shape == "outlook-html":
        headers += [("MIME-Version", "1.0"), ("Content-Type", "text/html; charset=utf-8")]
        body = html
    elif shape == "outlook-tnef":
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/mixed; boundary="_TNEF_"'),
        ]
        tnef = b"\x78\x9f\x3e\x22" + bytes(range(256)) * 4  # TNEF signature + junk
        body = (
            b"--_TNEF_\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            + plain
            + b'\r\n--_TNEF_\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n'
            b"Content-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="winmail.dat"\r\n\r\n'
            + base64.encodebytes(tnef)
            + b"--_TNEF_--\r\n"
        )
    elif shape == "gmail":
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/alternative; boundary="000000000000abcdef0123"'),
        ]
        body = (
            b'--000000000000abcdef0123\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n'
            + plain
            + b'\r\n--000000000000abcdef0123\r\nContent-Type: text/html; charset="UTF-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + quopri.encodestring(html)
            + b"\r\n--000000000000abcdef0123--\r\n"
        )
    elif shape == "gmail-inline":
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/related; boundary="REL"'),
        ]
        body = (
            b'--REL\r\nContent-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
            b"--ALT\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
            + plain
            + b"\r\n--ALT\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
            + html
            + b'<img src="cid:ii_1">\r\n--ALT--\r\n--REL\r\nContent-Type: image/png; '
            b'name="screenshot.png"\r\nContent-Transfer-Encoding: base64\r\n'
            b'Content-ID: <ii_1>\r\nContent-Disposition: inline; filename="screenshot.png"\r\n\r\n'
            b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\r\n"
            b"--REL--\r\n"
        )
    elif shape == "apple":
        headers += [
            ("Mime-Version", "1.0 (Mac OS X Mail 16.0 \\(3774.300.61.1.2\\))"),
            ("X-Mailer", "Apple Mail (2.3774.300.61.1.2)"),
            ("Content-Type", 'multipart/alternative; boundary="Apple-Mail=_5F3C-9A1B"'),
        ]
        body = (
            b"--Apple-Mail=_5F3C-9A1B\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            b"Content-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\n"
            + quopri.encodestring(plain)
            + b"\r\n--Apple-Mail=_5F3C-9A1B\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            b"Content-Type: text/html;\r\n\tcharset=utf-8\r\n\r\n"
            + quopri.encodestring(html)
            + b"\r\n--Apple-Mail=_5F3C-9A1B--\r\n"
        )
    elif shape == "apple-attachment":
        headers += [
            ("Mime-Version", "1.0 (Mac OS X Mail 16.0)"),
            ("Content-Type", 'multipart/mixed; boundary="Apple-Mail=_MIX"'),
        ]
        body = (
            b'--Apple-Mail=_MIX\r\nContent-Type: multipart/alternative; boundary="Apple-Mail=_ALT"'
            b"\r\n\r\n--Apple-Mail=_ALT\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            + plain
            + b"\r\n--Apple-Mail=_ALT--\r\n--Apple-Mail=_MIX\r\nContent-Disposition: attachment;"
            b'\r\n\tfilename="export log.txt"\r\nContent-Type: text/plain;\r\n'
            b'\tname="export log.txt"\r\n\r\nERROR line 1\r\n--Apple-Mail=_MIX--\r\n'
        )
    elif shape == "thunderbird":
        headers += [
            ("User-Agent", "Mozilla Thunderbird"),
            ("Content-Language", "en-GB"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=UTF-8; format=flowed; delsp=yes"),
            ("Content-Transfer-Encoding", "8bit"),
        ]
        body = (
            text + " This line is long enough to be \r\nflowed by the client.\r\n-- \r\n"
            "Alice\r\n" + quote
        ).encode()
    elif shape == "iphone":
        headers += [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8")]
        body = (text + "\r\n\r\nSent from my iPhone\r\n" + quote).encode()
    else:
        headers += [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8")]
        body = plain
    return msg(headers, body)


SHAPES = [
    "outlook",
    "outlook-html",
    "outlook-tnef",
    "gmail",
    "gmail-inline",
    "apple",
    "apple-attachment",
    "thunderbird",
    "iphone",
]


def dsn(
    original_id: str,
    recipient: str,
    *,
    action: str = "failed",
    original: str = "rfc822",
    sender: str = "Mail Delivery System <MAILER-DAEMON@mx.customer.example>",
    subject: str = "Undelivered Mail Returned to Sender",
    mid: str,
) -> bytes:
    status = "5.1.1" if action == "failed" else "4.4.1"
    parts = [
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nThis is the mail system at host "
        b"mx.customer.example.\r\n\r\nI'm sorry to have to inform you that your message could "
        b"not be delivered to one or more recipients.",
        (
            "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example"
            f"\r\nArrival-Date: {DATE}\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\n"
            f"Original-Recipient: rfc822;{recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown"
        ).encode(),
    ]
    headers = (
        f"From: Support <{SUPPORT}>\r\nTo: {recipient}\r\nSubject: [SUP-1001] {SUBJECT1}\r\n"
        f"Message-ID: <{original_id}>\r\nAuto-Submitted: auto-replied\r\n"
    ).encode()
    if original == "rfc822":
        parts.append(b"Content-Type: message/rfc822\r\n\r\n" + headers + b"\r\nThank you.")
    elif original == "headers":
        parts.append(b"Content-Type: text/rfc822-headers\r\n\r\n" + headers)
    ctype, body = mp("DSN", parts, "multipart/report")
    return msg(
        [
            ("From", sender),
            ("To", SUPPORT),
            ("Subject", subject),
            ("Date", DATE),
            ("Message-ID", f"<{mid}>"),
            ("Auto-Submitted", "auto-replied"),
            ("MIME-Version", "1.0"),
            ("Content-Type", ctype + "; report-type=delivery-status"),
        ],
        body,
    )
