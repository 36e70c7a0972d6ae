"""The reminder sweep: open tickets whose clocks ran out → one reminder per due time.

Run periodically by the daemon (``[reminders] interval``) and by tests with an
injected clock.  Each reminder is an outbox row whose Message-ID is derived from
ticket, kind and due time and inserted with ON CONFLICT DO NOTHING, so sweeping
twice — or from two daemons at once — never notifies twice for the same due time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from mailbot.outbound.reminders import FIRST_RESPONSE, STATUS_UPDATE, ReminderComposer
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import format_reference
from mailbot.sla.clocks import ServiceClocks
from mailbot.store.apply_service import event, insert_new
from mailbot.store.db import Store
from mailbot.store.models import OutboxMessage, Ticket


@dataclass(frozen=True)
class Overdue:
    ticket: Ticket
    kind: str  # first-response | status-update
    due: datetime


def overdue(
    tickets: Iterable[Ticket],
    now: datetime,
    clocks: ServiceClocks,
    update_severities: frozenset[Severity],
) -> list[Overdue]:
    """Which reminders are due now (pure: tickets and a time in, a list out)."""
    found = []
    for ticket in tickets:
        if ticket.status != "open":
            continue
        first_due = ticket.first_response_due
        if ticket.first_response_at is None and first_due is not None and first_due <= now:
            found.append(Overdue(ticket, FIRST_RESPONSE, first_due))
        severity = Severity(ticket.severity)
        update_due = ticket.next_update_due
        if severity in update_severities and update_due is not None and update_due <= now:
            due = clocks.latest_update_due(severity, update_due, now)
            # The first update point of a ticket nobody answered is the first-response reminder.
            if not (ticket.first_response_at is None and due == first_due):
                found.append(Overdue(ticket, STATUS_UPDATE, due))
    return found


def _candidates(
    session: Session, now: datetime, update_severities: frozenset[Severity]
) -> list[Ticket]:
    query = (
        select(Ticket)
        .where(Ticket.status == "open")
        .where(
            or_(
                and_(
                    col(Ticket.first_response_at).is_(None),
                    col(Ticket.first_response_due) <= now,
                ),
                and_(
                    col(Ticket.next_update_due) <= now,
                    col(Ticket.severity).in_([int(s) for s in update_severities]),
                ),
            )
        )
        .order_by(col(Ticket.number))
    )
    return list(session.execute(query).scalars())


class ReminderSweep:
    def __init__(
        self,
        *,
        store: Store,
        clocks: ServiceClocks,
        compose: ReminderComposer,
        clock: Callable[[], datetime],
        prefix: str,
        update_severities: Iterable[Severity] = (Severity.EMERGENCY,),
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.clocks = clocks
        self.compose = compose
        self.clock = clock
        self.prefix = prefix
        self.update_severities = frozenset(update_severities)
        self.log = log or logging.getLogger("mailbot.sla")

    def sweep(self) -> int:
        """Queue the reminders that are due; returns how many new ones were queued."""
        now = self.clock()
        queued = 0
        with self.store.transaction() as session:
            tickets = _candidates(session, now, self.update_severities)
            for item in overdue(tickets, now, self.clocks, self.update_severities):
                if self._queue(session, item, now):
                    queued += 1
        return queued

    def _queue(self, session: Session, item: Overdue, now: datetime) -> bool:
        ticket = item.ticket
        ref = format_reference(self.prefix, ticket.number)
        mail = self.compose(ticket, item.kind, item.due)
        if mail is None:
            return False
        inserted = insert_new(
            session,
            OutboxMessage,
            {
                "kind": mail.kind,
                "channel": "mail",
                "ticket_id": ticket.id,
                "message_id": mail.message_id,
                "envelope_from": mail.envelope_from,
                "recipient": mail.recipients[0],
                "recipients": ",".join(mail.recipients),
                "payload": mail.payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        if not inserted:
            return False  # reminded for this due time already
        due_text = item.due.isoformat(timespec="seconds") + "Z"
        event(session, ticket, now, "reminder", f"{item.kind} overdue since {due_text}")
        self.log.warning(
            "%s: %s overdue (due %s); reminder sent to %s",
            ref,
            item.kind,
            due_text,
            ", ".join(mail.recipients),
            extra={"ticket": ref},
        )
        return True
