"""The durable store: every row that must survive a crash.

Times are naive UTC throughout (the same on SQLite and PostgreSQL).  Unique
constraints, not check-then-insert, are what make duplicates impossible.
"""

from __future__ import annotations

from pydantic import NaiveDatetime
from sqlalchemy import Column, Index, LargeBinary, Sequence, Text
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
    mail_from: str = ""
    rcpt_to: str = ""
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    raw_sha256: str = Field(index=True)
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


class TicketEvent(SQLModel, table=True):
    """Things that happened to a ticket other than mail: escalation, reopening."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: NaiveDatetime
    kind: str
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


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
