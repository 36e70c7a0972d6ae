"""The hostile-mail settings the decision core depends on, as plain values, and the
lookup they need.  (Configuration: ``[security]`` and ``[limits]``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailbot.outbound.reply_token import ReplyTokens
from mailbot.pipeline.limits import Limits
from mailbot.pipeline.threading_rules import TicketView

# Who may append to an existing ticket.
PARTICIPANTS = "participants"  # requester, addresses on the ticket, staff, valid reply token
ANYONE = "anyone"  # whoever names the ticket (not recommended)

# What a message naming a ticket it may not append to becomes.
NEW_TICKET = "new-ticket"
QUARANTINE = "quarantine"

AUTOMATIC_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class SecurityPolicy:
    append_policy: str = PARTICIPANTS
    unauthorised_reference: str = NEW_TICKET
    tokens: ReplyTokens | None = None  # None: no reply tokens are recognised
    authserv_id: str = ""
    require_dmarc_for_paging: bool = False
    require_auth_for_staff: bool = False
    max_automatic_per_ticket_per_hour: int = 10
    bounce_suppression_seconds: float = 604_800.0
    limits: Limits = Limits()


@dataclass(frozen=True)
class QuarantineMessage:
    """A decision: hold the message in quarantine with this reason (nothing else happens)."""

    reason: str


@dataclass(frozen=True)
class BouncedMail:
    """The message of ours a delivery report is about."""

    ticket: TicketView
    recipients: tuple[str, ...]  # whom we sent it to


class SecurityLookup(Protocol):
    """What the hostile-mail checks may ask the store."""

    def is_participant(self, ticket_id: int, address: str | None) -> bool: ...

    def automatic_mail_for_ticket_since(self, ticket_id: int, seconds: float) -> int: ...

    def is_suppressed(self, address: str) -> bool: ...

    def sent_message(self, message_ids: tuple[str, ...]) -> BouncedMail | None: ...
