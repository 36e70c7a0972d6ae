"""Engine and transactions.

SQLite runs in WAL mode with ``synchronous=FULL`` (a 250 means the bytes are on
disk) and every transaction starts with ``BEGIN IMMEDIATE``: a read-then-write
transaction then waits for the write lock up front instead of failing halfway
with "database is locked" when another thread wrote in between.

Work that can be redone from what is already on disk (a claim, the worker's result
for a stored message, "sent" on an outbox row) commits without waiting for the disk
(``durable=False``: ``synchronous=NORMAL`` on SQLite, ``synchronous_commit=off`` on
PostgreSQL).  That is still safe when the process is killed; only a power loss or an
operating-system crash can take back such a commit, and then the message is processed
again or the acknowledgement sent again with its same Message-ID.  The next durable
commit (the next message received) makes everything before it durable too.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, create_engine

from mailbot.store import models  # noqa: F401  (registers the tables)
from mailbot.store.schema import ensure_schema
from mailbot.store.writer_lock import WriterLock, lock_path

READONLY_OPTION = "mailbot_readonly"
LAZY_OPTION = "mailbot_lazy_commit"


# SQLite's page cache per connection of the daemon (see _configure_sqlite).
DAEMON_CACHE_KIB = 256


def utcnow() -> datetime:
    """Naive UTC, the form every timestamp in the store takes."""
    return datetime.now(UTC).replace(tzinfo=None)


def _enable_wal(cursor: sqlite3.Cursor, busy_timeout: float) -> None:
    """WAL mode (a database keeps it once set).  Switching to it needs the database to
    itself, and when several processes open a new database at once SQLite answers
    "database is locked" at once instead of waiting: try again until the busy timeout."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _configure_sqlite(engine: Engine, busy_timeout: float, cache_kib: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _enable_wal(cursor, busy_timeout)
        cursor.execute("PRAGMA foreign_keys = ON")
        # 256 KiB of page cache (``DAEMON_CACHE_KIB``) instead of 2 MB.  In WAL mode a
        # connection drops its whole cache when another connection has written since its
        # last transaction, which with the listener and the worker process writing is
        # almost every time: a bigger cache holds memory in each process and saves next
        # to no reads.  A bulk import, the only writer, keeps more (see importer.py).
        cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        options = connection.get_execution_options()
        if options.get(READONLY_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        synchronous = "NORMAL" if options.get(LAZY_OPTION, False) else "FULL"
        info = connection.connection.info
        if info.get("synchronous") != synchronous:  # a pragma only outside transactions
            connection.exec_driver_sql(f"PRAGMA synchronous = {synchronous}")
            info["synchronous"] = synchronous
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file so a fresh checkout starts without set-up."""
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, busy_timeout: float = 5.0, cache_kib: int = DAEMON_CACHE_KIB) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_directory(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout}
        )
        _configure_sqlite(engine, busy_timeout, cache_kib)
        return engine
    return create_engine(url, pool_pre_ping=True)


def is_transient(exc: BaseException) -> bool:
    """Database errors worth retrying: locked, unreachable, serialization failures."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Store:
    """The engine plus a way to run one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time: writers queue on a lock that wakes the next
        # one at once (mailbot/store/writer_lock.py).
        self._write_lock: WriterLock | None = (
            WriterLock(lock_path(engine.url.database)) if engine.dialect.name == "sqlite" else None
        )

    @classmethod
    def open(
        cls,
        url: str,
        busy_timeout: float = 5.0,
        create: bool = True,
        check: bool = True,
        cache_kib: int = DAEMON_CACHE_KIB,
    ) -> Store:
        """Open the store; a database without tables is created at the head revision
        (unless ``create`` is false), one at another revision raises ``SchemaError``
        (unless ``check`` is false: ``mailbot db`` looks at it itself).  ``cache_kib``:
        SQLite's page cache per connection."""
        store = cls(make_engine(url, busy_timeout, cache_kib))
        if check:
            try:
                ensure_schema(store.engine, create=create)
            except BaseException:
                store.dispose()
                raise
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Create the tables of an empty database at the head revision (see schema.py)."""
        ensure_schema(self.engine, create=True)

    @contextmanager
    def transaction(self, durable: bool = True, urgent: bool = False) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception.

        ``durable=False``: the commit does not wait for the disk (see the module's note);
        only for work that is redone when it is lost.  ``urgent``: someone waits for it
        (an SMTP client for its 250); on SQLite it goes before this process's other
        writers (mailbot/store/writer_lock.py).
        """
        bind = self.engine if durable else self.engine.execution_options(**{LAZY_OPTION: True})
        lock = self._write_lock
        with (
            (lock.urgent() if urgent else lock) if lock else contextlib.nullcontext(),
            Session(bind, expire_on_commit=False) as session,
            session.begin(),
        ):
            if not durable and self.dialect == "postgresql":
                session.execute(text("SET LOCAL synchronous_commit = off"))
            yield session

    def writers_waiting(self) -> bool:
        """Whether another writer waits for SQLite's write lock (always False elsewhere):
        a long transaction then commits at its next chance."""
        return self._write_lock is not None and self._write_lock.contended()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it takes no write lock (plain BEGIN)."""
        bind = self.engine.execution_options(**{READONLY_OPTION: True})
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()
