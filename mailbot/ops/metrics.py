"""Prometheus metrics, on a registry owned by one Application (no process-wide default).

Counters and histograms are fed by observers the Application passes to the worker loop
and the sender; depths and ages are read from the database at scrape time, so they are
right even with several daemons sharing one store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col

from mailbot.ops.health import ConnectionStatus
from mailbot.store.db import Store
from mailbot.store.models import InboundMessage, OutboxMessage
from mailbot.worker import Outcome

SEVERITIES = ("emergency", "high", "normal", "low")
OUTBOUND_KINDS = ("ack", "page")
DELIVERY_RESULTS = ("sent", "retry", "failed")
# Outcomes that end a message's processing (``retry`` and ``skipped`` do not).
FINAL_OUTCOMES = frozenset({"created", "appended", "ignored", "quarantined"})

# Seconds: a healthy pipeline answers in milliseconds; retries stretch delivery to hours.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


class StoreCollector(Collector):
    """Queue depths and ages, read from the database when Prometheus scrapes."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.log = logging.getLogger("mailbot.ops.metrics")

    def _read(self) -> dict[str, float]:
        now = self.clock()
        with self.store.read() as session:

            def count(model: type, status: str) -> int:
                query = select(func.count()).select_from(model).where(col(model.status) == status)
                return int(session.execute(query).scalar_one())

            oldest = session.execute(
                select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
            ).scalar_one()
            return {
                "outbox_pending": count(OutboxMessage, "pending"),
                "outbox_failed": count(OutboxMessage, "failed"),
                "outbox_oldest": _seconds(now, oldest) or 0.0,
                "inbound_pending": count(InboundMessage, "pending"),
                "quarantined": count(InboundMessage, "quarantined"),
            }

    def collect(self) -> Iterator[Metric]:
        try:
            values = self._read()
        except Exception as exc:  # a scrape must answer even when the database does not
            self.log.warning("metrics: cannot read the store: %s: %s", type(exc).__name__, exc)
            values = None
        yield GaugeMetricFamily(
            "mailbot_store_up", "1 if the database answered this scrape", value=float(bool(values))
        )
        if values is None:
            return
        described = {
            "outbox_pending": "Outbox messages waiting to be delivered (outbox depth)",
            "outbox_failed": "Outbox messages given up on (see: mailbot outbox list)",
            "outbox_oldest": "Age in seconds of the oldest undelivered outbox message",
            "inbound_pending": "Inbound messages stored but not yet processed",
            "quarantined": "Inbound messages in quarantine (see: mailbot quarantine list)",
        }
        names = {
            "outbox_pending": "mailbot_outbox_depth",
            "outbox_failed": "mailbot_outbox_failed",
            "outbox_oldest": "mailbot_outbox_oldest_age_seconds",
            "inbound_pending": "mailbot_inbound_queue_depth",
            "quarantined": "mailbot_quarantine_depth",
        }
        for key, name in names.items():
            yield GaugeMetricFamily(name, described[key], value=values[key])


class ConnectionCollector(Collector):
    """IMAP connection state as gauges, read from the IMAP intake at scrape time."""

    def __init__(self, status: Callable[[], ConnectionStatus | None]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        yield GaugeMetricFamily(
            "mailbot_imap_connected",
            "1 while the IMAP connection is up",
            value=1.0 if status is not None and status.connected else 0.0,
        )
        yield GaugeMetricFamily(
            "mailbot_imap_last_success_timestamp_seconds",
            "Unix time of the last successful IMAP exchange (0: never)",
            value=(status.last_success or 0.0) if status is not None else 0.0,
        )


class Metrics:
    def __init__(
        self,
        clock: Callable[[], datetime],
        store: Store | None = None,
        imap: Callable[[], ConnectionStatus | None] | None = None,
    ) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        self.received = Counter(
            "mailbot_messages_received",
            "Inbound messages processed, by intake source and outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.tickets_created = Counter(
            "mailbot_tickets_created",
            "Tickets created, by severity",
            ["severity"],
            registry=self.registry,
        )
        self.outbound = Counter(
            "mailbot_outbound_messages",
            "Outbox delivery attempts by kind (ack, page, ...) and result (sent, retry, failed)",
            ["kind", "result"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "mailbot_processing_seconds",
            "Seconds from a message being stored to its outcome being committed",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "mailbot_delivery_seconds",
            "Seconds from an outbox message being committed to its delivery",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.intake_paced = Histogram(
            "mailbot_intake_paced_seconds",
            "Seconds a 250 was held because the worker was far behind (flow control)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        for severity in SEVERITIES:
            self.tickets_created.labels(severity)
        for kind in OUTBOUND_KINDS:
            self.delivery_seconds.labels(kind)
            for result in DELIVERY_RESULTS:
                self.outbound.labels(kind, result)
        if store is not None:
            self.registry.register(StoreCollector(store, clock))
        if imap is not None:
            self.registry.register(ConnectionCollector(imap))

    def observe_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        now = self.clock()
        for outcome in outcomes:
            if outcome.outcome == "skipped":
                continue
            self.received.labels(outcome.source or "unknown", outcome.outcome).inc()
            if outcome.outcome == "created" and outcome.severity:
                self.tickets_created.labels(outcome.severity).inc()
            latency = _seconds(now, outcome.received_at)
            if outcome.outcome in FINAL_OUTCOMES and latency is not None:
                self.processing_seconds.observe(latency)

    def observe_delivery(self, kind: str, result: str, created_at: datetime | None) -> None:
        self.outbound.labels(kind, result).inc()
        latency = _seconds(self.clock(), created_at)
        if result == "sent" and latency is not None:
            self.delivery_seconds.labels(kind).observe(latency)

    def exposition(self) -> bytes:
        """The text format; reads the database, so call it off the event loop."""
        return generate_latest(self.registry)
