"""What the worker reads once for a whole chunk of messages instead of once for each.

A chunk is applied in one transaction (``Worker._apply_chunk``).  Four lookups that
each message made on its own become one query for the chunk:

- the status of every inbound row, locked FOR UPDATE as the per-message read locked it;
- which of the chunk's dedup keys a thread entry already has (screen and decide ask);
- which tickets know the chunk's Message-IDs and the ones they reference (threading);
- on SQLite, the highest ticket number: the transaction holds the write lock, so until it
  commits only it adds tickets, and the next numbers are counted here.

The facts stay true for the transaction because it tells them its own changes (a thread
entry and its Message-IDs added, a number taken).  On PostgreSQL another daemon may
commit a twin of a message after the read, as it could after the per-message read: the
unique dedup key refuses the second insert, and the chunk is redone one message per
transaction, where the twin is found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from mailbot.message import InboundMail
from mailbot.store.models import InboundMessage, ThreadEntry
from mailbot.store.repo import tickets_of_message_ids

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
    """Statuses, known dedup keys and Message-IDs, and (SQLite) ticket numbers of one
    transaction.  A key or Message-ID the chunk did not ask about is not known here:
    the caller looks it up itself."""

    def __init__(
        self,
        statuses: dict[int, str],
        keys: tuple[set[str], set[str]],
        refs: tuple[set[str], dict[str, int]],
    ) -> None:
        self._statuses = statuses
        self._asked_keys, self._seen_keys = keys
        self._asked_ids, self._refs = refs
        self._last_number: int | None = None

    @classmethod
    def read(
        cls, session: Session, inbound_ids: Iterable[int], mails: Iterable[InboundMail]
    ) -> ChunkFacts:
        connection = session.connection()
        found = connection.execute(_STATUSES, {"ids": list(inbound_ids)})
        statuses = {int(inbound_id): status for inbound_id, status in found}
        keys: set[str] = set()
        message_ids: set[str] = set()
        for mail in mails:
            keys.add(mail.dedup_key)
            message_ids.update(mail.referenced_ids)
            if mail.message_id:
                message_ids.add(mail.message_id)
        seen = set(connection.execute(_KEYS_SEEN, {"keys": sorted(keys)}).scalars())
        refs = tickets_of_message_ids(session, sorted(message_ids))
        return cls(statuses, (keys, seen), (message_ids, refs))

    def status(self, inbound_id: int) -> str | None:
        """The row's status when the chunk began (None: no such row)."""
        return self._statuses.get(inbound_id)

    def knows_key(self, dedup_key: str) -> bool:
        return dedup_key in self._asked_keys or dedup_key in self._seen_keys

    def has_entry(self, dedup_key: str) -> bool:
        """Whether a thread entry has the key (only for keys ``knows_key`` accepts)."""
        return dedup_key in self._seen_keys

    def knows_message_ids(self, message_ids: Iterable[str]) -> bool:
        return all(mid in self._asked_ids or mid in self._refs for mid in message_ids)

    def ticket_ids(self, message_ids: Iterable[str]) -> dict[str, int]:
        """The tickets that know these Message-IDs (only for ids ``knows_message_ids``
        accepts)."""
        return {mid: self._refs[mid] for mid in message_ids if mid in self._refs}

    def entry_added(self, dedup_key: str, message_ids: Iterable[str], ticket_id: int) -> None:
        """A thread entry was inserted, and its Message-IDs (ON CONFLICT DO NOTHING: a
        Message-ID keeps the ticket that had it first)."""
        self._seen_keys.add(dedup_key)
        for mid in message_ids:
            if mid in self._asked_ids:
                self._refs.setdefault(mid, ticket_id)

    def counted_number(self, highest: Callable[[], int]) -> int:
        """The next ticket number: ``highest()`` read once, then counted (SQLite only)."""
        if self._last_number is None:
            self._last_number = highest()
        self._last_number += 1
        return self._last_number
