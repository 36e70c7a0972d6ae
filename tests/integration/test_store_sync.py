"""On disk before it counts, without holding SQLite's write lock for the disk.

A 250 means the message is on disk, and an acknowledgement goes out only once the
commit that queued it is on disk (a power loss must not take back a ticket someone was
told about).  On SQLite both commits are made without waiting for the disk while the
write lock is held, and the write-ahead log is synced once the lock is free
(``Store.sync``): the daemon runs here over a real listener and relay, and every
commit, sync and delivery is recorded in order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from support.daemon import base_config, merge, run_here
from support.mail import make_mail, send
from support.servers import Sink, free_port, wait_for_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.store.db import Store

pytestmark = pytest.mark.integration

MESSAGES = 3


class Events:
    """What happened, in order: ``(kind, detail, thread)``, from any thread."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, detail: str = "") -> None:
        with self._lock:
            self.items.append((kind, detail, threading.get_ident()))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.items]


def _record_commits(store: Store, events: Events) -> None:
    """Inserts into the inbound queue and the outbox, and each commit with whether it
    waited for the disk (the durable engine) or not (the lazy one)."""
    for engine, durability in ((store.engine, "durable"), (store.lazy_engine, "lazy")):

        def on_statement(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            for table in ("inbound", "outbox"):
                if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
                    events.add("insert", table)

        def on_commit(conn, durability=durability):  # type: ignore[no-untyped-def]
            events.add("commit", durability)

        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine, "commit", on_commit)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Events]:
    """Every fdatasync of this process, with the file it was for (the real call is made)."""
    events = Events()
    real = os.fdatasync

    def recording(fd: int) -> None:
        real(fd)
        events.add("sync", os.path.realpath(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fdatasync", recording)
    yield events


class RecordingSink(Sink):
    def __init__(self, events: Events) -> None:
        super().__init__()
        original = self.handler.handle_DATA

        async def handle_data(server, session, envelope):  # type: ignore[no-untyped-def]
            events.add("delivered")
            return await original(server, session, envelope)

        self.handler.handle_DATA = handle_data  # type: ignore[method-assign]


def _on_disk_between(events: list[tuple[str, str, int]], start: int, end: int, wal: str) -> bool:
    """Whether a commit at ``start`` was on disk by ``end``: it was durable itself, or
    the log was synced after it, or a durable commit came after it (it syncs the log)."""
    kind, detail, _ = events[start]
    assert kind == "commit"
    if detail == "durable":
        return True
    later = events[start + 1 : end]
    return any(e[:2] == ("sync", wal) or e[:2] == ("commit", "durable") for e in later)


def _commit_after(events: list[tuple[str, str, int]], index: int) -> int:
    """The commit of the transaction that ran the statement at ``index``."""
    thread = events[index][2]
    return next(i for i in range(index + 1, len(events)) if events[i][::2] == ("commit", thread))


def test_every_250_and_every_acknowledgement_waits_for_the_disk_not_under_the_lock(
    tmp_path: Path, syncs: Events
) -> None:
    events = syncs  # one record: fdatasyncs, commits, 250s and deliveries, in order
    sink = RecordingSink(events)
    sink.start()
    try:
        config = merge(base_config(tmp_path, free_port(), sink.port), {"worker": {"processes": 0}})
        app = Application(parse_settings(config, tmp_path))
        assert app.store.syncs_apart  # a SQLite file in WAL mode
        wal = os.path.realpath(f"{app.store.engine.url.database}-wal")
        _record_commits(app.store, events)
        port = app.settings.intake.smtp.port
        lock = app.store._write_lock
        assert lock is not None
        lock_held_at_sync: list[bool] = []  # by the thread that syncs
        sync = app.store.sync

        def noting_sync() -> None:
            lock_held_at_sync.append(lock._threads._is_owned())  # type: ignore[attr-defined]
            sync()

        app.store.sync = noting_sync  # type: ignore[method-assign]

        def client() -> None:
            wait_for_port(port)
            for n in range(MESSAGES):
                send(port, make_mail(f"[High] on disk {n}", message_id=f"d{n}@customer.example"))
                events.add("250")
                sink.wait_for(n + 1)

        run_here(app, client)
    finally:
        sink.stop()

    items = list(events.items)
    kinds = [kind for kind, _, _ in items]
    assert kinds.count("250") == MESSAGES and kinds.count("delivered") == MESSAGES
    inserts = {
        table: [i for i, item in enumerate(items) if item[:2] == ("insert", table)]
        for table in ("inbound", "outbox")
    }
    assert len(inserts["inbound"]) == len(inserts["outbox"]) == MESSAGES
    answers = [i for i, kind in enumerate(kinds) if kind == "250"]
    deliveries = [i for i, kind in enumerate(kinds) if kind == "delivered"]
    for stored, answered in zip(inserts["inbound"], answers, strict=True):
        assert stored < answered
        assert _on_disk_between(items, _commit_after(items, stored), answered, wal), items
    for queued, delivered in zip(inserts["outbox"], deliveries, strict=True):
        assert queued < delivered
        assert _on_disk_between(items, _commit_after(items, queued), delivered, wal), items
    # Neither waited for the disk while it held the write lock: the commits were lazy
    # and no sync ran while its thread held the lock.
    committed = [items[_commit_after(items, i)][1] for i in inserts["inbound"]]
    assert committed == ["lazy"] * MESSAGES
    assert lock_held_at_sync and not any(lock_held_at_sync)


def test_sync_is_for_sqlite_files_in_wal_mode_only(tmp_path: Path, syncs: Events) -> None:
    memory = Store.open("sqlite://")
    try:
        assert not memory.syncs_apart
        memory.sync()  # nothing to sync: no call
    finally:
        memory.dispose()
    assert syncs.items == []
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        assert store.syncs_apart
        with store.transaction(durable=False) as session:
            session.connection().exec_driver_sql("CREATE TABLE t (x INTEGER)")
        store.sync()
    finally:
        store.dispose()
    assert [detail for _, detail, _ in syncs.items] == [os.path.realpath(f"{tmp_path}/m.db-wal")]
