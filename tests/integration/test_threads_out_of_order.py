"""Out-of-order arrival: 500 messages of customer conversations, delivered in order and
shuffled (IMAP fetch order, an MTA retrying the original later, two MX hosts), end with
the same tickets: the same partition of messages into tickets, one per conversation.

The people of a conversation write to support@ with each other on Cc (reply to all), so
whichever message arrives first makes them all participants, who may then append.
Every reply names its parent in In-Reply-To and its ancestors in References, as mail
clients write them, sometimes trimmed to the first and the last few (RFC 5322 3.6.4
allows it; the first, the conversation's root, is what clients keep).  Some messages
arrive twice.  In-process ``Application`` + ``drain()`` on SQLite.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import select
from support.daemon import base_config, merge
from support.mail import make_mail
from support.servers import free_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.store.models import ThreadEntry

pytestmark = pytest.mark.integration

MESSAGES = 500


@dataclass(frozen=True)
class Item:
    conversation: int
    message_id: str
    sender: str
    raw: bytes


def workload(seed: int = 6, total: int = MESSAGES) -> list[Item]:
    """Conversations of 1–12 messages; each reply answers a random earlier message."""
    rng = random.Random(seed)
    items: list[Item] = []
    conversation = 0
    while len(items) < total:
        conversation += 1
        domain = f"customer{rng.randrange(8)}.example"
        people = sorted({f"user{rng.randrange(60)}@{domain}" for _ in range(3)})
        size = min(rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 12]), total - len(items))
        chains: list[list[str]] = []  # each message's ancestry, itself last
        subject = f"[{rng.choice(['High', 'Normal', 'Low'])}] Problem {conversation}"
        for n in range(size):
            mid = f"c{conversation}.m{n}.{rng.getrandbits(32):08x}@{domain}"
            sender = people[rng.randrange(len(people))]
            others = ", ".join(p for p in people if p != sender) or None  # reply to all
            if n == 0:
                chain = [mid]
                raw = make_mail(subject, sender=sender, message_id=mid, cc=others)
            else:
                parent = chains[rng.randrange(len(chains))]
                chain = [*parent, mid]
                references = parent
                if len(references) > 4 and rng.random() < 0.5:
                    references = [references[0], *references[-3:]]  # trimmed, root kept
                raw = make_mail(
                    f"Re: {subject}",
                    sender=sender,
                    cc=others,
                    message_id=mid,
                    in_reply_to=parent[-1],
                    references=references,
                    body=f"Reply {n} in conversation {conversation}.\n",
                )
            chains.append(chain)
            items.append(Item(conversation, mid, sender, raw))
    return items


def deliver(tmp_path: Path, items: list[Item], name: str) -> set[frozenset[str]]:
    """Deliver ``items`` in this order; the partition of Message-IDs into tickets."""
    folder = tmp_path / name
    folder.mkdir()
    config = merge(
        base_config(folder, free_port(), None),
        {"acknowledgement": {"enabled": False}, "worker": {"batch_size": 100}},
    )
    app = Application(parse_settings(config, folder))
    try:
        for item in items:
            app.store_raw_sync("test", item.sender, ["support@example.com"], item.raw)
        app.drain()
        with app.store.read() as session:
            entries = session.execute(
                select(ThreadEntry.ticket_id, ThreadEntry.message_id).where(
                    ThreadEntry.direction == "inbound"
                )
            ).all()
    finally:
        app.store.dispose()
    tickets: dict[int, set[str]] = {}
    for ticket_id, message_id in entries:
        tickets.setdefault(ticket_id, set()).add(message_id)
    assert sum(len(ids) for ids in tickets.values()) == len({i.message_id for i in items})
    return {frozenset(ids) for ids in tickets.values()}


def test_shuffled_delivery_ends_with_the_tickets_of_in_order_delivery(tmp_path: Path) -> None:
    items = workload()
    assert len(items) == MESSAGES
    conversations: dict[int, set[str]] = {}
    for item in items:
        conversations.setdefault(item.conversation, set()).add(item.message_id)
    truth = {frozenset(ids) for ids in conversations.values()}
    assert len(truth) > 80 and max(len(c) for c in truth) >= 8  # many, some long

    in_order = deliver(tmp_path, items, "in-order")
    assert in_order == truth  # one ticket per conversation

    rng = random.Random(2025)
    shuffled = list(items)
    rng.shuffle(shuffled)
    # An MTA retries some originals later: a second copy of 20 messages, at the end.
    shuffled += [shuffled[i] for i in rng.sample(range(len(shuffled)), 20)]
    assert deliver(tmp_path, shuffled, "shuffled") == in_order

    newest_first = list(reversed(items))  # every reply before the message it answers
    assert deliver(tmp_path, newest_first, "reversed") == in_order
