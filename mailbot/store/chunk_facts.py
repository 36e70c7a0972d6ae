"""What the worker reads once for a whole chunk of messages instead of once for each.

A chunk is applied in one transaction (``Worker._apply_chunk``), even a chunk of one
message.  What each message would look up on its own is read for the chunk in two
statements (the statuses, locked; the rest in one UNION ALL), or counted:

- the status of every inbound row, locked FOR UPDATE as the per-message read locked it;
- which of the chunk's dedup keys a thread entry already has (screen and decide ask);
- which tickets know the chunk's Message-IDs and the ones they reference (threading);
- on SQLite, the highest ticket number: the transaction holds the write lock, so until it
  commits only it adds tickets, and the next numbers are counted here;
- for the senders, the acknowledgements sent to them in the last hour (the per-sender
  limit) and whether they bounced recently (suppression).

What only these facts read while the chunk lasts is also written once for the chunk,
at its end (``mailbot.store.apply.write_chunk_end``): its thread entries (one INSERT,
executemany; an entry whose id is needed at once, for its attachments, is written with
those before it), the Message-IDs they add (one INSERT), the participants they show (one
INSERT; asked whether someone is on a ticket, the facts know the ones added) and its
rows' outcomes (one UPDATE for all).  On PostgreSQL that is four round trips per chunk
instead of four or five per message.

The facts stay true for the transaction because it tells them its own changes (a thread
entry and its Message-IDs added, a number taken, an acknowledgement queued; a bounce
makes them forget the suppressions, which are then asked for one by one).  On
PostgreSQL another daemon may commit a twin of a message after the read, as it could
after the per-message read: the unique dedup key refuses the second insert, and the
chunk is redone one message per transaction, where the twin is found.  What another
daemon commits for the same sender meanwhile (an acknowledgement, a bounce) counts from
the next chunk, a few milliseconds later; the per-message reads could not see what it
had not committed either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, cast, func, literal, null, union_all
from sqlmodel import Session, col, select

from mailbot.message import InboundMail
from mailbot.pipeline.decide import ACK_WINDOW_SECONDS
from mailbot.store.models import (
    InboundMessage,
    MessageRef,
    OutboxMessage,
    Suppression,
    ThreadEntry,
)

# Built once: on the hot path building a statement costs more than running it.
_STATUSES = (
    select(InboundMessage.id, InboundMessage.status)
    .where(col(InboundMessage.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(InboundMessage.id))  # one lock order for every worker
    .with_for_update()
)
_NO_NUMBER = cast(null(), Integer)
# The other four lookups, as one statement of (what, key, number) rows: on PostgreSQL
# each statement is a round trip the worker waits for (about half its time under load).
_LOOKUPS = union_all(
    select(literal("key"), ThreadEntry.dedup_key, _NO_NUMBER).where(
        col(ThreadEntry.dedup_key).in_(bindparam("keys", expanding=True))
    ),
    select(literal("ref"), MessageRef.message_id, MessageRef.ticket_id).where(
        col(MessageRef.message_id).in_(bindparam("message_ids", expanding=True))
    ),
    select(literal("ack"), OutboxMessage.recipient, func.count())
    .where(OutboxMessage.kind == "ack")
    .where(col(OutboxMessage.recipient).in_(bindparam("senders", expanding=True)))
    .where(col(OutboxMessage.created_at) >= bindparam("since"))
    .group_by(col(OutboxMessage.recipient)),
    select(literal("suppressed"), Suppression.address, _NO_NUMBER)
    .where(col(Suppression.address).in_(bindparam("lowered", expanding=True)))
    .where(col(Suppression.until) > bindparam("now")),
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
        self._senders: set[str] = set()
        self._acks: Counter[str] = Counter()
        self._acks_since: datetime | None = None
        self._suppression_asked: set[str] | None = None
        self._suppressed: set[str] = set()
        # Written at the chunk's end (write_chunk_end): thread entries, message_ref and
        # participant rows in the order they were added (entries keep their order in the
        # thread; the first ticket to name a Message-ID keeps it; participants keep the
        # order they joined in), and the finished inbound rows' new values.
        self.entries_to_insert: list[dict[str, Any]] = []
        self.refs_to_insert: list[dict[str, Any]] = []
        self.participants_to_insert: list[dict[str, Any]] = []
        self.finished_inbound: list[dict[str, Any]] = []
        self._participants_added: set[tuple[int, str]] = set()

    @classmethod
    def read(
        cls,
        session: Session,
        inbound_ids: Iterable[int],
        mails: list[InboundMail],
        now: datetime,
    ) -> ChunkFacts:
        """Two statements: the statuses (locked) and the other four lookups at once."""
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
        senders = {mail.from_address for mail in mails if mail.from_address}
        lowered = {address.strip().lower() for address in senders}
        since = now - timedelta(seconds=ACK_WINDOW_SECONDS)
        values = {
            "keys": sorted(keys),
            "message_ids": sorted(message_ids),
            "senders": sorted(senders),
            "since": since,
            "lowered": sorted(lowered),
            "now": now,
        }
        seen: set[str] = set()
        refs: dict[str, int] = {}
        facts = cls(statuses, (keys, seen), (message_ids, refs))
        facts._senders, facts._acks_since = senders, since
        facts._suppression_asked = lowered
        for what, key, number in connection.execute(_LOOKUPS, values):
            if what == "key":
                seen.add(key)
            elif what == "ref":
                refs[key] = int(number)
            elif what == "ack":
                facts._acks[key] = int(number)
            else:
                facts._suppressed.add(key)
        return facts

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

    def participants_added(self, rows: list[dict[str, Any]]) -> None:
        """Participant rows (ticket_id, address as stored) to write at the chunk's end."""
        self.participants_to_insert += rows
        self._participants_added.update((row["ticket_id"], row["address"]) for row in rows)

    def added_participant(self, ticket_id: int, address: str) -> bool:
        """Whether this chunk made ``address`` (as stored) a participant of the ticket.
        No means only "not this chunk": the caller then asks the database."""
        return (ticket_id, address) in self._participants_added

    def knows_acks_to(self, address: str, since: datetime) -> bool:
        return since == self._acks_since and address in self._senders

    def acks_to(self, address: str) -> int:
        """Acknowledgements to ``address`` since the hour's start (``knows_acks_to``)."""
        return self._acks[address]

    def outbox_added(self, kind: str, recipient: str) -> None:
        if kind == "ack" and recipient in self._senders:
            self._acks[recipient] += 1

    def knows_suppression(self, address: str) -> bool:
        """``address`` lower-cased, as suppressions are kept."""
        return self._suppression_asked is not None and address in self._suppression_asked

    def is_suppressed(self, address: str) -> bool:
        return address in self._suppressed

    def suppressions_changed(self) -> None:
        """A bounce added suppressions: from now on they are asked for one by one."""
        self._suppression_asked = None

    def counted_number(self, highest: Callable[[], int]) -> int:
        """The next ticket number: ``highest()`` read once, then counted (SQLite only)."""
        if self._last_number is None:
            self._last_number = highest()
        self._last_number += 1
        return self._last_number
