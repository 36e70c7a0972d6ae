"""Nobody writes into someone else's ticket: the real pipeline on SQLite, a real SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import run_cli
from support.hostile import Harness
from support.mail import make_mail, message_id_of
from support.servers import Sink

pytestmark = pytest.mark.integration

ALICE = "alice@customer.example"
BOB = "bob@customer.example"  # on Cc of Alice's first mail
CAROL = "carol@customer.example"  # got the acknowledgement forwarded; never on the ticket
MALLORY = "mallory@attacker.example"


@pytest.fixture
def bot(tmp_path: Path, sink: Sink, store_url: str) -> Iterator[Harness]:
    """On SQLite and on PostgreSQL."""
    overrides = {"database": {"url": store_url}, "staff": {"domains": ["example.com"]}}
    harness = Harness(tmp_path, sink, overrides)
    yield harness
    harness.close()


def open_ticket(bot: Harness) -> tuple[str, str]:
    """SUP-1001 from Alice with Bob on Cc; returns (Alice's Message-ID, the ack's)."""
    first = make_mail("[High] Export fails", sender=ALICE, cc=BOB, body="Exports are broken.\n")
    result = bot.deliver(first, ALICE)
    assert (result.outcome, result.ticket, result.acked) == ("created", 1001, True)
    return message_id_of(first), result.acks[0].message_id


def untouched(bot: Harness, entries: int = 2) -> None:
    """SUP-1001 still has only Alice's mail and our acknowledgement."""
    assert len(bot.thread(1001)) == entries
    assert bot.ticket(1001).status == "open"


def test_strangers_subject_reference_opens_their_own_ticket_and_discloses_nothing(
    bot: Harness, sink: Sink
) -> None:
    open_ticket(bot)
    raw = make_mail("Re: [SUP-1001] Export fails", sender=MALLORY, body="Let me in.\n")
    result = bot.deliver(raw, MALLORY)

    assert (result.outcome, result.ticket, result.acked) == ("created", 1002, True)
    assert "not appended to the ticket it names" in result.reason
    untouched(bot)
    assert bot.ticket(1002).subject == "Export fails"
    assert bot.ticket(1002).requester == MALLORY
    ack = sink.to(MALLORY)[-1]
    assert b"SUP-1001" not in ack.raw and b"r1001-" not in ack.raw
    assert "[SUP-1002]" in ack.message["Subject"]
    assert ack.rcpt_tos == [MALLORY]


def test_forged_in_reply_to_without_a_token_does_not_thread(bot: Harness) -> None:
    alice_id, ack_id = open_ticket(bot)
    forged = make_mail("Re: Export fails", sender=MALLORY, in_reply_to=alice_id)
    assert bot.deliver(forged, MALLORY).ticket == 1002

    local, domain = ack_id.rsplit("@", 1)
    tampered = f"{local[:-1]}{'0' if local[-1] != '0' else '1'}@{domain}"
    guessed = make_mail("Re: [SUP-1001] Export fails", sender=MALLORY, in_reply_to=tampered)
    assert bot.deliver(guessed, MALLORY).ticket == 1003

    made_up = f"abc.r1001-{'0' * 20}@example.com"
    invented = make_mail("Re: [SUP-1001]", sender=MALLORY, references=[made_up, alice_id])
    assert bot.deliver(invented, MALLORY).ticket == 1004
    untouched(bot)


def test_reply_to_never_makes_a_participant(bot: Harness) -> None:
    open_ticket(bot)
    raw = make_mail("Re: [SUP-1001]", sender=MALLORY, headers={"Reply-To": ALICE})
    result = bot.deliver(raw, MALLORY)
    assert result.ticket == 1002
    assert [a.recipient for a in result.acks] == [MALLORY]
    untouched(bot)


def test_a_colleague_on_cc_can_reply(bot: Harness) -> None:
    open_ticket(bot)
    reply = make_mail("Re: [SUP-1001] Export fails", sender=BOB, body="Same here.\n")
    result = bot.deliver(reply, BOB)
    assert (result.outcome, result.ticket, result.acked) == ("appended", 1001, False)
    assert [e.from_addr for e in bot.thread(1001)][-1] == BOB


def test_a_reply_with_a_valid_token_from_a_new_address_is_accepted(bot: Harness) -> None:
    _, ack_id = open_ticket(bot)
    # Carol got our acknowledgement forwarded and answers it: her client names its id.
    reply = make_mail("Re: Export fails", sender=CAROL, in_reply_to=ack_id, references=[ack_id])
    result = bot.deliver(reply, CAROL)
    assert (result.outcome, result.ticket) == ("appended", 1001)
    assert bot.thread(1001)[-1].from_addr == CAROL


def test_the_requester_and_staff_may_always_append(bot: Harness) -> None:
    open_ticket(bot)
    assert bot.deliver(make_mail("Re: [SUP-1001]", sender=ALICE), ALICE).outcome == "appended"
    staff = make_mail("Re: [SUP-1001]", sender="dana@example.com", body="Looking into it.\n")
    assert bot.deliver(staff, "dana@example.com").ticket == 1001


def test_every_mail_we_send_carries_a_token_for_its_ticket(bot: Harness) -> None:
    open_ticket(bot)
    staff = make_mail("Re: [SUP-1001]", sender="dana@example.com", body="Fixed.\n")
    bot.deliver(staff, "dana@example.com")
    tokens = bot.app.policy.security.tokens
    assert tokens is not None
    sent = bot.outbox()
    assert {row.kind for row in sent} >= {"ack", "relay"}
    assert all(tokens.ticket_number(row.message_id) == 1001 for row in sent)


def test_quarantine_policy_holds_the_message(tmp_path: Path, sink: Sink) -> None:
    bot = Harness(tmp_path, sink, {"security": {"unauthorised_reference": "quarantine"}})
    try:
        open_ticket(bot)
        raw = make_mail("Re: [SUP-1001] Export fails", sender=MALLORY)
        result = bot.deliver(raw, MALLORY)
        assert (result.outcome, result.ticket, result.acked) == ("quarantined", None, False)
        assert "is not on ticket #1001" in result.reason
        untouched(bot)
        assert len(bot.tickets()) == 1
        listed = run_cli(bot.config_path, "quarantine", "list")
        assert listed.returncode == 0 and MALLORY in listed.stdout
    finally:
        bot.close()


def test_anyone_policy_appends_like_before(tmp_path: Path, sink: Sink) -> None:
    bot = Harness(tmp_path, sink, {"security": {"append_policy": "anyone"}})
    try:
        open_ticket(bot)
        raw = make_mail("Re: [SUP-1001]", sender=MALLORY)
        assert bot.deliver(raw, MALLORY).ticket == 1001
    finally:
        bot.close()
