"""Store side of the hostile-mail checks: the lookup's queries and the bounce effects.

``SecurityQueries`` is mixed into ``RepoLookup`` (it uses its ``session`` and ``now``);
``apply_bounce`` and ``apply_quarantine`` run inside ``apply_decision``'s transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from mailbot.pipeline.security import BouncedMail
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import TicketView
from mailbot.store.models import OutboxMessage, Suppression, Ticket, TicketEvent
from mailbot.store.upsert import dialect_insert

if TYPE_CHECKING:
    from mailbot.pipeline.bounces import AttachBounce

# Outbox kinds that are automatic mail to a customer (relays are written by a person).
AUTOMATIC_KINDS = ("ack", "notice")
# Built once (see mailbot/store/repo.py on the worker's hot path).
_SUPPRESSED = (
    select(Suppression.address)
    .where(Suppression.address == bindparam("address"))
    .where(Suppression.until > bindparam("now"))
)


class SecurityQueries:
    """The ``SecurityLookup`` queries; needs ``self.session`` and ``self.now``."""

    session: Session
    now: datetime

    def automatic_mail_for_ticket_since(self, ticket_id: int, seconds: float) -> int:
        since = self.now - timedelta(seconds=seconds)
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.ticket_id == ticket_id)
            .where(col(OutboxMessage.kind).in_(AUTOMATIC_KINDS))
            .where(OutboxMessage.created_at >= since)
        )
        return int(self.session.execute(query).scalar_one())

    def is_suppressed(self, address: str) -> bool:
        values = {"address": address.strip().lower(), "now": self.now}
        return self.session.connection().execute(_SUPPRESSED, values).first() is not None

    def sent_message(self, message_ids: tuple[str, ...]) -> BouncedMail | None:
        """The ticket and recipients of the first of ``message_ids`` that we sent."""
        if not message_ids:
            return None
        query = select(OutboxMessage).where(col(OutboxMessage.message_id).in_(list(message_ids)))
        rows = {r.message_id: r for r in self.session.execute(query).scalars()}
        for mid in message_ids:
            row = rows.get(mid)
            if row is None or row.ticket_id is None or row.channel != "mail":
                continue
            ticket = self.session.get(Ticket, row.ticket_id)
            view = ticket_view(ticket)
            if view is not None:
                recipients = tuple(r for r in row.recipients.split(",") if r)
                return BouncedMail(ticket=view, recipients=recipients)
        return None


def ticket_view(ticket: Ticket | None) -> TicketView | None:
    """What the decision core may see of a ticket row."""
    if ticket is None or ticket.id is None:
        return None
    return TicketView(
        id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        severity=Severity(ticket.severity),
        requester=ticket.requester,
    )


def suppress(
    session: Session,
    address: str,
    now: datetime,
    seconds: float,
    reason: str,
    ticket_id: int | None,
) -> None:
    """No automatic mail to ``address`` until ``now + seconds`` (the latest bounce counts)."""
    until = now + timedelta(seconds=seconds)
    table = Suppression.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session.get_bind().dialect.name, table)
    statement = insert.values(
        address=address.lower(), until=until, reason=reason, ticket_id=ticket_id, created_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.address],
        set_={"until": until, "reason": reason, "ticket_id": ticket_id},
    )
    session.execute(statement)


def record_bounce(session: Session, ticket: Ticket, decision: AttachBounce, now: datetime) -> None:
    """The ticket event and the suppressions of one bounce (its thread entry is apply's)."""
    assert ticket.id is not None
    session.add(TicketEvent(ticket_id=ticket.id, at=now, kind="bounce", detail=decision.note))
    if decision.suppress_seconds > 0:
        for address in decision.suppress:
            suppress(session, address, now, decision.suppress_seconds, "bounce", ticket.id)
