"""Logs a machine can read: JSON lines that name the message and the ticket; SIGHUP reopens."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.daemon import REPO
from support.mail import make_mail, message_id_of, send
from support.servers import Sink, wait_for_port

from mailbot.logs import JsonFormatter

pytestmark = pytest.mark.integration


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_every_line_about_a_message_names_it_and_its_ticket(app, sink: Sink) -> None:
    collect = Collect()
    logger = logging.getLogger("mailbot")
    logger.addHandler(collect)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        bot = app()
        question = make_mail("[High] Broken export")
        bot.store_raw_sync("smtp", "alice@customer.example", ["support@example.com"], question)
        bot.drain()
        reply = make_mail(
            "Re: [High] Broken export",
            in_reply_to=message_id_of(question),
            references=[message_id_of(question)],
        )
        bot.store_raw_sync("smtp", "alice@customer.example", ["support@example.com"], reply)
        bot.drain()
    finally:
        logger.removeHandler(collect)
        logger.setLevel(old_level)
    about_messages = [
        line for line in collect.lines if line["logger"] in ("mailbot.worker", "mailbot.sender")
    ]
    assert len(about_messages) == 3  # created, ack delivered, appended
    for line in about_messages:
        assert line["message_id"] and line["ticket"] == "SUP-1001", line
    assert {line["message_id"] for line in about_messages} >= {
        message_id_of(question),
        message_id_of(reply),
    }
    assert len(sink.received) == 1


def test_sighup_reopens_the_log_file(make_config, tmp_path: Path) -> None:
    config, settings = make_config()
    port = settings["intake"]["smtp"]["port"]
    log = tmp_path / "mailbot.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(config), "--log-file", str(log), "run"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port)
        send(port, make_mail("Before rotation"))
        rotated = tmp_path / "mailbot.log.1"
        deadline = time.monotonic() + 15
        while "created SUP-1001" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log.rename(rotated)  # what logrotate does
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        send(port, make_mail("After rotation"))
        while "created SUP-1002" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    old, new = rotated.read_text(), log.read_text()
    assert "created SUP-1001" in old and "SUP-1002" not in old
    assert "templates reloaded" in new and "created SUP-1002" in new and "stopped" in new
    assert proc.stderr is not None and proc.stderr.read() == b""
