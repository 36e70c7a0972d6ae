"""Who we are and who staff are, from the configuration: what threading needs.

Built from ``Settings`` alone, without the database, so that ``mailbot import`` can hand
the same settings to the processes that prepare messages before any connection exists.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.pipeline.staff import StaffPolicy
from mailbot.store.threads import ThreadSettings


def own_addresses(settings: Settings) -> frozenset[str]:
    """Addresses whose mail is our own (never answered, never a customer's)."""
    return frozenset(settings.mailbot.own_addresses | {settings.outbound.from_address})


def staff_policy(settings: Settings) -> StaffPolicy:
    staff = settings.staff
    return StaffPolicy(
        addresses=frozenset(staff.addresses),
        domains=frozenset(staff.domains),
        resolve_marker=staff.resolve_marker,
    )


def thread_settings(settings: Settings) -> ThreadSettings:
    return ThreadSettings(
        own_addresses=own_addresses(settings),
        staff=staff_policy(settings),
        reply_languages=tuple(settings.threads.reply_languages),
        cc_on_ack=settings.acknowledgement.cc_participants,
        cc_on_relay=settings.staff.cc_participants,
        max_cc=settings.threads.max_cc,
    )
