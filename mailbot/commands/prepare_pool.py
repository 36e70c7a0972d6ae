"""Parse and quote-strip a backlog in other processes, handing results back in order.

``mailbot import`` spends about half its time on work that needs no database (sender
guess, digest, MIME parse, quote stripping: ``mailbot.worker.prepare``).  That work runs
here in a process pool while the importing process stores and applies the previous
chunk; the decisions themselves stay in one process and in mailbox order, so a reply
always finds the ticket its original created.  When the pool falls behind, the importing
process prepares the next piece of the mailbox itself instead of waiting: on two cores,
one pool process and the importing one are each the slower at times.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import multiprocessing
import pickle
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from types import TracebackType

from mailbot.batching import chunks as in_pieces
from mailbot.commands.deliver import guess_sender, sender_from
from mailbot.message import InboundMail
from mailbot.pipeline.limits import Limits
from mailbot.store.threads import ThreadSettings
from mailbot.worker import Rejected, prepare

# Chunks go to the pool in pieces of this many messages.  A piece is also what this
# process prepares itself when the pool is behind (about 35 ms of work).
PIECE = 50
# Pieces handed to the pool ahead of the one being applied: enough to keep every
# process busy, few enough that a large mbox is never in memory at once.
PIECES_AHEAD = 16
# Seconds to wait for a piece before preparing one here (see _ready_soon).
HANDOVER_WAIT = 0.005


@dataclass(frozen=True)
class Prepared:
    """One message of a chunk, ready to store and apply (the chunk holds its bytes)."""

    raw_sha256: str
    mail_from: str
    mail: InboundMail | Rejected


def prepare_raw(raw: bytes, limits: Limits, thread: ThreadSettings) -> Prepared:
    """Everything about one message that needs no database.

    The sender is read from the headers the parse found (``guess_sender`` parsed the
    header block again, 8% of an import's work); only an unreadable message has its
    header block parsed for it alone.
    """
    prepared = prepare(raw, None, limits, thread)
    parsed = prepared if isinstance(prepared, InboundMail) else prepared.mail
    if parsed is None:
        return Prepared(hashlib.sha256(raw).hexdigest(), guess_sender(raw), prepared)
    return_path = parsed.headers.get("return-path")
    sender = sender_from(return_path[0] if return_path else None, _first(parsed.headers, "from"))
    parsed = dataclasses.replace(parsed, envelope_from=sender)
    if isinstance(prepared, Rejected):
        return Prepared(parsed.raw_sha256, sender, Rejected(prepared.reason, parsed))
    return Prepared(parsed.raw_sha256, sender, parsed)


def _first(headers: dict[str, tuple[str, ...]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def freeze_startup_objects() -> None:
    """Keep the objects alive now (modules, the application) out of garbage collection.

    A backlog allocates millions of short-lived objects; each of the collections they
    trigger that reaches the oldest generation walked every module, mapper and
    compiled statement again: about 4% of an import's instructions (callgrind).
    """
    gc.collect()
    gc.freeze()


def _start_pool_process() -> None:
    """Ctrl-C is the importing process's to handle (it ends the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    freeze_startup_objects()


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
        self._handover: Path | None = None
        if processes > 0:
            # Prepared pieces come back through files here, not through the pool's pipe
            # (see _prepare_into).  Private to this user (mkdtemp: mode 0700).
            self._handover = Path(tempfile.mkdtemp(prefix="mailbot-import-"))
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self._pool = context.Pool(processes, initializer=_start_pool_process)

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
        if self._handover is not None:
            shutil.rmtree(self._handover, ignore_errors=True)

    def prepared(
        self, chunks: Iterable[list[bytes]]
    ) -> Iterator[tuple[list[bytes], list[Prepared]]]:
        """Each chunk with its messages prepared, in order.

        With a pool, its first pieces are handed to it now, not at the first ``next``:
        it parses them while this process opens the database (a tenth of a second or
        more in which it would otherwise wait).
        """
        if self._pool is None:
            return ((chunk, self._here(chunk)) for chunk in chunks)
        pieces = _PiecesInOrder(
            self._pool,
            self._pieces_of(chunks),
            partial(prepare_raw, limits=self._limits, thread=self._thread),
            str(self._handover),
            self._here,
        )
        return _regrouped(pieces)

    @staticmethod
    def _pieces_of(chunks: Iterable[list[bytes]]) -> Iterator[tuple[int, list[bytes]]]:
        numbered = enumerate(chunks)
        return ((index, piece) for index, chunk in numbered for piece in in_pieces(chunk, PIECE))

    def _here(self, messages: list[bytes]) -> list[Prepared]:
        return [prepare_raw(raw, self._limits, self._thread) for raw in messages]


def _regrouped(
    pieces: Iterable[tuple[int, list[bytes], list[Prepared]]],
) -> Iterator[tuple[list[bytes], list[Prepared]]]:
    """Pieces (chunk number, messages, prepared) put back together into their chunks."""
    chunk_of: list[bytes] = []
    done: list[Prepared] = []
    current = -1
    for index, piece, prepared in pieces:
        if index != current and current >= 0:
            yield chunk_of, done
            chunk_of, done = [], []
        current = index
        chunk_of += piece
        done += prepared
    if current >= 0:
        yield chunk_of, done


class _PiecesInOrder:
    """(chunk number, piece, its messages prepared) in mailbox order, from the pool or,
    when the pool is behind, prepared here.  ``PIECES_AHEAD`` pieces go to the pool as
    soon as this is made."""

    def __init__(
        self,
        pool: Pool,
        source: Iterator[tuple[int, list[bytes]]],
        work: Callable[[bytes], Prepared],
        folder: str,
        here: Callable[[list[bytes]], list[Prepared]],
    ) -> None:
        self._pool = pool
        self._source = source
        self._work = work
        self._folder = folder
        self._here = here
        # In mailbox order: pieces with the pool (AsyncResult of the file its results
        # are in) and pieces prepared here.
        self._ahead: deque[tuple[int, list[bytes], AsyncResult[str] | list[Prepared]]] = deque()
        self._top_up()

    def _with_the_pool(self) -> int:
        return sum(isinstance(result, AsyncResult) for _, _, result in self._ahead)

    def _top_up(self) -> None:
        while self._with_the_pool() < PIECES_AHEAD:
            item = next(self._source, None)
            if item is None:
                return
            index, piece = item
            result = self._pool.apply_async(_prepare_into, (self._work, piece, self._folder))
            self._ahead.append((index, piece, result))

    def __iter__(self) -> Iterator[tuple[int, list[bytes], list[Prepared]]]:
        ahead = self._ahead
        while ahead:
            index, piece, result = ahead[0]
            # The pool is behind: rather than wait for it, prepare the next piece of the
            # mailbox here (its turn comes after the pool's).
            while (
                isinstance(result, AsyncResult)
                and not _ready_soon(result)
                and len(ahead) - self._with_the_pool() < PIECES_AHEAD
            ):
                item = next(self._source, None)
                if item is None:
                    break
                ahead.append((item[0], item[1], self._here(item[1])))
            ahead.popleft()
            yield index, piece, _taken(result.get()) if isinstance(result, AsyncResult) else result
            self._top_up()


def _ready_soon(result: AsyncResult[str]) -> bool:
    """Ready, or within a moment: while this process prepares, it holds the GIL, and the
    pool's threads here that pass pieces out (and results back) cannot run."""
    result.wait(HANDOVER_WAIT)
    return result.ready()


def _prepare_into(work: Callable[[bytes], Prepared], messages: list[bytes], folder: str) -> str:
    """Prepare a piece in a pool process; returns the file its results were written to.

    Through the pool's pipe, a piece's results (about its size) were read 64 KiB at a
    time by a thread of the importing process, which waited for the GIL between reads:
    the pool process sat idle until they were taken.  A file is read in one call.
    """
    results = [work(raw) for raw in messages]
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".pickle", delete=False) as out:
        pickle.dump(results, out, protocol=pickle.HIGHEST_PROTOCOL)
    return out.name


def _taken(path: str) -> list[Prepared]:
    """The results a pool process wrote (``_prepare_into``); the file is removed."""
    handover = Path(path)
    data = handover.read_bytes()
    handover.unlink()
    results: list[Prepared] = pickle.loads(data)  # written by our own pool, in our folder
    return results
