"""Who takes part in a ticket's conversation, and who gets a copy of what we send.  Pure.

Participants are the requester plus the authors and the To/Cc addresses of the inbound
mail on the ticket, minus our own addresses; staff addresses are participants with the
role ``staff``.  Reply-To never makes a participant (anyone can write any Reply-To), nor
does automatic mail (a bounce's To/Cc are not people in the conversation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailbot.message import InboundMail
from mailbot.pipeline.staff import StaffPolicy

REQUESTER = "requester"
CC = "cc"
STAFF = "staff"

# Mail naming more addresses than this adds only the first ones (a mass mailing to
# support@ must not make hundreds of people receive our acknowledgements).
MAX_NEW_PER_MESSAGE = 50


@dataclass(frozen=True)
class Seen:
    """An address seen in a message, with the role it takes in the ticket."""

    address: str
    role: str


def _role(address: str, staff: StaffPolicy) -> str:
    return STAFF if staff.is_staff(address) else CC


def participants_of(
    mail: InboundMail,
    *,
    requester: str | None,
    own_addresses: frozenset[str],
    staff: StaffPolicy,
    automatic: bool,
) -> tuple[Seen, ...]:
    """The participants this message shows: for a new ticket ``requester`` is its sender.

    The author of a reply is one too (staff as ``staff``): by the time this is called
    the reply was allowed onto the ticket (pipeline/authorization.py), so its author
    was already on it, is staff, or proved with a reply token that they got our mail.
    """
    found: dict[str, Seen] = {}
    if requester:
        found[requester] = Seen(requester, REQUESTER)
    if automatic:
        return tuple(found.values())
    author = mail.from_address
    if author and author not in found and author not in own_addresses:
        found[author] = Seen(author, _role(author, staff))
    own = {a.lower() for a in own_addresses}
    for address in (*mail.to, *mail.cc):
        if len(found) >= MAX_NEW_PER_MESSAGE:
            break
        if address in own or address in found:
            continue
        found[address] = Seen(address, _role(address, staff))
    return tuple(found.values())


def cc_recipients(
    participants: Iterable[Seen],
    *,
    exclude: Iterable[str],
    limit: int,
) -> tuple[str, ...]:
    """The participants who get a copy (Cc): not staff, not excluded, at most ``limit``."""
    skip = {a.lower() for a in exclude if a}
    chosen: list[str] = []
    for item in participants:
        if len(chosen) >= limit:
            break
        if item.role == STAFF or item.address in skip or item.address in chosen:
            continue
        chosen.append(item.address)
    return tuple(chosen)
