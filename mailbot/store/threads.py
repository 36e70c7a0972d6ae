"""The thread part of applying a decision: readable text, participants, copies (Cc).

Called from ``apply_decision`` inside its one transaction.  A thread entry keeps the
full text (``text_full``) and the new content alone (``text``: quoted history and
signature removed, ``mailbot.pipeline.content``).  Participants are rows unique per
ticket and address, so recording them twice (or from two workers) is harmless.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from mailbot.message import InboundMail
from mailbot.pipeline.automatic import automatic_reason
from mailbot.pipeline.content import DEFAULT_LANGUAGES, new_content
from mailbot.pipeline.participants import Seen, cc_recipients, participants_of
from mailbot.pipeline.staff import StaffPolicy
from mailbot.store.models import Participant, Suppression
from mailbot.store.repo import insert_ignore

if TYPE_CHECKING:  # it reads through mailbot.store.repo
    from mailbot.store.chunk_facts import ChunkFacts


@dataclass(frozen=True)
class ThreadSettings:
    own_addresses: frozenset[str] = frozenset()
    staff: StaffPolicy = StaffPolicy()
    reply_languages: tuple[str, ...] = DEFAULT_LANGUAGES
    cc_on_ack: bool = True  # [acknowledgement] cc_participants
    cc_on_relay: bool = True  # [staff] cc_participants
    max_cc: int = 10  # [threads] max_cc


def texts(mail: InboundMail, settings: ThreadSettings) -> tuple[str, str]:
    """(new content, full text) of an inbound message."""
    if mail.new_text is not None:  # computed before the transaction (worker._prepare)
        return mail.new_text, mail.text
    return new_content(mail.text, mail.subject, settings.reply_languages), mail.text


def with_new_text(mail: InboundMail, settings: ThreadSettings) -> InboundMail:
    """The mail with its new content computed: pure and slow-ish, so done outside locks."""
    text = new_content(mail.text, mail.subject, settings.reply_languages)
    return dataclasses.replace(mail, new_text=text)


def record_participants(
    session: Session,
    ticket_id: int,
    mail: InboundMail,
    now: datetime,
    settings: ThreadSettings,
    requester: str | None = None,
    facts: ChunkFacts | None = None,
) -> list[Seen]:
    """Add the participants ``mail`` shows; ``requester`` for the mail that opens a ticket.
    Now, or (in a chunk) at its end (``write_participants``).

    Returns them: for a new ticket they are all its participants."""
    seen = participants_of(
        mail,
        requester=requester,
        own_addresses=settings.own_addresses,
        staff=settings.staff,
        automatic=automatic_reason(mail, settings.own_addresses) is not None,
    )
    rows = [
        {"ticket_id": ticket_id, "address": s.address, "role": s.role, "added_at": now}
        for s in seen
    ]
    if facts is not None:
        facts.participants_added(rows)
    else:
        insert_ignore(session, Participant, rows)
    return list(seen)


def write_participants(session: Session, facts: ChunkFacts) -> None:
    """The participants a chunk added so far, in one statement."""
    insert_ignore(session, Participant, facts.participants_to_insert)
    facts.participants_to_insert = []


def participants(session: Session, ticket_id: int) -> list[Participant]:
    """The ticket's participants, in the order they joined."""
    query = (
        select(Participant).where(Participant.ticket_id == ticket_id).order_by(col(Participant.id))
    )
    return list(session.execute(query).scalars())


def _suppressed(session: Session, addresses: list[str], now: datetime) -> set[str]:
    """Addresses whose mail bounced recently (no automatic mail to them until then)."""
    if not addresses:
        return set()
    query = (
        select(Suppression.address)
        .where(col(Suppression.address).in_(addresses))
        .where(Suppression.until > now)
    )
    return set(session.execute(query).scalars())


def copies(
    session: Session,
    ticket_id: int,
    *,
    to: str,
    now: datetime,
    already: tuple[str, ...] = (),
    settings: ThreadSettings,
    known: list[Seen] | None = None,
    facts: ChunkFacts | None = None,
) -> tuple[str, ...]:
    """The Cc of a message we send to ``to``: the other participants, minus ``already``
    and minus addresses that bounced (``suppression``).  ``known``: the participants,
    when the caller has them (a ticket created in this transaction)."""
    if known is None and facts is not None:
        write_participants(session, facts)  # read in the order they joined
    seen = (
        known
        if known is not None
        else [Seen(p.address, p.role) for p in participants(session, ticket_id)]
    )
    if not cc_recipients(seen, exclude=(to, *already), limit=len(seen)):
        return ()  # nobody else: no need to ask who bounced
    bounced = _suppressed(session, [s.address for s in seen], now)
    return cc_recipients(seen, exclude=(to, *already, *bounced), limit=settings.max_cc)
