"""PostgreSQL: durable and lazy transactions on pools of their own; pings only after idling.

Lazy transactions (``durable=False``) run on connections that start with
``synchronous_commit = off``; durable ones never do.  A pooled connection is pinged only
when it has sat idle for ``IDLE_PING_AFTER``: one that died in steady use fails its
transaction (the caller retries), one that died while idle is replaced unseen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from mailbot.store import db
from mailbot.store.db import Store

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
