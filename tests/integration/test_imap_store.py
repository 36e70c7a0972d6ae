"""The IMAP store step on SQLite and PostgreSQL: a re-fetched message is recognised.

Recognition rests on the unique ``inbound.origin`` column and INSERT … ON CONFLICT DO
NOTHING, whose behaviour differs between drivers if anything does.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from support.mail import make_mail

from mailbot.intake.imap import imap_store_fn
from mailbot.intake.imap_sweep import ToStore
from mailbot.store.db import Store
from mailbot.store.models import InboundMessage
from mailbot.store.repo import enqueue

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 27, 12, 0)
ORIGIN = "imap://support%40example.com@imap.example.com:993/INBOX;UIDVALIDITY=7/;UID={}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'imap.db'}")
        yield opened
        opened.dispose()
        return
    server = os.environ.get("MAILBOT_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("MAILBOT_TEST_POSTGRES_URL not set (a PostgreSQL server to test against)")
    name = f"mailbot_imap_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    opened = Store.open(server.rsplit("/", 1)[0] + "/" + name)
    try:
        yield opened
    finally:
        opened.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def rows(store: Store) -> int:
    with store.transaction() as session:
        return int(session.execute(select(func.count()).select_from(InboundMessage)).scalar_one())


def test_new_then_same_uid_then_same_bytes(store: Store) -> None:
    save = imap_store_fn(store, lambda: NOW)
    first, second = make_mail("one"), make_mail("two")

    stored = save([ToStore(ORIGIN.format(1), first, None), ToStore(ORIGIN.format(2), second, "")])
    assert [s.new for s in stored] == [True, True]

    again = save(
        [
            ToStore(ORIGIN.format(1), first, None),  # a crash came between commit and move
            ToStore(ORIGIN.format(99).replace("=7/", "=8/"), second, ""),  # new UIDVALIDITY
        ]
    )
    assert [(s.new, s.inbound_id) for s in again] == [
        (False, stored[0].inbound_id),
        (False, stored[1].inbound_id),
    ]
    assert [s.why for s in again] == ["same mailbox, UIDVALIDITY and UID", "same bytes"]
    assert rows(store) == 2
    with store.transaction() as session:
        query = select(InboundMessage.origin, InboundMessage.mail_from)
        envelope = {origin: mail_from for origin, mail_from in session.execute(query).all()}
    assert envelope == {ORIGIN.format(1): None, ORIGIN.format(2): ""}


def test_enqueue_with_a_known_origin_inserts_nothing(store: Store) -> None:
    raw = make_mail("twice")
    with store.transaction() as session:
        first = enqueue(session, source="imap", raw=raw, now=NOW, origin=ORIGIN.format(5))
    with store.transaction() as session:  # e.g. a second daemon on the same mailbox
        second = enqueue(session, source="imap", raw=raw, now=NOW, origin=ORIGIN.format(5))
    assert first == second
    assert rows(store) == 1
