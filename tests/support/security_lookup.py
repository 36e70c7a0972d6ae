"""The hostile-mail part of an in-memory decision lookup, for pure tests of ``decide``."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbot.pipeline.security import BouncedMail


@dataclass
class SecurityState:
    """Mix into an in-memory lookup; everything empty unless a test fills it in."""

    participants: set[tuple[int, str]] = field(default_factory=set)  # (ticket id, address)
    suppressed: set[str] = field(default_factory=set)
    automatic_per_ticket: dict[int, int] = field(default_factory=dict)
    sent: dict[str, BouncedMail] = field(default_factory=dict)  # our Message-ID -> mail

    def is_participant(self, ticket_id: int, address: str | None) -> bool:
        return (ticket_id, (address or "").lower()) in self.participants

    def automatic_mail_for_ticket_since(self, ticket_id: int, seconds: float) -> int:
        return self.automatic_per_ticket.get(ticket_id, 0)

    def is_suppressed(self, address: str) -> bool:
        return address.lower() in self.suppressed

    def sent_message(self, message_ids: tuple[str, ...]) -> BouncedMail | None:
        for mid in message_ids:
            if mid in self.sent:
                return self.sent[mid]
        return None
