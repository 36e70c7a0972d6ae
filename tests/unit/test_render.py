"""Acknowledgement rendering and composing: pure, no sockets."""

from email import message_from_bytes
from email.policy import default
from pathlib import Path

from mailbot.message import parse
from mailbot.outbound.acknowledge import AckComposer, AckSettings
from mailbot.outbound.render import Renderer
from mailbot.store.models import Ticket

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SETTINGS = AckSettings(
    prefix="SUP",
    from_address="support@example.com",
    from_name="Support",
    support_address="support@example.com",
    support_hours="6:00 to 18:00 Pacific Time",
    initial_response={
        "emergency": "within 1 hour",
        "high": "within 4 business hours",
        "normal": "within 1 business day",
        "low": "within 2 business days",
    },
    status_updates={k: "as needed" for k in ("emergency", "high", "normal", "low")},
)


def _ticket(severity: int, subject: str = "Pipeline down") -> Ticket:
    from datetime import datetime

    now = datetime(2026, 11, 27)
    return Ticket(
        id=1, number=1001, subject=subject, severity=severity, created_at=now, updated_at=now
    )


def _customer(subject: str = "[Emergency] Pipeline down", name: str = "Alice") -> bytes:
    return (
        f"From: {name} <alice@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <c1@customer.example>\r\n"
        "References: <older@customer.example>\r\n\r\nhi\r\n"
    ).encode()


def test_ack_headers_and_body_for_emergency() -> None:
    composer = AckComposer(Renderer(TEMPLATES), SETTINGS)
    out = composer(_ticket(1), parse(_customer()))
    msg = message_from_bytes(out.payload, policy=default)
    assert msg["Subject"] == "[SUP-1001] Pipeline down"
    assert msg["To"] == "alice@customer.example"
    assert msg["In-Reply-To"] == "<c1@customer.example>"
    assert msg["References"] == "<older@customer.example> <c1@customer.example>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Message-ID"] == f"<{out.message_id}>"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Emergency" in text and "within 1 hour" in text and "6:00 to 18:00" in text
    assert "reply" in text.lower()
    assert msg.get_body(preferencelist=("html",)) is not None


def test_severity_picks_template_variant() -> None:
    composer = AckComposer(Renderer(TEMPLATES), SETTINGS)
    normal = composer(_ticket(3), parse(_customer("question")))
    assert "within 1 business day" in normal.text
    assert "EMERGENCY" not in normal.text
    assert "EMERGENCY" in composer(_ticket(1), parse(_customer())).text


def test_injection_in_subject_and_name_stays_text() -> None:
    composer = AckComposer(Renderer(TEMPLATES), SETTINGS)
    hostile_subject = "=?utf-8?q?Hi=0D=0ABcc=3A_victim=40evil=2Eexample_{{_7*7_}}_{%_raw_%}?="
    mail = parse(_customer(hostile_subject, name='"<script>x</script> {{ config }}"'))
    out = composer(_ticket(3, subject=mail.subject), mail)
    msg = message_from_bytes(out.payload, policy=default)
    assert msg["Bcc"] is None
    assert msg.get_all("To") == ["alice@customer.example"]
    assert "\n" not in msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "{{ 7*7 }}" in text and "49" not in text
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
