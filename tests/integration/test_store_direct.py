"""Statements run on SQLite's own cursor (mailbot/store/direct.py) store and return what
SQLAlchemy's execution would, raise its errors and are seen by its listeners; on
PostgreSQL they run through SQLAlchemy as before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import bindparam, event, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from support.mail import make_mail

from mailbot.store.db import Store
from mailbot.store.direct import direct, direct_insert
from mailbot.store.models import InboundMessage, Ticket
from mailbot.store.repo import enqueue_many, inbound_values

pytestmark = pytest.mark.integration

WHEN = datetime(2025, 11, 27, 12, 0)  # no microseconds: SQLAlchemy still stores ".000000"
TICKET = Ticket.__table__  # type: ignore[attr-defined]
TOUCH = (
    update(Ticket)
    .where(col(Ticket.id) == bindparam("ticket_id"))
    .values(updated_at=bindparam("now"), requester=None)  # None: a value fixed in the statement
    .returning(TICKET.c.id, TICKET.c.updated_at, TICKET.c.requester)
)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url, busy_timeout=30.0)
    yield opened
    opened.dispose()


def ticket_values(number: int) -> dict:
    return {
        "number": number,
        "subject": f"ticket {number}",
        "severity": 2,
        "status": "open",
        "requester": "a@customer.example",
        "created_at": WHEN,
        "updated_at": WHEN,
        "first_response_due": None,
        "first_response_at": None,
        "next_update_due": None,
        "resolved_at": None,
        "page_status": None,
        "emergency_unauthorised": False,
    }


def stored_text(store: Store, number: int) -> tuple:
    """The row as the database holds it (times as stored, not as read back)."""
    query = text(
        "SELECT CAST(created_at AS TEXT), emergency_unauthorised, requester "
        "FROM ticket WHERE number = :n"
    )
    with store.read() as session:
        return tuple(session.execute(query, {"n": number}).one())


def test_a_row_written_directly_is_stored_as_sqlalchemy_stores_it(store: Store) -> None:
    with store.transaction() as session:
        connection = session.connection()
        connection.execute(TICKET.insert(), ticket_values(1001))
        direct_insert(TICKET, tuple(ticket_values(1002))).execute(connection, ticket_values(1002))
    assert stored_text(store, 1002) == stored_text(store, 1001)


def test_returned_values_come_back_typed_and_fixed_values_are_bound(store: Store) -> None:
    later = datetime(2025, 11, 28, 9, 30, 0, 5)
    with store.transaction() as session:
        connection = session.connection()
        direct_insert(TICKET, tuple(ticket_values(1001))).executemany(
            connection, [ticket_values(1001)]
        )
        ticket_id = connection.execute(select(Ticket.id)).scalar_one()
        row = direct(TOUCH).execute(connection, {"ticket_id": ticket_id, "now": later}).first()
        missing = direct(TOUCH).execute(connection, {"ticket_id": -1, "now": later}).first()
    assert row == {"id": ticket_id, "updated_at": later, "requester": None}
    assert missing is None


def test_a_unique_key_refused_is_sqlalchemys_integrity_error(store: Store) -> None:
    """The worker turns exactly this error into "a twin was committed meanwhile"."""
    insert = direct_insert(TICKET, tuple(ticket_values(1001)))
    with store.transaction() as session:
        insert.execute(session.connection(), ticket_values(1001))
    with pytest.raises(IntegrityError), store.transaction() as session:
        insert.execute(session.connection(), ticket_values(1001))
    with pytest.raises(IntegrityError), store.transaction() as session:
        insert.executemany(session.connection(), [ticket_values(1002), ticket_values(1002)])
    with store.read() as session:
        assert session.execute(select(Ticket.number)).scalars().all() == [1001]


def test_listeners_see_each_execution_once(store: Store) -> None:
    seen: list[tuple[str, bool]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO ticket"):
            seen.append((statement.split(" (")[0], executemany))

    insert = direct_insert(TICKET, tuple(ticket_values(1001)))
    for engine in (store.engine, store.lazy_engine):
        event.listen(engine, "before_cursor_execute", remember)
    with store.transaction() as session:
        insert.executemany(session.connection(), [ticket_values(n) for n in (1001, 1002, 1003)])
        insert.execute(session.connection(), ticket_values(1004))
    assert seen == [("INSERT INTO ticket", True), ("INSERT INTO ticket", False)]


def test_many_inbound_rows_get_their_own_ids_in_order(store: Store) -> None:
    """On SQLite the ids are given explicitly after the highest: also after the rows at
    the top were deleted (SQLite would reuse those ids too)."""

    def enqueue(raws: list[bytes]) -> list[int]:
        rows = [inbound_values(source="smtp", raw=raw, now=WHEN, rcpt_to=["s@x"]) for raw in raws]
        with store.transaction() as session:
            return enqueue_many(session, rows)

    raws = [make_mail(name) for name in "abcde"]
    first = enqueue(raws[:3])
    with store.transaction() as session:
        session.execute(text("DELETE FROM inbound WHERE id = :id"), {"id": first[-1]})
    second = enqueue(raws[3:])
    with store.read() as session:
        found = session.execute(select(InboundMessage.id, InboundMessage.raw))
        stored = {inbound_id: raw for inbound_id, raw in found}
    ids = first[:2] + second
    assert len(set(ids)) == 4
    assert [stored[inbound_id] for inbound_id in ids] == raws[:2] + raws[3:]
