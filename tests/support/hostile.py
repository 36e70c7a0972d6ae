"""An in-process mailbot on a temp SQLite file for the hostile-mail tests (issue 5).

The real pipeline (store → worker → apply → outbox → sender to a real SMTP sink), an
injected clock, and small readers for what happened to each message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from mailbot.app import Application
from mailbot.config import load_settings
from mailbot.store.models import InboundMessage, OutboxMessage, ThreadEntry, Ticket
from support.daemon import base_config, merge, write_config
from support.servers import Sink, free_port

OUTCOMES = frozenset({"created", "appended", "ignored", "quarantined"})


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 3, 4, 17, 0)  # a Tuesday, naive UTC

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Result:
    """What became of one delivered message."""

    inbound_id: int
    outcome: str  # created | appended | ignored | quarantined
    reason: str
    ticket: int | None  # ticket number
    acks: tuple[OutboxMessage, ...]  # acknowledgements queued by this message

    @property
    def acked(self) -> bool:
        return bool(self.acks)


class Harness:
    def __init__(
        self, tmp_path: Path, sink: Sink, overrides: dict | None = None, clock: Clock | None = None
    ) -> None:
        config = merge(base_config(tmp_path, free_port(), sink.port), overrides or {})
        self.config = config
        self.config_path = write_config(tmp_path, config)
        self.clock = clock or Clock()
        self.app = Application(load_settings(self.config_path), clock=self.clock)
        self.sink = sink

    def close(self) -> None:
        self.app.store.dispose()

    def deliver(
        self, raw: bytes, mail_from: str = "sender@customer.example", send: bool = True
    ) -> Result:
        """Store, process (and by default send) one message; what became of it."""
        before = self._max_outbox_id()
        inbound_id = self.app.store_raw_sync("test", mail_from, ["support@example.com"], raw)
        if send:
            self.app.drain()
        else:
            while self.app.worker.process_batch():
                pass
        with self.app.store.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            assert row is not None
            number = None
            if row.ticket_id is not None:
                found = session.get(Ticket, row.ticket_id)
                number = found.number if found else None
            query = (
                select(OutboxMessage)
                .where(OutboxMessage.kind == "ack")
                .where(col(OutboxMessage.id) > before)
                .order_by(col(OutboxMessage.id))
            )
            acks = tuple(session.execute(query).scalars())
            for ack in acks:
                session.expunge(ack)
            return Result(inbound_id, row.outcome or row.status, row.reason or "", number, acks)

    def _max_outbox_id(self) -> int:
        with self.app.store.transaction() as session:
            query = select(OutboxMessage.id).order_by(col(OutboxMessage.id).desc()).limit(1)
            return session.execute(query).scalars().first() or 0

    def thread(self, number: int) -> list[ThreadEntry]:
        with self.app.store.transaction() as session:
            ticket = session.execute(select(Ticket).where(Ticket.number == number)).scalars().one()
            query = (
                select(ThreadEntry)
                .where(ThreadEntry.ticket_id == ticket.id)
                .order_by(col(ThreadEntry.id))
            )
            entries = list(session.execute(query).scalars())
            for entry in entries:
                session.expunge(entry)
            return entries

    def ticket(self, number: int) -> Ticket:
        with self.app.store.transaction() as session:
            found = session.execute(select(Ticket).where(Ticket.number == number)).scalars().one()
            session.expunge(found)
            return found

    def tickets(self) -> list[Ticket]:
        with self.app.store.transaction() as session:
            found = list(session.execute(select(Ticket).order_by(col(Ticket.number))).scalars())
            for ticket in found:
                session.expunge(ticket)
            return found

    def outbox(self, kind: str | None = None) -> list[OutboxMessage]:
        with self.app.store.transaction() as session:
            query = select(OutboxMessage).order_by(col(OutboxMessage.id))
            if kind is not None:
                query = query.where(OutboxMessage.kind == kind)
            rows = list(session.execute(query).scalars())
            for row in rows:
                session.expunge(row)
            return rows
