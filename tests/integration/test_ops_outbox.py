"""``mailbot outbox list|retry`` against the running daemon and a relay that refuses once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.daemon import cli_json, run_cli
from support.mail import make_mail, message_id_of, send
from support.servers import Sink

pytestmark = pytest.mark.integration


def wait_outbox(config: Path, status: str, count: int, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = cli_json(config, "outbox", "list", "--status", status)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {count} {status} outbox rows, have {rows}")


def test_failed_ack_is_listed_and_retried(daemon, sink: Sink) -> None:
    sink.handler.fail_status = "550 5.7.1 relaying temporarily misconfigured"
    sink.handler.fail_next = 1
    bot = daemon()
    raw = make_mail("[High] Reports are slow")
    send(bot.port, raw)
    [failed] = wait_outbox(bot.config_path, "failed", 1)
    assert failed["kind"] == "ack" and failed["ticket"] == "SUP-1001"
    assert failed["recipients"] == ["alice@customer.example"]
    assert "550" in failed["last_error"] and failed["subject"].startswith("[SUP-1001]")
    listing = run_cli(bot.config_path, "outbox", "list")
    assert listing.returncode == 0 and "failed" in listing.stdout and "550" in listing.stdout

    retried = run_cli(bot.config_path, "outbox", "retry", str(failed["id"]))
    assert retried.returncode == 0 and "queued" in retried.stdout
    [ack] = sink.wait_for(1)
    assert ack.message["Message-ID"].strip("<>") == failed["message_id"].strip("<>")
    assert ack.message["In-Reply-To"].strip("<>") == message_id_of(raw)
    [sent] = wait_outbox(bot.config_path, "sent", 1)
    assert sent["id"] == failed["id"] and sent["last_error"] is None
    assert cli_json(bot.config_path, "outbox", "list") == []

    # Never twice: a sent row is not requeued; an unknown id is an error.
    [again] = cli_json(bot.config_path, "outbox", "retry", str(failed["id"]))
    assert again["result"] == "sent"
    unknown = run_cli(bot.config_path, "outbox", "retry", "999")
    assert unknown.returncode == 66
    assert len(sink.received) == 1
    assert bot.stop() == 0
