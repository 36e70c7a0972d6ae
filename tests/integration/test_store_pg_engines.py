"""PostgreSQL: durable and lazy transactions on pools of their own; pings only after idling;
a single statement without BEGIN and COMMIT.

Lazy transactions (``durable=False``) run on connections that start with
``synchronous_commit = off``; durable ones never do.  A pooled connection is pinged only
when it has sat idle for ``IDLE_PING_AFTER``: one that died in steady use fails its
transaction (the caller retries), one that died while idle is replaced unseen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, make_url, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from support.daemon import base_config, merge
from support.mail import make_mail
from support.servers import Sink, free_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.intake.group_commit import RawMessage
from mailbot.store import db
from mailbot.store.db import Store
from mailbot.store.models import InboundMessage
from mailbot.store.repo import enqueue

pytestmark = pytest.mark.integration

IDLE = 0.3  # seconds: IDLE_PING_AFTER where a test waits for it
STEADY = 60.0  # seconds: IDLE_PING_AFTER where a test must finish well within it


@pytest.fixture
def open_store(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[float], Store]]:
    """``open_store(idle)``: a store whose connections are pinged after ``idle`` seconds."""
    opened: list[Store] = []

    def open_with(idle: float) -> Store:
        monkeypatch.setattr(db, "IDLE_PING_AFTER", idle)
        opened.append(Store.open(postgres_url))
        return opened[-1]

    yield open_with
    for store in opened:
        store.dispose()


def _setting(session: Session, name: str) -> str:
    return str(session.execute(text(f"SHOW {name}")).scalar_one())


def _backend(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_lazy_transactions_do_not_wait_for_the_disk_and_durable_ones_do(
    open_store: Callable[[float], Store], postgres_url: str
) -> None:
    store = open_store(STEADY)
    schema = make_url(postgres_url).query["options"].removeprefix("-csearch_path=")
    for durable, expected in [(True, "on"), (False, "off"), (True, "on"), (False, "off")]:
        with store.transaction(durable=durable) as session:
            assert _setting(session, "synchronous_commit") == expected, f"durable={durable}"
            # The URL's own server options (the test's schema) still apply to both.
            assert _setting(session, "search_path") == schema
    with store.read() as session:
        assert _setting(session, "search_path") == schema


def _terminate(postgres_url: str, pid: int) -> None:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while conn.execute(query, {"pid": pid}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        admin.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    open_store: Callable[[float], Store], postgres_url: str
) -> None:
    store = open_store(IDLE)
    with store.transaction(durable=False) as session:
        first = _backend(session)
    _terminate(postgres_url, first)
    time.sleep(IDLE + 0.1)
    with store.transaction(durable=False) as session:  # no error: pinged and replaced
        assert _backend(session) != first


def test_a_connection_in_steady_use_is_not_pinged(
    open_store: Callable[[float], Store], postgres_url: str
) -> None:
    """Without a ping the dead connection shows: its transaction fails (and is retried
    by the caller), and the pool then gives a fresh connection."""
    store = open_store(STEADY)
    with store.transaction(durable=False) as session:
        first = _backend(session)
    _terminate(postgres_url, first)
    with pytest.raises(OperationalError), store.transaction(durable=False) as session:
        _backend(session)
    with store.transaction(durable=False) as session:
        assert _backend(session) != first


def _probe_rows(store: Store) -> list[int]:
    with store.read() as session:
        return list(session.execute(text("SELECT x FROM probe ORDER BY x")).scalars())


def test_a_single_statement_is_its_own_transaction_and_the_pool_forgets_it(
    open_store: Callable[[float], Store],
) -> None:
    """No BEGIN/COMMIT round trips: the statement commits by itself (durably), which a
    failure after it shows; the same pooled connection is transactional again after."""
    store = open_store(STEADY)
    with store.transaction() as session:
        session.execute(text("CREATE TABLE probe (x INTEGER)"))
    with pytest.raises(RuntimeError), store.transaction(single_statement=True) as session:
        assert _setting(session, "synchronous_commit") == "on"
        session.execute(text("INSERT INTO probe VALUES (1)"))
        first = session.connection().connection.dbapi_connection
        raise RuntimeError("after the statement")
    assert _probe_rows(store) == [1]  # committed on its own
    with pytest.raises(RuntimeError), store.transaction() as session:
        session.execute(text("INSERT INTO probe VALUES (2)"))
        assert session.connection().connection.dbapi_connection is first
        raise RuntimeError("rolled back")
    assert _probe_rows(store) == [1]


def test_the_listener_stores_a_group_in_one_statement_in_order(
    tmp_path: Path, postgres_url: str
) -> None:
    config = merge(base_config(tmp_path, free_port(), None), {"database": {"url": postgres_url}})
    app = Application(parse_settings(config, tmp_path))
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(app.store.engine, "before_cursor_execute", remember)
    try:
        raws = [make_mail(f"group {n}", sender=f"s{n}@customer.example") for n in range(3)]
        ids = app.store_raw_many(
            [RawMessage("smtp", f"s{n}@x", ["s@x"], r) for n, r in enumerate(raws)]
        )
    finally:
        event.remove(app.store.engine, "before_cursor_execute", remember)
    try:
        assert len(statements) == 1 and statements[0].startswith("INSERT INTO inbound")
        with app.store.read() as session:
            stored = dict(session.execute(select(InboundMessage.id, InboundMessage.raw)).all())
        assert [stored[i] for i in ids] == raws
    finally:
        app.store.dispose()


def test_claims_and_the_read_of_a_batch_run_without_begin_and_commit(
    tmp_path: Path, postgres_url: str, sink: Sink
) -> None:
    """The worker's claim, its read of the claimed rows and the sender's claim (with the
    ticket numbers for its log lines) are one statement each, each its own transaction:
    one round trip instead of three to five."""
    config = merge(
        base_config(tmp_path, free_port(), sink.port), {"database": {"url": postgres_url}}
    )
    app = Application(parse_settings(config, tmp_path))
    seen: list[tuple[str, bool]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((" ".join(statement.split()), conn.connection.dbapi_connection.autocommit))

    try:
        app.store_raw_sync("smtp", "a@customer.example", ["support@example.com"], make_mail("Hi"))
        for engine in (app.store.engine, app.store.lazy_engine):
            event.listen(engine, "before_cursor_execute", remember)
        [outcome] = app.worker.process_batch()
        assert app.sender.send_due() == 1
    finally:
        app.store.dispose()
    assert outcome.outcome == "created"
    claims = [autocommit for statement, autocommit in seen if statement.startswith("WITH picked")]
    assert claims == [True, True]  # the worker's, then the sender's
    loads = [a for s, a in seen if s.startswith("SELECT inbound.id, inbound.received_at")]
    assert loads == [True]
    assert not [s for s, _ in seen if s.startswith("SELECT ticket.id, ticket.number FROM")]
    marks = [a for s, a in seen if s.startswith("UPDATE outbox SET status")]
    assert marks == [True]  # the one delivered row, marked sent on its own


def test_large_values_are_compressed_with_lz4_where_the_server_has_it(
    open_store: Callable[[float], Store],
) -> None:
    store = open_store(STEADY)
    with store.read() as session:
        built_with = session.execute(
            text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar_one()
    expected = "lz4" if "lz4" in built_with else "pglz"
    raw = b"A compressible message body. " * 4000
    for durable in (True, False):
        with store.transaction(durable=durable, single_statement=True) as session:
            assert _setting(session, "default_toast_compression") == expected
            enqueue(session, source="smtp", raw=raw, now=db.utcnow(), mail_from="", rcpt_to=[])
    with store.read() as session:
        methods = session.execute(text("SELECT pg_column_compression(raw) FROM inbound")).all()
    assert [method for (method,) in methods] == [expected, expected]
