"""``mailbot deliver`` as the MTA runs it: a subprocess with the message on stdin."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import REPO
from support.mail import make_mail, message_id_of
from support.servers import Sink, free_port

from mailbot.store.db import Store

pytestmark = pytest.mark.integration


def deliver(config: Path, raw: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(config), "deliver", *args],
        input=raw,
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )


def queued(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT source, mail_from, rcpt_to, raw, status FROM inbound ORDER BY id"
        ).fetchall()


def one_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_stored_in_the_queue_exit_0(make_config, tmp_path: Path) -> None:
    config, _ = make_config()
    raw = make_mail("[High] Disk full")
    result = deliver(config, raw, "--from", "alice@customer.example", "--to", "help@example.com")
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert queued(tmp_path / "mailbot.db") == [
        ("deliver", "alice@customer.example", "help@example.com", raw, "pending")
    ]


def test_procmail_style_postmark_gives_the_sender(make_config, tmp_path: Path) -> None:
    config, _ = make_config()
    raw = make_mail("Question")
    result = deliver(config, b"From bob@example.org Mon Jan  1 00:00:00 2024\n" + raw)
    assert result.returncode == 0, result.stderr
    [(source, mail_from, rcpt_to, stored, _)] = queued(tmp_path / "mailbot.db")
    assert (source, mail_from, rcpt_to, stored) == (
        "deliver",
        "bob@example.org",
        "support@example.com",
        raw,
    )


def test_over_the_size_limit_exit_65(make_config, tmp_path: Path) -> None:
    config, _ = make_config({"intake": {"smtp": {"max_message_size": 2000}}})
    raw = make_mail("Big", body="x" * 5000 + "\n")
    result = deliver(config, raw, "--from", "alice@customer.example")
    assert result.returncode == 65
    assert "larger than the limit of 2000 bytes" in one_line(result.stderr)
    assert not (tmp_path / "mailbot.db").exists() or queued(tmp_path / "mailbot.db") == []


def test_database_locked_exit_75_then_0(make_config, tmp_path: Path) -> None:
    config, _ = make_config({"database": {"busy_timeout": 0.3}})
    db = tmp_path / "mailbot.db"
    Store.open(f"sqlite:///{db}").dispose()
    raw = make_mail("Locked out")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = deliver(config, raw, "--from", "alice@customer.example")
        assert result.returncode == 75, result.stderr
        line = one_line(result.stderr)
        assert "try again later" in line and "locked" in line
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert queued(db) == []
    again = deliver(config, raw, "--from", "alice@customer.example")
    assert again.returncode == 0, again.stderr
    assert [row[3] for row in queued(db)] == [raw]


def test_database_unreachable_exit_75(make_config) -> None:
    closed = free_port()  # nothing listens here
    config, _ = make_config(
        {"database": {"url": f"postgresql+psycopg://postgres@127.0.0.1:{closed}/test"}}
    )
    result = deliver(config, make_mail("Hello"), "--from", "alice@customer.example")
    assert result.returncode == 75
    assert "try again later" in one_line(result.stderr)


def test_broken_config_is_temporary_not_a_bounce(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[mailbot]\nsupport_adress = 'typo@example.com'\n")
    result = deliver(config, make_mail("Hello"), "--from", "alice@customer.example")
    assert result.returncode == 75
    assert "support_adress" in one_line(result.stderr)


def test_running_daemon_picks_the_message_up(daemon, sink: Sink, tmp_path: Path) -> None:
    bot = daemon()
    raw = make_mail("[Emergency] Site down")
    result = deliver(bot.config_path, raw, "--from", "alice@customer.example")
    assert result.returncode == 0, result.stderr
    [ack] = sink.wait_for(1)
    assert ack.rcpt_tos == ["alice@customer.example"]
    assert ack.message["In-Reply-To"].strip("<>") == message_id_of(raw)
    assert bot.stop() == 0
