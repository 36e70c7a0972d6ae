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

Where a commit must be durable before something happens (the 250 for a received
message, an acknowledgement going out), SQLite commits lazily all the same and the
caller syncs the write-ahead log afterwards (``sync``): the same guarantee, but the
write lock, which every writer of every process queues for, is not held for the disk.

Lazy transactions run on a pool of their own whose connections are set lazy once, when
they connect: no statement per transaction to switch, and no connection whose setting a
rolled-back ``SET`` could leave other than it seems.

PostgreSQL connections are pinged only when they come out of the pool after being idle
(``IDLE_PING_AFTER``): a connection in steady use is known to be alive, and a ping
before every transaction was a round trip per transaction.  A connection that broke
in use fails its transaction, which the caller retries (a 451, a retry later).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import URL, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlmodel import Session, create_engine

from mailbot.store import models  # noqa: F401  (registers the tables)
from mailbot.store.schema import ensure_schema
from mailbot.store.writer_lock import WriterLock, database_file, lock_path

READONLY_OPTION = "mailbot_readonly"


# SQLite's page cache per connection of the daemon (see _configure_sqlite).
DAEMON_CACHE_KIB = 256
# Seconds in the pool after which a PostgreSQL connection is pinged before use.
IDLE_PING_AFTER = 1.0


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


def _configure_sqlite(
    engine: Engine, busy_timeout: float, cache_kib: int, lazy: bool, temp_in_memory: bool
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _enable_wal(cursor, busy_timeout)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA synchronous = {'NORMAL' if lazy else 'FULL'}")
        # 256 KiB of page cache (``DAEMON_CACHE_KIB``) instead of 2 MB.  In WAL mode a
        # connection drops its whole cache when another connection has written since its
        # last transaction, which with the listener and the worker process writing is
        # almost every time: a bigger cache holds memory in each process and saves next
        # to no reads.  A bulk import, the only writer, keeps more (see importer.py).
        cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        if temp_in_memory:
            # Statement journals in memory, not in temporary files (see importer.py).
            cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        readonly = connection.get_execution_options().get(READONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Ping a connection before use only when it sat in the pool for ``after`` seconds
    (SQLAlchemy's ``pool_pre_ping`` pings before every checkout); a dead one is
    replaced by the pool (``DisconnectionError``)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection found dead after idling: {exc}") from exc


# One statement: lz4 where the server was built with it, else the server's default.
_LZ4_WHERE_BUILT = (
    "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings"
    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def _compress_with_lz4(engine: Engine) -> None:
    """Large values (raw mail, thread text, outbox payloads) are compressed with lz4
    instead of pglz when the server has it (PostgreSQL 14 and later, built with lz4):
    a third less of the server's CPU per message, on the worker's path.  A session
    setting, checked when a connection opens: no migration, and servers without lz4
    keep their default instead of refusing the connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute(_LZ4_WHERE_BUILT)
        dbapi_connection.commit()


def _with_lazy_commits(url: str) -> URL:
    """``url`` whose connections start with ``synchronous_commit = off`` (the server
    options already in it, such as a search_path, kept)."""
    parsed = make_url(url)
    options = parsed.query.get("options", "")
    if not isinstance(options, str):  # given twice in the URL
        options = " ".join(options)
    return parsed.update_query_dict({"options": f"{options} -c synchronous_commit=off".strip()})


def _ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file so a fresh checkout starts without set-up."""
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(
    url: str,
    busy_timeout: float = 5.0,
    cache_kib: int = DAEMON_CACHE_KIB,
    lazy: bool = False,
    temp_in_memory: bool = False,
) -> Engine:
    """An engine for ``url``; ``lazy``: its commits do not wait for the disk."""
    if url.startswith("sqlite"):
        _ensure_sqlite_directory(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout}
        )
        _configure_sqlite(engine, busy_timeout, cache_kib, lazy, temp_in_memory)
        return engine
    engine = create_engine(_with_lazy_commits(url) if lazy else url)
    _ping_when_idle(engine, IDLE_PING_AFTER)
    _compress_with_lz4(engine)
    return engine


def is_transient(exc: BaseException) -> bool:
    """Database errors worth retrying: locked, unreachable, serialization failures."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Store:
    """The engines plus a way to run one transaction."""

    def __init__(self, engine: Engine, lazy_engine: Engine | None = None) -> None:
        self.engine = engine
        # Transactions with durable=False, and reads (see the module's note).
        self.lazy_engine = lazy_engine or engine
        # Single statements on PostgreSQL, by durability (see ``transaction``).
        self._autocommit = (
            {
                durable: bound.execution_options(isolation_level="AUTOCOMMIT")
                for durable, bound in ((True, self.engine), (False, self.lazy_engine))
            }
            if engine.dialect.name == "postgresql"
            else {}
        )
        # SQLite has one writer at a time: writers queue on a lock that wakes the next
        # one at once (mailbot/store/writer_lock.py).
        self._write_lock: WriterLock | None = (
            WriterLock(lock_path(engine.url.database)) if engine.dialect.name == "sqlite" else None
        )
        # SQLite's write-ahead log, once known to be in use (see ``syncs_apart``).
        self._wal: Path | None = None
        self._wal_checked = False

    @classmethod
    def open(
        cls,
        url: str,
        busy_timeout: float = 5.0,
        create: bool = True,
        check: bool = True,
        cache_kib: int = DAEMON_CACHE_KIB,
        temp_in_memory: bool = False,
    ) -> Store:
        """Open the store; a database without tables is created at the head revision
        (unless ``create`` is false), one at another revision raises ``SchemaError``
        (unless ``check`` is false: ``mailbot db`` looks at it itself).  ``cache_kib``:
        SQLite's page cache per connection; ``temp_in_memory``: its temporary files
        (statement journals) in memory."""
        tuning = {"cache_kib": cache_kib, "temp_in_memory": temp_in_memory}
        store = cls(
            make_engine(url, busy_timeout, **tuning),
            make_engine(url, busy_timeout, lazy=True, **tuning),
        )
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
    def transaction(
        self, durable: bool = True, urgent: bool = False, single_statement: bool = False
    ) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception.

        ``durable=False``: the commit does not wait for the disk (see the module's note);
        only for work that is redone when it is lost.  ``urgent``: someone waits for it
        (an SMTP client for its 250); on SQLite it goes before this process's other
        writers (mailbot/store/writer_lock.py).  ``single_statement``: the unit is one
        statement, which PostgreSQL then runs as its own transaction (autocommit): no
        BEGIN and COMMIT round trips.  A second statement would commit apart from the
        first, so only for work that is one statement.
        """
        bind = self.engine if durable else self.lazy_engine
        if single_statement and self.dialect == "postgresql":
            bind = self._autocommit[durable]
        lock = self._write_lock
        with (
            (lock.urgent() if urgent else lock) if lock else contextlib.nullcontext(),
            Session(bind, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @property
    def syncs_apart(self) -> bool:
        """Whether lazy commits can be made durable afterwards (``sync``), with no write
        lock held: SQLite in WAL mode on a file.  Elsewhere a durable commit does it."""
        if not self._wal_checked:
            database = database_file(self.engine.url.database)
            if self.dialect == "sqlite" and database is not None:
                with self.read() as session:
                    pragma = session.connection().exec_driver_sql("PRAGMA journal_mode")
                    mode = pragma.scalar()
                if str(mode).lower() == "wal":
                    self._wal = Path(f"{database}-wal")
            self._wal_checked = True
        return self._wal is not None

    def sync(self) -> None:
        """Make every commit so far durable, lazy ones included (where ``syncs_apart``).

        An fdatasync of SQLite's write-ahead log, which holds the commits of every
        connection and process: writers go on meanwhile, where a durable commit would
        hold the write lock for its sync.  A checkpoint syncs the log before it copies
        the log into the database (and the database after), so a log restarted or
        removed since holds nothing left to sync.  The log is opened here and closed
        again: SQLite keeps POSIX locks on the database and its ``-shm`` file, which a
        close of another descriptor in this process would drop, but none on the log.
        """
        if not self.syncs_apart:
            return
        assert self._wal is not None
        try:
            fd = os.open(self._wal, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # removed by the last connection to close, synced then
            return
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def writers_waiting(self) -> bool:
        """Whether another writer waits for SQLite's write lock (always False elsewhere):
        a long transaction then commits at its next chance."""
        return self._write_lock is not None and self._write_lock.contended()

    @contextmanager
    def read(self, single_statement: bool = False) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it takes no write lock (plain BEGIN).

        ``single_statement``: one statement, which PostgreSQL then runs on its own
        (autocommit, as ``transaction`` does); several would each see their own snapshot.
        """
        bind = self.lazy_engine
        if single_statement and self.dialect == "postgresql":
            bind = self._autocommit[False]
        bind = bind.execution_options(**{READONLY_OPTION: True})
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self.lazy_engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()
