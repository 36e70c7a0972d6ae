"""The durable store: every row that must survive a crash.

Times are naive UTC throughout (the same on SQLite and PostgreSQL).  Unique
constraints, not check-then-insert, are what make duplicates impossible.
"""

from __future__ import annotations

from pydantic import NaiveDatetime
from sqlalchemy import Column, Index, LargeBinary, Sequence, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Ticket numbers on PostgreSQL come from this sequence (gaps possible, duplicates not);
# SQLite has no sequences and allocates under its single write lock instead.
TICKET_NUMBER_SEQUENCE = Sequence("ticket_number_seq", start=1001, metadata=SQLModel.metadata)


class InboundMessage(SQLModel, table=True):
    """The inbound queue: raw bytes plus envelope, stored before we answer 250."""

    __tablename__ = "inbound"
    __table_args__ = (Index("ix_inbound_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: NaiveDatetime
    source: str
    # The envelope sender; "" is the null sender <> (a bounce), None means no envelope is
    # known (IMAP without a Return-Path header).
    mail_from: str | None = ""
    rcpt_to: str = ""
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    raw_sha256: str = Field(index=True)
    # Where an intake found the message, when it can find it again: for IMAP
    # "imap://user@host/INBOX;UIDVALIDITY=v/;UID=n".  Unique, so a message re-fetched
    # after a crash between commit and move is recognised instead of stored twice.
    origin: str | None = Field(default=None, sa_column=Column(Text, unique=True))
    size: int = 0
    send_ack: bool = True
    # pending → done | ignored | quarantined
    status: str = "pending"
    attempts: int = 0
    claimed_until: NaiveDatetime | None = None
    processed_at: NaiveDatetime | None = None
    outcome: str | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text))
    message_id: str | None = Field(default=None, sa_column=Column(Text))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    severity: int
    status: str = "open"
    requester: str | None = None
    created_at: NaiveDatetime
    updated_at: NaiveDatetime
    # Service levels (mailbot/sla): due times from the business calendar, staff response.
    first_response_due: NaiveDatetime | None = None
    first_response_at: NaiveDatetime | None = None
    next_update_due: NaiveDatetime | None = None  # None: no cadence, or resolved
    resolved_at: NaiveDatetime | None = None
    # Paging of on-call for Emergency: None (never asked), queued, unauthorised,
    # rate-limited, automatic (sent by a robot) or off (no notifier configured).
    page_status: str | None = None
    # [Emergency] from a sender not allowed to page: the ticket is Emergency, flagged.
    emergency_unauthorised: bool = False


class ThreadEntry(SQLModel, table=True):
    """One message in a ticket's thread, inbound or our own outbound."""

    __tablename__ = "thread_entry"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str  # inbound | outbound
    kind: str = "mail"  # mail | ack | relay | notice
    dedup_key: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    message_id: str | None = Field(default=None, sa_column=Column(Text))
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    from_addr: str = Field(default="", sa_column=Column(Text, nullable=False))
    to_addrs: str = Field(default="", sa_column=Column(Text, nullable=False))
    cc_addrs: str = Field(default="", sa_column=Column(Text, nullable=False))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    date: NaiveDatetime | None = None
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The whole text as sent (quoted history, signature); ``text`` is the new content only.
    # Empty when nothing was cut: then ``text`` is the whole text.
    text_full: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    html: str | None = Field(default=None, sa_column=Column(Text))
    created_at: NaiveDatetime


class AttachmentBlob(SQLModel, table=True):
    """Attachment content, stored once per distinct content hash."""

    __tablename__ = "attachment_blob"

    sha256: str = Field(primary_key=True)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Attachment(SQLModel, table=True):
    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="thread_entry.id", index=True)
    filename: str = Field(sa_column=Column(Text, nullable=False))
    content_type: str
    size: int
    sha256: str = Field(foreign_key="attachment_blob.sha256")
    content_id: str = ""


class MessageRef(SQLModel, table=True):
    """Every Message-ID known to belong to a ticket: ours, the customer's, and referenced ones."""

    __tablename__ = "message_ref"

    message_id: str = Field(sa_column=Column(Text, primary_key=True))
    ticket_id: int = Field(foreign_key="ticket.id", index=True)


class Participant(SQLModel, table=True):
    """Who takes part in a ticket's conversation: the requester, Cc'd people, staff.

    Filled from the requester and the To/Cc of inbound mail, minus our own addresses
    (Reply-To never makes a participant).  Acknowledgements and staff relays Cc them.
    """

    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("ticket_id", "address", name="uq_participant_address"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    address: str = Field(sa_column=Column(Text, nullable=False))
    role: str = "cc"  # requester | cc | staff
    added_at: NaiveDatetime


class TicketEvent(SQLModel, table=True):
    """Things that happened to a ticket other than mail: escalation, reopening."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: NaiveDatetime
    kind: str
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class PageRecord(SQLModel, table=True):
    """One page of on-call per ticket and event (``created``/``escalated``), whatever the notifiers.

    The unique pair makes a second page for the same event impossible; ``sender``
    feeds the per-sender hourly limit.  Delivery state lives in the outbox rows.
    """

    __tablename__ = "page"
    __table_args__ = (
        UniqueConstraint("ticket_id", "event", name="uq_page_ticket_event"),
        Index("ix_page_sender", "sender", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    event: str
    sender: str = ""
    created_at: NaiveDatetime


class OutboxMessage(SQLModel, table=True):
    """The only way out: each row is one message to deliver, with its Message-ID fixed."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_rate", "kind", "recipient", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # ack | relay | page | notice
    channel: str = "mail"  # which transport delivers it: mail | webhook
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    message_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    envelope_from: str = ""
    recipient: str = ""
    recipients: str = Field(default="", sa_column=Column(Text, nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # pending → sent | failed
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: NaiveDatetime
    claimed_until: NaiveDatetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: NaiveDatetime
    sent_at: NaiveDatetime | None = None


class StoredSecret(SQLModel, table=True):
    """Secrets generated on first start and shared by every daemon on this store.

    ``reply_token``: the HMAC key of reply tokens, unless the config supplies one.
    """

    __tablename__ = "stored_secret"

    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class Suppression(SQLModel, table=True):
    """An address whose mail bounced: no automatic mail to it until ``until``."""

    __tablename__ = "suppression"

    address: str = Field(sa_column=Column(Text, primary_key=True))
    until: NaiveDatetime
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    created_at: NaiveDatetime
