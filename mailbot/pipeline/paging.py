"""Whether an Emergency may page on-call: the abuse guard, as a pure verdict.

Only senders on the allow list (customer addresses or domains) and staff can cause
a page; robots never do (a bounce of an ``[Emergency]`` mail must not wake anyone);
and each sender causes at most N pages an hour.  Whoever may not page still gets
an Emergency ticket: the verdict says why nobody was paged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailbot.message import InboundMail
from mailbot.pipeline.staff import address_matches

PAGE_WINDOW_SECONDS = 3600.0

QUEUED = "queued"
UNAUTHORISED = "unauthorised"
RATE_LIMITED = "rate-limited"
AUTOMATIC = "automatic"
OFF = "off"


class PageLookup(Protocol):
    def pages_caused_since(self, sender: str, seconds: float) -> int: ...


@dataclass(frozen=True)
class PagingPolicy:
    enabled: bool = False  # at least one notifier (webhook, on-call mail) configured
    off_reason: str = "paging is off (no notifier configured)"  # the verdict's reason then
    allowed_addresses: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    max_per_sender_per_hour: int = 3

    def allows(self, address: str | None) -> bool:
        return address_matches(address, self.allowed_addresses, self.allowed_domains)


@dataclass(frozen=True)
class PageVerdict:
    event: str  # created | escalated
    status: str  # queued | unauthorised | rate-limited | automatic | off
    reason: str
    sender: str

    @property
    def page(self) -> bool:
        return self.status == QUEUED

    @property
    def unauthorised(self) -> bool:
        return self.status == UNAUTHORISED


def page_verdict(
    mail: InboundMail,
    lookup: PageLookup,
    policy: PagingPolicy,
    *,
    event: str,
    is_staff: bool,
    automatic: str | None,
) -> PageVerdict:
    sender = mail.from_address or ""

    def verdict(status: str, reason: str) -> PageVerdict:
        return PageVerdict(event=event, status=status, reason=reason, sender=sender)

    if not policy.enabled:
        return verdict(OFF, policy.off_reason)
    if not is_staff and not policy.allows(mail.from_address):
        who = mail.from_address or mail.from_header or "unknown sender"
        return verdict(UNAUTHORISED, f"{who} is not allowed to page (paging.allowed_*)")
    if automatic is not None:
        return verdict(AUTOMATIC, f"automatic mail does not page ({automatic})")
    caused = lookup.pages_caused_since(sender, PAGE_WINDOW_SECONDS)
    if caused >= policy.max_per_sender_per_hour:
        return verdict(RATE_LIMITED, f"{sender} already caused {caused} page(s) in the last hour")
    return verdict(QUEUED, "on-call paged")
