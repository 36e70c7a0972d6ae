"""The daemon as a service: /healthz, /metrics, sd_notify READY/WATCHDOG, start-up errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families
from support.daemon import REPO, Daemon
from support.mail import make_mail, message_id_of, send
from support.servers import Sink, free_port, wait_for_port

pytestmark = pytest.mark.integration


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError as exc:  # not listening (yet)
        return 0, str(exc.reason)


def wait_health(port: int, status: int, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    code, body = 0, ""
    while time.monotonic() < deadline:
        code, body = get(port, "/healthz")
        if code == status:
            return json.loads(body)
        time.sleep(0.1)
    raise AssertionError(f"/healthz stayed {code}, wanted {status}: {body}")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, text = get(port, "/metrics")
    assert code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_metric(port: int, key: tuple, value: float, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        got = scrape(port)
        if got.get(key) == value:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{key} never reached {value}: {got.get(key)}")


def revive(sink: Sink) -> None:
    """Start a fresh relay on the stopped sink's port (the fixture stops it at the end)."""
    sink.controller = Controller(
        sink.handler, hostname="127.0.0.1", port=sink.port, decode_data=False
    )
    sink.controller.start()


def test_healthz_follows_the_outbound_relay(daemon, sink: Sink) -> None:
    http = free_port()
    bot = daemon({"http": {"enabled": True, "port": http}})
    health = wait_health(http, 200)
    assert health["status"] == "ok" and health["failing"] == []
    assert set(health["checks"]) == {"listener", "worker", "sender", "outbound"}

    sink.stop()
    health = wait_health(http, 503)
    assert health["failing"] == ["outbound"]
    assert f"127.0.0.1:{sink.port}" in health["checks"]["outbound"]["detail"]
    assert health["checks"]["listener"]["ok"] and health["checks"]["worker"]["ok"]

    revive(sink)
    wait_health(http, 200)
    assert get(http, "/nothing")[0] == 404
    assert bot.stop() == 0


def test_metrics_count_what_was_sent(daemon, sink: Sink) -> None:
    http = free_port()
    bot = daemon({"http": {"enabled": True, "port": http}})
    wait_for_port(http)
    first = make_mail("[High] Checkout fails")
    for raw in (first, make_mail("[High] Login slow"), make_mail("Question about export")):
        send(bot.port, raw)
    sink.wait_for(3)
    reply = make_mail(
        "Re: [High] Checkout fails",
        in_reply_to=message_id_of(first),
        references=[message_id_of(first)],
    )
    send(bot.port, reply)

    got = wait_metric(
        http,
        ("mailbot_messages_received_total", (("outcome", "appended"), ("source", "smtp"))),
        1,
    )
    wait_metric(http, ("mailbot_outbound_messages_total", (("kind", "ack"), ("result", "sent"))), 3)
    # Delivered, then marked sent with the sender's next claim (MARK_WITHIN) at the latest.
    got = wait_metric(http, ("mailbot_outbox_depth", ()), 0, timeout=2.0)
    created = ("mailbot_messages_received_total", (("outcome", "created"), ("source", "smtp")))
    assert got[created] == 3
    assert got[("mailbot_tickets_created_total", (("severity", "high"),))] == 2
    assert got[("mailbot_tickets_created_total", (("severity", "normal"),))] == 1
    assert got[("mailbot_tickets_created_total", (("severity", "emergency"),))] == 0
    assert got[("mailbot_outbound_messages_total", (("kind", "ack"), ("result", "failed")))] == 0
    assert got[("mailbot_processing_seconds_count", ())] == 4
    assert got[("mailbot_delivery_seconds_count", (("kind", "ack"),))] == 3
    assert got[("mailbot_outbox_depth", ())] == 0
    assert got[("mailbot_quarantine_depth", ())] == 0
    assert got[("mailbot_inbound_queue_depth", ())] == 0
    assert got[("mailbot_store_up", ())] == 1
    assert len(sink.received) == 3

    # A relay that refuses: the retry is counted and the outbox depth shows the waiting ack.
    sink.handler.fail_next = 1000
    send(bot.port, make_mail("[High] Another one"))
    got = wait_metric(
        http, ("mailbot_outbound_messages_total", (("kind", "ack"), ("result", "retry"))), 1
    )
    assert got[("mailbot_outbox_depth", ())] == 1
    assert bot.stop() == 0


def test_systemd_notify_ready_watchdog_stopping(make_config, tmp_path: Path) -> None:
    config, settings = make_config()
    port = settings["intake"]["smtp"]["port"]
    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(address))
        sock.settimeout(20)
        env = {"NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "400000"}
        bot = Daemon(config, port, tmp_path / "daemon.log", env=env).start(wait=False)
        try:
            fields = sock.recv(4096).decode().split("\n")
            assert "READY=1" in fields, fields
            # READY means the listener is bound: a connection succeeds right away.
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
            assert f"MAINPID={bot.proc.pid}" in fields
            pings = 0
            while pings < 3:  # the watchdog is fed every 0.2 s while all parts are alive
                if sock.recv(4096).decode() == "WATCHDOG=1":
                    pings += 1
            assert bot.stop() == 0
            messages = []
            while not any(m.startswith("STOPPING=1") for m in messages):
                messages.append(sock.recv(4096).decode())
        finally:
            if bot.proc is not None and bot.proc.poll() is None:
                bot.kill()


def test_http_port_in_use_is_one_clear_line(make_config) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        http = taken.getsockname()[1]
        config, _ = make_config({"http": {"enabled": True, "port": http}})
        result = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    assert result.returncode == 69
    assert result.stderr.strip().splitlines()[-1] == (
        f"mailbot: cannot listen for HTTP on 127.0.0.1:{http}: Address already in use"
    )
    assert "Traceback" not in result.stderr


def test_healthz_reports_the_imap_connection(make_config, tmp_path: Path, dovecot) -> None:
    from support.dovecot import PASSWORD, PASSWORD_ENV, imap_section

    http = free_port()
    config, settings = make_config(
        {"http": {"enabled": True, "port": http}, "intake": {"imap": imap_section(dovecot)}}
    )
    port = settings["intake"]["smtp"]["port"]
    bot = Daemon(config, port, tmp_path / "daemon.log", env={PASSWORD_ENV: PASSWORD}).start()
    try:
        health = wait_health(http, 200)
        assert health["checks"]["imap"]["ok"]
        assert health["checks"]["imap"]["detail"].startswith("connected")
        got = scrape(http)
        assert got[("mailbot_imap_connected", ())] == 1
        assert got[("mailbot_imap_last_success_timestamp_seconds", ())] > 0

        dovecot.stop()
        health = wait_health(http, 503, timeout=30)
        assert health["failing"] == ["imap"]
        assert scrape(http)[("mailbot_imap_connected", ())] == 0
        assert bot.stop() == 0
    finally:
        if bot.proc is not None and bot.proc.poll() is None:
            bot.kill()
