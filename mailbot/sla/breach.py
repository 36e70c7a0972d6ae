"""Has a ticket missed a service level?  A pure function of its clock columns and a time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clocked(Protocol):
    status: str
    first_response_due: datetime | None
    first_response_at: datetime | None
    next_update_due: datetime | None
    resolved_at: datetime | None


def breached(ticket: Clocked, now: datetime) -> bool:
    """True when the first response came (or is still missing) after its due time, or an
    open ticket's next status update is overdue.

    A first-response breach stays a breach; an overdue update clears once staff
    update the ticket (its next update is then due one cadence later).  A ticket
    resolved without any staff reply stopped its first-response clock when resolved.
    """
    due = ticket.first_response_due
    if due is not None:
        answered = ticket.first_response_at or ticket.resolved_at
        if answered is not None and answered > due:
            return True
        if answered is None and ticket.status == "open" and now > due:
            return True
    update_due = ticket.next_update_due
    return ticket.status == "open" and update_due is not None and now > update_due
