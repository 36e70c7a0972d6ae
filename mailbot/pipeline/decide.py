"""``decide``: one parsed message + a lookup → one Decision.  No I/O of its own."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Protocol

from mailbot.message import InboundMail
from mailbot.pipeline.authorization import may_append
from mailbot.pipeline.automatic import automatic_reason
from mailbot.pipeline.bounces import AttachBounce
from mailbot.pipeline.gates import ack_block, page_gate, trusted_staff
from mailbot.pipeline.paging import PageLookup, PageVerdict, PagingPolicy, page_verdict
from mailbot.pipeline.security import (
    QUARANTINE,
    QuarantineMessage,
    SecurityLookup,
    SecurityPolicy,
)
from mailbot.pipeline.severity import Severity, severity_tag, ticket_title
from mailbot.pipeline.staff import StaffPolicy, StaffReply, staff_reply
from mailbot.pipeline.threading_rules import TicketLookup, TicketView, match_ticket

ACK_WINDOW_SECONDS = 3600.0
CLOSED_STATUSES = frozenset({"resolved", "closed"})


@dataclass(frozen=True)
class Policy:
    """The configuration the decision core depends on, as plain values."""

    own_addresses: frozenset[str]
    reference: re.Pattern[str]
    acknowledge: bool = True
    acknowledge_replies: bool = False
    max_acks_per_sender_per_hour: int = 5
    staff: StaffPolicy = StaffPolicy()
    paging: PagingPolicy = PagingPolicy()
    security: SecurityPolicy = SecurityPolicy()  # who may append, loops, limits (issue 5)


class DecisionLookup(TicketLookup, PageLookup, SecurityLookup, Protocol):
    """Everything ``decide`` may ask the store."""


@dataclass(frozen=True)
class NewTicket:
    title: str
    severity: Severity
    requester: str | None
    acknowledge: bool
    note: str
    paging: PageVerdict | None = None  # set for an Emergency: page on-call, or why not


@dataclass(frozen=True)
class AppendToTicket:
    ticket: TicketView
    matched_by: str
    escalate_to: Severity | None
    reopen: bool
    acknowledge: bool
    note: str
    paging: PageVerdict | None = None  # set on escalation to Emergency
    staff_reply: StaffReply | None = None  # a staff response: relay, clocks, maybe resolve


@dataclass(frozen=True)
class IgnoreMessage:
    reason: str


# QuarantineMessage and AttachBounce (pipeline/security.py, bounces.py): hostile mail.
Decision = NewTicket | AppendToTicket | IgnoreMessage | QuarantineMessage | AttachBounce


def _ack_verdict(
    mail: InboundMail,
    lookup: DecisionLookup,
    policy: Policy,
    wanted: bool,
    why_not: str,
    ticket_id: int | None = None,
) -> tuple[bool, str]:
    """Whether to acknowledge, and a short note saying why (not)."""
    if not policy.acknowledge:
        return False, "acknowledgements off"
    if not wanted:
        return False, why_not
    robot = automatic_reason(mail, policy.own_addresses)
    if robot is not None:
        return False, f"automatic mail ({robot})"
    assert mail.from_address is not None  # automatic_reason rules out a missing sender
    sent = lookup.acks_sent_since(mail.from_address, ACK_WINDOW_SECONDS)
    if sent >= policy.max_acks_per_sender_per_hour:
        return False, f"per-sender limit reached ({sent} in the last hour)"
    blocked = ack_block(mail, lookup, policy.security, ticket_id)  # bounced; per-ticket cap
    if blocked is not None:
        return False, blocked
    return True, "acknowledged"


def _paging(mail: InboundMail, lookup: DecisionLookup, policy: Policy, event: str) -> PageVerdict:
    verdict = page_verdict(
        mail,
        lookup,
        policy.paging,
        event=event,
        is_staff=policy.staff.is_staff(mail.from_address),
        automatic=automatic_reason(mail, policy.own_addresses),
    )
    return page_gate(verdict, mail, policy.security)  # require_dmarc_for_paging


def decide(mail: InboundMail, lookup: DecisionLookup, policy: Policy) -> Decision:
    if lookup.is_duplicate(mail.dedup_key):
        return IgnoreMessage(f"duplicate of an earlier message ({mail.dedup_key})")
    staff_policy = trusted_staff(mail, policy.staff, policy.security)
    if staff_policy is not policy.staff:
        policy = dataclasses.replace(policy, staff=staff_policy)

    tag = severity_tag(mail.subject)
    match = match_ticket(mail, lookup, policy.reference)
    refused = ""  # named a ticket it may not write to (pipeline/authorization.py)
    if match is not None:
        is_staff = policy.staff.is_staff(mail.from_address)
        verdict = may_append(mail, match.ticket, lookup, policy.security, is_staff=is_staff)
        if not verdict.allowed and policy.security.unauthorised_reference == QUARANTINE:
            return QuarantineMessage(f"not appended: {verdict.reason}")
        if not verdict.allowed:
            match, refused = None, f"; not appended to the ticket it names: {verdict.reason}"
    if match is None:
        ack, note = _ack_verdict(mail, lookup, policy, True, "")
        severity = tag or Severity.NORMAL
        emergency = severity == Severity.EMERGENCY
        paging = _paging(mail, lookup, policy, "created") if emergency else None
        return NewTicket(
            title=ticket_title(mail.subject, policy.reference),
            severity=severity,
            requester=mail.from_address,
            acknowledge=ack,
            note=(note if paging is None else f"{note}; {paging.reason}") + refused,
            paging=paging,
        )

    ticket = match.ticket
    escalate = tag if tag is not None and tag < ticket.severity else None
    paging = _paging(mail, lookup, policy, "escalated") if escalate == Severity.EMERGENCY else None
    staff = staff_reply(
        mail, ticket.requester, policy.staff, automatic_reason(mail, policy.own_addresses)
    )
    if staff is not None:
        ack, note = False, staff.note  # staff replies are relayed, never acknowledged
    else:
        ack, note = _ack_verdict(
            mail,
            lookup,
            policy,
            policy.acknowledge_replies,
            "reply (replies are not acknowledged)",
            ticket.id,
        )
    return AppendToTicket(
        ticket=ticket,
        matched_by=match.matched_by,
        escalate_to=escalate,
        reopen=ticket.status in CLOSED_STATUSES and staff is None,
        acknowledge=ack,
        note=note if paging is None else f"{note}; {paging.reason}",
        paging=paging,
        staff_reply=staff,
    )
