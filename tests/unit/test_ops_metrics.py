"""Metrics from worker outcomes and sender results, read back with Prometheus' own parser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from mailbot.ops.metrics import Metrics
from mailbot.worker import Outcome

NOW = datetime(2024, 3, 4, 10, 0, 0)


@dataclass
class FakeImap:
    """Stands in for ImapIntake's two public attributes."""

    connected: bool = False
    last_success: float | None = None


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def outcome(kind: str, source: str = "smtp", severity: str | None = None, age: float = 2.0):
    return Outcome(
        1, kind, None, "", None, source, severity, received_at=NOW - timedelta(seconds=age)
    )


def test_outcomes_are_counted_by_source_outcome_and_severity() -> None:
    metrics = Metrics(clock=lambda: NOW)
    metrics.observe_outcomes(
        [
            outcome("created", severity="emergency"),
            outcome("created", severity="normal"),
            outcome("appended", source="deliver"),
            outcome("quarantined", source="imap"),
            outcome("skipped"),
            outcome("retry"),
        ]
    )
    got = samples(metrics)
    assert (
        got[("mailbot_messages_received_total", (("outcome", "created"), ("source", "smtp")))] == 2
    )
    assert (
        got[("mailbot_messages_received_total", (("outcome", "appended"), ("source", "deliver")))]
        == 1
    )
    assert (
        got[("mailbot_messages_received_total", (("outcome", "quarantined"), ("source", "imap")))]
        == 1
    )
    assert got[("mailbot_messages_received_total", (("outcome", "retry"), ("source", "smtp")))] == 1
    assert not any(key[1] == (("outcome", "skipped"), ("source", "smtp")) for key in got)
    assert got[("mailbot_tickets_created_total", (("severity", "emergency"),))] == 1
    assert got[("mailbot_tickets_created_total", (("severity", "normal"),))] == 1
    assert got[("mailbot_tickets_created_total", (("severity", "high"),))] == 0
    # four final outcomes (created ×2, appended, quarantined), each 2 s after receipt
    assert got[("mailbot_processing_seconds_count", ())] == 4
    assert got[("mailbot_processing_seconds_sum", ())] == 8.0
    assert got[("mailbot_processing_seconds_bucket", (("le", "1.0"),))] == 0
    assert got[("mailbot_processing_seconds_bucket", (("le", "2.5"),))] == 4


def test_deliveries_are_counted_and_timed_from_commit() -> None:
    metrics = Metrics(clock=lambda: NOW)
    metrics.observe_delivery("ack", "retry", NOW - timedelta(seconds=1))
    metrics.observe_delivery("ack", "sent", NOW - timedelta(seconds=40))
    metrics.observe_delivery("page", "failed", NOW - timedelta(seconds=5))
    got = samples(metrics)
    assert got[("mailbot_outbound_messages_total", (("kind", "ack"), ("result", "sent")))] == 1
    assert got[("mailbot_outbound_messages_total", (("kind", "ack"), ("result", "retry")))] == 1
    assert got[("mailbot_outbound_messages_total", (("kind", "page"), ("result", "failed")))] == 1
    assert got[("mailbot_outbound_messages_total", (("kind", "page"), ("result", "sent")))] == 0
    assert got[("mailbot_delivery_seconds_count", (("kind", "ack"),))] == 1
    assert got[("mailbot_delivery_seconds_sum", (("kind", "ack"),))] == 40.0
    assert got[("mailbot_delivery_seconds_count", (("kind", "page"),))] == 0


def test_each_application_has_its_own_registry() -> None:
    first, second = Metrics(clock=lambda: NOW), Metrics(clock=lambda: NOW)
    first.observe_outcomes([outcome("created", severity="low")])
    assert samples(first)[("mailbot_tickets_created_total", (("severity", "low"),))] == 1
    assert samples(second)[("mailbot_tickets_created_total", (("severity", "low"),))] == 0


def test_imap_state_is_exported() -> None:
    status = FakeImap()
    current: list[FakeImap | None] = [None]
    metrics = Metrics(clock=lambda: NOW, imap=lambda: current[0])
    assert samples(metrics)[("mailbot_imap_connected", ())] == 0  # not started
    current[0] = status
    status.connected, status.last_success = True, 1_700_000_000.0
    got = samples(metrics)
    assert got[("mailbot_imap_connected", ())] == 1
    assert got[("mailbot_imap_last_success_timestamp_seconds", ())] == 1_700_000_000.0
    status.connected = False
    assert samples(metrics)[("mailbot_imap_connected", ())] == 0
