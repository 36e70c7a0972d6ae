"""The service-level part of applying a decision: clocks, staff responses, resolution, pages.

Called from ``apply_decision`` inside its one transaction; nothing here sends anything.
Pages become outbox rows (channel ``webhook`` or ``mail``) next to a ``page`` row whose
unique (ticket, event) pair makes a second page for the same event impossible, even
when two workers race.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, SQLModel

from mailbot.message import InboundMail
from mailbot.pipeline.paging import OFF, PageVerdict
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.staff import StaffReply
from mailbot.store.models import OutboxMessage, PageRecord, Ticket, TicketEvent
from mailbot.store.repo import insert_returning_id, outbox_values
from mailbot.store.upsert import dialect_insert

log = logging.getLogger("mailbot.paging")


class DueTimes(Protocol):
    """Due-time arithmetic (``mailbot.sla.clocks.ServiceClocks``), naive UTC in and out."""

    def first_response_due(self, severity: Severity, start: datetime) -> datetime: ...

    def next_update_due(self, severity: Severity, start: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class OutgoingPage:
    """One notifier's page, ready to become an outbox row."""

    channel: str  # webhook | mail
    message_id: str  # deterministic per ticket, event and channel
    envelope_from: str
    recipients: tuple[str, ...]  # the webhook URL, or the on-call address
    payload: bytes


PageBuilder = Callable[[Ticket, InboundMail, str], list[OutgoingPage]]


def insert_new(session: Session, model: type[SQLModel], row: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING for one row; True when it was inserted."""
    table = model.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session.get_bind().dialect.name, table)
    # RETURNING, not rowcount: with implicit RETURNING, psycopg reports rowcount -1.
    statement = insert.values(**row).on_conflict_do_nothing()
    result = session.execute(statement.returning(*table.primary_key.columns))
    return result.first() is not None


def event(session: Session, ticket: Ticket, now: datetime, kind: str, detail: str) -> None:
    assert ticket.id is not None
    session.add(TicketEvent(ticket_id=ticket.id, at=now, kind=kind, detail=detail))


# ---------------------------------------------------------------- clocks


def start_clocks(ticket: Ticket, now: datetime, clocks: DueTimes) -> None:
    """A new ticket: first response due, and the first status update where there is a cadence."""
    severity = Severity(ticket.severity)
    ticket.first_response_due = clocks.first_response_due(severity, now)
    ticket.next_update_due = clocks.next_update_due(severity, now)


def _earlier(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if current is None:
        return candidate
    if candidate is None:
        return current
    return min(current, candidate)


def severity_changed(ticket: Ticket, now: datetime, clocks: DueTimes) -> None:
    """Escalation never moves a deadline later: the new target applies if it is sooner."""
    severity = Severity(ticket.severity)
    if ticket.first_response_at is None:
        ticket.first_response_due = _earlier(
            ticket.first_response_due, clocks.first_response_due(severity, now)
        )
    if ticket.status == "open":
        ticket.next_update_due = _earlier(
            ticket.next_update_due, clocks.next_update_due(severity, now)
        )


def reopened(ticket: Ticket, now: datetime, clocks: DueTimes) -> None:
    """A customer reply reopened the ticket: the clocks run again."""
    severity = Severity(ticket.severity)
    ticket.resolved_at = None
    if ticket.first_response_at is None:
        ticket.first_response_due = clocks.first_response_due(severity, now)
    ticket.next_update_due = clocks.next_update_due(severity, now)


def resolve(session: Session, ticket: Ticket, now: datetime, detail: str) -> bool:
    """Mark resolved and stop its clocks; False when it already was."""
    if ticket.status in ("resolved", "closed"):
        return False
    ticket.status = "resolved"
    ticket.resolved_at = now
    ticket.next_update_due = None
    ticket.updated_at = now
    session.add(ticket)
    event(session, ticket, now, "resolved", detail)
    return True


def staff_responded(
    session: Session, ticket: Ticket, reply: StaffReply, now: datetime, clocks: DueTimes | None
) -> None:
    """First response met (if it wasn't), next update due one cadence from now."""
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        late = ticket.first_response_due is not None and now > ticket.first_response_due
        event(
            session,
            ticket,
            now,
            "first-response",
            f"by {reply.author}" + (" (after the due time)" if late else ""),
        )
    if clocks is not None and ticket.status == "open":
        ticket.next_update_due = clocks.next_update_due(Severity(ticket.severity), now)
    if reply.resolve:
        resolve(session, ticket, now, f"by staff reply from {reply.author}")


# ---------------------------------------------------------------- paging


def record_paging(
    session: Session,
    ticket: Ticket,
    verdict: PageVerdict,
    mail: InboundMail,
    now: datetime,
    build_pages: PageBuilder | None,
) -> tuple[int, ...]:
    """Record the verdict on the ticket; queue the page's outbox rows when it may page."""
    assert ticket.id is not None
    ticket.emergency_unauthorised = ticket.emergency_unauthorised or verdict.unauthorised
    if not verdict.page or build_pages is None:
        if ticket.page_status != "queued":
            ticket.page_status = verdict.status
        if verdict.status == OFF:  # nothing configured to page with: not worth an event
            log.info("ticket %s: Emergency; %s", ticket.number, verdict.reason)
            return ()
        event(session, ticket, now, "not-paged", verdict.reason)
        log.warning(
            "ticket %s: Emergency (%s) pages nobody: %s",
            ticket.number,
            verdict.event,
            verdict.reason,
            extra={"message_id": mail.message_id},
        )
        return ()
    new_page = insert_new(
        session,
        PageRecord,
        {
            "ticket_id": ticket.id,
            "event": verdict.event,
            "sender": verdict.sender,
            "created_at": now,
        },
    )
    if not new_page:
        return ()  # this ticket and event have paged already
    ticket.page_status = "queued"
    ids = []
    pages = build_pages(ticket, mail, verdict.event)
    for page in pages:
        values = outbox_values(
            kind="page",
            channel=page.channel,
            ticket_id=ticket.id,
            message_id=page.message_id,
            envelope_from=page.envelope_from,
            recipients=page.recipients,
            payload=page.payload,
            now=now,
        )
        ids.append(insert_returning_id(session, OutboxMessage, values))
    channels = ", ".join(page.channel for page in pages)
    event(session, ticket, now, "paged", f"{verdict.event}, by {verdict.sender}, via {channels}")
    log.info(
        "ticket %s: Emergency (%s): paging on-call via %s",
        ticket.number,
        verdict.event,
        channels,
        extra={"message_id": mail.message_id},
    )
    return tuple(ids)
