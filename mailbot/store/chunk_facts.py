"""What the worker reads once for a whole chunk of messages instead of once for each.

A chunk is applied in one transaction (``Worker._apply_chunk``).  Three lookups that
each message made on its own become one query for the chunk:

- the status of every inbound row, locked FOR UPDATE as the per-message read locked it;
- which of the chunk's dedup keys a thread entry already has (screen and decide ask);
- on SQLite, the highest ticket number: the transaction holds the write lock, so until it
  commits only it adds tickets, and the next numbers are counted here.

The facts stay true for the transaction because it tells them its own changes (a thread
entry added, a number taken).  On PostgreSQL another daemon may commit a twin of a
message after the read, as it could after the per-message read: the unique dedup key
refuses the second insert, and the chunk is redone one message per transaction, where
the twin is found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from mailbot.store.models import InboundMessage, ThreadEntry

# Built once: on the hot path building a statement costs more than running it.
_STATUSES = (
    select(InboundMessage.id, InboundMessage.status)
    .where(col(InboundMessage.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(InboundMessage.id))  # one lock order for every worker
    .with_for_update()
)
_KEYS_SEEN = select(ThreadEntry.dedup_key).where(
    col(ThreadEntry.dedup_key).in_(bindparam("keys", expanding=True))
)


class ChunkFacts:
    """Statuses, known dedup keys and (SQLite) ticket numbers of one transaction."""

    def __init__(self, statuses: dict[int, str], asked: set[str], seen: set[str]) -> None:
        self._statuses = statuses
        self._asked = asked
        self._seen = seen
        self._last_number: int | None = None

    @classmethod
    def read(
        cls, session: Session, inbound_ids: Iterable[int], dedup_keys: Iterable[str]
    ) -> ChunkFacts:
        connection = session.connection()
        found = connection.execute(_STATUSES, {"ids": list(inbound_ids)})
        statuses = {int(inbound_id): status for inbound_id, status in found}
        asked = set(dedup_keys)
        seen = set(connection.execute(_KEYS_SEEN, {"keys": sorted(asked)}).scalars())
        return cls(statuses, asked, seen)

    def status(self, inbound_id: int) -> str | None:
        """The row's status when the chunk began (None: no such row)."""
        return self._statuses.get(inbound_id)

    def knows_key(self, dedup_key: str) -> bool:
        return dedup_key in self._asked or dedup_key in self._seen

    def has_entry(self, dedup_key: str) -> bool:
        """Whether a thread entry has the key (only for keys ``knows_key`` accepts)."""
        return dedup_key in self._seen

    def entry_added(self, dedup_key: str) -> None:
        self._seen.add(dedup_key)

    def counted_number(self, highest: Callable[[], int]) -> int:
        """The next ticket number: ``highest()`` read once, then counted (SQLite only)."""
        if self._last_number is None:
            self._last_number = highest()
        self._last_number += 1
        return self._last_number
