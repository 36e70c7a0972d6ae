"""The sender's journal (mailbot/outbound/sent_journal.py) against a real relay and a
real process kill: a batch is marked sent in one transaction at its end, and a sender
killed before that mark loses nothing and resends nothing it had delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, insert
from sqlmodel import select
from support.servers import Sink, SinkHandler

from mailbot.outbound.sender import RetryPolicy, Sender
from mailbot.outbound.sent_journal import SentJournal
from mailbot.outbound.transports import SmtpTransport
from mailbot.store.db import Store
from mailbot.store.models import OutboxMessage
from mailbot.store.repo import outbox_values

pytestmark = pytest.mark.integration

ROWS = 20
DELIVERED_BEFORE_KILL = 5
LEASE = 1.0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _queue_acks(store: Store, count: int) -> list[str]:
    ids = [f"ack-{n}@support.example" for n in range(count)]
    with store.transaction() as session:
        for message_id in ids:
            payload = f"Message-ID: <{message_id}>\r\nSubject: ack\r\n\r\nthanks\r\n".encode()
            values = outbox_values(
                kind="ack",
                ticket_id=None,
                message_id=message_id,
                envelope_from="support@example.com",
                recipients=["customer@example.net"],
                payload=payload,
                now=_now(),
            )
            session.connection().execute(insert(OutboxMessage).values(**values))
    return ids


def _sender(store: Store, port: int, lease: float = LEASE) -> Sender:
    return Sender(
        store=store,
        transports={"mail": lambda: SmtpTransport("127.0.0.1", port, timeout=5.0)},
        clock=_now,
        retry=RetryPolicy(),
        lease_seconds=lease,
        journal=SentJournal.beside(store.engine.url.database),
    )


def _delivered_ids(sink: Sink) -> Counter[str]:
    return Counter(r.message.get("Message-ID", "").strip("<>") for r in sink.received)


class StallingHandler(SinkHandler):
    """Accepts the first ``accept`` messages, then holds the next one until released and
    refuses it: the sender is then stuck mid-batch, after deliveries it has not marked."""

    def __init__(self, accept: int) -> None:
        super().__init__()
        self.accept = accept
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        if len(self.received) >= self.accept and not self.release.is_set():
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 the sender was killed meanwhile"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store.open(f"sqlite:///{tmp_path / 'mailbot.db'}")
    yield made
    made.dispose()


CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from mailbot.outbound.sender import RetryPolicy, Sender
    from mailbot.outbound.sent_journal import SentJournal
    from mailbot.outbound.transports import SmtpTransport
    from mailbot.store.db import Store

    url, port, lease = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = Store.open(url)
    sender = Sender(
        store=store,
        transports={"mail": lambda: SmtpTransport("127.0.0.1", port, timeout=60.0)},
        clock=lambda: datetime.now(UTC).replace(tzinfo=None),
        retry=RetryPolicy(),
        lease_seconds=lease,
        journal=SentJournal.beside(store.engine.url.database),
    )
    sender.send_due()
    """
)


def test_a_sender_killed_mid_batch_resends_nothing_it_had_delivered(
    store: Store, tmp_path: Path
) -> None:
    ids = _queue_acks(store, ROWS)
    handler = StallingHandler(accept=DELIVERED_BEFORE_KILL)
    sink = Sink()
    sink.handler = handler
    sink.start()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store.engine.url), str(sink.port), str(LEASE)]
    )
    try:
        assert handler.stalled.wait(30), "the sender never reached the stalled delivery"
        os.kill(child.pid, signal.SIGKILL)  # mid-batch: 5 delivered, none marked sent
        assert child.wait(10) == -signal.SIGKILL
        handler.release.set()
        with store.read() as session:
            statuses = Counter(session.exec(select(OutboxMessage.status)).all())
        assert statuses == {"pending": ROWS}  # the kill came before the batch's mark
        journals = list(tmp_path.glob("mailbot.db-sent.*.journal"))
        assert len(journals) == 1
        assert len(journals[0].read_text().splitlines()) == DELIVERED_BEFORE_KILL

        time.sleep(LEASE + 0.2)  # the dead sender's claims run out
        recovering = _sender(store, sink.port)
        while recovering.send_due():
            pass
        recovering.stop()
    finally:
        if child.poll() is None:
            child.kill()
        handler.release.set()
        sink.stop()

    delivered = _delivered_ids(sink)
    assert set(delivered) == set(ids)
    assert [mid for mid, n in delivered.items() if n > 1] == []  # nothing delivered twice
    with store.read() as session:
        rows = session.exec(select(OutboxMessage)).all()
    assert {r.status for r in rows} == {"sent"}
    assert all(r.sent_at is not None and r.claimed_until is None for r in rows)
    assert list(tmp_path.glob("mailbot.db-sent.*")) == []  # read and removed


def test_a_batch_is_marked_sent_with_the_next_claim(store: Store) -> None:
    ids = _queue_acks(store, ROWS)
    sink = Sink()
    sink.start()
    writes: list[str] = []

    def _count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("BEGIN IMMEDIATE"):
            writes.append(statement)

    for engine in (store.engine, store.lazy_engine):  # durable and lazy transactions
        event.listen(engine, "before_cursor_execute", _count)

    try:
        sender = _sender(store, sink.port, lease=120.0)
        assert sender.send_due() == ROWS
        assert sender.send_due() == 0
        sender.stop()
    finally:
        sink.stop()
    assert sorted(_delivered_ids(sink)) == sorted(ids)
    with store.read() as session:
        assert set(session.exec(select(OutboxMessage.status)).all()) == {"sent"}
    # The claim, then the next call's claim, which also marks the batch sent: two write
    # transactions for twenty deliveries.
    assert len(writes) == 2
    assert sender.journal is not None and sender.journal.path is None  # removed at stop


def test_a_living_senders_journal_is_not_taken(store: Store, tmp_path: Path) -> None:
    database = Path(str(store.engine.url.database))
    alive = SentJournal(database)
    alive.record(7, "ack-7@support.example")
    other = SentJournal(database)
    assert list(other.orphans()) == []  # locked by its living owner
    alive_path = alive.path
    assert alive_path is not None and alive_path.read_text() == "7 ack-7@support.example\n"
    alive.clear()
    alive.close()
    assert not alive_path.exists()


def test_a_dead_senders_line_marks_only_the_row_with_its_message_id(
    store: Store, tmp_path: Path
) -> None:
    """Row ids can be reused after rows are deleted: a line names its Message-ID too."""
    first, second = _queue_acks(store, 2)
    orphan = tmp_path / "mailbot.db-sent.dead1234.journal"  # nobody holds its lock
    orphan.write_text(f"1 reused-id@support.example\n2 {second}\n3 torn")
    sink = Sink()
    sink.start()
    try:
        sender = _sender(store, sink.port)
        assert sender.send_due() == 1  # the second row is not sent again
        sender.stop()
    finally:
        sink.stop()
    assert list(_delivered_ids(sink)) == [first]
    with store.read() as session:
        assert set(session.exec(select(OutboxMessage.status)).all()) == {"sent"}
    assert not orphan.exists()
