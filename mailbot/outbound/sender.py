"""The outbox sender: the one component that delivers anything.

Rows are leased (``claimed_until``) so that a crashed sender's work is taken over
after the lease; a crash between delivery and the ``sent`` mark resends the same
bytes with the same Message-ID, never a different message.

With a journal (SQLite, mailbot/outbound/sent_journal.py) a batch's deliveries are
marked sent together, in the next claim's transaction, each noted in the journal the
moment the relay accepted it; without one (PostgreSQL) each is marked on its own at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session

from mailbot.outbound.sent_journal import SentJournal
from mailbot.outbound.transports import (
    ChannelUnavailable,
    PermanentDelivery,
    TransientDelivery,
    Transport,
)
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store.db import Store
from mailbot.store.models import OutboxMessage
from mailbot.store.repo import claim_outbox_numbered, mark_outbox, mark_outbox_sent

# Seconds a relay connection stays open after the last delivery.  Acknowledgements come
# with gaps (replies and automatic mail queue none): closing the connection whenever a
# wake-up found nothing to send made most of them a new SMTP session (connect, EHLO, and
# STARTTLS and AUTH where the relay asks for them).  Postfix keeps an idle connection 2 s
# (smtp_connection_cache_time_limit); an older one is asked with NOOP before reuse
# (transports.py).
KEEP_IDLE_CONNECTION = 2.0

# Seconds within which deliveries are marked sent when no new mail is queued meanwhile
# (whose claim would mark them): the outbox then shows them sent soon after.
MARK_WITHIN = 0.1

# Told about every delivery attempt: (row, "sent" | "retry" | "failed", error or None).
# The Application passes one in for metrics and health; the sender stays unaware of both.
DeliveryObserver = Callable[[OutboxMessage, str, str | None], None]


def _no_observer(row: OutboxMessage, result: str, error: str | None) -> None:
    pass


def _shown_recipients(row: OutboxMessage) -> str:
    """Recipients for a log line; a webhook shows only scheme://host:port, since
    some webhooks carry their secret in the path or query."""
    if row.channel != "webhook":
        return row.recipients
    parts = urlsplit(row.recipients)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 15
    initial: float = 30.0
    maximum: float = 3600.0

    def delay(self, attempts: int) -> float:
        return min(self.maximum, self.initial * 2 ** max(0, attempts - 1))


class Sender:
    def __init__(
        self,
        *,
        store: Store,
        transports: Mapping[str, Callable[[], Transport]],
        clock: Callable[[], datetime],
        retry: RetryPolicy,
        batch_size: int = 50,
        lease_seconds: float = 120.0,
        log: logging.Logger | None = None,
        observer: DeliveryObserver = _no_observer,
        ticket_prefix: str = "SUP",
        journal: SentJournal | None = None,
    ) -> None:
        self.store = store
        self.journal = journal
        # Delivered, not yet marked sent: (row id, Message-ID, attempts, when).
        self._delivered: list[tuple[int, str, int | None, datetime]] = []
        self._orphans_marked = journal is None
        self.observer = observer
        self.ticket_prefix = ticket_prefix
        self._refs: dict[int, str] = {}  # ticket id → reference, for log lines of this batch
        self.transports = transports
        self.clock = clock
        self.retry = retry
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.log = log or logging.getLogger("mailbot.sender")
        # Relay connections stay open while there is work, so a burst of acknowledgements
        # is one SMTP session, not one per batch.  Only the sender thread changes this.
        self._open: dict[str, Transport] = {}
        self._last_busy = 0.0  # time.monotonic() at the end of the last batch with rows

    def send_due(self) -> int:
        """Deliver what is due now; returns how many rows were attempted.

        With a journal, the last batch's deliveries are marked sent in this call's claim
        transaction (the daemon calls again when the worker queues mail, and within
        ``MARK_WITHIN`` seconds while deliveries are ``unmarked``), so the sender takes
        the write lock once per batch.
        """
        if not self._orphans_marked:
            self._mark_orphans()
        # The worker's lazy commits that made these rows must be on disk before anything
        # is sent (mailbot/store/db.py), so that no acknowledgement names a ticket a power
        # loss could take back.  On SQLite the claim commits lazily and the log is synced
        # once the write lock is free again (the listener's next 250 does not wait behind
        # this sync); elsewhere the claim's commit is durable.  Without deliveries to
        # mark, the claim is one statement (PostgreSQL: one round trip).
        sync_after = self.store.syncs_apart
        with self.store.transaction(
            durable=not sync_after, single_statement=not self._delivered
        ) as session:
            marked = self._take_delivered(session)
            claimed = claim_outbox_numbered(
                session, self.clock(), self.lease_seconds, self.batch_size
            )
        rows = [row for row, _ in claimed]
        self._refs = {
            row.ticket_id: format_reference(self.ticket_prefix, number)
            for row, number in claimed
            if row.ticket_id is not None and number is not None
        }
        self._marked(marked)
        if not rows:
            if time.monotonic() - self._last_busy >= KEEP_IDLE_CONNECTION:
                self.close()  # idle a while: let the relay connection go
            return 0
        if sync_after:
            self.store.sync()
        unavailable: dict[str, str] = {}  # channel -> why; the rest of its rows wait
        try:
            for row in rows:
                if row.channel in unavailable:
                    reason = f"not tried, channel unavailable: {unavailable[row.channel]}"
                    self._failed_attempt(row, row.attempts + 1, reason)
                    continue
                down = self._deliver(row, self._open)
                if down is not None:
                    unavailable[row.channel] = down
        except BaseException:
            self.close()
            with contextlib.suppress(Exception):  # the journal keeps them if this fails
                self._mark_delivered()
            raise
        self._last_busy = time.monotonic()
        return len(rows)

    @property
    def holds_connection(self) -> bool:
        """Whether a relay connection is open (closed by a call once idle a while)."""
        return bool(self._open)

    @property
    def unmarked(self) -> bool:
        """Whether deliveries wait to be marked sent (by the next ``send_due``)."""
        return bool(self._delivered)

    def close(self) -> None:
        """Close the connections kept open between busy batches."""
        for transport in self._open.values():
            transport.close()
        self._open.clear()

    def stop(self) -> None:
        """At shutdown: connections closed, deliveries marked, the journal removed."""
        self.close()
        self._mark_delivered()
        if self.journal is not None:
            self.journal.close()

    def _mark_delivered(self) -> None:
        """Mark the rows delivered since the last call sent, in one transaction."""
        if not self._delivered:
            return
        # Lost: in the journal, or sent again with the same Message-ID.  One row (no
        # journal: each is marked at once) is one statement.
        single = len(self._delivered) == 1
        with self.store.transaction(durable=False, single_statement=single) as session:
            marked = self._take_delivered(session)
        self._marked(marked)

    def _take_delivered(self, session: Session) -> int:
        """Mark the delivered rows sent in ``session``; ``_marked`` with the count once it
        has committed."""
        if not self._delivered:
            return 0
        mark_outbox_sent(session, self._delivered)
        return len(self._delivered)

    def _marked(self, count: int) -> None:
        """The first ``count`` delivered rows are marked sent: forget them."""
        if not count:
            return
        del self._delivered[:count]
        if self.journal is not None and not self._delivered:
            self.journal.clear()

    def _mark_orphans(self) -> None:
        """Rows a sender that died had delivered (its journal): sent, not to send again."""
        assert self.journal is not None
        for orphan in self.journal.orphans():
            try:
                if orphan.deliveries:
                    with self.store.transaction() as session:
                        now = self.clock()
                        marked = mark_outbox_sent(
                            session, [(i, mid, None, now) for i, mid in orphan.deliveries]
                        )
                    self.log.info(
                        "outbox: %d deliveries of a stopped sender marked sent (%s)",
                        marked,
                        orphan.path.name,
                    )
            except BaseException:
                self.journal.release(orphan)
                raise
            self.journal.forget(orphan)
        self._orphans_marked = True

    def _ref(self, row: OutboxMessage) -> str | None:
        return self._refs.get(row.ticket_id) if row.ticket_id is not None else None

    def _extra(self, row: OutboxMessage) -> dict[str, str | None]:
        """Structured fields for JSON logs: which message, which ticket."""
        return {"message_id": row.message_id, "ticket": self._ref(row)}

    def _deliver(self, row: OutboxMessage, open_transports: dict[str, Transport]) -> str | None:
        """Try one row; returns a reason when the whole channel is unreachable."""
        assert row.id is not None
        attempts = row.attempts + 1
        try:
            factory = self.transports.get(row.channel)
            if factory is None:
                raise PermanentDelivery(f"no transport configured for channel {row.channel!r}")
            if row.channel not in open_transports:
                open_transports[row.channel] = factory()
            recipients = [r for r in row.recipients.split(",") if r]
            open_transports[row.channel].send(row.envelope_from, recipients, row.payload)
        except ChannelUnavailable as exc:
            open_transports.pop(row.channel, None)
            self._failed_attempt(row, attempts, str(exc))
            return str(exc)
        except TransientDelivery as exc:
            self._failed_attempt(row, attempts, str(exc))
            return None
        except PermanentDelivery as exc:
            self._give_up(row, attempts, str(exc))
            return None
        except Exception as exc:  # a bug in a transport must not kill the sender loop
            self.log.exception("outbox %s: unexpected error", row.id, extra=self._extra(row))
            self._failed_attempt(row, attempts, f"{exc.__class__.__name__}: {exc}")
            return None
        if self.journal is not None:
            self.journal.record(row.id, row.message_id)  # first: a kill now resends nothing
        self._delivered.append((row.id, row.message_id, attempts, self.clock()))
        if self.journal is None:
            self._mark_delivered()  # lost: sent again, same ID
        self.observer(row, "sent", None)
        self.log.info(
            "outbox %s %s %s <%s> delivered to %s",
            row.id,
            row.kind,
            self._ref(row) or "-",
            row.message_id,
            _shown_recipients(row),
            extra=self._extra(row),
        )

    def _failed_attempt(self, row: OutboxMessage, attempts: int, error: str) -> None:
        assert row.id is not None
        if attempts >= self.retry.max_attempts:
            self._give_up(row, attempts, f"gave up after {attempts} attempts: {error}")
            return
        delay = self.retry.delay(attempts)
        with self.store.transaction() as session:
            mark_outbox(
                session,
                row.id,
                attempts=attempts,
                last_error=error[:2000],
                next_attempt_at=self.clock() + timedelta(seconds=delay),
                claimed_until=None,
            )
        self.observer(row, "retry", error)
        self.log.warning(
            "outbox %s %s %s <%s>: %s; retry %d in %.0fs",
            row.id,
            row.kind,
            self._ref(row) or "-",
            row.message_id,
            error,
            attempts,
            delay,
            extra=self._extra(row),
        )

    def _give_up(self, row: OutboxMessage, attempts: int, error: str) -> None:
        assert row.id is not None
        with self.store.transaction() as session:
            mark_outbox(
                session,
                row.id,
                status="failed",
                attempts=attempts,
                last_error=error[:2000],
                claimed_until=None,
            )
        self.observer(row, "failed", error)
        self.log.error(
            "outbox %s %s %s <%s> to %s failed: %s",
            row.id,
            row.kind,
            self._ref(row) or "-",
            row.message_id,
            _shown_recipients(row),
            error,
            extra=self._extra(row),
        )
