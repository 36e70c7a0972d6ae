"""Autoresponder war: two robots answer everything mailbot sends, for 10 simulated minutes.

Robot A marks its answers ``Auto-Submitted: auto-replied`` (RFC 3834); robot B, like
many ticket systems, does not.  Each answers every message that reaches it through the
real SMTP sink.  The number of acknowledgements stays within the configured limits.
"""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from support.hostile import Clock, Harness
from support.mail import make_mail, message_id_of
from support.servers import Sink

pytestmark = pytest.mark.integration

ROBOT_A = "vacation@a.example"  # says it is automatic
ROBOT_B = "helpdesk@b.example"  # does not
SIMULATED_SECONDS = 600
TICK = 5


def robot_answer(robot: str, to_message: bytes, n: int, threads: bool) -> bytes:
    subject = _subject(to_message)
    parent = message_id_of(to_message)
    if robot == ROBOT_A:
        return make_mail(
            f"Automatic reply: {subject}",
            sender=robot,
            in_reply_to=parent,
            headers={"Auto-Submitted": "auto-replied"},
            body="I am away.\n",
        )
    # Robot B opens "its own ticket" for everything it gets and answers with a fresh
    # subject; when ``threads`` it at least keeps In-Reply-To.
    return make_mail(
        f"[Ticket#{n:06d}] Thank you for your message",
        sender=robot,
        in_reply_to=parent if threads else None,
        body="Your request has been received.\n",
    )


def _subject(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=default)["Subject"])


def war(bot: Harness, sink: Sink, clock: Clock, threads: bool) -> dict[str, int]:
    answered = 0
    for robot in (ROBOT_A, ROBOT_B):
        bot.deliver(make_mail("Hello support", sender=robot), robot)
    elapsed, n = 0, 0
    while elapsed < SIMULATED_SECONDS:
        bot.app.drain()
        arrived = sink.received[answered:]
        answered = len(sink.received)
        for message in arrived:
            for robot in (ROBOT_A, ROBOT_B):
                if robot in message.rcpt_tos:
                    n += 1
                    bot.deliver(robot_answer(robot, message.raw, n, threads), robot)
        clock.advance(seconds=TICK)
        elapsed += TICK
    bot.app.drain()
    return {robot: len(sink.to(robot)) for robot in (ROBOT_A, ROBOT_B)}


def test_a_robot_opening_new_tickets_is_held_by_the_per_sender_limit(
    tmp_path: Path, sink: Sink
) -> None:
    clock = Clock()
    bot = Harness(tmp_path, sink, {"acknowledgement": {"max_per_sender_per_hour": 5}}, clock)
    try:
        sent = war(bot, sink, clock, threads=False)
    finally:
        bot.close()
    assert sent[ROBOT_A] == 1  # its first (human-looking) mail; never its auto-replies
    assert sent[ROBOT_B] == 5  # max_per_sender_per_hour, then silence
    assert len(bot.tickets()) > 5  # every message was still kept


def test_a_robot_replying_in_thread_is_held_by_the_per_ticket_cap(
    tmp_path: Path, sink: Sink
) -> None:
    clock = Clock()
    overrides = {
        "acknowledgement": {"acknowledge_replies": True, "max_per_sender_per_hour": 1000},
        "security": {"max_automatic_per_ticket_per_hour": 10},
    }
    bot = Harness(tmp_path, sink, overrides, clock)
    try:
        sent = war(bot, sink, clock, threads=True)
    finally:
        bot.close()
    assert sent[ROBOT_A] == 1
    assert sent[ROBOT_B] == 10  # the per-ticket cap (the first ack included)
    assert len(bot.thread(1002)) > 10  # B's answers are all on its ticket, unanswered
