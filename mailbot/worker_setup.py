"""Building the worker and what it decides with from settings.

The daemon's ``Application`` uses these parts and much more (listener, sender, HTTP);
the worker process (mailbot/worker_child.py) builds only these, so it never imports
the listener, the transports or the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import date, datetime

from mailbot.config import Settings
from mailbot.outbound.acknowledge import AckComposer, AckSettings
from mailbot.outbound.render import Renderer
from mailbot.outbound.reply_token import ReplyTokens
from mailbot.pipeline.decide import Policy
from mailbot.pipeline.threading_rules import reference_pattern
from mailbot.security_setup import reply_tokens, security_policy
from mailbot.sla.wiring import ServiceLevelParts
from mailbot.store.db import Store
from mailbot.thread_setup import own_addresses, thread_settings
from mailbot.worker import Worker


@dataclass(frozen=True)
class WorkerParts:
    renderer: Renderer  # the acknowledgement templates (SIGHUP reloads them)
    tokens: ReplyTokens  # reply tokens in our Message-IDs (issue 5)
    sla: ServiceLevelParts  # due times, staff replies, paging and reminders (mailbot/sla)
    ack: AckComposer
    policy: Policy
    worker: Worker

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        clock: Callable[[], datetime],
        official_holidays: Container[date] | None = None,
    ) -> WorkerParts:
        """``official_holidays``: dates handed over by the daemon, so that the worker
        process need not load the ``holidays`` package (mailbot/sla/calendar.py)."""
        renderer = Renderer(settings.resolve_path(settings.acknowledgement.templates))
        renderer.check()
        policy_cfg = settings.policy
        tokens = reply_tokens(settings, store)
        sla = ServiceLevelParts.from_settings(settings, tokens.token, official_holidays)
        ack = AckComposer(
            renderer,
            AckSettings(
                prefix=settings.mailbot.ticket_prefix,
                from_address=settings.outbound.from_address,
                from_name="Support",
                support_address=settings.mailbot.support_address,
                support_hours=policy_cfg.support_hours,
                initial_response={k: v.initial_response for k, v in policy_cfg.targets.items()},
                status_updates={k: v.status_updates for k, v in policy_cfg.targets.items()},
                describe_due=sla.clocks.describe,
                reply_token=tokens.token,
            ),
        )
        policy = Policy(
            own_addresses=own_addresses(settings),
            reference=reference_pattern(settings.mailbot.ticket_prefix),
            acknowledge=settings.acknowledgement.enabled,
            acknowledge_replies=settings.acknowledgement.acknowledge_replies,
            max_acks_per_sender_per_hour=settings.acknowledgement.max_per_sender_per_hour,
            staff=sla.staff,
            paging=sla.paging,
            security=security_policy(settings, tokens),
        )
        worker = Worker(
            store=store,
            policy=policy,
            prefix=settings.mailbot.ticket_prefix,
            build_ack=ack,
            clock=clock,
            batch_size=settings.worker.batch_size,
            lease_seconds=settings.worker.lease_seconds,
            service=sla.effects,
            thread=thread_settings(settings),
        )
        return cls(renderer, tokens, sla, ack, policy, worker)
