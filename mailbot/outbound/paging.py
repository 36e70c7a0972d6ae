"""Pages of on-call for an Emergency: a PagerDuty Events v2 ``trigger`` and/or an e-mail.

Composed here, queued by ``apply_service.record_paging`` in the ticket's transaction,
delivered by the outbox sender (channel ``webhook`` or ``mail``).  Message-IDs are
deterministic per ticket, event and channel; the dedup key PagerDuty sees is the
ticket reference, so a re-sent trigger updates the same incident.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailbot.message import InboundMail
from mailbot.outbound.compose import compose, domain_of, header_safe
from mailbot.outbound.reply_token import no_token, with_token
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import format_reference
from mailbot.store.apply_service import OutgoingPage
from mailbot.store.models import Ticket

SUMMARY_LIMIT = 1024  # PagerDuty's limit for payload.summary
EXCERPT_LIMIT = 2000


@dataclass(frozen=True)
class PageSettings:
    prefix: str
    from_address: str
    support_address: str
    webhook_url: str = ""
    routing_key: str = ""
    oncall_address: str = ""
    describe_due: Callable[[datetime], str] | None = None
    reply_token: Callable[[int], str] = no_token  # outbound/reply_token.py


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


class PageComposer:
    """Callable ``(ticket, mail, event) -> [OutgoingPage]``: one per configured notifier."""

    def __init__(self, settings: PageSettings) -> None:
        self.settings = settings

    def message_id(self, ticket: Ticket, event: str, channel: str) -> str:
        # The ticket's creation time keeps the id unique if a database is ever started anew.
        stamp = f"{ticket.created_at:%Y%m%d%H%M%S}"
        ref = format_reference(self.settings.prefix, ticket.number)
        local = f"page-{ref}-{event}-{channel}-{stamp}"
        token = self.settings.reply_token(ticket.number)
        return with_token(f"{local}@{domain_of(self.settings.from_address)}", token)

    def summary(self, ticket: Ticket, mail: InboundMail, event: str) -> str:
        ref = format_reference(self.settings.prefix, ticket.number)
        what = "escalated to Emergency" if event == "escalated" else "Emergency"
        who = mail.from_address or mail.from_header or "unknown sender"
        return header_safe(f"{ref} {what}: {ticket.subject} (from {who})", SUMMARY_LIMIT)

    def pagerduty_event(self, ticket: Ticket, mail: InboundMail, event: str) -> dict[str, Any]:
        """A PagerDuty Events API v2 ``trigger`` (``dedup_key`` = ticket reference)."""
        ref = format_reference(self.settings.prefix, ticket.number)
        return {
            "routing_key": self.settings.routing_key,
            "event_action": "trigger",
            "dedup_key": ref,
            "client": "mailbot",
            "payload": {
                "summary": self.summary(ticket, mail, event),
                "severity": "critical",
                "source": self.settings.support_address,
                "timestamp": _iso(ticket.updated_at),
                "component": "support mailbox",
                "class": f"ticket {event}",
                "custom_details": {
                    "ticket": ref,
                    "event": event,
                    "severity": Severity(ticket.severity).label,
                    "requester": ticket.requester,
                    "sender": mail.from_address,
                    "subject": mail.subject,
                    "first_response_due": _iso(ticket.first_response_due),
                    "message": mail.text[:EXCERPT_LIMIT],
                },
            },
        }

    def oncall_mail_text(self, ticket: Ticket, mail: InboundMail, event: str) -> str:
        ref = format_reference(self.settings.prefix, ticket.number)
        due = ticket.first_response_due
        due_text = ""
        if due is not None:
            local = self.settings.describe_due(due) if self.settings.describe_due else None
            due_text = f"First response due: {local or _iso(due)} ({_iso(due)})\n"
        excerpt = mail.text[:EXCERPT_LIMIT].rstrip()
        return (
            f"{self.summary(ticket, mail, event)}\n\n"
            f"Ticket: {ref}\n"
            f"Requester: {ticket.requester or '-'}\n"
            f"Subject: {header_safe(mail.subject)}\n"
            f"{due_text}\n"
            f"To answer the customer, write to {self.settings.support_address} with [{ref}] "
            f"in the subject, or reply to their message: staff replies are passed on to them.\n"
            f"Replies to this page are not.\n\n"
            f"--- the message ---\n{excerpt}\n"
        )

    def __call__(self, ticket: Ticket, mail: InboundMail, event: str) -> list[OutgoingPage]:
        pages = []
        if self.settings.webhook_url:
            body = json.dumps(self.pagerduty_event(ticket, mail, event), ensure_ascii=False)
            pages.append(
                OutgoingPage(
                    channel="webhook",
                    message_id=self.message_id(ticket, event, "webhook"),
                    envelope_from="",
                    recipients=(self.settings.webhook_url,),
                    payload=body.encode("utf-8"),
                )
            )
        if self.settings.oncall_address:
            message_id = self.message_id(ticket, event, "mail")
            ref = format_reference(self.settings.prefix, ticket.number)
            # No [ref] brackets in the subject: a reply to the page must not thread into
            # the ticket as a staff reply and be passed on to the customer.
            subject = f"PAGE {ref}: {self.summary(ticket, mail, event).removeprefix(ref).strip()}"
            pages.append(
                OutgoingPage(
                    channel="mail",
                    message_id=message_id,
                    envelope_from=self.settings.from_address,
                    recipients=(self.settings.oncall_address,),
                    payload=compose(
                        from_address=self.settings.from_address,
                        from_name="Support pager",
                        to=[self.settings.oncall_address],
                        subject=subject,
                        text=self.oncall_mail_text(ticket, mail, event),
                        html=None,
                        message_id=message_id,
                    ),
                )
            )
        return pages
