"""The acknowledgement a new ticket gets: rendered from templates, composed, not sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mailbot.message import InboundMail
from mailbot.outbound.compose import compose, domain_of, make_message_id
from mailbot.outbound.render import Renderer
from mailbot.outbound.reply_token import no_token
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store.apply import OutgoingMail
from mailbot.store.models import Ticket


@dataclass(frozen=True)
class AckSettings:
    prefix: str
    from_address: str
    from_name: str
    support_address: str
    support_hours: str
    initial_response: dict[str, str]
    status_updates: dict[str, str]
    # Due time in the customer's terms ("10:00 AM PT on Monday, December 1"); None: not stated.
    # Called with (due, ticket creation time); the year is named when they differ.
    describe_due: Callable[[datetime, datetime], str] | None = None
    # The ticket's reply token for our Message-ID (outbound/reply_token.py).
    reply_token: Callable[[int], str] = no_token


class AckComposer:
    """Callable used by ``apply_decision`` to build the acknowledgement for a ticket."""

    def __init__(self, renderer: Renderer, settings: AckSettings) -> None:
        self.renderer = renderer
        self.settings = settings

    def context(self, ticket: Ticket, mail: InboundMail) -> dict[str, object]:
        severity = Severity(ticket.severity)
        return {
            "ticket_ref": format_reference(self.settings.prefix, ticket.number),
            "title": ticket.subject,
            "severity": severity.label,
            "severity_name": severity.label.capitalize(),
            "initial_response": self.settings.initial_response[severity.label],
            "status_updates": self.settings.status_updates[severity.label],
            "support_hours": self.settings.support_hours,
            "support_address": self.settings.support_address,
            "customer_name": mail.from_name,
            "original_subject": mail.subject,
            "respond_by": self.respond_by(ticket),
            # Say "on-call was paged" only when a page was actually queued.
            "on_call_paged": ticket.page_status == "queued",
        }

    def respond_by(self, ticket: Ticket) -> str | None:
        due = ticket.first_response_due
        if due is None or self.settings.describe_due is None:
            return None
        return self.settings.describe_due(due, ticket.created_at)

    def __call__(
        self, ticket: Ticket, mail: InboundMail, *, cc: Sequence[str] = ()
    ) -> OutgoingMail:
        """The acknowledgement to the sender; ``cc``: the ticket's other participants."""
        assert mail.from_address is not None
        context = self.context(ticket, mail)
        rendered = self.renderer.render("ack", str(context["severity"]), context)
        subject = f"[{context['ticket_ref']}] {ticket.subject}"
        token = self.settings.reply_token(ticket.number)
        message_id = make_message_id(domain_of(self.settings.from_address), token)
        references = [*mail.references]
        if mail.message_id and mail.message_id not in references:
            references.append(mail.message_id)
        payload = compose(
            from_address=self.settings.from_address,
            from_name=self.settings.from_name,
            to=[mail.from_address],
            cc=cc,
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            in_reply_to=mail.message_id,
            references=references,
        )
        return OutgoingMail(
            kind="ack",
            message_id=message_id,
            envelope_from=self.settings.from_address,
            recipients=(mail.from_address, *cc),
            subject=subject,
            text=rendered.text,
            payload=payload,
            cc=tuple(cc),
        )
