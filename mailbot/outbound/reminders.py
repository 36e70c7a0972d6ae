"""Reminder notices to the team (and on-call for Emergency) when a clock runs out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mailbot.outbound.compose import compose, domain_of, header_safe
from mailbot.outbound.reply_token import no_token, with_token
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store.apply import OutgoingMail
from mailbot.store.models import Ticket

FIRST_RESPONSE = "first-response"
STATUS_UPDATE = "status-update"

_WHAT = {
    FIRST_RESPONSE: "first response overdue",
    STATUS_UPDATE: "status update overdue",
}


@dataclass(frozen=True)
class ReminderSettings:
    prefix: str
    from_address: str
    team_address: str = ""
    oncall_address: str = ""  # set when Emergency reminders also go to on-call
    describe_due: Callable[[datetime], str] | None = None
    reply_token: Callable[[int], str] = no_token  # outbound/reply_token.py


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else "-"


class ReminderComposer:
    def __init__(self, settings: ReminderSettings) -> None:
        self.settings = settings

    def recipients(self, ticket: Ticket) -> tuple[str, ...]:
        found = [self.settings.team_address] if self.settings.team_address else []
        oncall = self.settings.oncall_address
        if oncall and ticket.severity == Severity.EMERGENCY and oncall not in found:
            found.append(oncall)
        return tuple(found)

    def message_id(self, ticket: Ticket, kind: str, due: datetime) -> str:
        """Deterministic: one reminder per ticket, kind and due time, however often we sweep."""
        ref = format_reference(self.settings.prefix, ticket.number)
        stamp = f"{ticket.created_at:%Y%m%d%H%M%S}"
        domain = domain_of(self.settings.from_address)
        local = f"reminder-{ref}-{kind}-{due:%Y%m%dT%H%M%S}-{stamp}"
        return with_token(f"{local}@{domain}", self.settings.reply_token(ticket.number))

    def _when(self, value: datetime | None) -> str:
        if value is None:
            return "-"
        local = self.settings.describe_due(value) if self.settings.describe_due else None
        return f"{local} ({_iso(value)})" if local else _iso(value)

    def __call__(self, ticket: Ticket, kind: str, due: datetime) -> OutgoingMail | None:
        recipients = self.recipients(ticket)
        if not recipients:
            return None
        ref = format_reference(self.settings.prefix, ticket.number)
        severity = Severity(ticket.severity).label.capitalize()
        subject = header_safe(f"Reminder {ref} ({severity}): {_WHAT[kind]}: {ticket.subject}")
        text = (
            f'{ref} ({severity}) "{header_safe(ticket.subject)}": {_WHAT[kind]}.\n\n'
            f"Due: {self._when(due)}\n"
            f"Requester: {ticket.requester or '-'}\n"
            f"Opened: {_iso(ticket.created_at)}\n"
            f"First staff response: {_iso(ticket.first_response_at)}\n\n"
            f"Answer the customer by writing to the support address with [{ref}] in the\n"
            f"subject (staff replies are passed on to them), or resolve it with\n"
            f"`mailbot tickets resolve {ref}`.\n"
        )
        message_id = self.message_id(ticket, kind, due)
        payload = compose(
            from_address=self.settings.from_address,
            from_name="Support reminders",
            to=list(recipients),
            subject=subject,
            text=text,
            html=None,
            message_id=message_id,
        )
        return OutgoingMail(
            kind="reminder",
            message_id=message_id,
            envelope_from=self.settings.from_address,
            recipients=recipients,
            subject=subject,
            text=text,
            payload=payload,
        )
