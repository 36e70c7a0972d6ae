"""Parse and quote-strip a backlog in other processes, handing results back in order.

``mailbot import`` spends about half its time on work that needs no database (sender
guess, digest, MIME parse, quote stripping: ``mailbot.worker.prepare``).  That work runs
here in a process pool while the importing process stores and applies the previous
chunk; the decisions themselves stay in one process and in mailbox order, so a reply
always finds the ticket its original created.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from multiprocessing.pool import AsyncResult, Pool
from types import TracebackType

from mailbot.commands.deliver import guess_sender
from mailbot.message import InboundMail
from mailbot.pipeline.limits import Limits
from mailbot.store.threads import ThreadSettings
from mailbot.worker import Rejected, prepare

# Chunks handed to the pool ahead of the one being applied: enough to keep every
# process busy, few enough that a large mbox is never in memory at once.
CHUNKS_AHEAD = 4


@dataclass(frozen=True)
class Prepared:
    """One message of a chunk, ready to store and apply (the chunk holds its bytes)."""

    raw_sha256: str
    mail_from: str
    mail: InboundMail | Rejected


def prepare_raw(raw: bytes, limits: Limits, thread: ThreadSettings) -> Prepared:
    """Everything about one message that needs no database."""
    sender = guess_sender(raw)
    mail = prepare(raw, sender, limits, thread)
    return Prepared(hashlib.sha256(raw).hexdigest(), sender, mail)


def _ignore_interrupts() -> None:
    """Ctrl-C is the importing process's to handle (it ends the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PreparePool:
    """``prepared(chunks)`` yields each chunk's ``Prepared`` list in order.

    With ``processes`` = 0 everything runs in this process.  Create the pool before the
    database is opened or any thread started: where the platform has ``fork`` it is
    used, and a fork is only safe before those exist.
    """

    def __init__(self, processes: int, limits: Limits, thread: ThreadSettings) -> None:
        self._limits = limits
        self._thread = thread
        self._pool: Pool | None = None
        if processes > 0:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self._pool = context.Pool(processes, initializer=_ignore_interrupts)

    def __enter__(self) -> PreparePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pool is None:
            return
        if exc_type is None:
            self._pool.close()
        else:
            self._pool.terminate()
        self._pool.join()

    def prepared(
        self, chunks: Iterable[list[bytes]]
    ) -> Iterator[tuple[list[bytes], list[Prepared]]]:
        if self._pool is None:
            for chunk in chunks:
                yield chunk, [prepare_raw(raw, self._limits, self._thread) for raw in chunk]
            return
        work = partial(prepare_raw, limits=self._limits, thread=self._thread)
        pending: deque[tuple[list[bytes], AsyncResult[list[Prepared]]]] = deque()
        for chunk in chunks:
            pending.append((chunk, self._pool.map_async(work, chunk)))
            if len(pending) > CHUNKS_AHEAD:
                yield self._collect(*pending.popleft())
        while pending:
            yield self._collect(*pending.popleft())

    @staticmethod
    def _collect(
        chunk: list[bytes], result: AsyncResult[list[Prepared]]
    ) -> tuple[list[bytes], list[Prepared]]:
        return chunk, result.get()
