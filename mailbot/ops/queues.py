"""What operators see and repair: quarantined inbound messages and the outbox.

Plain functions over the caller's session, returning plain dicts (the ``--json`` shape).
Nothing here deletes: a discarded message keeps its raw bytes, a retried outbox row keeps
its Message-ID, so a resend is the same message, never a new one.
"""

from __future__ import annotations

from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from mailbot.pipeline.threading_rules import format_reference
from mailbot.store.models import InboundMessage, OutboxMessage, Ticket
from mailbot.views import iso

SUMMARY_HEADERS = ("From", "To", "Subject", "Date", "Message-ID")


def headers_of(raw: bytes) -> dict[str, str]:
    """A few headers for display; never fails, whatever the bytes are."""
    try:
        parsed = BytesHeaderParser(policy=default).parsebytes(raw)
        return {name: str(parsed.get(name, "") or "") for name in SUMMARY_HEADERS}
    except Exception:  # a message quarantined for being unparsable must still be listable
        return dict.fromkeys(SUMMARY_HEADERS, "")


def reason_summary(reason: str | None) -> str:
    """The last line of a traceback is the one that says what went wrong."""
    lines = [line for line in (reason or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


# ---------------------------------------------------------------- quarantine


def _quarantine_entry(row: InboundMessage, full: bool = False) -> dict[str, Any]:
    headers = headers_of(row.raw)
    entry: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "source": row.source,
        "received_at": iso(row.received_at),
        "quarantined_at": iso(row.processed_at),
        "attempts": row.attempts,
        "size": row.size,
        "mail_from": row.mail_from,
        "from": headers["From"],
        "subject": headers["Subject"],
        "message_id": headers["Message-ID"],
        "reason": reason_summary(row.reason),
    }
    if full:
        entry["rcpt_to"] = [r for r in row.rcpt_to.split(",") if r]
        entry["headers"] = headers
        entry["traceback"] = row.reason or ""
        entry["raw_sha256"] = row.raw_sha256
    return entry


def quarantined(session: Session) -> list[dict[str, Any]]:
    query = (
        select(InboundMessage)
        .where(InboundMessage.status == "quarantined")
        .order_by(col(InboundMessage.id))
    )
    return [_quarantine_entry(row) for row in session.execute(query).scalars()]


def quarantined_ids(session: Session) -> list[int]:
    query = (
        select(InboundMessage.id)
        .where(InboundMessage.status == "quarantined")
        .order_by(col(InboundMessage.id))
    )
    return [int(i) for i in session.execute(query).scalars()]


def inbound_detail(session: Session, inbound_id: int) -> dict[str, Any] | None:
    row = session.get(InboundMessage, inbound_id)
    return None if row is None else _quarantine_entry(row, full=True)


def inbound_raw(session: Session, inbound_id: int) -> bytes | None:
    row = session.get(InboundMessage, inbound_id)
    return None if row is None else row.raw


def requeue_quarantined(session: Session, inbound_id: int, lease_until: datetime) -> bool:
    """Quarantined → pending, leased to the caller so a running daemon leaves it alone.

    False if the message is not in quarantine (already retried, discarded, unknown).
    """
    result = session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .where(InboundMessage.status == "quarantined")
        .values(status="pending", outcome=None, processed_at=None, claimed_until=lease_until)
    )
    return bool(result.rowcount)


def discard_quarantined(session: Session, inbound_id: int, now: datetime) -> bool:
    row = session.get(InboundMessage, inbound_id)
    if row is None or row.status != "quarantined":
        return False
    row.status = "discarded"
    row.outcome = "discarded"
    row.processed_at = now
    row.reason = f"discarded by an operator at {iso(now)}; it was quarantined for:\n{row.reason}"
    session.add(row)
    return True


# ---------------------------------------------------------------- outbox


def _outbox_entry(row: OutboxMessage, ticket_ref: str | None) -> dict[str, Any]:
    headers = headers_of(row.payload) if row.channel == "mail" else {}
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "status": row.status,
        "ticket": ticket_ref,
        "recipients": [r for r in row.recipients.split(",") if r],
        "subject": headers.get("Subject", ""),
        "message_id": row.message_id,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "sent_at": iso(row.sent_at),
        "last_error": row.last_error,
    }


def outbox_rows(session: Session, statuses: tuple[str, ...], prefix: str) -> list[dict[str, Any]]:
    query = (
        select(OutboxMessage, Ticket.number)
        .outerjoin(Ticket, col(Ticket.id) == col(OutboxMessage.ticket_id))
        .where(col(OutboxMessage.status).in_(statuses))
        .order_by(col(OutboxMessage.id))
    )
    return [
        _outbox_entry(row, format_reference(prefix, number) if number is not None else None)
        for row, number in session.execute(query).all()
    ]


def failed_outbox_ids(session: Session) -> list[int]:
    query = select(OutboxMessage.id).where(OutboxMessage.status == "failed")
    return [int(i) for i in session.execute(query.order_by(col(OutboxMessage.id))).scalars()]


def requeue_outbox(session: Session, outbox_id: int, now: datetime) -> str:
    """Make a pending or failed row due now with a fresh retry budget.

    Returns ``"queued"``, or why not: ``"unknown"``, ``"sent"`` (never send twice).
    """
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        return "unknown"
    if row.status == "sent":
        return "sent"
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now  # a lease held by a sending daemon is left alone
    session.add(row)
    return "queued"
