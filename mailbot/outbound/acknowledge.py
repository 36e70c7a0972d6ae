"""The acknowledgement a new ticket gets: rendered from templates, composed, not sent."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.message import InboundMail
from mailbot.outbound.compose import compose, domain_of, make_message_id
from mailbot.outbound.render import Renderer
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
        }

    def __call__(self, ticket: Ticket, mail: InboundMail) -> OutgoingMail:
        assert mail.from_address is not None
        context = self.context(ticket, mail)
        rendered = self.renderer.render("ack", str(context["severity"]), context)
        subject = f"[{context['ticket_ref']}] {ticket.subject}"
        message_id = make_message_id(domain_of(self.settings.from_address))
        references = [*mail.references]
        if mail.message_id and mail.message_id not in references:
            references.append(mail.message_id)
        payload = compose(
            from_address=self.settings.from_address,
            from_name=self.settings.from_name,
            to=[mail.from_address],
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
            recipients=(mail.from_address,),
            subject=subject,
            text=rendered.text,
            payload=payload,
        )
