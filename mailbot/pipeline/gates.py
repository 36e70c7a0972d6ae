"""Gates ``decide`` consults: may an acknowledgement go out, may this page go out.  Pure.

- ``ack_block``: no automatic mail to an address that bounced recently, and at most N
  automatic messages per ticket an hour (the per-sender limit is in ``decide``).
- ``page_gate``: with ``require_dmarc_for_paging``, a page needs an authenticated From.
- ``trusted_staff``: with ``require_auth_for_staff``, so do staff privileges.
"""

from __future__ import annotations

import dataclasses

from mailbot.message import InboundMail
from mailbot.pipeline.authenticity import sender_authenticity
from mailbot.pipeline.paging import UNAUTHORISED, PageVerdict
from mailbot.pipeline.security import AUTOMATIC_WINDOW_SECONDS, SecurityLookup, SecurityPolicy
from mailbot.pipeline.staff import StaffPolicy


def ack_block(
    mail: InboundMail, lookup: SecurityLookup, policy: SecurityPolicy, ticket_id: int | None
) -> str | None:
    """Why no acknowledgement may go out (beyond the per-sender limit), or None."""
    if mail.from_address and not mail.from_address.isascii():
        # An RFC 6532 address needs SMTPUTF8 end to end; an ack would only fail or bounce.
        return "internationalised (non-ASCII) address: no automatic mail"
    if mail.from_address and lookup.is_suppressed(mail.from_address):
        return f"{mail.from_address} bounced recently; automatic mail suppressed"
    if ticket_id is not None:
        sent = lookup.automatic_mail_for_ticket_since(ticket_id, AUTOMATIC_WINDOW_SECONDS)
        if sent >= policy.max_automatic_per_ticket_per_hour:
            return f"per-ticket limit reached ({sent} automatic messages in the last hour)"
    return None


def trusted_staff(mail: InboundMail, staff: StaffPolicy, policy: SecurityPolicy) -> StaffPolicy:
    """The staff list, or an empty one when staff privileges need an authenticated From
    (``require_auth_for_staff``) and this message's From is not authenticated: a forged
    staff address must not reach a customer from the support address."""
    if not policy.require_auth_for_staff or not staff.is_staff(mail.from_address):
        return staff
    if sender_authenticity(mail, policy.authserv_id).authenticated:
        return staff
    return StaffPolicy()


def page_gate(verdict: PageVerdict, mail: InboundMail, policy: SecurityPolicy) -> PageVerdict:
    """An allowed page becomes unauthorised when the From address is not authenticated."""
    if not verdict.page or not policy.require_dmarc_for_paging:
        return verdict
    authenticity = sender_authenticity(mail, policy.authserv_id)
    if authenticity.authenticated:
        return verdict
    return dataclasses.replace(
        verdict,
        status=UNAUTHORISED,
        reason=f"{verdict.sender or 'sender'} is not authenticated ({authenticity.reason}; "
        "security.require_dmarc_for_paging)",
    )
