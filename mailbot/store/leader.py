"""One daemon at a time: leadership by PostgreSQL advisory lock.

Some work must run in exactly one of several daemons sharing a database: reading an
IMAP mailbox, the reminder sweep.  Each such job is an ``Election``: a session-level
``pg_try_advisory_lock`` taken on a dedicated connection (outside the pool, in
autocommit, so it never sits "idle in transaction") and held as long as that
connection lives.  When the leader dies, its connection closes and PostgreSQL releases
the lock; a follower polls every ``FOLLOWER_RETRY`` seconds and takes over.  The lock
connection asks the server to probe it with TCP keepalives, so even a leader whose
host vanished without closing the socket loses the lock within about 25 seconds
(a plain kill is noticed at once).

The lock key is derived from the database, the schema and the job's name (for IMAP:
host, port, user and folder), so two installations in different schemas of one
database never contend.  On SQLite leadership is always granted: one daemon per
SQLite file is the supported setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

FOLLOWER_RETRY = 5.0  # seconds between a follower's attempts (takeover well within 30 s)

# libpq: notice a dead server (and let the server notice a dead leader) within ~25 s.
_CLIENT_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,
    "connect_timeout": 10,
}
_SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 25000",
)


def lock_key(connection: Connection, name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` in this database and schema."""
    where = connection.execute(text("SELECT current_database(), current_schema()")).one()
    digest = hashlib.sha256(f"mailbot/{where[0]}/{where[1]}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def imap_lock_name(host: str, port: int, username: str, folder: str) -> str:
    """The election of the daemon that reads one IMAP mailbox."""
    return f"imap/{host.lower()}:{port}/{username.lower()}/{folder}"


class Election:
    """Become and stay the one daemon running ``name``; ``poll`` is blocking (use a thread)."""

    def __init__(self, engine: Engine, name: str, log: logging.Logger | None = None) -> None:
        self.name = name
        self.log = log or logging.getLogger("mailbot.leader")
        self.shared = engine.dialect.name == "postgresql"
        self._url = engine.url
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._key: int | None = None
        self.leading = not self.shared

    def _connect(self) -> Connection:
        if self._engine is None:
            self._engine = create_engine(
                self._url,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",
                connect_args=_CLIENT_KEEPALIVE,
            )
        conn = self._engine.connect()
        try:
            for statement in (*_SERVER_KEEPALIVE, "SET application_name = 'mailbot leader'"):
                try:
                    conn.exec_driver_sql(statement)
                except DBAPIError as exc:  # e.g. tcp_user_timeout before PostgreSQL 12
                    self.log.debug("%s: %s: %s", self.name, statement, _one_line(exc))
            self._key = lock_key(conn, self.name)
        except Exception:
            conn.close()
            raise
        return conn

    def poll(self) -> bool:
        """Take the lock if it is free, or check that we still hold it; True while leading."""
        if not self.shared:
            return True
        try:
            if self._conn is None:
                self._conn = self._connect()
            if self.leading:
                self._conn.exec_driver_sql("SELECT 1")  # the lock lives as long as this session
            else:
                query = text("SELECT pg_try_advisory_lock(:key)")
                self.leading = bool(self._conn.execute(query, {"key": self._key}).scalar_one())
        except Exception as exc:  # the connection (and with it any lock) is gone
            if self.leading:
                self.log.error("%s: lost the lock connection: %s", self.name, _one_line(exc))
            else:
                self.log.warning("%s: cannot reach the database: %s", self.name, _one_line(exc))
            self._drop()
        return self.leading

    def release(self) -> None:
        """Give the lock up (closing the connection would too) and close the connection."""
        if self._conn is not None and self.leading:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        self._drop()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        self.leading = not self.shared


def _one_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text_[0] if text_ else ''}"


class Leadership:
    """Run a service only while this daemon wins its election: start on win, stop on loss."""

    def __init__(
        self,
        election: Election,
        *,
        start: Callable[[], Any],
        stop: Callable[[], Any],
        what: str,
        retry: float = FOLLOWER_RETRY,
        log: logging.Logger | None = None,
    ) -> None:
        self.election = election
        self.start = start  # called on the event loop's thread
        self.stop = stop  # blocking: called on a worker thread
        self.what = what
        self.retry = retry
        self.log = log or logging.getLogger("mailbot.leader")
        self.running = False

    @property
    def standby(self) -> bool:
        """True while another daemon does this work (health reports it as fine)."""
        return not self.running

    async def run(self, stopping: asyncio.Event) -> None:
        announced = False
        try:
            while not stopping.is_set():
                leading = await asyncio.to_thread(self.election.poll)
                if leading and not self.running:
                    # On SQLite there is nobody to elect: not worth a line.
                    level = logging.INFO if self.election.shared else logging.DEBUG
                    self.log.log(level, "leader for %s: starting it here", self.what)
                    self.start()
                    self.running = True
                elif not leading and self.running:
                    self.log.warning("no longer leader for %s: stopping it here", self.what)
                    await asyncio.to_thread(self.stop)
                    self.running = False
                elif not leading and not announced:
                    self.log.info(
                        "standby for %s: another daemon has it; trying every %.0fs",
                        self.what,
                        self.retry,
                    )
                announced = announced or not leading
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=self.retry)
        finally:
            if self.running:
                await asyncio.to_thread(self.stop)
                self.running = False
            await asyncio.to_thread(self.election.release)


class StandbyAware:
    """A service's connection status, reporting "standby" while another daemon leads."""

    def __init__(self, status: Any, leadership: Leadership) -> None:
        self._status = status
        self._leadership = leadership

    @property
    def standby(self) -> bool:
        return self._leadership.standby

    @property
    def connected(self) -> bool:
        return bool(self._status.connected)

    @property
    def last_success(self) -> float | None:
        return self._status.last_success
