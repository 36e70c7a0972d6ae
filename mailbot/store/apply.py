"""Applying a Decision: ticket, thread entry and outbox rows in the caller's one transaction.

Nothing is sent from here; an acknowledgement is an outbox row with its Message-ID
fixed, written together with the ticket, so either both exist or neither does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col

from mailbot.message import InboundMail
from mailbot.pipeline.bounces import AttachBounce
from mailbot.pipeline.decide import AppendToTicket, Decision, IgnoreMessage, NewTicket
from mailbot.pipeline.forwarded import is_forward
from mailbot.pipeline.security import QuarantineMessage
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store import apply_service, threads
from mailbot.store.apply_service import DueTimes, PageBuilder
from mailbot.store.direct import direct, direct_insert
from mailbot.store.models import (
    Attachment,
    AttachmentBlob,
    InboundMessage,
    MessageRef,
    OutboxMessage,
    ThreadEntry,
    Ticket,
    TicketEvent,
)
from mailbot.store.repo import (
    detached_row,
    insert_ignore,
    insert_numbered_ticket,
    insert_returning_id,
    mark_quarantined,
    outbox_values,
)
from mailbot.store.security import record_bounce

if TYPE_CHECKING:  # it reads through mailbot.store.repo
    from mailbot.store.chunk_facts import ChunkFacts

# Built once: on the hot path, building a statement costs more than running it.
_FINISH_INBOUND = (
    update(InboundMessage)
    .where(col(InboundMessage.id) == bindparam("inbound_id"))
    .values(
        status=bindparam("new_status"),
        outcome=bindparam("new_outcome"),
        reason=bindparam("new_reason"),
        ticket_id=bindparam("new_ticket_id"),
        processed_at=bindparam("now"),
        claimed_until=None,
    )
)


_TOUCH_TICKET = (
    update(Ticket)
    .where(col(Ticket.id) == bindparam("ticket_id"))
    .values(updated_at=bindparam("now"))
    .returning(*Ticket.__table__.columns)  # type: ignore[attr-defined]
)


@dataclass(frozen=True)
class OutgoingMail:
    """A fully composed message, ready to become an outbox row."""

    kind: str
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    payload: bytes
    cc: tuple[str, ...] = ()  # also in ``recipients`` (the envelope); kept for the thread


# Builders take ``cc=`` (the ticket's other participants, mailbot/store/threads.py).
AckBuilder = Callable[..., OutgoingMail]  # (ticket, mail, *, cc=()) -> OutgoingMail
RelayBuilder = Callable[..., OutgoingMail]  # (ticket, mail, staff_reply, *, cc=())


@dataclass(frozen=True)
class ServiceLevels:
    """What service levels add to applying a decision (None parts are switched off)."""

    clocks: DueTimes | None = None
    build_relay: RelayBuilder | None = None
    build_pages: PageBuilder | None = None


@dataclass(frozen=True)
class Applied:
    outcome: str  # created | appended | ignored
    ticket_ref: str | None
    detail: str
    outbox_ids: tuple[int, ...] = ()


def _same_text(full_text: str, new_text: str) -> bool:
    """Nothing was cut: ``text_full`` is then left empty (readers use ``text``), which
    halves what a thread entry writes for most new mail."""
    return full_text.replace("\r\n", "\n").strip("\n") == new_text


def _insert_ticket(session: Session, ticket: Ticket, facts: ChunkFacts | None) -> None:
    """INSERT a new ticket with the next number and make ``ticket`` its persistent
    object in the session.

    A Core insert, then the object is attached as already stored: the ORM's unit of
    work (add + flush) cost as much again on the worker's hot path.  Later changes to
    the object (paging status, say) are UPDATEs as usual.
    """
    table = Ticket.__table__  # type: ignore[attr-defined]
    skipped = ("id", "number")
    values = {c.key: ticket.__dict__[c.key] for c in table.columns if c.key not in skipped}
    ticket.id, ticket.number = insert_numbered_ticket(session, values, facts)
    make_transient_to_detached(ticket)
    session.add(ticket)


def _touched_ticket(session: Session, ticket_id: int, now: datetime) -> Ticket | None:
    """The ticket, its ``updated_at`` set to ``now``, read anew and locked for the
    transaction, as the session's object.

    One ``UPDATE … RETURNING`` attached as ``_insert_ticket`` attaches a new ticket:
    the row is locked by the UPDATE itself, and a reply that changes nothing else
    leaves nothing for the ORM to flush.  The ORM's ``get(..., with_for_update=True,
    populate_existing=True)`` and the flush of ``updated_at`` were 13% of the importing
    process's time (py-spy), this about 3%.  A ticket the session already holds (this transaction
    made or touched it) goes through the ORM as before, its changes flushed first.
    """
    if session.identity_map.get(session.identity_key(Ticket, ticket_id)) is not None:
        session.flush()  # populate_existing would overwrite what is not yet written
        found = session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
        if found is not None:
            found.updated_at = now
        return found
    values = {"ticket_id": ticket_id, "now": now}
    row = direct(_TOUCH_TICKET).execute(session.connection(), values).first()
    if row is None:
        return None
    ticket = detached_row(Ticket, row)
    make_transient_to_detached(ticket)
    session.add(ticket)
    return ticket


def _add_inbound_entry(
    session: Session,
    ticket: Ticket,
    inbound_id: int,
    mail: InboundMail,
    now: datetime,
    refs: list[dict[str, Any]],
    kind: str = "mail",
    settings: threads.ThreadSettings | None = None,
    facts: ChunkFacts | None = None,
) -> None:
    """Insert the thread entry; its Message-IDs go into ``refs`` for the caller's
    ``_insert_refs``."""
    assert ticket.id is not None
    new_text, full_text = threads.texts(mail, settings or threads.ThreadSettings())
    # Raises IntegrityError on a duplicate dedup_key (a concurrent twin), here or at the
    # chunk's end.
    entry_id = _insert_entry(
        session,
        {
            "ticket_id": ticket.id,
            "direction": "inbound",
            "kind": kind,
            "dedup_key": mail.dedup_key,
            "message_id": mail.message_id,
            "inbound_id": inbound_id,
            "from_addr": mail.from_address or mail.from_header,
            "to_addrs": ", ".join(mail.to),
            "cc_addrs": ", ".join(mail.cc),
            "subject": mail.subject,
            "date": mail.date.replace(tzinfo=None) if mail.date else None,
            "text": new_text,
            "text_full": "" if _same_text(full_text, new_text) else full_text,
            "html": mail.html,
            "created_at": now,
        },
        facts,
        id_needed=bool(mail.attachments),
    )
    if mail.attachments:
        blobs = {a.sha256: {"sha256": a.sha256, "content": a.content} for a in mail.attachments}
        insert_ignore(session, AttachmentBlob, list(blobs.values()))
        rows = [
            {
                "entry_id": entry_id,
                "filename": item.filename,
                "content_type": item.content_type,
                "size": item.size,
                "sha256": item.sha256,
                "content_id": item.content_id,
            }
            for item in mail.attachments
        ]
        table = Attachment.__table__  # type: ignore[attr-defined]
        direct_insert(table, tuple(rows[0])).executemany(session.connection(), rows)
    # A forward names the forwarded conversation, not one with us (pipeline/forwarded.py).
    referenced = () if is_forward(mail.subject) else mail.referenced_ids
    known_ids = [mid for mid in (mail.message_id, *referenced) if mid]
    refs += [{"message_id": m, "ticket_id": ticket.id} for m in known_ids]
    if facts is not None:
        facts.entry_added(mail.dedup_key, known_ids, ticket.id)


def _insert_entry(
    session: Session, values: dict[str, Any], facts: ChunkFacts | None, *, id_needed: bool
) -> int | None:
    """A thread entry: now, with its id; or (in a chunk, id not needed) at the chunk's end.

    Only the chunk's facts read entries (their dedup keys) while it lasts.  An entry
    written at once takes the ones queued before it along, so ids keep the order of the
    thread (entries of one chunk share their ``created_at``).
    """
    if facts is None:
        return insert_returning_id(session, ThreadEntry, values)
    if not id_needed:
        facts.entries_to_insert.append(values)
        return None
    _write_entries(session, facts)
    return insert_returning_id(session, ThreadEntry, values)


def _write_entries(session: Session, facts: ChunkFacts) -> None:
    if facts.entries_to_insert:
        rows, table = facts.entries_to_insert, ThreadEntry.__table__  # type: ignore[attr-defined]
        direct_insert(table, tuple(rows[0])).executemany(session.connection(), rows)
        facts.entries_to_insert = []


def _insert_refs(session: Session, rows: list[dict[str, Any]], facts: ChunkFacts | None) -> None:
    """Message-IDs of thread entries, now or (in a chunk) at its end."""
    if facts is not None:
        facts.refs_to_insert += rows
    else:
        insert_ignore(session, MessageRef, rows)


def _add_outgoing(
    session: Session,
    ticket: Ticket,
    mail: OutgoingMail,
    now: datetime,
    refs: list[dict[str, Any]],
    facts: ChunkFacts | None = None,
) -> int:
    """Insert the outbox row and its thread entry; its Message-ID goes into ``refs``."""
    assert ticket.id is not None
    outbox_id = insert_returning_id(
        session,
        OutboxMessage,
        outbox_values(
            kind=mail.kind,
            ticket_id=ticket.id,
            message_id=mail.message_id,
            envelope_from=mail.envelope_from,
            recipients=mail.recipients,
            payload=mail.payload,
            now=now,
        ),
    )
    _insert_entry(
        session,
        {
            "ticket_id": ticket.id,
            "direction": "outbound",
            "kind": mail.kind,
            "dedup_key": f"mid:{mail.message_id}",
            "message_id": mail.message_id,
            "inbound_id": None,
            "from_addr": mail.envelope_from,
            "to_addrs": ", ".join(r for r in mail.recipients if r not in mail.cc),
            "cc_addrs": ", ".join(mail.cc),
            "subject": mail.subject,
            "date": None,
            "text": mail.text,
            "text_full": "",  # the same as ``text``
            "html": None,
            "created_at": now,
        },
        facts,
        id_needed=False,
    )
    refs.append({"message_id": mail.message_id, "ticket_id": ticket.id})
    if facts is not None:
        facts.entry_added(f"mid:{mail.message_id}", [mail.message_id], ticket.id)
        facts.outbox_added(mail.kind, mail.recipients[0])
    return outbox_id


def _event(session: Session, ticket: Ticket, now: datetime, kind: str, detail: str) -> None:
    assert ticket.id is not None
    session.add(TicketEvent(ticket_id=ticket.id, at=now, kind=kind, detail=detail))


def _finish_inbound(
    session: Session,
    inbound_id: int,
    now: datetime,
    outcome: str,
    reason: str,
    ticket_id: int | None,
    facts: ChunkFacts | None = None,
) -> None:
    """The inbound row's outcome, now or (in a chunk) at its end."""
    values = {
        "inbound_id": inbound_id,
        "new_status": "ignored" if outcome == "ignored" else "done",
        "new_outcome": outcome,
        "new_reason": reason,
        "new_ticket_id": ticket_id,
        "now": now,
    }
    if facts is not None:
        facts.finished_inbound.append(values)
    else:
        session.connection().execute(_FINISH_INBOUND, values)


def write_chunk_end(session: Session, facts: ChunkFacts) -> None:
    """What a chunk's messages left for its end (ChunkFacts): one INSERT each of their
    thread entries, their Message-IDs and their participants, one UPDATE of their inbound
    rows (executemany)."""
    _write_entries(session, facts)
    insert_ignore(session, MessageRef, facts.refs_to_insert)
    threads.write_participants(session, facts)
    if facts.finished_inbound:
        direct(_FINISH_INBOUND).executemany(session.connection(), facts.finished_inbound)
    facts.refs_to_insert, facts.finished_inbound = [], []


def _apply_bounce(
    session: Session,
    inbound_id: int,
    mail: InboundMail,
    decision: AttachBounce,
    now: datetime,
    prefix: str,
    thread: threads.ThreadSettings,
    facts: ChunkFacts | None = None,
) -> Applied:
    """A bounce joins the thread of the mail that bounced: no ack, no reopening, no ticket."""
    ticket = session.get(Ticket, decision.ticket.id)
    assert ticket is not None and ticket.id is not None
    refs: list[dict[str, Any]] = []
    _add_inbound_entry(session, ticket, inbound_id, mail, now, refs, "bounce", thread, facts)
    _insert_refs(session, refs, facts)
    record_bounce(session, ticket, decision, now)
    if facts is not None:
        facts.suppressions_changed()
    detail = f"by the bounced message's Message-ID; {decision.note}"
    _finish_inbound(session, inbound_id, now, "appended", detail, ticket.id, facts)
    return Applied("appended", format_reference(prefix, ticket.number), detail)


def apply_decision(
    session: Session,
    *,
    inbound_id: int,
    mail: InboundMail,
    decision: Decision,
    now: datetime,
    prefix: str,
    build_ack: AckBuilder,
    service: ServiceLevels | None = None,
    thread: threads.ThreadSettings | None = None,
    facts: ChunkFacts | None = None,
) -> Applied:
    thread = thread or threads.ThreadSettings()
    if isinstance(decision, IgnoreMessage):
        _finish_inbound(session, inbound_id, now, "ignored", decision.reason, None, facts)
        return Applied("ignored", None, decision.reason)
    if isinstance(decision, QuarantineMessage):
        mark_quarantined(session, inbound_id, now, decision.reason)
        return Applied("quarantined", None, decision.reason)
    if isinstance(decision, AttachBounce):
        return _apply_bounce(session, inbound_id, mail, decision, now, prefix, thread, facts)

    if isinstance(decision, NewTicket):
        ticket = detached_row(
            Ticket,
            {
                "number": 0,  # the INSERT gives it (_insert_ticket)
                "subject": decision.title,
                "severity": int(decision.severity),
                "requester": decision.requester,
                "created_at": now,
                "updated_at": now,
            },
        )
        if service is not None and service.clocks is not None:  # before the INSERT: one statement
            apply_service.start_clocks(ticket, now, service.clocks)
        _insert_ticket(session, ticket, facts)
        outcome, detail = "created", f"new {decision.severity.label} ticket; {decision.note}"
    else:
        assert isinstance(decision, AppendToTicket)
        # Lock the row and re-read it: a concurrent reply (another worker or daemon) may
        # have escalated or reopened the ticket since the decision looked at it.
        found = _touched_ticket(session, decision.ticket.id, now)
        assert found is not None
        ticket = found
        if decision.escalate_to is not None and int(decision.escalate_to) < ticket.severity:
            _event(
                session,
                ticket,
                now,
                "escalated",
                f"severity {ticket.severity} → {int(decision.escalate_to)} "
                f"({decision.escalate_to.label}) by {mail.from_address or mail.from_header}",
            )
            ticket.severity = int(decision.escalate_to)
            if service is not None and service.clocks is not None:
                apply_service.severity_changed(ticket, now, service.clocks)
        if decision.reopen and ticket.status != "open":
            _event(session, ticket, now, "reopened", f"reply from {mail.from_address}")
            ticket.status = "open"
            if service is not None and service.clocks is not None:
                apply_service.reopened(ticket, now, service.clocks)
        session.add(ticket)
        outcome, detail = "appended", f"by {decision.matched_by}; {decision.note}"

    outbox_ids: tuple[int, ...] = ()
    if decision.paging is not None:
        build_pages = service.build_pages if service is not None else None
        outbox_ids += apply_service.record_paging(
            session, ticket, decision.paging, mail, now, build_pages
        )
    staff = decision.staff_reply if isinstance(decision, AppendToTicket) else None
    kind = "staff" if staff else "mail"
    # The Message-IDs of the entry and of what it sends, in one statement at the end (no
    # lookup in between reads them), or in a chunk in the chunk's one (write_chunk_end).
    refs: list[dict[str, Any]] = []
    _add_inbound_entry(session, ticket, inbound_id, mail, now, refs, kind, thread, facts)
    assert ticket.id is not None
    requester = decision.requester if isinstance(decision, NewTicket) else None
    recorded = threads.record_participants(session, ticket.id, mail, now, thread, requester, facts)
    known = recorded if isinstance(decision, NewTicket) else None  # all it has
    if staff is not None:
        clocks = service.clocks if service is not None else None
        if staff.relay_to and service is not None and service.build_relay is not None:
            cc: tuple[str, ...] = ()
            if thread.cc_on_relay:
                already = (staff.author, *mail.to, *mail.cc)
                cc = threads.copies(
                    session,
                    ticket.id,
                    to=staff.relay_to,
                    now=now,
                    already=already,
                    settings=thread,
                    facts=facts,
                )
            relay = service.build_relay(ticket, mail, staff, cc=cc)
            outbox_ids += (_add_outgoing(session, ticket, relay, now, refs, facts),)
        apply_service.staff_responded(session, ticket, staff, now, clocks)
    if decision.acknowledge:
        cc = ()
        if thread.cc_on_ack and mail.from_address:
            cc = threads.copies(
                session,
                ticket.id,
                to=mail.from_address,
                now=now,
                settings=thread,
                known=known,
                facts=facts,
            )
        ack = build_ack(ticket, mail, cc=cc)
        outbox_ids += (_add_outgoing(session, ticket, ack, now, refs, facts),)
    _insert_refs(session, refs, facts)
    _finish_inbound(session, inbound_id, now, outcome, detail, ticket.id, facts)
    return Applied(outcome, format_reference(prefix, ticket.number), detail, outbox_ids)
