"""Queries on the store.  Every function takes the session of the caller's transaction."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import DateTime, Integer, Select, bindparam, func, or_, update
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, SQLModel, col, select

from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import TicketView
from mailbot.store.direct import direct, direct_insert
from mailbot.store.models import (
    InboundMessage,
    MessageRef,
    OutboxMessage,
    PageRecord,
    Participant,
    ThreadEntry,
    Ticket,
)
from mailbot.store.security import SecurityQueries
from mailbot.store.upsert import insert_ignoring_conflicts, returning_id_insert

if TYPE_CHECKING:  # it reads through this module
    from mailbot.store.chunk_facts import ChunkFacts

FIRST_TICKET_NUMBER = 1001
_IMMUTABLE_DEFAULTS = (type(None), bool, int, float, str, bytes, datetime)

# Statements on the worker's hot path, built once and run on the session's connection
# with parameters: building a statement and going through the ORM's execute cost five
# times as much as running it (about 100 µs against 20 µs each, some 15 per message).
_HIGHEST_NUMBER = select(func.max(Ticket.number))
_TICKET_FROM_SEQUENCE = (
    Ticket.__table__.insert()  # type: ignore[attr-defined]
    .values(number=func.nextval("ticket_number_seq"))
    .returning(Ticket.__table__.c.id, Ticket.__table__.c.number)  # type: ignore[attr-defined]
)
_INBOUND_STATUS = (
    select(InboundMessage.status)
    .where(col(InboundMessage.id) == bindparam("inbound_id"))
    .with_for_update()
)


def _not_leased(model: type[InboundMessage] | type[OutboxMessage]) -> Any:
    """A queue row nobody holds: never leased, or its lease (``claimed_until``) ran out."""
    return or_(col(model.claimed_until).is_(None), col(model.claimed_until) < bindparam("now"))


def _claim(model: type[InboundMessage] | type[OutboxMessage], *due: Any, order: Any) -> Any:
    """Lease up to ``limit`` rows nobody holds, in ``order``, in one statement.

    One statement, so that PostgreSQL runs it as its own transaction (one round trip
    instead of BEGIN, SELECT, UPDATE and COMMIT).  The rows are picked in a materialized
    CTE: with ``IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)`` the planner may run the
    subquery more than once and lease more than ``limit`` rows.  RETURNING gives the
    rows in no particular order: the caller sorts them.
    """
    picked = (
        select(model.id)
        .where(model.status == "pending", _not_leased(model), *due)
        .order_by(*order)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    return (
        update(model)
        .where(col(model.id).in_(select(picked.c.id)))
        .values(claimed_until=bindparam("until"))
    )


_CLAIM_INBOUND = _claim(InboundMessage, order=[col(InboundMessage.id)]).returning(
    InboundMessage.id, InboundMessage.size
)
# With each row's ticket number, for the sender's log lines.
_CLAIM_OUTBOX = _claim(
    OutboxMessage,
    col(OutboxMessage.next_attempt_at) <= bindparam("now"),
    order=[col(OutboxMessage.next_attempt_at), col(OutboxMessage.id)],
).returning(
    *OutboxMessage.__table__.columns,  # type: ignore[attr-defined]
    select(Ticket.number)
    .where(col(Ticket.id) == col(OutboxMessage.ticket_id))
    .scalar_subquery()
    .label("ticket_number"),
)
_DEDUP_KEY_SEEN = select(ThreadEntry.id).where(ThreadEntry.dedup_key == bindparam("key")).limit(1)
_REFS_OF = select(MessageRef.message_id, MessageRef.ticket_id).where(
    col(MessageRef.message_id).in_(bindparam("ids", expanding=True))
)
_TICKET_VIEW_COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.status,
    Ticket.severity,
    Ticket.requester,
)
_HIGHEST_INBOUND_ID = select(func.max(InboundMessage.id))
_TICKET_VIEW_BY_ID = select(*_TICKET_VIEW_COLUMNS).where(Ticket.id == bindparam("ticket_id"))
_TICKET_VIEW_BY_NUMBER = select(*_TICKET_VIEW_COLUMNS).where(Ticket.number == bindparam("number"))
_IS_PARTICIPANT = (
    select(Participant.id)
    .where(Participant.ticket_id == bindparam("ticket_id"))
    .where(Participant.address == bindparam("address"))
    .limit(1)
)
_ACKS_TO_SINCE = (
    select(func.count())
    .select_from(OutboxMessage)
    .where(OutboxMessage.kind == "ack")
    .where(OutboxMessage.recipient == bindparam("address"))
    .where(OutboxMessage.created_at >= bindparam("since"))
)


# ---------------------------------------------------------------- generic helpers


def insert_ignore(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    # One statement for any number of rows (executemany), built and compiled once.
    statement = insert_ignoring_conflicts(connection.dialect.name, table)
    direct(statement, tuple(rows[0])).executemany(connection, rows)


def insert_numbered_ticket(
    session: Session, values: dict[str, Any], facts: ChunkFacts | None = None
) -> tuple[int, int]:
    """INSERT a ticket (every column but ``id`` and ``number``) with a new number:
    (id, number).  The number is unique by the ``ticket.number`` constraint in every case.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":  # the sequence, in the INSERT itself
        inserted = connection.execute(_TICKET_FROM_SEQUENCE, values).one()
        return int(inserted[0]), int(inserted[1])

    # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so max+1 is safe.
    def highest() -> int:
        current = connection.execute(_HIGHEST_NUMBER).scalar_one()
        return max(FIRST_TICKET_NUMBER - 1, current or 0)

    number = highest() + 1 if facts is None else facts.counted_number(highest)
    return insert_returning_id(session, Ticket, {**values, "number": number}), number


# ---------------------------------------------------------------- inbound queue

# The lease a new or released inbound row carries: long run out, so the row is free to
# claim (``_not_leased``), and the same size as the lease a claim writes.  On SQLite an
# UPDATE that keeps a row's size rewrites only the page with the changed bytes; one that
# changes it (NULL to a time) rewrites the whole row with its raw mail: a claim of 200
# messages of 13 KB wrote 2.7 MB to the WAL with NULL, 0.8 MB with this, in half the CPU.
EXPIRED_LEASE = datetime(1970, 1, 1)


def inbound_values(
    *,
    source: str,
    raw: bytes,
    now: datetime,
    mail_from: str | None = "",
    rcpt_to: Iterable[str] = (),
    send_ack: bool = True,
    origin: str | None = None,
    raw_sha256: str | None = None,
    claimed_until: datetime | None = None,
) -> dict[str, Any]:
    """Every column of a new inbound row (a Core insert has no model defaults)."""
    return {
        "received_at": now,
        "source": source,
        "mail_from": mail_from,
        "rcpt_to": ",".join(rcpt_to),
        "raw": raw,
        "raw_sha256": raw_sha256 or hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
        "send_ack": send_ack,
        "origin": origin,
        "status": "pending",
        "attempts": 0,
        "claimed_until": EXPIRED_LEASE if claimed_until is None else claimed_until,
    }


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
    values = inbound_values(
        source=source,
        raw=raw,
        now=now,
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        send_ack=send_ack,
        origin=origin,
    )
    if origin is None:
        return insert_returning_id(session, InboundMessage, values)
    insert_ignore(session, InboundMessage, [values])
    existing = inbound_id_by_origin(session, origin)
    assert existing is not None
    return existing


def enqueue_many(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store many inbound rows (``inbound_values``, no origin) in one statement; returns
    their ids in the order given."""
    if not rows:
        return []
    if len(rows) == 1:  # the plain INSERT: the ordered many-row form costs more for one
        return [insert_returning_id(session, InboundMessage, rows[0])]
    table = InboundMessage.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # The transaction holds the write lock (BEGIN IMMEDIATE): the ids after the
        # highest are this INSERT's, given explicitly (SQLite would choose the same), and
        # the rows go in one executemany.  SQLAlchemy's ordered RETURNING form ran one
        # INSERT per row here.
        first = (connection.execute(_HIGHEST_INBOUND_ID).scalar() or 0) + 1
        ids = list(range(first, first + len(rows)))
        numbered = [{"id": inbound_id, **row} for inbound_id, row in zip(ids, rows, strict=True)]
        direct_insert(table, tuple(numbered[0])).executemany(connection, numbered)
        return ids
    statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    result = connection.execute(statement, list(rows))
    return [int(inbound_id) for inbound_id in result.scalars()]


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
    return [inbound_id for inbound_id, _ in claim_inbound_sized(session, now, lease, limit)]


def claim_inbound_sized(
    session: Session, now: datetime, lease: float, limit: int
) -> list[tuple[int, int]]:
    """``claim_inbound`` with each message's size: (id, bytes) in queue order.

    One statement (see ``_claim``): the caller may run it as ``single_statement``.
    """
    until = now + timedelta(seconds=lease)
    found = session.connection().execute(
        _CLAIM_INBOUND, {"now": now, "limit": limit, "until": until}
    )
    return sorted((int(inbound_id), int(size or 0)) for inbound_id, size in found)


def release_claims(session: Session, ids: list[int]) -> None:
    """Give pending messages back to the queue before their lease runs out (their worker
    died with them)."""
    session.execute(
        update(InboundMessage)
        .where(col(InboundMessage.id).in_(ids))
        .where(InboundMessage.status == "pending")
        .values(claimed_until=EXPIRED_LEASE)
    )


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


def tickets_of_message_ids(session: Session, message_ids: list[str]) -> dict[str, int]:
    """The ticket of each of these Message-IDs that one knows (message_ref)."""
    found = session.connection().execute(_REFS_OF, {"ids": message_ids})
    return {message_id: ticket_id for message_id, ticket_id in found}


class RepoLookup(SecurityQueries):  # + bounces, suppression, per-ticket cap (store/security.py)
    """``TicketLookup`` backed by the caller's transaction."""

    def __init__(self, session: Session, now: datetime, facts: ChunkFacts | None = None) -> None:
        self.session = session
        self.now = now
        self.facts = facts
        self._duplicates: dict[str, bool] = {}  # screen and decide both ask; one query

    def is_duplicate(self, dedup_key: str) -> bool:
        if self.facts is not None and self.facts.knows_key(dedup_key):
            return self.facts.has_entry(dedup_key)
        if dedup_key not in self._duplicates:
            found = self.session.connection().execute(_DEDUP_KEY_SEEN, {"key": dedup_key})
            self._duplicates[dedup_key] = found.first() is not None
        return self._duplicates[dedup_key]

    def ticket_by_number(self, number: int) -> TicketView | None:
        return self._ticket_view(_TICKET_VIEW_BY_NUMBER, {"number": number})

    def ticket_by_id(self, ticket_id: int) -> TicketView | None:
        return self._ticket_view(_TICKET_VIEW_BY_ID, {"ticket_id": ticket_id})

    def _ticket_view(self, query: Select[Any], values: dict[str, int]) -> TicketView | None:
        self.session.flush()  # as an ORM query would: this transaction's changes count
        row = direct(query).execute(self.session.connection(), values).first()
        if row is None:
            return None
        return TicketView(
            id=row["id"],
            number=row["number"],
            status=row["status"],
            severity=Severity(row["severity"]),
            requester=row["requester"],
        )

    def ticket_by_message_ids(self, message_ids: Iterable[str]) -> TicketView | None:
        ids = list(message_ids)
        if not ids:
            return None
        if self.facts is not None and self.facts.knows_message_ids(ids):
            refs = self.facts.ticket_ids(ids)
        else:
            refs = tickets_of_message_ids(self.session, ids)
        for mid in ids:  # honour the caller's order: the most direct parent first
            if mid in refs:
                return self.ticket_by_id(refs[mid])
        return None

    def is_suppressed(self, address: str) -> bool:
        lowered = address.strip().lower()
        if self.facts is not None and self.facts.knows_suppression(lowered):
            return self.facts.is_suppressed(lowered)
        return super().is_suppressed(address)

    def is_participant(self, ticket_id: int, address: str | None) -> bool:
        """Whether ``address`` (any case) takes part in the ticket: requester, Cc'd or staff."""
        if not address:
            return False
        lowered = address.strip().lower()
        if self.facts is not None and self.facts.added_participant(ticket_id, lowered):
            return True
        values = {"ticket_id": ticket_id, "address": lowered}
        return self.session.connection().execute(_IS_PARTICIPANT, values).first() is not None

    def acks_sent_since(self, address: str, seconds: float) -> int:
        since = self.now - timedelta(seconds=seconds)
        if self.facts is not None and self.facts.knows_acks_to(address, since):
            return self.facts.acks_to(address)
        values = {"address": address, "since": since}
        return int(self.session.connection().execute(_ACKS_TO_SINCE, values).scalar_one())

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
    """Lease up to ``limit`` rows due now (SKIP LOCKED where the database has it), as
    detached rows in the order they fell due."""
    return [row for row, _ in claim_outbox_numbered(session, now, lease, limit)]


def claim_outbox_numbered(
    session: Session, now: datetime, lease: float, limit: int
) -> list[tuple[OutboxMessage, int | None]]:
    """``claim_outbox`` with each row's ticket number (None: no ticket), in one
    statement (see ``_claim``): the caller may run it as ``single_statement``."""
    until = now + timedelta(seconds=lease)
    found = session.connection().execute(
        _CLAIM_OUTBOX, {"now": now, "limit": limit, "until": until}
    )
    claimed = []
    for values in found.mappings():
        fields = dict(values)
        number = fields.pop("ticket_number")
        claimed.append((detached_row(OutboxMessage, fields), number))
    claimed.sort(key=lambda item: (item[0].next_attempt_at, item[0].id))
    return claimed


def outbox_values(
    *,
    kind: str,
    ticket_id: int | None,
    message_id: str,
    envelope_from: str,
    recipients: Sequence[str],
    payload: bytes,
    now: datetime,
    channel: str = "mail",
) -> dict[str, Any]:
    """The columns of an outbox row due now; the first recipient is kept apart for rate
    limits."""
    return {
        "kind": kind,
        "channel": channel,
        "ticket_id": ticket_id,
        "message_id": message_id,
        "envelope_from": envelope_from,
        "recipient": recipients[0],
        "recipients": ",".join(recipients),
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


RowT = TypeVar("RowT", bound=SQLModel)


def detached_row(model: type[RowT], values: dict[str, Any]) -> RowT:
    """An ORM object holding ``values`` (and the model's defaults for the rest), built
    without pydantic validation or attribute events: a sixth of ``Model(**values)``.

    For rows written (or about to be written) with a Core insert, or read with a Core
    select; attach one to a session with ``make_transient_to_detached`` once its id is
    set.
    """
    if not model.__mapper__.configured:  # type: ignore[attr-defined]
        # Before it, attributes don't work.  Not called every time: it walks every
        # registry of mappers (a tenth of this function's cost when it has nothing to do).
        configure_mappers()
    instance = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    plain, made = _defaults(model)
    data = {**plain, **{name: field.get_default(call_default_factory=True) for name, field in made}}
    data.update(values)
    instance.__dict__.update(data)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance  # type: ignore[no-any-return]


@functools.cache
def _defaults(model: type[SQLModel]) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """The model's defaults that are plain immutable values, read once (per row they
    were a third of ``detached_row``'s cost), and the fields whose default is made anew
    for each row (a ``default_factory``, or a value pydantic copies)."""
    optional = [(name, f) for name, f in model.model_fields.items() if not f.is_required()]
    plain = {
        name: f.default
        for name, f in optional
        if f.default_factory is None and isinstance(f.default, _IMMUTABLE_DEFAULTS)
    }
    made = tuple((name, f) for name, f in optional if name not in plain)
    return plain, made


def insert_returning_id(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int:
    """INSERT one row (every NOT NULL column given) and return its id.

    On the session's connection, without the ORM's unit of work (``add`` + ``flush``),
    which cost as much again as the statement on the worker's hot path.
    """
    table = model.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return direct_insert(table, tuple(values)).execute(connection, values).lastrowid
    return int(connection.execute(returning_id_insert(table), values).scalar_one())


def inbound_status(session: Session, inbound_id: int) -> str | None:
    """The message's status, its row locked for the transaction (FOR UPDATE)."""
    found = session.connection().execute(_INBOUND_STATUS, {"inbound_id": inbound_id})
    return found.scalar_one_or_none()


def mark_outbox(session: Session, outbox_id: int, **values: Any) -> None:
    # On the connection: no ORM objects of the row to keep in step (cheaper by half).
    statement = update(OutboxMessage).where(col(OutboxMessage.id) == outbox_id).values(**values)
    session.connection().execute(statement)


# Built once: building it cost as much as running it, inside the sender's transaction.
_MARK_OUTBOX_SENT = (
    update(OutboxMessage)
    .where(col(OutboxMessage.id) == bindparam("row_id"))
    .where(col(OutboxMessage.message_id) == bindparam("row_message_id"))
    .where(OutboxMessage.status == "pending")
    .values(
        status="sent",
        attempts=func.coalesce(
            bindparam("row_attempts", type_=Integer), OutboxMessage.attempts + 1
        ),
        sent_at=bindparam("row_sent_at", type_=DateTime),
        claimed_until=None,
        last_error=None,
    )
)


def mark_outbox_sent(
    session: Session, delivered: Sequence[tuple[int, str, int | None, datetime]]
) -> int:
    """Mark delivered rows sent: (id, Message-ID, attempts or None for one more, when).

    A row is marked only while it is pending and still has that Message-ID (ids can be
    reused after rows are deleted); returns how many were marked.
    """
    params = [
        {"row_id": i, "row_message_id": mid, "row_attempts": attempts, "row_sent_at": at}
        for i, mid, attempts, at in delivered
    ]
    return session.connection().execute(_MARK_OUTBOX_SENT, params).rowcount


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
