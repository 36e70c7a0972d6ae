"""Decisions taken before a message is threaded at all.  Pure.

Our own mail coming back (its Message-ID carries our reply token) is ignored.
Bounces are attached to the ticket of the mail that bounced, with the failed
addresses suppressed, or ignored when they are about no mail of ours: never a new
ticket, never acknowledged.
"""

from __future__ import annotations

from mailbot.message import InboundMail
from mailbot.pipeline.bounces import AttachBounce, bounce_kind, read_report
from mailbot.pipeline.decide import Decision, DecisionLookup, IgnoreMessage, Policy


def screen(
    mail: InboundMail, raw: bytes, lookup: DecisionLookup, policy: Policy
) -> Decision | None:
    """A decision for mail that must not go through threading, or None for the rest."""
    if lookup.is_duplicate(mail.dedup_key):
        return None  # ``decide`` says so
    tokens = policy.security.tokens
    if tokens is not None and mail.message_id and tokens.ticket_number(mail.message_id):
        return IgnoreMessage("our own message came back (its Message-ID carries our reply token)")
    kind = bounce_kind(mail)
    if kind is None:
        return None
    report = read_report(mail, raw, kind)
    sent = lookup.sent_message(report.original_ids) if report.original_ids else None
    if sent is None:
        return IgnoreMessage(f"{kind} about no message of ours; not a ticket")
    if report.recipients:
        suppress = tuple(a for a in report.failed if a in sent.recipients)
    else:  # no DSN fields: a plain bounce of what we sent
        suppress = sent.recipients
    note = f"{kind}; not acknowledged"
    if suppress:
        note += f"; automatic mail to {', '.join(suppress)} suppressed"
    return AttachBounce(
        ticket=sent.ticket,
        suppress=suppress,
        note=note,
        suppress_seconds=policy.security.bounce_suppression_seconds,
    )
