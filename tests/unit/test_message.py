from pathlib import Path

import pytest

from mailbot.message import parse

DATA = Path(__file__).parent.parent / "data" / "eml"


def test_basic_fields() -> None:
    mail = parse((DATA / "emergency.eml").read_bytes())
    assert mail.message_id == "em1@customer.example"
    assert mail.from_address == "alice@customer.example"
    assert mail.from_name == "Alice"
    assert mail.to == ("support@example.com",)
    assert mail.subject == "[Emergency] Pipeline down"
    assert mail.date is not None and mail.date.utcoffset() is not None
    assert mail.text.strip() == "The pipeline is down."
    assert mail.dedup_key == "mid:em1@customer.example"


def test_rfc2047_subject_and_8bit_latin1_body() -> None:
    mail = parse((DATA / "latin1_8bit.eml").read_bytes())
    assert mail.subject == "[Low] Grüße und Frage"
    assert mail.from_name == "Jörg"
    assert "Grüße aus München" in mail.text


def test_html_only_becomes_text_keeping_links_and_lists() -> None:
    mail = parse((DATA / "html_only.eml").read_bytes())
    assert mail.html is not None and "<b>dashboard</b>" in mail.html
    assert "https://status.example/x" in mail.text
    assert "first item" in mail.text and "second item" in mail.text
    assert "<b>" not in mail.text


def test_attachment_with_rfc2231_name_and_cc() -> None:
    mail = parse((DATA / "attachment_rfc2231.eml").read_bytes())
    assert [a.filename for a in mail.attachments] == ["résumé.pdf"]
    assert mail.attachments[0].content.startswith(b"%PDF-1.4")
    assert mail.attachments[0].content_type == "application/pdf"
    assert mail.cc == ("hank@customer.example", "support@example.com")


def test_references_and_in_reply_to_ordering() -> None:
    mail = parse((DATA / "reply_by_header.eml").read_bytes())
    assert mail.in_reply_to == ("ack-1@example.com",)
    assert mail.references == ("em1@customer.example", "ack-1@example.com")
    assert mail.referenced_ids == ("ack-1@example.com", "em1@customer.example")


def test_no_message_id_dedups_by_content_hash() -> None:
    raw = (DATA / "no_message_id.eml").read_bytes()
    mail = parse(raw)
    assert mail.message_id is None
    assert mail.dedup_key == parse(raw).dedup_key
    assert mail.dedup_key.startswith("sha256:")


@pytest.mark.parametrize("name", ["unknown_charset.eml", "broken_mime.eml", "missing_from.eml"])
def test_broken_mail_parses_without_raising(name: str) -> None:
    mail = parse((DATA / name).read_bytes())
    assert mail.subject


def test_unknown_charset_keeps_readable_text() -> None:
    mail = parse((DATA / "unknown_charset.eml").read_bytes())
    assert "Bytes" in mail.text and "here" in mail.text


@pytest.mark.parametrize(
    "from_header",
    ["", "undisclosed-recipients:;", "a@b.com)<c@d.com>", "no-domain", "a@b.com, c@d.com"],
)
def test_ambiguous_from_is_never_attributed(from_header: str) -> None:
    raw = f"From: {from_header}\r\nTo: support@example.com\r\nSubject: x\r\n\r\nbody\r\n".encode()
    assert parse(raw).from_address is None
