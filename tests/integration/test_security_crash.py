"""Crash safety: ``mailbot run`` SIGKILLed at random moments while 500 messages arrive.

Four SMTP clients behave like an MTA: a message is done when it got 250; on a 4xx, a
refused or dropped connection they reconnect and send it again.  The daemon is killed
at least ten times, at random moments (seeded), and restarted each time.  Afterwards:
every message that got 250 is in exactly one ticket thread, no ticket exists twice,
every acknowledgement reached the relay at least once, and there are no more duplicate
acknowledgements than kills (a kill between the relay's 250 and the ``sent`` mark
resends exactly one message with the same Message-ID).
"""

from __future__ import annotations

import contextlib
import random
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select
from support.daemon import Daemon
from support.mail import make_mail
from support.servers import Sink

from mailbot.store.db import Store
from mailbot.store.models import InboundMessage, OutboxMessage, ThreadEntry, Ticket

pytestmark = pytest.mark.integration

MESSAGES = 500
CLIENTS = 4
MIN_KILLS = 10
KILLS = 12  # at random moments while the messages arrive
SEED = 20250304
PACE = 0.1  # seconds between one client's messages: the arrival spans the kills


class MtaClient(threading.Thread):
    """Delivers its messages one by one, retrying like an MTA until each gets a 250."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]], deadline: float) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.messages = messages
        self.deadline = deadline
        self.accepted: list[str] = []  # Message-IDs that got 250
        self.retries = 0
        self.error: str | None = None

    def run(self) -> None:
        client: smtplib.SMTP | None = None
        for message_id, raw in self.messages:
            sender = message_id.split("@")[0] + "@customer.example"
            while True:
                if time.monotonic() > self.deadline:
                    self.error = f"gave up on {message_id}"
                    return
                try:
                    if client is None:
                        client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                    client.sendmail(sender, ["support@example.com"], raw)
                    self.accepted.append(message_id)
                    break
                except smtplib.SMTPResponseException as exc:
                    if not 400 <= exc.smtp_code < 500:
                        self.error = f"{message_id}: {exc.smtp_code} {exc.smtp_error!r}"
                        return
                    client = self._drop(client)
                except (OSError, smtplib.SMTPException):  # refused, reset, disconnected
                    client = self._drop(client)
            time.sleep(PACE)
        if client is not None:
            self._drop(client)

    def _drop(self, client: smtplib.SMTP | None) -> None:
        """Forget a connection that failed; the message is sent again on a new one."""
        self.retries += 1
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()
        time.sleep(0.05)
        return None


def test_sigkill_during_arrival_loses_and_doubles_nothing(
    tmp_path: Path, make_config, sink: Sink
) -> None:  # type: ignore[no-untyped-def]
    path, config = make_config(
        {
            "worker": {"lease_seconds": 1.0, "poll_interval": 0.1},
            "outbound": {"lease_seconds": 1.0, "poll_interval": 0.1, "retry_max": 0.5},
            "acknowledgement": {"max_per_sender_per_hour": 1_000_000},
        }
    )
    port = config["intake"]["smtp"]["port"]
    daemon = Daemon(path, port, tmp_path / "daemon.log").start()
    rng = random.Random(SEED)
    ids = [f"crash{i:04d}@customer.example" for i in range(MESSAGES)]
    mails = [(mid, make_mail(f"Crash test {i}", message_id=mid)) for i, mid in enumerate(ids)]
    deadline = time.monotonic() + 120
    clients = [MtaClient(port, mails[i::CLIENTS], deadline) for i in range(CLIENTS)]
    for client in clients:
        client.start()

    kills = 0
    try:
        while kills < KILLS and any(c.is_alive() for c in clients):
            time.sleep(rng.uniform(0.2, 1.0))
            daemon.kill()  # SIGKILL, wherever it is: in DATA, mid-transaction, mid-delivery
            kills += 1
            daemon.start()
        for client in clients:
            client.join(timeout=60)
            assert client.error is None, client.error
        accepted = [mid for c in clients for mid in c.accepted]
        assert sorted(accepted) == sorted(ids)  # every message got its 250 in the end
        assert sum(c.retries for c in clients) > 0  # the kills did hit deliveries

        # Let the last daemon finish: every ticket acknowledged at the relay.
        store = Store.open(f"sqlite:///{tmp_path / 'mailbot.db'}")
        try:
            wait_until(lambda: acked(store, sink), timeout=60)
            daemon.stop()
            check_store(store, sink, accepted, kills)
        finally:
            store.dispose()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
    assert kills >= MIN_KILLS


def wait_until(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("the daemon did not finish its work in time")


def acked(store: Store, sink: Sink) -> bool:
    with store.transaction() as session:
        pending = session.execute(
            select(InboundMessage.id).where(InboundMessage.status == "pending")
        ).first()
        outbox = session.execute(
            select(OutboxMessage.id).where(OutboxMessage.status != "sent")
        ).first()
        tickets = len(list(session.execute(select(Ticket.id)).scalars()))
    return pending is None and outbox is None and tickets >= MESSAGES


def check_store(store: Store, sink: Sink, accepted: list[str], kills: int) -> None:
    with store.transaction() as session:
        entries = list(
            session.execute(select(ThreadEntry).where(ThreadEntry.direction == "inbound")).scalars()
        )
        tickets = list(session.execute(select(Ticket)).scalars())
        acks = list(
            session.execute(select(OutboxMessage).where(OutboxMessage.kind == "ack")).scalars()
        )
        inbound = list(session.execute(select(InboundMessage)).scalars())

    # Every message that got 250 is in exactly one ticket thread.
    per_message = Counter(e.message_id for e in entries)
    assert all(per_message[mid] == 1 for mid in accepted), per_message.most_common(3)
    assert set(per_message) == set(accepted)
    # No ticket twice: one ticket per message, each with exactly that one message.
    assert len(tickets) == len(accepted)
    assert sorted(Counter(e.ticket_id for e in entries).values()) == [1] * len(accepted)
    # Nothing quarantined or left behind; re-sent copies were recognised as duplicates.
    assert {row.status for row in inbound} <= {"done", "ignored"}
    duplicates = [row for row in inbound if row.status == "ignored"]
    assert all("duplicate" in (row.reason or "") for row in duplicates)
    # Every acknowledgement delivered at least once, duplicates no more than kills.
    assert len(acks) == len(accepted)
    received = Counter(m.message["Message-ID"].strip().strip("<>") for m in sink.received)
    assert all(received[ack.message_id] >= 1 for ack in acks)
    doubled = sum(n - 1 for n in received.values())
    assert doubled <= kills, f"{doubled} duplicate acknowledgements for {kills} kills"
