"""Deliveries not yet marked ``sent`` in the database, in a file that outlives a kill.

On SQLite every write transaction takes the one write lock, and a "sent" mark per
delivery made the sender the busiest writer: each mark cut short the worker's batch
and delayed the listener's next commit.  The sender now marks a whole batch in one
transaction.  Between the relay's 250 and that transaction, each delivered row is
appended here (its id and Message-ID, one line).  That ``write`` reaches the page cache
and survives the process being killed, like the database's own lazy commits; only an
operating-system crash or power loss can take it back.

A sender that starts finds the journals of senders that died (their lock is free),
marks those rows sent instead of delivering them again, and deletes the files.  So a
kill still resends at most the one message whose 250 had arrived but whose line was not
yet written, as with a mark per delivery.

Each sender has a file of its own (``<database>-sent.<random>.journal``), held with an
exclusive ``flock`` while it lives: a file whose lock can be taken belongs to no living
sender.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailbot.store.writer_lock import database_file

SUFFIX = ".journal"


@dataclass(frozen=True)
class Orphan:
    """A dead sender's journal: the rows it delivered without marking them sent."""

    path: Path
    fd: int  # locked by us until ``SentJournal.forget``
    deliveries: tuple[tuple[int, str], ...]  # (outbox row id, its Message-ID)


def _read_deliveries(fd: int) -> tuple[tuple[int, str], ...]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    found = []
    for line in b"".join(chunks).decode("utf-8", "replace").split("\n"):
        row_id, _, message_id = line.partition(" ")
        if row_id.isdigit() and message_id:  # a torn last line is skipped
            found.append((int(row_id), message_id))
    return tuple(found)


class SentJournal:
    """This sender's journal file, plus access to the files of senders that died."""

    def __init__(self, database: Path) -> None:
        self._folder = database.parent
        self._prefix = f"{database.name}-sent."
        self._fd: int | None = None  # created at the first delivery
        self.path: Path | None = None

    def _open(self) -> int:
        """Create and lock this sender's file: locked under a name no other sender looks
        at, then renamed, so it is never seen unlocked while its sender lives."""
        fd, name = tempfile.mkstemp(prefix=f".{self._prefix}", dir=self._folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = self._folder / f"{Path(name).name[1:]}{SUFFIX}"
            os.rename(name, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        self._fd, self.path = fd, path
        return fd

    @classmethod
    def beside(cls, database: str | None) -> SentJournal | None:
        """A journal beside a SQLite database file; None for an in-memory database (the
        sender then marks each delivery on its own)."""
        path = database_file(database)
        return None if path is None else cls(path)

    def record(self, outbox_id: int, message_id: str) -> None:
        """Note one delivered row (called right after the relay's 250).

        One ``write`` of one line: a kill leaves it whole or, at worst, torn and skipped.
        """
        fd = self._fd if self._fd is not None else self._open()
        os.write(fd, f"{outbox_id} {message_id}\n".encode())

    def clear(self) -> None:
        """Everything noted so far is marked sent in the database."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)

    def orphans(self) -> Iterator[Orphan]:
        """Journals of senders that are gone, each locked until ``forget``."""
        for path in sorted(self._folder.glob(f"{self._prefix}*{SUFFIX}")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:  # another sender just forgot it
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its sender is alive
                os.close(fd)
                continue
            yield Orphan(path, fd, _read_deliveries(fd))

    @staticmethod
    def forget(orphan: Orphan) -> None:
        """Delete a dead sender's journal once its rows are marked sent."""
        with contextlib.suppress(FileNotFoundError):
            orphan.path.unlink()
        os.close(orphan.fd)

    @staticmethod
    def release(orphan: Orphan) -> None:
        """Leave a dead sender's journal for the next try (marking its rows failed)."""
        os.close(orphan.fd)

    def close(self) -> None:
        """Remove this sender's journal (all of it marked sent) and let the file go."""
        if self._fd is None or self.path is None:
            return
        if os.fstat(self._fd).st_size == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = self.path = None
