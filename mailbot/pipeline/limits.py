"""Structural limits on a raw message, checked before the expensive parse.

``scan`` walks the raw bytes once with regular expressions: the top header block
(number of fields, longest physical line) and the MIME skeleton (parts, nesting depth,
attachments and their approximate decoded size) found by following the boundaries,
without decoding anything.  ``check_parsed`` re-checks the attachment figures exactly
once the message has been parsed.  A message over a limit is refused with 552 by the
SMTP listener, or quarantined with the reason by the worker; nothing is truncated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.message import InboundMail

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_START = re.compile(rb"(?m)^--")
_LINE_END = re.compile(rb"\r?\n")
_PARAM = re.compile(rb"""(?i)(?:^|;)\s*%s\*?\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))""")
_BOUNDARY = re.compile(_PARAM.pattern % rb"boundary")
_NAME = re.compile(rb"""(?i)(?:^|;)\s*(?:file)?name\*?(?:\d+\*?)?\s*=""")


@dataclass(frozen=True)
class Limits:
    max_headers: int = 500
    max_header_line_length: int = 16_384
    max_mime_parts: int = 200
    max_mime_depth: int = 20
    max_attachments: int = 100
    max_attachment_bytes: int = 26_214_400


class LimitExceeded(Exception):
    """Raised inside the scan; ``reason`` is one line naming the limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Part:
    content_type: bytes  # lower-cased type/subtype
    boundary: bytes | None
    attachment: bool
    base64: bool


def _header_block(raw: bytes, start: int) -> tuple[bytes, int]:
    """The header block beginning at ``start`` and the offset where its body starts."""
    found = _HEADER_END.search(raw, start)
    if found is None:
        return raw[start:], len(raw)
    return raw[start : found.start()], found.end()


def _fields(block: bytes) -> dict[bytes, bytes]:
    """The MIME-relevant fields of a header block (unfolded, first occurrence wins)."""
    fields: dict[bytes, bytes] = {}
    name = b""
    for line in _LINE_END.split(block):
        if line[:1] in (b" ", b"\t") and name:
            fields[name] += b" " + line.strip()
            continue
        key, sep, value = line.partition(b":")
        name = key.strip().lower() if sep else b""
        if name and name not in fields:
            fields[name] = value.strip()
        elif name:
            name = b""  # a repeated field: keep the first, ignore continuations of this one
    return fields


def _part(block: bytes) -> _Part:
    fields = _fields(block)
    content_type = fields.get(b"content-type", b"text/plain")
    main = content_type.split(b";", 1)[0].strip().lower()
    boundary = None
    if main.startswith(b"multipart/"):
        found = _BOUNDARY.search(content_type)
        if found is not None:
            boundary = (found.group(1) or found.group(2) or b"").strip() or None
    disposition = fields.get(b"content-disposition", b"").lower()
    named = _NAME.search(content_type) is not None or _NAME.search(disposition) is not None
    attachment = disposition.startswith(b"attachment") or (
        named and not main.startswith((b"multipart/", b"text/", b"message/"))
    )
    encoding = fields.get(b"content-transfer-encoding", b"").strip().lower()
    return _Part(main, boundary, attachment, encoding == b"base64")


def check_headers(block: bytes, limits: Limits, where: str = "message") -> None:
    lines = _LINE_END.split(block)
    longest = max((len(line) for line in lines), default=0)
    if longest > limits.max_header_line_length:
        raise LimitExceeded(
            f"{where} has a header line of {longest} bytes "
            f"(limit {limits.max_header_line_length}, limits.max_header_line_length)"
        )
    count = sum(1 for line in lines if line and line[:1] not in (b" ", b"\t"))
    if count > limits.max_headers:
        raise LimitExceeded(
            f"{where} has {count} header fields (limit {limits.max_headers}, limits.max_headers)"
        )


def _decoded_size(start: int, end: int, base64: bool) -> int:
    """About how many bytes a body decodes to (base64 is 4 characters for 3 bytes)."""
    size = max(0, end - start)
    return size * 3 // 4 if base64 else size


class _Scan:
    def __init__(self, raw: bytes, limits: Limits) -> None:
        self.raw = raw
        self.limits = limits
        self.parts = 1
        self.attachments = 0
        self.attachment_bytes = 0
        self.stack: list[bytes] = []  # open boundaries, innermost last
        self.open_body: tuple[int, bool] | None = None  # an attachment body being measured

    def _push(self, part: _Part) -> None:
        if part.boundary is None:
            return
        self.stack.append(b"--" + part.boundary)
        if len(self.stack) > self.limits.max_mime_depth:
            raise LimitExceeded(
                f"MIME nesting deeper than {self.limits.max_mime_depth} (limits.max_mime_depth)"
            )

    def _close_body(self, end: int) -> None:
        if self.open_body is None:
            return
        start, base64 = self.open_body
        self.open_body = None
        self.attachment_bytes += _decoded_size(start, end, base64)
        if self.attachment_bytes > self.limits.max_attachment_bytes:
            raise LimitExceeded(
                f"attachments larger than {self.limits.max_attachment_bytes} bytes "
                "(limits.max_attachment_bytes)"
            )

    def _enter_part(self, offset: int) -> int:
        """A new body part starts at ``offset``; returns where its content starts."""
        self.parts += 1
        if self.parts > self.limits.max_mime_parts:
            raise LimitExceeded(
                f"more than {self.limits.max_mime_parts} MIME parts (limits.max_mime_parts)"
            )
        block, body = _header_block(self.raw, offset)
        check_headers(block, self.limits, f"MIME part {self.parts}")
        part = _part(block)
        if part.attachment:
            self.attachments += 1
            if self.attachments > self.limits.max_attachments:
                raise LimitExceeded(
                    f"more than {self.limits.max_attachments} attachments (limits.max_attachments)"
                )
            self.open_body = (body, part.base64)
        elif part.content_type in (b"message/rfc822", b"message/global"):
            inner_block, inner_body = _header_block(self.raw, body)
            check_headers(inner_block, self.limits, f"message in MIME part {self.parts}")
            self._push(_part(inner_block))
            return inner_body
        self._push(part)
        return body

    def run(self) -> None:
        top, position = _header_block(self.raw, 0)
        check_headers(top, self.limits)
        self._push(_part(top))
        while self.stack:
            found = _LINE_START.search(self.raw, position)
            if found is None:
                return
            line_end = _LINE_END.search(self.raw, found.start())
            end = line_end.start() if line_end else len(self.raw)
            next_line = line_end.end() if line_end else len(self.raw)
            line = self.raw[found.start() : end].rstrip(b" \t")
            position = next_line
            for depth in range(len(self.stack) - 1, -1, -1):
                boundary = self.stack[depth]
                if line == boundary:
                    self._close_body(found.start())
                    del self.stack[depth + 1 :]
                    position = self._enter_part(next_line)
                    break
                if line == boundary + b"--":
                    self._close_body(found.start())
                    del self.stack[depth:]
                    break
        self._close_body(len(self.raw))


def scan(raw: bytes, limits: Limits) -> str | None:
    """The first limit the raw message exceeds, as one line; None when within all."""
    try:
        _Scan(raw, limits).run()
    except LimitExceeded as exc:
        return exc.reason
    return None


def check_parsed(mail: InboundMail, limits: Limits) -> str | None:
    """The attachment limits on the decoded attachments of a parsed message."""
    if len(mail.attachments) > limits.max_attachments:
        return (
            f"{len(mail.attachments)} attachments "
            f"(limit {limits.max_attachments}, limits.max_attachments)"
        )
    total = sum(item.size for item in mail.attachments)
    if total > limits.max_attachment_bytes:
        return (
            f"attachments of {total} bytes "
            f"(limit {limits.max_attachment_bytes}, limits.max_attachment_bytes)"
        )
    return None
