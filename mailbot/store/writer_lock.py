"""SQLite's one writer at a time, as a lock that wakes the next writer at once.

SQLite lets a waiting writer sleep and poll (its busy handler, up to 100 ms a turn):
under load that polling, not the work, was most of the intake latency.  Writers
instead queue here: threads on a lock of this process, processes (the daemon and its
worker processes, ``mailbot deliver`` from the MTA) on ``flock`` of a file beside the
database, which the kernel hands to the next waiter as soon as it is released.
SQLite's own locking still guards the data; this only decides who asks first.

A writer that holds the lock for a batch (the worker) asks ``contended()`` between
messages and commits early when another writer waits: a waiter holds a shared lock on
a second file (``…-writer.lock.intent``) while it queues, which the holder can see.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType


class WriterLock:
    """Re-entrant in a thread; across processes when ``path`` can be opened."""

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0  # changed only by the thread that holds ``_threads``
        self._queued = 0  # threads of this process waiting for ``_threads``
        self._count_lock = threading.Lock()
        self._path = path
        self._fd: int | None = None
        self._intent: int | None = None

    def _file(self) -> int | None:
        if self._fd is None and self._path is not None:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            try:
                self._fd = os.open(self._path, flags, 0o660)
                self._intent = os.open(f"{self._path}.intent", flags, 0o660)
            except OSError:  # a read-only folder: SQLite's busy handler still serialises
                self.close()
                self._path = None
        return self._fd

    def __enter__(self) -> WriterLock:
        with self._count_lock:
            self._queued += 1
        try:
            self._threads.acquire()
        finally:
            with self._count_lock:
                self._queued -= 1
        self._depth += 1
        if self._depth == 1 and (fd := self._file()) is not None:
            try:
                self._queue_for(fd)
            except BaseException:
                self._depth -= 1
                self._threads.release()
                raise
        return self

    def _queue_for(self, fd: int) -> None:
        """Take the lock file, showing other processes' holders that we wait."""
        if self._intent is not None:
            fcntl.flock(self._intent, fcntl.LOCK_SH)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            if self._intent is not None:
                fcntl.flock(self._intent, fcntl.LOCK_UN)

    def contended(self) -> bool:
        """Whether another writer (thread or process) waits; asked by the holder."""
        if self._queued:
            return True
        if self._intent is None:
            return False
        try:
            fcntl.flock(self._intent, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._intent, fcntl.LOCK_UN)
        return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._depth == 1 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._threads.release()

    def close(self) -> None:
        with self._threads:
            for fd in (self._fd, self._intent):
                if fd is not None:
                    os.close(fd)
            self._fd = self._intent = None


def lock_path(database: str | None) -> Path | None:
    """The lock file of a SQLite database file (None for an in-memory database)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}-writer.lock")
