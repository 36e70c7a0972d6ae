"""SQLite's one writer at a time, as a lock that wakes the next writer at once.

SQLite lets a waiting writer sleep and poll (its busy handler, up to 100 ms a turn):
under load that polling, not the work, was most of the intake latency.  Writers
instead queue here: threads on a lock of this process, processes (the daemon and its
worker processes, ``mailbot deliver`` from the MTA) on ``flock`` of a file beside the
database, which the kernel hands to the next waiter as soon as it is released.
SQLite's own locking still guards the data; this only decides who asks first.
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
        self._path = path
        self._fd: int | None = None

    def _file(self) -> int | None:
        if self._fd is None and self._path is not None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
            except OSError:  # a read-only folder: SQLite's busy handler still serialises
                self._path = None
        return self._fd

    def __enter__(self) -> WriterLock:
        self._threads.acquire()
        self._depth += 1
        if self._depth == 1 and (fd := self._file()) is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._threads.release()
                raise
        return self

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
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def lock_path(database: str | None) -> Path | None:
    """The lock file of a SQLite database file (None for an in-memory database)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}-writer.lock")
