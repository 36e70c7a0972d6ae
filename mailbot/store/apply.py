"""Applying a Decision: ticket, thread entry and outbox rows in the caller's one transaction.

Nothing is sent from here; an acknowledgement is an outbox row with its Message-ID
fixed, written together with the ticket, so either both exist or neither does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session

from mailbot.message import InboundMail
from mailbot.pipeline.decide import AppendToTicket, Decision, IgnoreMessage, NewTicket
from mailbot.pipeline.staff import StaffReply
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store import apply_service
from mailbot.store.apply_service import DueTimes, PageBuilder
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
from mailbot.store.repo import insert_ignore, next_ticket_number


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


AckBuilder = Callable[[Ticket, InboundMail], OutgoingMail]
RelayBuilder = Callable[[Ticket, InboundMail, StaffReply], OutgoingMail]


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


def _add_inbound_entry(
    session: Session,
    ticket: Ticket,
    inbound_id: int,
    mail: InboundMail,
    now: datetime,
    kind: str = "mail",
) -> ThreadEntry:
    assert ticket.id is not None
    entry = ThreadEntry(
        ticket_id=ticket.id,
        direction="inbound",
        kind=kind,
        dedup_key=mail.dedup_key,
        message_id=mail.message_id,
        inbound_id=inbound_id,
        from_addr=mail.from_address or mail.from_header,
        to_addrs=", ".join(mail.to),
        cc_addrs=", ".join(mail.cc),
        subject=mail.subject,
        date=mail.date.replace(tzinfo=None) if mail.date else None,
        text=mail.text,
        html=mail.html,
        created_at=now,
    )
    session.add(entry)
    session.flush()  # raises IntegrityError on a duplicate dedup_key (a concurrent twin)
    assert entry.id is not None
    blobs = {a.sha256: {"sha256": a.sha256, "content": a.content} for a in mail.attachments}
    insert_ignore(session, AttachmentBlob, list(blobs.values()))
    for item in mail.attachments:
        session.add(
            Attachment(
                entry_id=entry.id,
                filename=item.filename,
                content_type=item.content_type,
                size=item.size,
                sha256=item.sha256,
                content_id=item.content_id,
            )
        )
    known_ids = [mid for mid in (mail.message_id, *mail.referenced_ids) if mid]
    insert_ignore(
        session, MessageRef, [{"message_id": m, "ticket_id": ticket.id} for m in known_ids]
    )
    return entry


def _add_outgoing(session: Session, ticket: Ticket, mail: OutgoingMail, now: datetime) -> int:
    assert ticket.id is not None
    row = OutboxMessage(
        kind=mail.kind,
        ticket_id=ticket.id,
        message_id=mail.message_id,
        envelope_from=mail.envelope_from,
        recipient=mail.recipients[0],
        recipients=",".join(mail.recipients),
        payload=mail.payload,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.add(
        ThreadEntry(
            ticket_id=ticket.id,
            direction="outbound",
            kind=mail.kind,
            dedup_key=f"mid:{mail.message_id}",
            message_id=mail.message_id,
            from_addr=mail.envelope_from,
            to_addrs=", ".join(mail.recipients),
            subject=mail.subject,
            text=mail.text,
            created_at=now,
        )
    )
    insert_ignore(session, MessageRef, [{"message_id": mail.message_id, "ticket_id": ticket.id}])
    session.flush()
    assert row.id is not None
    return row.id


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
) -> None:
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .values(
            status="ignored" if outcome == "ignored" else "done",
            outcome=outcome,
            reason=reason,
            ticket_id=ticket_id,
            processed_at=now,
            claimed_until=None,
        )
    )


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
) -> Applied:
    if isinstance(decision, IgnoreMessage):
        _finish_inbound(session, inbound_id, now, "ignored", decision.reason, None)
        return Applied("ignored", None, decision.reason)

    if isinstance(decision, NewTicket):
        ticket = Ticket(
            number=next_ticket_number(session),
            subject=decision.title,
            severity=int(decision.severity),
            requester=decision.requester,
            created_at=now,
            updated_at=now,
        )
        session.add(ticket)
        session.flush()
        if service is not None and service.clocks is not None:
            apply_service.start_clocks(ticket, now, service.clocks)
        outcome, detail = "created", f"new {decision.severity.label} ticket; {decision.note}"
    else:
        assert isinstance(decision, AppendToTicket)
        found = session.get(Ticket, decision.ticket.id)
        assert found is not None
        ticket = found
        ticket.updated_at = now
        if decision.escalate_to is not None:
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
        if decision.reopen:
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
    _add_inbound_entry(session, ticket, inbound_id, mail, now, "staff" if staff else "mail")
    if staff is not None:
        clocks = service.clocks if service is not None else None
        if staff.relay_to and service is not None and service.build_relay is not None:
            relay = service.build_relay(ticket, mail, staff)
            outbox_ids += (_add_outgoing(session, ticket, relay, now),)
        apply_service.staff_responded(session, ticket, staff, now, clocks)
    if decision.acknowledge:
        outbox_ids += (_add_outgoing(session, ticket, build_ack(ticket, mail), now),)
    assert ticket.id is not None
    _finish_inbound(session, inbound_id, now, outcome, detail, ticket.id)
    return Applied(outcome, format_reference(prefix, ticket.number), detail, outbox_ids)
