"""Group commit: the raw messages of many SMTP sessions stored in one transaction.

Every 250 waits for its message's commit (on SQLite an fsync).  While one transaction
commits, the messages that finish DATA meanwhile queue here and go into the next
transaction together: one write lock, one fsync and one hand-over to a thread for all
of them, instead of one each.  With one client nothing waits longer than before; with
many, the listener stops spending its time queueing for the write lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

MAX_GROUP = 64


@dataclass(frozen=True)
class RawMessage:
    source: str
    mail_from: str
    rcpt_to: list[str]
    raw: bytes
    send_ack: bool = True


StoreMany = Callable[[list[RawMessage]], list[int]]  # one transaction; the new row ids


class GroupCommitter:
    """``await store(message)``: its row id once committed, or the storing error."""

    def __init__(self, store_many: StoreMany, max_group: int = MAX_GROUP) -> None:
        self._store_many = store_many
        self._max_group = max_group
        self._waiting: list[tuple[RawMessage, asyncio.Future[int]]] = []
        self._task: asyncio.Task[None] | None = None  # the commit loop, while it runs

    async def store(self, message: RawMessage) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if self._task is None:
            self._task = asyncio.create_task(self._commit_while_waiting())
        return await future

    async def _commit_while_waiting(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._max_group]
                del self._waiting[: len(group)]
                await self._commit(group)
        finally:
            self._task = None

    async def _commit(self, group: list[tuple[RawMessage, asyncio.Future[int]]]) -> None:
        """Store one group; every waiter gets its id or the error (never left waiting)."""
        try:
            ids = await asyncio.to_thread(self._store_many, [m for m, _ in group])
            if len(ids) != len(group):
                raise RuntimeError(f"stored {len(ids)} rows for {len(group)} messages")
        except BaseException as exc:  # all of the group answer 451; senders retry
            for _, future in group:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), inbound_id in zip(group, ids, strict=True):
            if not future.done():
                future.set_result(inbound_id)
