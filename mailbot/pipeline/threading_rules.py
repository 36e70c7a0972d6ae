"""Which existing ticket, if any, a message belongs to.

In order: (a) our ticket reference ``[SUP-1001]`` in the subject; (b) a Message-ID the
message names (In-Reply-To, References) that is stored on a ticket, inbound or our own
outbound; (c) the message's own Message-ID, when a reply that arrived first already
named it.  Never by subject text alone.  A forward ("Fwd: …") is not threaded by (b):
the Message-IDs it names belong to the forwarded conversation (see forwarded.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from mailbot.message import InboundMail
from mailbot.pipeline.forwarded import is_forward
from mailbot.pipeline.severity import Severity


@dataclass(frozen=True)
class TicketView:
    """What the decision core may know about an existing ticket."""

    id: int
    number: int
    status: str
    severity: Severity
    requester: str | None


class TicketLookup(Protocol):
    """The narrow read interface the decision core gets (backed by the store)."""

    def is_duplicate(self, dedup_key: str) -> bool: ...

    def ticket_by_number(self, number: int) -> TicketView | None: ...

    def ticket_by_message_ids(self, message_ids: Iterable[str]) -> TicketView | None: ...

    def acks_sent_since(self, address: str, seconds: float) -> int: ...


def reference_pattern(prefix: str) -> re.Pattern[str]:
    """``[SUP-1001]`` (any case, optional inner spaces) for the configured prefix."""
    return re.compile(rf"\[\s*{re.escape(prefix)}-(\d{{1,12}})\s*\]", re.IGNORECASE)


def format_reference(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


@dataclass(frozen=True)
class Match:
    ticket: TicketView
    matched_by: str


def match_ticket(mail: InboundMail, lookup: TicketLookup, ref: re.Pattern[str]) -> Match | None:
    for found in ref.finditer(mail.subject):
        ticket = lookup.ticket_by_number(int(found.group(1)))
        if ticket is not None:
            return Match(ticket, "subject reference")
    # A forward's In-Reply-To/References name the forwarded conversation (forwarded.py).
    if mail.referenced_ids and not is_forward(mail.subject):
        ticket = lookup.ticket_by_message_ids(mail.referenced_ids)
        if ticket is not None:
            return Match(ticket, "In-Reply-To/References")
    if mail.message_id:
        ticket = lookup.ticket_by_message_ids([mail.message_id])
        if ticket is not None:
            return Match(ticket, "named by an earlier reply")
    return None
