"""Durable and lazy transactions on SQLite: ``PRAGMA synchronous`` as each one runs.

FULL (2) for a durable commit, NORMAL (1) for ``durable=False``.  Each kind runs on a
pool of its own whose connections are set when they connect, so alternating kinds never
leaves a durable transaction on a lazy connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from mailbot.store.db import Store

NORMAL, FULL = 1, 2


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    yield opened
    opened.dispose()


def _synchronous(session: Session) -> int:
    return session.execute(text("PRAGMA synchronous")).scalar_one()


def _dbapi_connection(session: Session) -> object:
    return session.connection().connection.dbapi_connection


def test_durable_is_full_and_lazy_is_normal(store: Store) -> None:
    with store.transaction() as session:
        assert _synchronous(session) == FULL
    with store.transaction(durable=False) as session:
        assert _synchronous(session) == NORMAL


def test_alternating_kinds_keep_each_setting_on_a_connection_of_its_own(store: Store) -> None:
    seen: dict[bool, list[object]] = {True: [], False: []}
    for durable, expected in [(True, FULL), (False, NORMAL), (False, NORMAL), (True, FULL)]:
        with store.transaction(durable=durable) as session:
            assert _synchronous(session) == expected, f"durable={durable}"
            seen[durable].append(_dbapi_connection(session))
    # Each kind reuses its pooled connection, and the two kinds never share one.
    assert seen[True][0] is seen[True][1]
    assert seen[False][0] is seen[False][1]
    assert seen[True][0] is not seen[False][0]


def test_a_lazy_transaction_still_commits(store: Store) -> None:
    with store.transaction(durable=False) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (7)"))
    with store.read() as session:
        assert session.execute(text("SELECT x FROM t")).scalar_one() == 7


def test_writers_waiting_is_false_without_contention(store: Store) -> None:
    assert not store.writers_waiting()
    with store.transaction() as session:
        session.execute(text("SELECT 1"))
        assert not store.writers_waiting()
    assert not store.writers_waiting()


def test_writers_waiting_while_another_thread_wants_to_write(store: Store) -> None:
    done = threading.Event()

    def write() -> None:
        with store.transaction():
            done.set()

    with store.transaction():
        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not store.writers_waiting() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.writers_waiting()
        assert not done.is_set()
    thread.join(5)
    assert done.is_set()
    assert not store.writers_waiting()


def test_the_page_cache_is_small_for_the_daemon_and_larger_for_an_import(
    tmp_path: Path,
) -> None:
    """Each daemon process keeps 256 KiB per connection and its temporary files on disk;
    ``mailbot import`` asks for more cache and keeps its statement journals in memory."""
    from mailbot.commands.importer import IMPORT_CACHE_KIB, IMPORT_TEMP_IN_MEMORY

    url = f"sqlite:///{tmp_path / 'cache.db'}"
    imported = {"cache_kib": IMPORT_CACHE_KIB, "temp_in_memory": IMPORT_TEMP_IN_MEMORY}
    for store, kib, temp_store in (
        (Store.open(url), 256, 0),  # 0: the default (files)
        (Store.open(url, **imported), 16384, 2),  # 2: memory
    ):
        try:
            for durable in (True, False):
                with store.transaction(durable=durable) as session:
                    assert session.execute(text("PRAGMA cache_size")).scalar_one() == -kib
                    assert session.execute(text("PRAGMA temp_store")).scalar_one() == temp_store
        finally:
            store.dispose()
