"""Quarantine tools against the running daemon: a fixable failure, a retry, a discard."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from support.daemon import REPO, cli_json, run_cli
from support.mail import make_mail, message_id_of, send
from support.servers import Sink

pytestmark = pytest.mark.integration

BROKEN = "Dear {{ customer_nmae }},\nwe are on it: {{ ticket_ref }}.\n"  # an operator's typo


def wait_quarantined(config: Path, count: int, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    entries: list[dict] = []
    while time.monotonic() < deadline:
        entries = cli_json(config, "quarantine", "list")
        if len(entries) >= count:
            return entries
        time.sleep(0.1)
    raise AssertionError(f"expected {count} quarantined, have {entries}")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(REPO / "templates", folder)
    (folder / "ack" / "emergency.txt.j2").write_text(BROKEN)
    return folder


def test_retry_after_fixing_the_template(daemon, sink: Sink, templates: Path) -> None:
    bot = daemon({"acknowledgement": {"templates": str(templates)}})
    raw = make_mail("[Emergency] Database corrupted")
    send(bot.port, raw)
    [entry] = wait_quarantined(bot.config_path, 1)
    assert entry["subject"] == "[Emergency] Database corrupted"
    assert entry["message_id"].strip("<>") == message_id_of(raw)
    assert "customer_nmae" in entry["reason"]

    detail = cli_json(bot.config_path, "quarantine", "show", str(entry["id"]))
    assert "UndefinedError" in detail["traceback"] and detail["rcpt_to"] == ["support@example.com"]
    shown = run_cli(bot.config_path, "quarantine", "show", str(entry["id"]))
    assert shown.returncode == 0 and "customer_nmae" in shown.stdout

    # Not fixed yet: the retry fails and the message stays in quarantine.
    still = run_cli(bot.config_path, "quarantine", "retry", str(entry["id"]))
    assert still.returncode == 1
    assert f"message {entry['id']}: quarantined" in still.stdout
    assert [e["id"] for e in cli_json(bot.config_path, "quarantine", "list")] == [entry["id"]]
    assert cli_json(bot.config_path, "tickets", "list") == []

    shutil.copy(REPO / "templates" / "ack" / "emergency.txt.j2", templates / "ack")
    [result] = cli_json(bot.config_path, "quarantine", "retry", str(entry["id"]))
    assert result["outcome"] == "created" and result["ticket"] == "SUP-1001"
    assert cli_json(bot.config_path, "quarantine", "list") == []
    [ticket] = cli_json(bot.config_path, "tickets", "list")
    assert (ticket["ref"], ticket["severity"]) == ("SUP-1001", "emergency")
    # The running daemon's sender delivers the acknowledgement the retry queued.
    [ack] = sink.wait_for(1)
    assert ack.message["In-Reply-To"].strip("<>") == message_id_of(raw)
    assert "[SUP-1001]" in ack.message["Subject"]

    # A second retry of the same message has nothing to do.
    again = run_cli(bot.config_path, "quarantine", "retry", str(entry["id"]))
    assert again.returncode == 1 and "not in quarantine" in again.stdout
    assert bot.stop() == 0


def test_retry_all_and_discard(daemon, sink: Sink, templates: Path) -> None:
    bot = daemon({"acknowledgement": {"templates": str(templates)}})
    raws = [make_mail(f"[Emergency] Outage {n}") for n in range(3)]
    for raw in raws:
        send(bot.port, raw)
    entries = wait_quarantined(bot.config_path, 3)

    discarded = run_cli(bot.config_path, "quarantine", "discard", str(entries[0]["id"]))
    assert discarded.returncode == 0, discarded.stderr
    assert len(cli_json(bot.config_path, "quarantine", "list")) == 2
    # Discarded, not deleted: the raw bytes are still there.
    kept = run_cli(bot.config_path, "quarantine", "show", str(entries[0]["id"]), "--raw")
    assert message_id_of(kept.stdout.encode()) == message_id_of(raws[0])
    assert cli_json(bot.config_path, "quarantine", "show", str(entries[0]["id"]))["status"] == (
        "discarded"
    )
    second = run_cli(bot.config_path, "quarantine", "discard", str(entries[0]["id"]))
    assert second.returncode == 66 and "not in quarantine" in second.stderr

    shutil.copy(REPO / "templates" / "ack" / "emergency.txt.j2", templates / "ack")
    results = cli_json(bot.config_path, "quarantine", "retry", "--all")
    assert [r["outcome"] for r in results] == ["created", "created"]
    assert cli_json(bot.config_path, "quarantine", "list") == []
    assert len(cli_json(bot.config_path, "tickets", "list")) == 2
    sink.wait_for(2)
    assert bot.stop() == 0
