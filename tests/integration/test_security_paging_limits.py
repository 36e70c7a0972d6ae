"""Forged mail does not page on-call; structural limits: 552 at the listener, quarantine else."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from support.daemon import merge, run_cli, write_config
from support.hostile import Harness
from support.mail import make_mail, send
from support.servers import Sink

pytestmark = pytest.mark.integration

PAGING = {
    "paging": {"oncall_address": "oncall@example.com", "allowed_domains": ["customer.example"]},
    "security": {"authserv_id": "mx.example.com"},
}


def emergency(*auth_results: str, sender: str = "alice@customer.example") -> bytes:
    raw = make_mail("[Emergency] Database down", sender=sender)
    return b"".join(f"Authentication-Results: {r}\r\n".encode() for r in auth_results) + raw


@pytest.mark.parametrize(
    ("results", "paged"),
    [
        (["mx.example.com; spf=pass smtp.mailfrom=customer.example; dmarc=pass"], True),
        (["mx.example.com; dkim=pass header.d=customer.example"], True),
        ([], False),
        (["evil.example; dmarc=pass"], False),  # someone else's verdict
        (["mx.example.com; dmarc=fail", "mx.example.com; dmarc=pass"], False),  # ours is on top
        (["mx.example.com; dkim=pass header.d=attacker.example"], False),  # not aligned
    ],
)
def test_a_page_needs_an_authenticated_sender(
    tmp_path: Path, sink: Sink, results: list[str], paged: bool
) -> None:
    bot = Harness(tmp_path, sink, PAGING)
    try:
        result = bot.deliver(emergency(*results), "alice@customer.example")
        assert result.outcome == "created"
        ticket = bot.ticket(1001)
        pages = bot.outbox("page")
        assert bool(pages) is paged
        assert ticket.page_status == ("queued" if paged else "unauthorised")
        assert ticket.emergency_unauthorised is not paged
        ack = sink.to("alice@customer.example")[-1].text()
        assert ("has been paged" in ack) is paged
        if not paged:
            assert "not authenticated" in result.reason
    finally:
        bot.close()


def test_without_an_authserv_id_paging_trusts_the_allow_list(tmp_path: Path, sink: Sink) -> None:
    bot = Harness(tmp_path, sink, {"paging": PAGING["paging"]})
    try:
        bot.deliver(emergency(), "alice@customer.example")
        assert len(bot.outbox("page")) == 1
    finally:
        bot.close()


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        (b"".join(f"X-Junk-{i}: v\r\n".encode() for i in range(600)), b"header fields"),
        # (SMTP itself caps lines at 1,000 octets: aiosmtpd answers 500 above that.)
        (b"X-Long: " + b"a" * 800 + b"\r\n", b"limits.max_header_line_length"),
        (b"Content-Type: multipart/mixed; boundary=B\r\n", b"limits.max_mime_parts"),
    ],
)
def test_the_listener_refuses_mail_over_a_limit_with_552(
    daemon, sink: Sink, prefix: bytes, reason: bytes
) -> None:  # type: ignore[no-untyped-def]
    bot = daemon({"limits": {"max_header_line_length": 500, "max_mime_parts": 5}})
    body = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(8))
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(bot.port, prefix + make_mail("Too much") + body + b"--B--\r\n")
    assert refused.value.smtp_code == 552
    assert reason in refused.value.smtp_error
    send(bot.port, make_mail("Fine"))  # the listener is still there for the next one
    sink.wait_for(1)
    assert "refused" in bot.log()


def test_mail_over_a_limit_is_quarantined_and_retried_after_a_fix(
    tmp_path: Path, sink: Sink
) -> None:
    """From intakes other than SMTP (IMAP, deliver, import) the worker quarantines it."""
    bot = Harness(tmp_path, sink, {"limits": {"max_mime_parts": 3}})
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(5))
    raw = (
        b"From: alice@customer.example\r\nTo: support@example.com\r\nSubject: Five parts\r\n"
        b'Message-ID: <five@customer.example>\r\nContent-Type: multipart/mixed; boundary="B"'
        b"\r\n\r\n" + parts + b"--B--\r\n"
    )
    try:
        result = bot.deliver(raw, "alice@customer.example")
        assert (result.outcome, result.acked) == ("quarantined", False)
        assert "limits.max_mime_parts" in result.reason
        listed = run_cli(bot.config_path, "quarantine", "list")
        assert "limits.max_mime_parts" in listed.stdout
    finally:
        bot.close()
    write_config(tmp_path, merge(bot.config, {"limits": {"max_mime_parts": 50}}))
    retried = run_cli(bot.config_path, "quarantine", "retry", "--all")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "created" in retried.stdout
