"""Bounces and loops on the real pipeline: attached, never answered, the address suppressed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus.builders import dsn
from sqlalchemy import update
from sqlmodel import select
from support.hostile import Harness
from support.mail import make_mail, message_id_of
from support.servers import Sink

from mailbot.store.models import Suppression, Ticket, TicketEvent

pytestmark = pytest.mark.integration

ALICE = "alice@customer.example"


@pytest.fixture
def bot(tmp_path: Path, sink: Sink, store_url: str) -> Iterator[Harness]:
    """On SQLite and on PostgreSQL (the suppression upsert differs by dialect)."""
    harness = Harness(
        tmp_path,
        sink,
        {
            "database": {"url": store_url},
            "acknowledgement": {"acknowledge_replies": True, "max_per_sender_per_hour": 100},
        },
    )
    yield harness
    harness.close()


def first_ticket(bot: Harness) -> str:
    result = bot.deliver(make_mail("[High] Export fails", sender=ALICE), ALICE)
    assert result.acked
    return result.acks[0].message_id


def test_a_bounce_of_our_ack_joins_the_ticket_and_suppresses_the_address(bot: Harness) -> None:
    ack_id = first_ticket(bot)
    bounce = bot.deliver(dsn(ack_id, ALICE, mid="dsn-1@mx.customer.example"), "")
    assert (bounce.outcome, bounce.ticket, bounce.acked) == ("appended", 1001, False)
    assert "suppressed" in bounce.reason
    assert [e.kind for e in bot.thread(1001)][-1] == "bounce"
    assert len(bot.tickets()) == 1
    with bot.app.store.transaction() as session:
        rows = list(session.execute(select(Suppression)).scalars())
        events = [e.kind for e in session.execute(select(TicketEvent)).scalars()]
    assert [r.address for r in rows] == [ALICE] and "bounce" in events

    # No automatic mail to Alice for a week: not for a new ticket, not for a reply.
    again = bot.deliver(make_mail("Another problem", sender=ALICE), ALICE)
    assert again.outcome == "created" and not again.acked
    assert "bounced recently" in again.reason
    bot.clock.advance(days=8)
    later = bot.deliver(make_mail("A third problem", sender=ALICE), ALICE)
    assert later.acked


def test_a_delay_notice_attaches_without_suppressing(bot: Harness) -> None:
    ack_id = first_ticket(bot)
    delayed = dsn(ack_id, ALICE, action="delayed", mid="dsn-2@mx.customer.example")
    assert bot.deliver(delayed, "").outcome == "appended"
    assert bot.deliver(make_mail("Next", sender=ALICE), ALICE).acked


def test_a_report_naming_none_of_our_mail_opens_nothing(bot: Harness) -> None:
    first = make_mail("[High] Export fails", sender=ALICE)
    assert bot.deliver(first, ALICE).ticket == 1001
    # Alice's own Message-ID is on the ticket, but it is not mail we sent: not a bounce of ours.
    forged = dsn(message_id_of(first), ALICE, mid="dsn-3@mx.attacker.example")
    result = bot.deliver(forged, "")
    assert (result.outcome, result.ticket, result.acked) == ("ignored", None, False)
    assert len(bot.tickets()) == 1
    assert bot.deliver(make_mail("Next", sender=ALICE), ALICE).acked  # nothing suppressed


def test_a_bounce_does_not_reopen_a_resolved_ticket(bot: Harness) -> None:
    ack_id = first_ticket(bot)
    with bot.app.store.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == 1001).values(status="resolved"))
    bounce = bot.deliver(dsn(ack_id, ALICE, mid="dsn-4@mx.customer.example"), "")
    assert (bounce.outcome, bounce.ticket) == ("appended", 1001)
    assert bot.ticket(1001).status == "resolved"


def test_our_own_mail_coming_back_is_not_a_ticket(bot: Harness, sink: Sink) -> None:
    first_ticket(bot)
    ours = sink.received[-1].raw  # our acknowledgement, delivered back to support@
    result = bot.deliver(ours, "support@example.com")
    assert result.outcome == "ignored" and not result.acked
    assert len(bot.tickets()) == 1


def test_replies_to_a_ticket_get_at_most_the_per_ticket_cap_of_acks(bot: Harness) -> None:
    ack_id = first_ticket(bot)
    acked = 0
    for i in range(15):  # a robot without Auto-Submitted, answering every time
        reply = make_mail(f"Re: answer {i}", sender=ALICE, in_reply_to=ack_id)
        result = bot.deliver(reply, ALICE)
        assert result.ticket == 1001
        acked += result.acked
    assert acked == 9  # 10 automatic messages per ticket and hour, the first ack included
