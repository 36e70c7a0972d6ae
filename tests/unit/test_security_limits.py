"""Structural limits, found by scanning the raw bytes before parsing."""

from __future__ import annotations

import base64

from support.mail import make_mail

from mailbot.message import parse
from mailbot.pipeline.limits import Limits, check_parsed, scan

HEAD = b"From: a@customer.example\r\nTo: support@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"


def nested(depth: int) -> bytes:
    """``depth`` multiparts inside each other, a text part at the bottom."""
    body = b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for level in range(depth, 0, -1):
        b = f"b{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + b
            + b"\r\n\r\n--"
            + b
            + b"\r\n"
            + body
            + b"--"
            + b
            + b"--\r\n"
        )
    return HEAD + body


def parts(count: int, attachment: bool = False, size: int = 10) -> bytes:
    pieces = [HEAD + b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n']
    payload = base64.encodebytes(b"x" * size)
    for i in range(count):
        if attachment:
            pieces.append(
                f'--XX\r\nContent-Type: application/pdf; name="f{i}.pdf"\r\n'
                "Content-Transfer-Encoding: base64\r\n"
                f'Content-Disposition: attachment; filename="f{i}.pdf"\r\n\r\n'.encode()
                + payload
            )
        else:
            pieces.append(f"--XX\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n".encode())
    pieces.append(b"--XX--\r\n")
    return b"".join(pieces)


def test_ordinary_mail_is_within_every_limit() -> None:
    assert scan(make_mail("hello"), Limits()) is None
    assert scan(nested(5), Limits()) is None
    assert scan(parts(50, attachment=True), Limits()) is None


def test_header_count_and_line_length() -> None:
    many = b"".join(f"X-H{i}: v\r\n".encode() for i in range(600)) + make_mail("x")
    assert "header fields" in (scan(many, Limits()) or "")
    long_line = b"Subject: " + b"a" * 20_000 + b"\r\n" + make_mail("x")
    assert "limits.max_header_line_length" in (scan(long_line, Limits()) or "")
    folded = b"X-Long: a\r\n" + b"".join(b" folded line\r\n" for _ in range(2000)) + make_mail("x")
    assert scan(folded, Limits()) is None  # one field, many short lines


def test_parts_and_depth() -> None:
    assert "limits.max_mime_parts" in (scan(parts(250), Limits()) or "")
    assert scan(parts(250), Limits(max_mime_parts=300)) is None
    assert "limits.max_mime_depth" in (scan(nested(25), Limits()) or "")
    assert scan(nested(25), Limits(max_mime_depth=30)) is None


def test_part_headers_are_limited_too() -> None:
    part_headers = "".join(f"X-P{i}: v\r\n" for i in range(600))
    raw = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        + part_headers.encode()
        + b"Content-Type: text/plain\r\n\r\nhi\r\n--B--\r\n"
    )
    assert "MIME part 2 has 601 header fields" in (scan(raw, Limits()) or "")


def test_attachment_count_and_size_before_and_after_parsing() -> None:
    raw = parts(20, attachment=True, size=1000)
    assert "limits.max_attachments" in (scan(raw, Limits(max_attachments=10)) or "")
    assert "limits.max_attachment_bytes" in (scan(raw, Limits(max_attachment_bytes=5000)) or "")
    mail = parse(raw)
    assert len(mail.attachments) == 20
    assert check_parsed(mail, Limits()) is None
    assert "limits.max_attachments" in (check_parsed(mail, Limits(max_attachments=19)) or "")
    too_big = check_parsed(mail, Limits(max_attachment_bytes=19_999))
    assert "attachments of 20000 bytes" in (too_big or "")


def test_a_forwarded_message_counts_its_own_parts() -> None:
    inner = parts(30).replace(b'boundary="XX"', b'boundary="IN"').replace(b"--XX", b"--IN")
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="OUT"\r\n\r\n--OUT\r\n'
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"--OUT--\r\n"
    )
    assert scan(raw, Limits(max_mime_parts=20)) is not None
    assert scan(raw, Limits(max_mime_parts=40)) is None


def test_unclosed_and_garbage_structures_do_not_raise() -> None:
    for raw in (
        HEAD + b'Content-Type: multipart/mixed; boundary="NEVER"\r\n\r\n--NEVER\r\nx',
        HEAD + b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
        HEAD + b'Content-Type: multipart/mixed; boundary=""\r\n\r\n----\r\n',
        b"",
        b"\r\n\r\n",
        b"no headers at all",
    ):
        assert scan(raw, Limits()) is None
