"""Building the service-level parts from settings, so the Application needs only a few lines."""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import date, datetime

from mailbot.config import Settings
from mailbot.outbound.paging import PageComposer, PageSettings
from mailbot.outbound.relay import RelayComposer, RelaySettings
from mailbot.outbound.reminders import ReminderComposer, ReminderSettings
from mailbot.outbound.reply_token import no_token
from mailbot.pipeline.paging import PagingPolicy
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.staff import StaffPolicy
from mailbot.pipeline.threading_rules import reference_pattern
from mailbot.sla.clocks import ServiceClocks
from mailbot.sla.scheduler import ReminderSweep
from mailbot.store.apply import ServiceLevels
from mailbot.store.db import Store
from mailbot.thread_setup import staff_policy


@dataclass(frozen=True)
class ServiceLevelParts:
    clocks: ServiceClocks
    staff: StaffPolicy
    paging: PagingPolicy
    effects: ServiceLevels
    reminders: ReminderComposer
    reminder_interval: float
    update_severities: frozenset[Severity]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        reply_token: Callable[[int], str] = no_token,
        official_holidays: Container[date] | None = None,
    ) -> ServiceLevelParts:
        """``reply_token``: the ticket's token for our Message-IDs (outbound/reply_token.py);
        ``official_holidays``: see ``ServiceClocks.from_settings``."""
        clocks = ServiceClocks.from_settings(settings.sla, official_holidays)
        prefix = settings.mailbot.ticket_prefix
        from_address = settings.outbound.from_address
        staff_cfg, paging_cfg, reminder_cfg = settings.staff, settings.paging, settings.reminders
        log = logging.getLogger("mailbot.paging")
        if paging_cfg.webhook_url and not paging_cfg.key():
            log.warning(
                "paging.webhook_url is set but no routing key (paging.routing_key or $%s)",
                paging_cfg.routing_key_env,
            )
        pages = PageComposer(
            PageSettings(
                prefix=prefix,
                from_address=from_address,
                support_address=settings.mailbot.support_address,
                webhook_url=paging_cfg.webhook_url,
                routing_key=paging_cfg.key(),
                oncall_address=paging_cfg.oncall_address,
                describe_due=clocks.describe,
                reply_token=reply_token,
            )
        )
        relay = RelayComposer(
            RelaySettings(
                prefix=prefix,
                reference=reference_pattern(prefix),
                from_address=settings.mailbot.support_address,
                envelope_from=from_address,
                resolve_marker=staff_cfg.resolve_marker,
                reply_token=reply_token,
            )
        )
        reminders = ReminderComposer(
            ReminderSettings(
                prefix=prefix,
                from_address=from_address,
                team_address=reminder_cfg.team_address,
                oncall_address=paging_cfg.oncall_address if reminder_cfg.notify_on_call else "",
                describe_due=clocks.describe,
                reply_token=reply_token,
            )
        )
        return cls(
            clocks=clocks,
            staff=staff_policy(settings),
            paging=PagingPolicy(
                enabled=paging_cfg.enabled,
                allowed_addresses=frozenset(paging_cfg.allowed_addresses),
                allowed_domains=frozenset(paging_cfg.allowed_domains),
                max_per_sender_per_hour=paging_cfg.max_pages_per_sender_per_hour,
            ),
            effects=ServiceLevels(clocks=clocks, build_relay=relay, build_pages=pages),
            reminders=reminders,
            reminder_interval=reminder_cfg.interval,
            update_severities=frozenset(
                Severity.from_label(s) for s in reminder_cfg.status_update_severities
            ),
        )

    @property
    def reminders_enabled(self) -> bool:
        return bool(self.reminders.settings.team_address or self.reminders.settings.oncall_address)

    def reminder_sweep(
        self, store: Store, clock: Callable[[], datetime], prefix: str
    ) -> ReminderSweep:
        return ReminderSweep(
            store=store,
            clocks=self.clocks,
            compose=self.reminders,
            clock=clock,
            prefix=prefix,
            update_severities=self.update_severities,
        )
