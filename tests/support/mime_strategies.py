"""Hypothesis strategies for hostile mail: random MIME trees and header values as raw bytes."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from hypothesis import strategies as st

CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "iso-2022-jp",
    "shift_jis",
    "gb18030",
    "gb2312",
    "big5",
    "euc-kr",
    "koi8-r",
    "windows-1258",
    "utf-16",
    "utf-7",
    "unknown-8bit",
    "x-bogus",
    "",
    '"utf-8"',
]
LEAF_TYPES = [
    "text/plain",
    "text/html",
    "text/calendar",
    "application/octet-stream",
    "application/ms-tnef",
    "application/pdf",
    "image/png",
    "message/rfc822",
    "message/delivery-status",
    "text/rfc822-headers",
    "text",
    "",
    "garbage/",
]
MULTIPART = ["mixed", "alternative", "related", "report", "signed", "digest", "encrypted", "x-y"]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus", None]
FRAGMENTS = [
    "alice@customer.example",
    "<bob@customer.example>",
    "support@example.com",
    "[SUP-1001]",
    "[SUP-99999999999999]",
    "[Emergency]",
    "[High]",
    "Re: ",
    "Fwd: ",
    "=?utf-8?Q?caf=C3=A9?=",
    "=?utf-8?B?!!!?=",
    "=?x-bogus?B?SGk=?=",
    "=?iso-2022-jp?B?GyRCJEgbKEI=?=",
    "=?utf-8?Q?a=0D=0ABcc:_x@y?=",
    "{{ 7*7 }}",
    "{% for x in y %}",
    '"',
    "(",
    ")",
    "<",
    ">",
    ",",
    ";",
    ":",
    "@",
    " ",
    "\t",
    "\\",
    "group:;",
    "\u00e9",
    "\u65e5\u672c",
    "\U0001f680",
]
HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "Auto-Submitted",
    "Precedence",
    "X-Loop",
    "List-Id",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "Authentication-Results",
    "X-Mailbot-Ticket",
    "Return-Path",
    "Received",
]


def _fragmented() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join)


def _encoded_word() -> st.SearchStrategy[str]:
    return st.builds(
        lambda charset, data, q: (
            f"=?{charset or 'utf-8'}?Q?{data.hex()}?="
            if q
            else f"=?{charset or 'utf-8'}?B?{base64.b64encode(data).decode()}?="
        ),
        st.sampled_from(CHARSETS),
        st.binary(max_size=30),
        st.booleans(),
    )


def header_values() -> st.SearchStrategy[bytes]:
    """Header values: unicode (controls, CR/LF included), raw 8-bit bytes, encoded words."""
    return st.one_of(
        _fragmented().map(lambda s: s.encode("utf-8")),
        st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.binary(max_size=60),
        _encoded_word().map(str.encode),
        st.lists(st.sampled_from(FRAGMENTS + ["alice@customer.example, x@y"]), max_size=3).map(
            lambda parts: ", ".join(parts).encode()
        ),
    )


@dataclass
class Leaf:
    content_type: str
    charset: str
    encoding: str | None
    body: bytes
    filename: str | None

    def render(self) -> bytes:
        params = f"; charset={self.charset}" if self.charset else ""
        if self.filename is not None:
            params += f'; name="{self.filename}"'
        lines = [f"Content-Type: {self.content_type}{params}".encode("utf-8", "surrogatepass")]
        if self.encoding:
            lines.append(f"Content-Transfer-Encoding: {self.encoding}".encode())
            body = base64.encodebytes(self.body) if self.encoding == "base64" else self.body
        else:
            body = self.body
        if self.filename is not None:
            lines.append(b"Content-Disposition: attachment")
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class Multipart:
    subtype: str
    boundary: str
    parts: list[Leaf | Multipart]
    preamble: bytes
    closed: bool

    def render(self) -> bytes:
        head = f'Content-Type: multipart/{self.subtype}; boundary="{self.boundary}"'.encode()
        chunks = [head, b"", self.preamble]
        for part in self.parts:
            chunks.append(b"--" + self.boundary.encode())
            chunks.append(part.render())
        if self.closed:
            chunks.append(b"--" + self.boundary.encode() + b"--")
        return b"\r\n".join(chunks) + b"\r\n"


leaves = st.builds(
    Leaf,
    content_type=st.sampled_from(LEAF_TYPES),
    charset=st.sampled_from(CHARSETS),
    encoding=st.sampled_from(ENCODINGS),
    body=st.one_of(
        st.binary(max_size=120),
        st.text(max_size=120).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.just(b"From: x@y\r\nMessage-ID: <inner@x>\r\n\r\ninner body"),
    ),
    filename=st.one_of(st.none(), st.text(max_size=20).map(lambda s: s.replace('"', ""))),
)

# Boundaries: ordinary, repeated by nested parts, prefixes of each other, empty.
boundaries = st.one_of(
    st.sampled_from(["B", "BB", "B-1", "=_x", "", " "]), st.text("ab-_=", max_size=6)
)

trees = st.recursive(
    leaves,
    lambda children: st.builds(
        Multipart,
        subtype=st.sampled_from(MULTIPART),
        boundary=boundaries,
        parts=st.lists(children, max_size=4),
        preamble=st.sampled_from([b"", b"preamble", b"--B", b"--"]),
        closed=st.booleans(),
    ),
    max_leaves=10,
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A whole raw message: chosen and random headers, then a random MIME tree."""
    headers: list[bytes] = []
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=12)):
        headers.append(name.encode() + b": " + draw(header_values()))
    for _ in range(draw(st.integers(0, 3))):  # names nobody expects
        name = draw(st.text(min_size=1, max_size=12)).encode("utf-8", "surrogatepass")
        headers.append(name + b": " + draw(header_values()))
    body = draw(trees).render()
    separator = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    raw = separator.join(headers) + separator + body
    if separator != b"\r\n":
        raw = raw.replace(b"\r\n", separator)
    return raw
