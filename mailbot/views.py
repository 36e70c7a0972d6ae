"""Tickets as plain data (for ``--json``) and as text for people.

Everything shown to an operator passes through ``printable``: customer-controlled
text cannot move the cursor, clear the screen or forge lines with escape sequences.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from mailbot.outbound.webhook import origin
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import format_reference
from mailbot.sla.breach import breached
from mailbot.store.db import utcnow
from mailbot.store.models import Attachment, OutboxMessage, ThreadEntry, Ticket, TicketEvent
from mailbot.store.repo import thread_of
from mailbot.store.threads import participants

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(value: str, multiline: bool = False) -> str:
    """Strip terminal control characters (ESC, bidi overrides); keep newlines if asked."""
    if multiline:
        return "\n".join(_UNPRINTABLE.sub("", line) for line in value.replace("\r", "").split("\n"))
    return _UNPRINTABLE.sub(" ", value)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def ticket_summary(
    ticket: Ticket, message_count: int, prefix: str, now: datetime | None = None
) -> dict[str, Any]:
    """``now`` (naive UTC, default: the current time) decides ``breached``."""
    return {
        "ref": format_reference(prefix, ticket.number),
        "subject": ticket.subject,
        "severity": Severity(ticket.severity).label,
        "status": ticket.status,
        "requester": ticket.requester,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "message_count": message_count,
        "first_response_due": iso(ticket.first_response_due),
        "first_response_at": iso(ticket.first_response_at),
        "next_update_due": iso(ticket.next_update_due),
        "resolved_at": iso(ticket.resolved_at),
        "breached": breached(ticket, now or utcnow()),
        "page_status": ticket.page_status,
        "emergency_unauthorised": ticket.emergency_unauthorised,
    }


def _page_target(row: OutboxMessage) -> str:
    """Where a page went: the on-call address, or the webhook's origin (not its path)."""
    return origin(row.recipient) if row.channel == "webhook" else row.recipient


def page_rows(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.ticket_id == ticket_id)
        .where(OutboxMessage.kind == "page")
        .order_by(col(OutboxMessage.id))
    )
    return [
        {
            "channel": row.channel,
            "target": _page_target(row),
            "status": row.status,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "queued_at": iso(row.created_at),
            "sent_at": iso(row.sent_at),
            "message_id": row.message_id,
        }
        for row in session.execute(query).scalars()
    ]


def attachment_numbers(
    entries: list[ThreadEntry], attachments: dict[int, list[Attachment]]
) -> dict[int, int]:
    """Attachment id → its number in the ticket (1, 2, … in thread order)."""
    numbers: dict[int, int] = {}
    for entry in entries:
        for item in attachments.get(entry.id or 0, []):
            numbers[item.id or 0] = len(numbers) + 1
    return numbers


def ticket_attachments(session: Session, ticket_id: int) -> list[Attachment]:
    """The ticket's attachments in ``tickets show`` order (number N is item N-1)."""
    entries = thread_of(session, ticket_id)
    if not entries:
        return []
    query = select(Attachment).where(col(Attachment.entry_id).in_([e.id for e in entries]))
    by_entry: dict[int, list[Attachment]] = {}
    for item in session.execute(query.order_by(col(Attachment.id))).scalars():
        by_entry.setdefault(item.entry_id, []).append(item)
    return [item for entry in entries for item in by_entry.get(entry.id or 0, [])]


def ticket_detail(session: Session, ticket: Ticket, prefix: str) -> dict[str, Any]:
    assert ticket.id is not None
    entries = thread_of(session, ticket.id)
    attachments: dict[int, list[Attachment]] = {}
    if entries:
        query = select(Attachment).where(col(Attachment.entry_id).in_([e.id for e in entries]))
        for item in session.execute(query.order_by(col(Attachment.id))).scalars():
            attachments.setdefault(item.entry_id, []).append(item)
    events = session.execute(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(col(TicketEvent.id))
    ).scalars()
    detail = ticket_summary(ticket, len(entries), prefix)
    numbers = attachment_numbers(entries, attachments)
    detail["messages"] = [
        {
            "direction": entry.direction,
            "kind": entry.kind,
            "message_id": entry.message_id,
            "from": entry.from_addr,
            "to": entry.to_addrs,
            "cc": entry.cc_addrs,
            "subject": entry.subject,
            "date": iso(entry.date or entry.created_at),
            "received_at": iso(entry.created_at),
            "text": entry.text,  # the new content: quoted history and signature removed
            "text_full": entry.text_full or entry.text,
            "attachments": [
                {
                    "number": numbers[a.id or 0],  # for `tickets attachment REF N`
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "inline": bool(a.content_id),
                    "content_id": a.content_id or None,
                }
                for a in attachments.get(entry.id or 0, [])
            ],
        }
        for entry in entries
    ]
    detail["participants"] = [
        {"address": p.address, "role": p.role, "added_at": iso(p.added_at)}
        for p in participants(session, ticket.id)
    ]
    detail["events"] = [{"at": iso(e.at), "kind": e.kind, "detail": e.detail} for e in events]
    detail["pages"] = page_rows(session, ticket.id)
    return detail


def _service_lines(detail: dict[str, Any]) -> list[str]:
    """Service levels and pages of ``tickets show``; failed pages stand out."""
    lines = []
    if detail.get("first_response_due"):
        parts = [f"first response due {detail['first_response_due']}"]
        parts.append(f"answered {detail['first_response_at'] or 'not yet'}")
        if detail.get("next_update_due"):
            parts.append(f"next update due {detail['next_update_due']}")
        if detail.get("breached"):
            parts.append("BREACHED")
        lines.append("service level: " + " · ".join(parts))
    if detail.get("emergency_unauthorised"):
        lines.append("! [Emergency] from a sender not allowed to page: nobody was paged")
    elif detail.get("page_status") and detail["page_status"] != "queued":
        lines.append(f"paging: {detail['page_status']} (nobody was paged)")
    for page in detail.get("pages", []):
        state = page["status"]
        if state == "failed":
            lines.append(
                f"! PAGE FAILED via {page['channel']} to {page['target']} after "
                f"{page['attempts']} attempt(s): {printable(page['last_error'] or '')}"
            )
        else:
            error = f"; last error: {printable(page['last_error'])}" if page["last_error"] else ""
            lines.append(
                f"page via {page['channel']} to {page['target']}: {state} "
                f"({page['attempts']} attempt(s)){error}"
            )
    return lines


def format_ticket_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no tickets"
    header = f"{'REF':<12} {'SEVERITY':<10} {'STATUS':<9} {'MSGS':>4}  {'REQUESTER':<28} SUBJECT"
    lines = [header]
    for row in rows:
        lines.append(
            f"{row['ref']:<12} {row['severity']:<10} {row['status']:<9} {row['message_count']:>4}  "
            f"{printable(row['requester'] or '-')[:28]:<28} {printable(row['subject'])[:60]}"
        )
    return "\n".join(lines)


def format_ticket_thread(detail: dict[str, Any], full: bool = False) -> str:
    """The thread for people: each message's new content, or with ``full`` the whole text."""
    lines = [
        f"{detail['ref']}  {printable(detail['subject'])}",
        f"severity {detail['severity']} · status {detail['status']} · "
        f"requester {printable(detail['requester'] or '-')} · opened {detail['created_at']}",
        *_service_lines(detail),
    ]
    others = [p for p in detail.get("participants", []) if p["role"] != "requester"]
    if others:
        names = ", ".join(f"{printable(p['address'])} ({p['role']})" for p in others)
        lines.append(f"participants: {names}")
    for event in detail["events"]:
        lines.append(f"  * {event['at']} {event['kind']}: {printable(event['detail'])}")
    for number, message in enumerate(detail["messages"], start=1):
        arrow = "<<" if message["direction"] == "inbound" else ">>"
        lines.append("")
        lines.append(
            f"--- #{number} {arrow} {message['direction']} {message['kind']} · {message['date']}"
        )
        lines.append(f"From: {printable(message['from'])}")
        lines.append(f"To: {printable(message['to'])}")
        if message.get("cc"):
            lines.append(f"Cc: {printable(message['cc'])}")
        lines.append(f"Subject: {printable(message['subject'])}")
        for item in message["attachments"]:
            inline = ", inline" if item.get("inline") else ""
            lines.append(
                f"Attachment {item['number']}: {printable(item['filename'])} "
                f"({item['content_type']}, {item['size']} bytes{inline})"
            )
        text = message["text_full"] if full else message["text"]
        lines.append("")
        lines.append(printable(text, multiline=True).rstrip())
        hidden = message["text_full"].replace("\r\n", "\n").strip() != message["text"].strip()
        if not full and hidden:
            lines.append("[quoted text and signature hidden; --full shows them]")
    return "\n".join(lines)
