"""Who may add mail to an existing ticket.  Pure: a message, a ticket, a lookup → a verdict.

Knowing a ticket number (or a Message-ID of the thread) is not enough to write into
it: that is how other helpdesks let strangers append to, reopen and read along on
other customers' tickets.  Under the default policy (``participants``) a message that
matched a ticket is appended only when

- its From address is the ticket's requester, or
- its From address is already on the ticket (From/To/Cc of its messages), or
- its From address is staff, or
- its In-Reply-To/References carry a valid reply token for this ticket (an HMAC in the
  Message-ID of our own mail about it: the sender received that mail).

Reply-To never counts: the sender is the From address.  Anything else is not
appended; ``decide`` opens a new ticket for the sender (nothing of the other ticket
in it) or quarantines the message, as configured.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.message import InboundMail
from mailbot.pipeline.security import ANYONE, SecurityLookup, SecurityPolicy
from mailbot.pipeline.threading_rules import TicketView


@dataclass(frozen=True)
class AppendVerdict:
    allowed: bool
    reason: str  # for the log and the inbound row; never shown to the sender


def may_append(
    mail: InboundMail,
    ticket: TicketView,
    lookup: SecurityLookup,
    policy: SecurityPolicy,
    *,
    is_staff: bool,
) -> AppendVerdict:
    if policy.append_policy == ANYONE:
        return AppendVerdict(True, "append policy 'anyone'")
    sender = mail.from_address
    if sender is not None and sender == ticket.requester:
        return AppendVerdict(True, "the requester")
    if is_staff:
        return AppendVerdict(True, "staff")
    if sender is not None and lookup.is_participant(ticket.id, sender):
        return AppendVerdict(True, "already on the ticket")
    if policy.tokens is not None and policy.tokens.proves(mail.referenced_ids, ticket.number):
        return AppendVerdict(True, "valid reply token")
    who = sender or f"unparsable From {mail.from_header!r}"
    return AppendVerdict(
        False, f"{who} is not on ticket #{ticket.number} and has no valid reply token"
    )
