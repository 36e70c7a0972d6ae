"""Paging on-call through the webhook channel, against a real HTTP server on loopback."""

from __future__ import annotations

import smtplib
import threading
from pathlib import Path

import pytest
from support.daemon import Daemon, base_config, cli_json, merge, run_cli, write_config
from support.mail import make_mail
from support.servers import Sink, free_port
from support.webhook import WebhookServer

from mailbot.outbound.transports import PermanentDelivery, TransientDelivery
from mailbot.outbound.webhook import WebhookTransport

pytestmark = pytest.mark.integration

ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"


def paging(url: str, **extra: object) -> dict:
    return {
        "paging": {
            "webhook_url": url,
            "routing_key": ROUTING_KEY,
            "allowed_domains": ["customer.example"],
            **extra,
        }
    }


def send(port: int, raw: bytes, sender: str = "alice@customer.example") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, ["support@example.com"], raw)


# ---------------------------------------------------------------- the transport


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, None),
        (202, None),
        (429, TransientDelivery),
        (500, TransientDelivery),
        (503, TransientDelivery),
        (400, PermanentDelivery),
        (404, PermanentDelivery),
        (301, PermanentDelivery),
    ],
)
def test_webhook_transport_maps_http_status(status: int, outcome: type | None) -> None:
    with WebhookServer(then=status) as server:
        transport = WebhookTransport(timeout=5)
        try:
            if outcome is None:
                transport.send("", [server.url], b'{"a": 1}')
            else:
                with pytest.raises(outcome, match=f"HTTP {status}"):
                    transport.send("", [server.url], b'{"a": 1}')
        finally:
            transport.close()
        (request,) = server.requests
        assert request.json() == {"a": 1}
        assert request.headers["Content-Type"] == "application/json"


def test_webhook_transport_timeouts_and_refused_connections_are_transient() -> None:
    with WebhookServer() as server:
        server.script.hold = threading.Event()
        transport = WebhookTransport(timeout=0.3)
        with pytest.raises(TransientDelivery, match="timed out"):
            transport.send("", [server.url], b"{}")
        transport.close()
    transport = WebhookTransport(timeout=2)
    with pytest.raises(TransientDelivery):
        transport.send("", [f"http://127.0.0.1:{free_port()}/"], b"{}")


# ---------------------------------------------------------------- end to end, the daemon


def start_daemon(tmp_path: Path, sink: Sink, overrides: dict) -> tuple[Daemon, Path]:
    config = merge(base_config(tmp_path, free_port(), sink.port), overrides)
    path = write_config(tmp_path, config)
    bot = Daemon(path, config["intake"]["smtp"]["port"], tmp_path / "daemon.log")
    return bot.start(), path


def wait_page_status(path: Path, status: str, timeout: float = 20.0) -> dict:
    import time

    deadline = time.monotonic() + timeout
    detail: dict = {}
    while time.monotonic() < deadline:
        tickets = cli_json(path, "tickets", "list")
        if tickets:
            detail = cli_json(path, "tickets", "show", tickets[0]["ref"])
            if detail["pages"] and detail["pages"][0]["status"] == status:
                return detail
        time.sleep(0.1)
    raise AssertionError(f"page never reached {status!r}: {detail.get('pages')}")


def test_emergency_pages_once_through_a_webhook_that_fails_twice(
    tmp_path: Path, sink: Sink
) -> None:
    # The reminder loop runs too (nothing is due: it must only not get in the way).
    reminders = {"reminders": {"team_address": "team@example.com", "interval": 0.2}}
    with WebhookServer(statuses=[503, 503], then=202) as server:
        secret_url = server.url.rstrip("/") + "/hooks/s3cr3t-token"  # a token in the path
        bot, path = start_daemon(tmp_path, sink, merge(paging(secret_url), reminders))
        try:
            send(bot.port, make_mail("[Emergency] Pipeline down", body="Nothing runs.\n"))
            detail = wait_page_status(path, "sent")
        finally:
            assert bot.stop() == 0

    assert "delivered to http://127.0.0.1:" in bot.log()
    assert "s3cr3t-token" not in bot.log()  # logs show scheme://host:port only
    # Three attempts (503, 503, 202); the row is marked sent, so no fourth.
    assert [r.status for r in server.requests] == [503, 503, 202]
    (delivered,) = server.delivered
    event = delivered.json()
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "SUP-1001"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == "support@example.com"
    assert "SUP-1001" in event["payload"]["summary"]
    assert "Pipeline down" in event["payload"]["summary"]
    assert event["payload"]["custom_details"]["requester"] == "alice@customer.example"
    # Retried payloads are byte-identical: the same event, never a new one.
    assert len({r.body for r in server.requests}) == 1
    (page,) = detail["pages"]
    assert page["channel"] == "webhook" and page["attempts"] == 3
    assert page["target"] == f"http://127.0.0.1:{server.port}"
    assert detail["page_status"] == "queued"
    # The customer's acknowledgement says on-call was paged (a page was queued).
    (ack,) = sink.wait_for(1)
    assert "on-call engineer has been paged" in ack.text()


def test_a_page_survives_a_crash_and_is_delivered_after_restart(tmp_path: Path, sink: Sink) -> None:
    with WebhookServer(then=503) as server:
        slow_retry = {"outbound": {"retry_initial": 3.0, "retry_max": 3.0}}
        overrides = merge(paging(server.url), slow_retry)
        bot, path = start_daemon(tmp_path, sink, overrides)
        send(bot.port, make_mail("[Emergency] Database gone"))
        server.wait_for(1)
        bot.wait_log("retry 1 in")  # the failure is recorded; the next try is 3s away
        bot.kill()  # SIGKILL: no shutdown drain
        server.answer(202)
        bot.start()
        try:
            server.wait_for(1, delivered=True)
            detail = wait_page_status(path, "sent")
        finally:
            bot.stop()
    assert [r.status for r in server.requests] == [503, 202]
    assert server.delivered[0].json()["dedup_key"] == "SUP-1001"
    assert detail["pages"][0]["attempts"] == 2


def test_a_page_the_webhook_refuses_fails_loudly(tmp_path: Path, sink: Sink) -> None:
    with WebhookServer(then=400) as server:
        bot, path = start_daemon(tmp_path, sink, paging(server.url))
        try:
            send(bot.port, make_mail("[Emergency] Pipeline down"))
            detail = wait_page_status(path, "failed")
            bot.wait_log("ERROR mailbot.sender: outbox")
        finally:
            bot.stop()
    assert "HTTP 400" in detail["pages"][0]["last_error"]
    text = run_cli(path, "tickets", "show", "SUP-1001").stdout
    assert "PAGE FAILED via webhook" in text
    assert "HTTP 400" in text
    assert "page" in bot.log() and "failed: POST" in bot.log()
