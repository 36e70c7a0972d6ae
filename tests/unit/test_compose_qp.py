"""``compose`` encodes text parts as quoted-printable (with ``binascii``): what a reader
decodes must be exactly what we wrote, and no line may exceed RFC 5322's 78 octets."""

from __future__ import annotations

import binascii
import email
import email.policy
import string
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.outbound.compose import _POLICY, Unfolded, as_written, compose

LONG = "Ünïcödé " * 20 + "and a very long ASCII tail " * 5  # far over 76 characters
TEXT = "\n".join(
    [
        "Grüße aus Köln — ticket ✓ received 😀",
        LONG,
        "trailing space here ",
        "trailing tab here\t",
        ".",
        "From the desk: a line mbox would mangle",
        "From ",
        "=3D is not an escape here, = neither",
        "..",
        "",
        "last line without newline",
    ]
)
HTML = (
    "<p>Grüße aus Köln</p>\n"
    f"<p>{'<b>long</b> ' * 30}</p>\n"
    ".\n"
    "From here on: <i>html</i> \n"
    "<p>=</p>\n"
)


def _compose(text: str, html: str | None) -> bytes:
    return compose(
        from_address="support@example.com",
        from_name="Support",
        to=["alice@customer.example"],
        subject="[SUP-1001] Grüße",
        text=text,
        html=html,
        message_id="abc.123@example.com",
        in_reply_to="orig@customer.example",
        references=["orig@customer.example"],
    )


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body(message: EmailMessage, subtype: str) -> EmailMessage:
    part = message.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage), f"no text/{subtype} part"
    return part


def _decoded(part: EmailMessage) -> str:
    """The part's text as a reader gets it; parsed from the wire form its lines end in
    CRLF, which is the line break itself, not content."""
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_text_and_html_round_trip_exactly() -> None:
    message = _parse(_compose(TEXT, HTML))
    assert message.get_content_type() == "multipart/alternative"
    plain, html = _body(message, "plain"), _body(message, "html")
    assert _decoded(plain) == TEXT
    assert _decoded(html) == HTML
    for part in (plain, html):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"


def test_a_text_only_message_round_trips() -> None:
    message = _parse(_compose(TEXT, None))
    assert message.get_content_type() == "text/plain"
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert _decoded(message) == TEXT


def test_crlf_input_comes_back_as_the_same_lines() -> None:
    message = _parse(_compose("one\r\ntwo \r\n.\r\n", None))
    assert _decoded(message) == "one\ntwo \n.\n"


@pytest.mark.parametrize("html", [None, HTML])
def test_no_line_is_longer_than_78_octets_and_lines_end_in_crlf(html: str | None) -> None:
    raw = _compose(TEXT, html)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only, no bare LF or CR
    lines = raw.split(b"\r\n")
    too_long = [line for line in lines if len(line) > 78]
    assert too_long == []
    assert raw.isascii()  # 7bit on the wire: every non-ASCII octet is encoded


def test_the_wire_form_protects_what_transports_would_change() -> None:
    """Trailing white space would be stripped and a lone '.' ends SMTP DATA: both must be
    encoded, not sent as they are."""
    raw = _compose(TEXT, None)
    body = raw.split(b"\r\n\r\n", 1)[1]
    lines = body.split(b"\r\n")
    assert b"." not in lines
    assert all(not line.endswith((b" ", b"\t")) for line in lines)
    assert b"trailing space here=20" in lines
    assert b"trailing tab here=09" in lines


WORD = string.ascii_letters + string.digits + '<>@.,;:="-_[]()'
HEADER_NAMES = ("From", "To", "Cc", "Subject", "References", "Content-Type", "X-Loop")


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(HEADER_NAMES),
    value=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x17F), max_size=90),
        # Words and separators, where folding would break a long line.
        st.lists(st.text(alphabet=WORD, min_size=1, max_size=14), max_size=12).map(" ".join),
    ),
)
def test_a_header_written_as_it_is_is_what_folding_would_write(name: str, value: str) -> None:
    """``as_written`` skips compat32's folding only where folding changes nothing."""
    written = as_written(name, value)
    if isinstance(written, Unfolded):
        assert _POLICY.fold_binary(name, value) == f"{name}: {value}\r\n".encode()
    else:
        assert written == value


@given(st.text(max_size=300))
def test_quoted_printable_never_contains_the_boundary_prefix(text: str) -> None:
    """The multipart boundary starts with "=_", which quoted-printable cannot produce."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    assert b"=_" not in encoded


def test_the_boundary_of_an_acknowledgement_is_quoted_printable_safe() -> None:
    message = _parse(_compose("--=_ a line like a boundary\n=_", "<p>=_</p>"))
    boundary = message.get_boundary()
    assert boundary is not None and boundary.startswith("=_")
    assert _decoded(_body(message, "plain")) == "--=_ a line like a boundary\n=_"
    assert _decoded(_body(message, "html")) == "<p>=_</p>"
