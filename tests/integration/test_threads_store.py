"""Readable threads in the store and through the CLI: new content and full text,
attachments (inline images, RFC 2231 names, stored once), participants, forwards.

In-process ``Application`` + ``drain()`` on SQLite and PostgreSQL, and ``mailbot tickets``
as a real subprocess reading the same database.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select
from support.daemon import base_config, merge, run_cli, write_config
from support.mail import make_mail
from support.servers import Sink, free_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.store.models import Attachment, AttachmentBlob, OutboxMessage, Suppression
from mailbot.store.repo import RepoLookup, ticket_by_number

pytestmark = pytest.mark.integration

CLIENTS = Path(__file__).parent.parent / "data" / "clients"


@pytest.fixture
def database_url(store_url: str) -> str:
    """SQLite and PostgreSQL (a private schema), from tests/support/postgres.py."""
    return store_url


class Desk:
    """The application plus a config file for the CLI, on one database."""

    def __init__(self, tmp_path: Path, sink: Sink, database_url: str) -> None:
        config = merge(
            base_config(tmp_path, free_port(), sink.port),
            {"database": {"url": database_url}, "staff": {"domains": ["example.com"]}},
        )
        self.config_path = write_config(tmp_path, config)
        self.app = Application(parse_settings(config, tmp_path))

    def deliver(self, raw: bytes, mail_from: str = "alice@customer.example") -> None:
        self.app.store_raw_sync("test", mail_from, ["support@example.com"], raw)
        self.app.drain()

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = run_cli(self.config_path, *args)
        return result.returncode, result.stdout, result.stderr

    def show(self, ref: str) -> dict:
        code, out, err = self.cli("tickets", "show", ref, "--json")
        assert code == 0, err
        return json.loads(out)

    def close(self) -> None:
        self.app.store.dispose()


@pytest.fixture
def desk(tmp_path: Path, sink: Sink, database_url: str) -> Iterator[Desk]:
    made = Desk(tmp_path, sink, database_url)
    yield made
    made.close()


def test_a_client_reply_shows_its_new_content_and_keeps_the_full_text(desk: Desk) -> None:
    desk.deliver(make_mail("Nightly export fails", message_id="orig-1@customer.example"))
    reply = (CLIENTS / "gmail_en.eml").read_bytes()  # References <orig-1@customer.example>
    desk.deliver(reply)

    detail = desk.show("SUP-1001")
    inbound = [m for m in detail["messages"] if m["direction"] == "inbound"]
    assert len(inbound) == 2
    expected = (CLIENTS / "gmail_en.expected.txt").read_text(encoding="utf-8").strip("\n")
    assert inbound[1]["text"] == expected
    assert "wrote:" in inbound[1]["text_full"] and "> please restart" in inbound[1]["text_full"]
    assert inbound[0]["text"] == inbound[0]["text_full"].strip() == "Something is wrong."

    code, shown, _ = desk.cli("tickets", "show", "SUP-1001")
    assert code == 0
    assert "thanks, restarting the exporter fixed it" in shown
    assert "> please restart" not in shown
    assert "--full shows them" in shown
    code, full, _ = desk.cli("tickets", "show", "SUP-1001", "--full")
    assert code == 0
    assert "> please restart the exporter service" in full and "Data Team, Customer Corp" in full


def test_inline_images_and_a_pdf_are_stored_once_and_written_out(
    desk: Desk, tmp_path: Path
) -> None:
    pdf = (CLIENTS / "pdf.bin").read_bytes()
    desk.deliver((CLIENTS / "inline_images_and_pdf.eml").read_bytes(), "ivy@customer.example")
    desk.deliver((CLIENTS / "same_pdf_again.eml").read_bytes(), "ivy@customer.example")

    detail = desk.show("SUP-1001")
    assert detail["message_count"] >= 2  # the same ticket: the second is a reply
    items = [a for m in detail["messages"] for a in m["attachments"]]
    assert [(a["number"], a["filename"], a["content_type"], a["inline"]) for a in items] == [
        (1, "before.png", "image/png", True),
        (2, "äpfel-danach.png", "image/png", True),  # RFC 2047 encoded name
        (3, "Prüfbericht Q4 – Übersicht.pdf", "application/pdf", False),  # RFC 2231, continued
        (4, "Prüfbericht Q4 – Übersicht (Kopie).pdf", "application/pdf", False),  # raw UTF-8
    ]
    assert items[0]["content_id"] == "ii_m3x1a2b30"
    assert items[2]["size"] == items[3]["size"] == len(pdf)
    assert items[2]["sha256"] == items[3]["sha256"] == hashlib.sha256(pdf).hexdigest()
    with desk.app.store.read() as session:
        assert session.execute(select(func.count()).select_from(Attachment)).scalar_one() == 4
        assert session.execute(select(func.count()).select_from(AttachmentBlob)).scalar_one() == 3

    code, shown, _ = desk.cli("tickets", "show", "SUP-1001")
    assert "Attachment 2: äpfel-danach.png (image/png, 72 bytes, inline)" in shown
    assert "--full shows them" not in shown  # nothing quoted, nothing hidden
    assert f"Attachment 3: Prüfbericht Q4 – Übersicht.pdf (application/pdf, {len(pdf)} bytes)" in (
        shown
    )

    out = tmp_path / "report.pdf"
    code, _, err = desk.cli("tickets", "attachment", "SUP-1001", "3", "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == pdf
    code, _, err = desk.cli("tickets", "attachment", "SUP-1001", "3", "-o", str(out))
    assert code == 73 and "exists" in err  # never overwritten silently
    code, _, err = desk.cli("tickets", "attachment", "SUP-1001", "4", "-o", str(out), "--force")
    assert code == 0 and out.read_bytes() == pdf
    code, _, err = desk.cli("tickets", "attachment", "SUP-1001", "5", "-o", str(out))
    assert code == 66 and "no attachment 5 (it has 4)" in err
    binary = subprocess.run(
        [sys.executable, "-m", "mailbot", "-c", str(desk.config_path)]
        + ["tickets", "attachment", "SUP-1001", "1", "-o", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert hashlib.sha256(binary.stdout).hexdigest() == items[0]["sha256"]  # bytes on stdout


def test_participants_are_the_requester_and_to_cc_minus_our_own(desk: Desk) -> None:
    desk.deliver(
        make_mail(
            "Login broken",
            to="support@example.com, Bob <Bob@customer.example>",
            cc="help@example.com, carol@customer.example",
            headers={"Reply-To": "mallory@evil.example"},
            message_id="login-1@customer.example",
        )
    )
    desk.deliver(
        make_mail(
            "Re: Login broken",
            sender="bob@customer.example",
            cc="dave@partner.example, sam@example.com",
            in_reply_to="login-1@customer.example",
        ),
        "bob@customer.example",
    )
    detail = desk.show("SUP-1001")
    assert [(p["address"], p["role"]) for p in detail["participants"]] == [
        ("alice@customer.example", "requester"),
        ("bob@customer.example", "cc"),
        ("carol@customer.example", "cc"),
        ("dave@partner.example", "cc"),
        ("sam@example.com", "staff"),
    ]
    with desk.app.store.read() as session:
        ticket = ticket_by_number(session, 1001)
        assert ticket is not None and ticket.id is not None
        lookup = RepoLookup(session, desk.app.clock())
        assert lookup.is_participant(ticket.id, "Carol@Customer.example")
        assert not lookup.is_participant(ticket.id, "mallory@evil.example")
        assert not lookup.is_participant(ticket.id, "support@example.com")
        assert not lookup.is_participant(ticket.id, None)


def test_a_forward_opens_a_ticket_for_the_forwarder(desk: Desk) -> None:
    desk.deliver(
        make_mail("Outage", sender="carol@customer.example", message_id="carol-1@customer.example"),
        "carol@customer.example",
    )
    # Bob forwards Carol's mail inline; his client gave the forward Carol's Message-ID
    # as In-Reply-To/References (Gmail and Thunderbird do).
    inline = make_mail(
        "Fwd: Outage",
        sender="bob@customer.example",
        sender_name="Bob",
        in_reply_to="carol-1@customer.example",
        references=["carol-1@customer.example"],
        body=(
            "Please look at this, it affects us too.\n\n"
            "---------- Forwarded message ---------\nFrom: Carol <carol@customer.example>\n"
            "Date: Mon, 1 Dec 2025 at 09:00\nSubject: Outage\nTo: <support@example.com>\n\n"
            "Something is wrong.\n"
        ),
    )
    desk.deliver(inline, "bob@customer.example")
    # Dave attaches Carol's mail itself (no "Fwd:" in his subject): the attached
    # message's Message-ID and References are Carol's and must not be taken for his.
    outer = EmailMessage(policy=SMTP)
    outer["From"] = "Dave <dave@customer.example>"
    outer["To"] = "support@example.com"
    outer["Subject"] = "Outage mail attached"
    outer["Message-ID"] = "<dave-fw-1@customer.example>"
    outer.set_content("See the attached mail.\n")
    inner = make_mail(
        "Outage",
        sender="carol@customer.example",
        message_id="carol-1@customer.example",
        references=["carol-0@customer.example"],
    )
    outer.add_attachment(inner, maintype="message", subtype="rfc822", filename="Outage.eml")
    desk.deliver(outer.as_bytes(), "dave@customer.example")

    code, out, err = desk.cli("tickets", "list", "--json")
    assert code == 0, err
    tickets = {t["ref"]: t for t in json.loads(out)}
    assert [(t["requester"], t["message_count"]) for t in tickets.values()] == [
        ("carol@customer.example", 2),  # her ticket and its acknowledgement
        ("bob@customer.example", 2),
        ("dave@customer.example", 2),
    ]
    bobs = desk.show("SUP-1002")
    forwarded = bobs["messages"][0]
    assert "Something is wrong." in forwarded["text"]  # a forward is shown whole
    # A reply that names Carol's message still joins Carol's ticket, not Bob's.
    desk.deliver(
        make_mail(
            "Re: Outage", sender="carol@customer.example", references=["carol-1@customer.example"]
        ),
        "carol@customer.example",
    )
    assert desk.show("SUP-1001")["message_count"] == 3


def test_an_address_that_bounced_is_not_copied(desk: Desk) -> None:
    now = desk.app.clock()
    with desk.app.store.transaction() as session:
        session.add(
            Suppression(
                address="carol@customer.example",
                until=now + timedelta(hours=1),
                reason="test: bounced",
                created_at=now,
            )
        )
    desk.deliver(make_mail("Help", cc="bob@customer.example, carol@customer.example"))
    with desk.app.store.read() as session:
        acks = list(session.execute(select(OutboxMessage)).scalars())
    assert [a.recipients for a in acks] == ["alice@customer.example,bob@customer.example"]
    participants = [p["address"] for p in desk.show("SUP-1001")["participants"]]
    assert "carol@customer.example" in participants  # still a participant, just not copied
