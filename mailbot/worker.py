"""The processing worker: inbound queue → parse → decide → one transaction.

Each stored message ends in exactly one of: ticket created, appended, ignored (with
reason) or quarantined (with reason).  Transient database errors put the message back
with a backoff; nothing else is retried automatically, so a poison message cannot spin.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailbot.batching import size_groups
from mailbot.message import InboundMail, parse
from mailbot.pipeline.authenticity import strip_internal_headers
from mailbot.pipeline.decide import IgnoreMessage, NewTicket, Policy, decide
from mailbot.pipeline.limits import Limits, check_parsed
from mailbot.pipeline.limits import scan as scan_limits
from mailbot.pipeline.screen import screen
from mailbot.store.apply import (
    AckBuilder,
    Applied,
    ServiceLevels,
    apply_decision,
    write_chunk_end,
)
from mailbot.store.chunk_facts import ChunkFacts
from mailbot.store.db import Store, is_transient
from mailbot.store.models import InboundMessage
from mailbot.store.repo import (
    RepoLookup,
    claim_inbound_sized,
    detached_row,
    inbound_status,
    mark_quarantined,
    release_for_retry,
)
from mailbot.store.threads import ThreadSettings, with_new_text

MAX_RETRY_DELAY = 300.0
# Messages (and raw bytes) loaded and prepared at a time within a batch.
GROUP_MESSAGES = 8
GROUP_BYTES = 16 * 1024 * 1024
_PENDING_ROWS = (
    select(InboundMessage.__table__)  # type: ignore[attr-defined]
    .where(col(InboundMessage.id).in_(bindparam("ids", expanding=True)))
    .where(InboundMessage.status == "pending")
    .order_by(col(InboundMessage.id))
)
# How long one worker transaction may hold SQLite's write lock before it commits.
MAX_LOCK_HOLD = 0.025
HISTORY_PAGES_NOBODY = "no page for mail stored without acknowledgement (an import)"


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    outcome: str  # created | appended | ignored | quarantined | retry | skipped
    ticket_ref: str | None = None
    detail: str = ""
    message_id: str | None = None
    source: str = ""
    severity: str | None = None  # of a created ticket (metrics: tickets created by severity)
    received_at: datetime | None = None  # when the raw message was stored (latency metrics)
    queued: int = 0  # outgoing mail (outbox rows) the decision queued


@dataclass(frozen=True)
class Rejected:
    """A message to quarantine before any decision: unreadable, or over a limit."""

    reason: str
    mail: InboundMail | None = None


def prepare(
    raw: bytes, envelope_from: str | None, limits: Limits, thread: ThreadSettings
) -> InboundMail | Rejected:
    """Limits, parse, header stripping and quote stripping: everything that needs no
    database, done before any lock is taken (by ``mailbot import`` in other processes).
    """
    mail: InboundMail | None = None
    try:
        over = scan_limits(raw, limits)  # before the expensive parse
        if over is None:
            mail = strip_internal_headers(parse(raw, envelope_from=envelope_from))
            over = check_parsed(mail, limits)
    except Exception:
        return Rejected("parse failed:\n" + traceback.format_exc())
    if over is not None or mail is None:
        return Rejected(f"over a limit: {over}", mail)
    try:
        return with_new_text(mail, thread)
    except Exception:
        return mail  # the thread code computes (or fails on) it again, inside apply


class Worker:
    def __init__(
        self,
        *,
        store: Store,
        policy: Policy,
        prefix: str,
        build_ack: AckBuilder,
        clock: Callable[[], datetime],
        batch_size: int = 50,
        lease_seconds: float = 300.0,
        log: logging.Logger | None = None,
        service: ServiceLevels | None = None,
        thread: ThreadSettings | None = None,
    ) -> None:
        self.store = store
        self.service = service
        # Readable text and participants (mailbot/store/threads.py); our own addresses and
        # staff come from the policy unless given.
        self.thread = thread or ThreadSettings(
            own_addresses=policy.own_addresses, staff=policy.staff
        )
        self.policy = policy
        # ``_policy_for`` mail stored without acknowledgement: (made from, policy), made
        # once rather than per message of an import.
        self._history_policy: tuple[Policy | None, Policy] = (None, policy)
        self.prefix = prefix
        self.build_ack = build_ack
        self.clock = clock
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.log = log or logging.getLogger("mailbot.worker")
        # Called after each commit that queued outgoing mail (with how many rows), before
        # the batch ends: the daemon wakes the sender then, and only then (a reply or an
        # automatic message, a third of the mail, queues nothing to send).
        self.on_commit: Callable[[int], None] | None = None
        # Called with the ids of each claimed batch (a worker process tells the daemon,
        # which releases them at once if the process dies with them).
        self.on_claimed: Callable[[list[int]], None] | None = None
        # A bulk import, which has nobody waiting for its answers, commits less often;
        # a writer that waits for the lock still ends the chunk at once.
        self.max_lock_hold = MAX_LOCK_HOLD

    def process_batch(self) -> list[Outcome]:
        """Claim a batch; prepare its messages (pure work, no lock) and apply them a few
        at a time (``process_ids``).

        A group's decisions are applied in one transaction (``_apply_chunk``); one commit
        per group instead of several per message is much of the worker's throughput.
        """
        with self.store.transaction(durable=False, single_statement=True) as session:
            claimed = claim_inbound_sized(
                session, self.clock(), self.lease_seconds, self.batch_size
            )
        ids = [inbound_id for inbound_id, _ in claimed]
        if ids and self.on_claimed is not None:
            self.on_claimed(ids)
        return self.process_ids(ids, dict(claimed))

    def process_ids(self, ids: list[int], sizes: dict[int, int]) -> list[Outcome]:
        """Process these (claimed) messages in order, as ``process_batch`` does.

        A few at a time (``GROUP_MESSAGES``, ``GROUP_BYTES``): loaded, prepared, applied.
        The first message of a batch is then decided after a few parses, not after all
        of them, and a batch of large messages is never in memory at once.
        """
        outcomes: list[Outcome] = []
        for group in size_groups(ids, sizes, GROUP_BYTES, most=GROUP_MESSAGES):
            rows = self._load_many(group)
            outcomes += self.apply_prepared([(row, self._prepare(row)) for row in rows])
        return outcomes

    def apply_prepared(
        self, items: Sequence[tuple[InboundMessage, InboundMail | Rejected]]
    ) -> list[Outcome]:
        """Apply claimed messages already prepared (``prepare``), in order.

        ``mailbot import`` prepares in other processes and calls this with rows it
        has just stored; the worker's own batches come through ``process_ids``.
        """
        outcomes: list[Outcome] = []
        ready: list[tuple[InboundMessage, InboundMail]] = []
        for row, prepared in items:
            if isinstance(prepared, Rejected):
                outcomes.append(self._quarantine(row, prepared.reason, prepared.mail))
            else:
                ready.append((row, prepared))
        return outcomes + self._apply_batch(ready)

    def _load_many(self, ids: list[int]) -> list[InboundMessage]:
        """The pending rows among ``ids``, detached (read with Core: the ORM's loading
        cost as much as the rest of a small batch's overhead)."""
        with self.store.read(single_statement=True) as session:
            found = session.connection().execute(_PENDING_ROWS, {"ids": ids}).mappings()
            return [detached_row(InboundMessage, dict(values)) for values in found]

    def _load(self, inbound_id: int) -> InboundMessage | None:
        rows = self._load_many([inbound_id])
        return rows[0] if rows else None

    def _prepare(self, row: InboundMessage) -> InboundMail | Rejected:
        return prepare(row.raw, row.mail_from, self.policy.security.limits, self.thread)

    def process_one(self, inbound_id: int) -> Outcome:
        row = self._load(inbound_id)
        if row is None:
            return Outcome(inbound_id, "skipped", detail="no longer pending")
        prepared = self._prepare(row)
        if isinstance(prepared, Rejected):
            return self._quarantine(row, prepared.reason, prepared.mail)
        return self._decide_and_apply(row, prepared)

    def _policy_for(self, row: InboundMessage) -> Policy:
        """Mail stored without acknowledgement (``mailbot import`` of a backlog, without
        ``--ack``) is history: nobody is told of it, and an old Emergency in it pages
        nobody."""
        if row.send_ack:
            return self.policy
        made_from, history = self._history_policy
        if made_from is not self.policy:  # first use, or the policy was replaced since
            quiet = dataclasses.replace(
                self.policy.paging, enabled=False, off_reason=HISTORY_PAGES_NOBODY
            )
            history = dataclasses.replace(self.policy, acknowledge=False, paging=quiet)
            self._history_policy = (self.policy, history)
        return history

    def _apply_in(
        self,
        session: Session,
        row: InboundMessage,
        mail: InboundMail,
        now: datetime,
        facts: ChunkFacts | None = None,
    ) -> tuple[Applied, str | None] | None:
        """Decide and apply one message in the caller's transaction; None if not pending.

        ``facts``: what the caller's transaction read for all its messages at once.
        """
        assert row.id is not None
        # Locked for the whole transaction: a worker that claims it after our lease ran
        # out skips it (SKIP LOCKED) or waits here and then sees it done.
        status = inbound_status(session, row.id) if facts is None else facts.status(row.id)
        if status != "pending":
            return None
        policy = self._policy_for(row)
        lookup = RepoLookup(session, now, facts)
        # Our own mail and bounces first (pipeline/screen.py), then the decision core.
        decision = screen(mail, row.raw, lookup, policy) or decide(mail, lookup, policy)
        applied = apply_decision(
            session,
            inbound_id=row.id,
            mail=mail,
            decision=decision,
            now=now,
            prefix=self.prefix,
            build_ack=self.build_ack,
            service=self.service,
            thread=self.thread,
            facts=facts,
        )
        # The next message in this transaction reads with Core statements, which do not
        # autoflush: this one's ORM changes (a reopened ticket, say) must be written now.
        session.flush()
        severity = decision.severity.label if isinstance(decision, NewTicket) else None
        return applied, severity

    def _apply_batch(self, ready: list[tuple[InboundMessage, InboundMail]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        while ready:
            applied = self._apply_chunk(ready)
            outcomes += applied
            ready = ready[len(applied) :]
        return outcomes

    def _apply_chunk(self, ready: list[tuple[InboundMessage, InboundMail]]) -> list[Outcome]:
        """Apply messages from the front of ``ready`` in one transaction until another
        writer waits for the write lock (the listener, the sender) or it has been held
        for ``max_lock_hold``; returns one outcome per message taken.

        No savepoint per message: they cost about a tenth of applying one.  When any
        message fails, the whole chunk rolls back and the messages taken are redone one
        per transaction, where duplicates, retries and quarantine are handled.
        """
        now = self.clock()
        taken: list[tuple[InboundMessage, InboundMail]] = []
        results: list[tuple[Applied, str | None] | None] = []
        started = time.monotonic()
        try:
            with self.store.transaction(durable=False) as session:
                # A writer already waiting ends the chunk after its first message: then
                # only that one is read for (the facts know nothing of the others).
                if self.store.writers_waiting():
                    ready = ready[:1]
                ids = [row.id for row, _ in ready if row.id is not None]
                facts = ChunkFacts.read(session, ids, [mail for _, mail in ready], now)
                for row, mail in ready:
                    taken.append((row, mail))
                    results.append(self._apply_in(session, row, mail, now, facts))
                    held = time.monotonic() - started
                    if held > self.max_lock_hold or self.store.writers_waiting():
                        break
                write_chunk_end(session, facts)
        except Exception:
            # A message failed, or the chunk could not commit: one at a time instead.
            return self._committed([self._decide_and_apply(row, mail) for row, mail in taken])
        outcomes = []
        for (row, mail), result in zip(taken, results, strict=True):
            assert row.id is not None
            if result is None:
                outcomes.append(Outcome(row.id, "skipped", detail="processed elsewhere"))
            else:
                outcomes.append(self._logged(row, mail, *result))
        return self._committed(outcomes)

    def _committed(self, outcomes: list[Outcome]) -> list[Outcome]:
        """``outcomes`` of a commit, after telling ``on_commit`` of the mail they queued."""
        queued = sum(outcome.queued for outcome in outcomes)
        if queued and self.on_commit is not None:
            self.on_commit(queued)
        return outcomes

    def _decide_and_apply(self, row: InboundMessage, mail: InboundMail) -> Outcome:
        assert row.id is not None
        try:
            with self.store.transaction(durable=False) as session:
                result = self._apply_in(session, row, mail, self.clock())
        except IntegrityError:
            # A twin of this message was committed concurrently (another worker or daemon):
            # the unique dedup key held, so this copy is a duplicate.
            return self._finish_as_duplicate(row, mail)
        except Exception as exc:
            if is_transient(exc):
                return self._retry_later(row, exc)
            return self._quarantine(row, "processing failed:\n" + traceback.format_exc(), mail)
        if result is None:
            return Outcome(row.id, "skipped", detail="processed elsewhere")
        return self._logged(row, mail, *result)

    def _logged(
        self, row: InboundMessage, mail: InboundMail, applied: Applied, severity: str | None = None
    ) -> Outcome:
        assert row.id is not None
        outcome = Outcome(
            row.id,
            applied.outcome,
            applied.ticket_ref,
            applied.detail,
            mail.message_id,
            row.source,
            severity,
            row.received_at,
            len(applied.outbox_ids),
        )
        self.log.info(
            "%s message %s <%s> %s %s: %s",
            row.source,
            row.id,
            mail.message_id or "no Message-ID",
            applied.outcome,
            applied.ticket_ref or "-",
            applied.detail,
            extra={"message_id": mail.message_id, "ticket": applied.ticket_ref},
        )
        return outcome

    def _finish_as_duplicate(self, row: InboundMessage, mail: InboundMail) -> Outcome:
        assert row.id is not None
        now = self.clock()
        with self.store.transaction() as session:
            current = session.get(InboundMessage, row.id, with_for_update=True)
            if current is None or current.status != "pending":  # never overwrite an outcome
                return Outcome(row.id, "skipped", detail="processed elsewhere")
            applied = apply_decision(
                session,
                inbound_id=row.id,
                mail=mail,
                decision=IgnoreMessage(f"duplicate of a concurrent delivery ({mail.dedup_key})"),
                now=now,
                prefix=self.prefix,
                build_ack=self.build_ack,
            )
        return self._logged(row, mail, applied)

    def _retry_later(self, row: InboundMessage, exc: BaseException) -> Outcome:
        assert row.id is not None
        delay = min(MAX_RETRY_DELAY, 2.0 ** min(row.attempts + 1, 16))
        until = self.clock() + timedelta(seconds=delay)
        reason = f"transient: {exc.__class__.__name__}: {exc}"
        try:
            with self.store.transaction() as session:
                release_for_retry(session, row.id, until, reason[:2000])
        except Exception:
            self.log.warning("message %s: could not record retry; lease will expire", row.id)
        self.log.warning("message %s: %s; retrying in %.0fs", row.id, reason, delay)
        return Outcome(row.id, "retry", detail=reason, source=row.source)

    def _quarantine(
        self, row: InboundMessage, reason: str, mail: InboundMail | None = None
    ) -> Outcome:
        assert row.id is not None
        message_id = mail.message_id if mail else None
        with self.store.transaction() as session:
            mark_quarantined(session, row.id, self.clock(), reason)
        first_line = reason.strip().splitlines()[-1] if reason.strip() else "unknown"
        self.log.error(
            "%s message %s <%s> quarantined: %s",
            row.source,
            row.id,
            message_id or "no Message-ID",
            first_line,
            extra={"message_id": message_id, "ticket": None},
        )
        return Outcome(
            row.id, "quarantined", None, reason, message_id, row.source, None, row.received_at
        )
