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

A writer someone is waiting for (the listener: an SMTP client waits for its 250) takes
the lock with ``urgent()``.  In a process that has such writers, the others (the sender)
wait for another process's transaction without holding this process's turn, and try
again once it is over: the listener, arriving meanwhile, is then not queued behind the
sender's wait and the sender's transaction, only behind the other process.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType


class WriterLock:
    """Re-entrant in a thread; across processes when ``path`` can be opened."""

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0  # changed only by the thread that holds ``_threads``
        self._has_urgent = False  # urgent writers use this lock (the daemon's listener)
        # Lock and intent file, opened again: for _wait_for_other_process.
        self._probe: tuple[int, int] | None = None
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
        self._acquire(urgent=False)
        return self

    @contextmanager
    def urgent(self) -> Iterator[WriterLock]:
        """The lock, for a writer somebody waits for (see the module's note)."""
        self._has_urgent = True
        self._acquire(urgent=True)
        try:
            yield self
        finally:
            self.__exit__(None, None, None)

    def _acquire(self, urgent: bool) -> None:
        while True:
            self._take_turn()
            self._depth += 1
            if self._depth > 1 or (fd := self._file()) is None:
                return
            try:
                if urgent or not self._has_urgent:
                    self._queue_for(fd)
                    return
                if self._try_file(fd):
                    return
            except BaseException:
                self._release()
                raise
            # Another process writes.  Wait for it without holding this process's turn,
            # so that an urgent writer arriving meanwhile is not queued behind us.
            self._release()
            self._wait_for_other_process()

    def _take_turn(self) -> None:
        """This process's turn (``_threads``), counted as waiting meanwhile."""
        with self._count_lock:
            self._queued += 1
        try:
            self._threads.acquire()
        finally:
            with self._count_lock:
                self._queued -= 1

    def _queue_for(self, fd: int) -> None:
        """Take the lock file, showing other processes' holders that we wait."""
        if self._intent is not None:
            fcntl.flock(self._intent, fcntl.LOCK_SH)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            if self._intent is not None:
                fcntl.flock(self._intent, fcntl.LOCK_UN)

    @staticmethod
    def _try_file(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_for_other_process(self) -> None:
        """Block until whoever holds the lock file lets go, showing that we wait.

        Called without this process's turn, so on descriptors of its own (flock locks
        belong to an open file, which the turn's holder uses): a shared lock on the
        lock file waits for the holder, one on the intent file is what it sees.
        """
        with self._count_lock:  # several threads may wait here
            if self._probe is None and self._path is not None:
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                self._probe = (
                    os.open(self._path, flags, 0o660),
                    os.open(f"{self._path}.intent", flags, 0o660),
                )
            probe = self._probe
        if probe is None:
            return
        lock_file, intent = probe
        fcntl.flock(intent, fcntl.LOCK_SH)
        try:
            fcntl.flock(lock_file, fcntl.LOCK_SH)
            fcntl.flock(lock_file, fcntl.LOCK_UN)
        finally:
            fcntl.flock(intent, fcntl.LOCK_UN)

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
            self._release()

    def _release(self) -> None:
        self._depth -= 1
        self._threads.release()

    def close(self) -> None:
        with self._threads:
            for fd in (self._fd, self._intent, *(self._probe or ())):
                if fd is not None:
                    os.close(fd)
            self._fd = self._intent = self._probe = None


def database_file(database: str | None) -> Path | None:
    """The file of a SQLite database (None for an in-memory database or a URI name)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def lock_path(database: str | None) -> Path | None:
    """The lock file of a SQLite database file (None for an in-memory database)."""
    path = database_file(database)
    return None if path is None else Path(f"{path}-writer.lock")
