"""Who counts as staff, and what a staff reply asks for (relay, resolve).  Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.message import InboundMail


def address_matches(
    address: str | None, addresses: frozenset[str], domains: frozenset[str]
) -> bool:
    """Exact address, or a domain (``example.com`` also covers ``eu.example.com``)."""
    if not address or "@" not in address:
        return False
    address = address.lower()
    if address in addresses:
        return True
    domain = address.rsplit("@", 1)[1]
    return any(domain == d or domain.endswith("." + d) for d in domains)


@dataclass(frozen=True)
class StaffPolicy:
    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    # A staff reply carrying this (in the subject, or alone on a line) resolves the ticket.
    resolve_marker: str = ""

    def is_staff(self, address: str | None) -> bool:
        return address_matches(address, self.addresses, self.domains)


@dataclass(frozen=True)
class StaffReply:
    """A staff response threaded into a ticket."""

    author: str
    relay_to: str | None  # the requester, or None when the reply is not passed on
    resolve: bool
    note: str


def _marker_line(marker: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t>]*{re.escape(marker)}[ \t\r]*$", re.IGNORECASE | re.MULTILINE)


def has_resolve_marker(mail: InboundMail, marker: str) -> bool:
    """The marker in the subject, or alone on a line of the staff member's own text.

    Quoted lines (``> [resolved]``) are not the staff member's words and don't count.
    """
    if not marker:
        return False
    if marker.lower() in mail.subject.lower():
        return True
    own_text = "\n".join(line for line in mail.text.splitlines() if not line.startswith(">"))
    return _marker_line(marker).search(own_text) is not None


def strip_resolve_marker(text: str, marker: str, multiline: bool = False) -> str:
    """The text without the marker, for what the customer sees."""
    if not marker:
        return text
    if multiline:
        return _marker_line(marker).sub("", text).strip("\n") + "\n"
    return " ".join(re.sub(re.escape(marker), " ", text, flags=re.IGNORECASE).split())


def staff_reply(
    mail: InboundMail, requester: str | None, policy: StaffPolicy, automatic: str | None
) -> StaffReply | None:
    """A StaffReply when a person on the staff list wrote this; None otherwise.

    An out-of-office or other automatic mail from a staff address is not a response.
    """
    if automatic is not None or not policy.is_staff(mail.from_address):
        return None
    assert mail.from_address is not None
    resolve = has_resolve_marker(mail, policy.resolve_marker)
    if requester is None:
        relay_to, note = None, "staff reply; ticket has no requester address to relay to"
    elif requester == mail.from_address:
        relay_to, note = None, "staff reply from the requester"
    elif requester in mail.to or requester in mail.cc:
        relay_to, note = None, "staff reply; the requester was already a recipient"
    else:
        relay_to, note = requester, "staff reply; relayed to the requester"
    if resolve:
        note += "; resolves the ticket"
    return StaffReply(author=mail.from_address, relay_to=relay_to, resolve=resolve, note=note)
