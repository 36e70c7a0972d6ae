"""Queries on the store.  Every function takes the session of the caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from mailbot.pipeline.threading_rules import TicketView
from mailbot.store.models import (
    InboundMessage,
    MessageRef,
    OutboxMessage,
    PageRecord,
    Participant,
    ThreadEntry,
    Ticket,
)
from mailbot.store.security import SecurityQueries, ticket_view

FIRST_TICKET_NUMBER = 1001


# ---------------------------------------------------------------- generic helpers


def insert_ignore(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(list(rows)).on_conflict_do_nothing())


def next_ticket_number(session: Session) -> int:
    """A new ticket number; unique by the ``ticket.number`` constraint in every case."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text("SELECT nextval('ticket_number_seq')")).scalar_one())
    # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so max+1 is safe.
    current = session.execute(select(func.max(Ticket.number))).scalar_one()
    return max(FIRST_TICKET_NUMBER, (current or 0) + 1)


# ---------------------------------------------------------------- inbound queue


def enqueue(
    session: Session,
    *,
    source: str,
    raw: bytes,
    now: datetime,
    mail_from: str | None = "",
    rcpt_to: Iterable[str] = (),
    send_ack: bool = True,
    origin: str | None = None,
) -> int:
    """Store raw bytes in the inbound queue; returns the row id.

    With an ``origin`` the insert is idempotent: when a row with that origin already
    exists (a crash between commit and IMAP move, or two daemons on one mailbox), nothing
    is inserted and the existing row's id is returned.
    """
    values = {
        "received_at": now,
        "source": source,
        "mail_from": mail_from,
        "rcpt_to": ",".join(rcpt_to),
        "raw": raw,
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
        "send_ack": send_ack,
        "origin": origin,
    }
    if origin is None:
        row = InboundMessage(**values)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id
    insert_ignore(session, InboundMessage, [values])
    existing = inbound_id_by_origin(session, origin)
    assert existing is not None
    return existing


def inbound_id_by_origin(session: Session, origin: str) -> int | None:
    query = select(InboundMessage.id).where(InboundMessage.origin == origin).limit(1)
    return session.execute(query).scalars().first()


def inbound_id_by_sha256(session: Session, raw_sha256: str) -> int | None:
    query = (
        select(InboundMessage.id)
        .where(InboundMessage.raw_sha256 == raw_sha256)
        .order_by(col(InboundMessage.id))
        .limit(1)
    )
    return session.execute(query).scalars().first()


def claim_inbound(session: Session, now: datetime, lease: float, limit: int) -> list[int]:
    """Lease up to ``limit`` pending messages (SKIP LOCKED where the database has it)."""
    query = (
        select(InboundMessage.id)
        .where(InboundMessage.status == "pending")
        .where(or_(col(InboundMessage.claimed_until).is_(None), InboundMessage.claimed_until < now))
        .order_by(col(InboundMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [int(i) for i in session.execute(query).scalars()]
    if ids:
        session.execute(
            update(InboundMessage)
            .where(col(InboundMessage.id).in_(ids))
            .values(claimed_until=now + timedelta(seconds=lease))
        )
    return ids


def release_for_retry(session: Session, inbound_id: int, until: datetime, reason: str) -> None:
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .values(claimed_until=until, attempts=InboundMessage.attempts + 1, reason=reason)
    )


def mark_quarantined(session: Session, inbound_id: int, now: datetime, reason: str) -> None:
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .values(
            status="quarantined",
            outcome="quarantined",
            reason=reason,
            processed_at=now,
            claimed_until=None,
            attempts=InboundMessage.attempts + 1,
        )
    )


def pending_inbound_count(session: Session) -> int:
    query = select(func.count()).where(InboundMessage.status == "pending")
    return int(session.execute(query).scalar_one())


# ---------------------------------------------------------------- the decision core's lookup


class RepoLookup(SecurityQueries):  # + bounces, suppression, per-ticket cap (store/security.py)
    """``TicketLookup`` backed by the caller's transaction."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now

    def is_duplicate(self, dedup_key: str) -> bool:
        query = select(ThreadEntry.id).where(ThreadEntry.dedup_key == dedup_key).limit(1)
        return self.session.execute(query).first() is not None

    def ticket_by_number(self, number: int) -> TicketView | None:
        query = select(Ticket).where(Ticket.number == number)
        return ticket_view(self.session.execute(query).scalars().first())

    def ticket_by_message_ids(self, message_ids: Iterable[str]) -> TicketView | None:
        ids = list(message_ids)
        if not ids:
            return None
        query = select(MessageRef).where(col(MessageRef.message_id).in_(ids))
        refs = {r.message_id: r.ticket_id for r in self.session.execute(query).scalars()}
        for mid in ids:  # honour the caller's order: the most direct parent first
            if mid in refs:
                return ticket_view(self.session.get(Ticket, refs[mid]))
        return None

    def is_participant(self, ticket_id: int, address: str | None) -> bool:
        """Whether ``address`` (any case) takes part in the ticket: requester, Cc'd or staff."""
        if not address:
            return False
        query = (
            select(Participant.id)
            .where(Participant.ticket_id == ticket_id)
            .where(Participant.address == address.strip().lower())
            .limit(1)
        )
        return self.session.execute(query).first() is not None

    def acks_sent_since(self, address: str, seconds: float) -> int:
        since = self.now - timedelta(seconds=seconds)
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "ack")
            .where(OutboxMessage.recipient == address)
            .where(OutboxMessage.created_at >= since)
        )
        return int(self.session.execute(query).scalar_one())

    def pages_caused_since(self, sender: str, seconds: float) -> int:
        since = self.now - timedelta(seconds=seconds)
        query = (
            select(func.count())
            .select_from(PageRecord)
            .where(PageRecord.sender == sender)
            .where(PageRecord.created_at >= since)
        )
        return int(self.session.execute(query).scalar_one())


# ---------------------------------------------------------------- outbox


def claim_outbox(session: Session, now: datetime, lease: float, limit: int) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending")
        .where(OutboxMessage.next_attempt_at <= now)
        .where(or_(col(OutboxMessage.claimed_until).is_(None), OutboxMessage.claimed_until < now))
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.execute(query).scalars())
    if rows:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_([r.id for r in rows]))
            .values(claimed_until=now + timedelta(seconds=lease))
        )
    return rows


def new_outbox_row(
    *,
    kind: str,
    ticket_id: int | None,
    message_id: str,
    envelope_from: str,
    recipients: Sequence[str],
    payload: bytes,
    now: datetime,
    channel: str = "mail",
) -> OutboxMessage:
    """An outbox row due now; the first recipient is kept apart for rate limits."""
    return OutboxMessage(
        kind=kind,
        channel=channel,
        ticket_id=ticket_id,
        message_id=message_id,
        envelope_from=envelope_from,
        recipient=recipients[0],
        recipients=",".join(recipients),
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )


def mark_outbox(session: Session, outbox_id: int, **values: Any) -> None:
    session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(**values))


def next_outbox_due(session: Session) -> datetime | None:
    query = select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == "pending")
    return session.execute(query).scalar_one()


# ---------------------------------------------------------------- reading tickets


def tickets_with_counts(session: Session) -> list[tuple[Ticket, int]]:
    counts = (
        select(ThreadEntry.ticket_id, func.count().label("n"))
        .group_by(col(ThreadEntry.ticket_id))
        .subquery()
    )
    query = (
        select(Ticket, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.ticket_id == Ticket.id)
        .order_by(col(Ticket.number))
    )
    return [(t, int(n)) for t, n in session.execute(query).all()]


def ticket_by_number(session: Session, number: int) -> Ticket | None:
    return session.execute(select(Ticket).where(Ticket.number == number)).scalars().first()


def thread_of(session: Session, ticket_id: int) -> list[ThreadEntry]:
    query = (
        select(ThreadEntry)
        .where(ThreadEntry.ticket_id == ticket_id)
        .order_by(col(ThreadEntry.created_at), col(ThreadEntry.id))
    )
    return list(session.execute(query).scalars())
