"""``mailbot run`` as a real process reading a real Dovecot over IMAP.

Push by IDLE, a 1,000-message backlog, SIGKILL between commit and move, Dovecot
restarted underneath, a silent TCP drop, and the password from the environment.
Waits are for conditions (rows in the database, messages in folders), never sleeps.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.daemon import run_cli
from support.dovecot import PASSWORD, PASSWORD_ENV, Dovecot, imap_section
from support.imap_proxy import FreezableProxy
from support.mail import make_mail

from mailbot.intake.imap import CRASH_AFTER_STORE_ENV

pytestmark = pytest.mark.integration

PROCESSED = "mailbot-processed"


@pytest.fixture(autouse=True)
def imap_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.delenv(CRASH_AFTER_STORE_ENV, raising=False)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, log=None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            details = f"\n--- daemon log ---\n{log()}" if log is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{details}")
        time.sleep(0.05)


def count(tmp_path: Path, table: str) -> int:
    db = tmp_path / "mailbot.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:  # schema not created yet
            return 0


def imap_overrides(server: Dovecot | None = None, **imap: object) -> dict:
    assert server is not None
    return {"intake": {"imap": imap_section(server, **imap)}}


def connected_count(proc) -> int:  # type: ignore[no-untyped-def]
    return proc.log().count("imap: connected to")


# ---------------------------------------------------------------- push and volume


def test_new_mail_arrives_by_idle_within_two_seconds(daemon, dovecot, sink, tmp_path) -> None:
    # Polling once an hour and renewing IDLE every 10 minutes: only a push can be this fast.
    proc = daemon(imap_overrides(dovecot, poll_interval=3600.0, idle_renew=600.0))
    wait_until(lambda: "with IDLE" in proc.log(), 15, "the daemon in IDLE", proc.log)

    appended = time.monotonic()
    dovecot.append(make_mail("[Emergency] Pushed by IDLE"), flags=[b"\\Seen"])
    wait_until(lambda: sink.received, 2.0, "the acknowledgement within 2 s", proc.log)
    latency = time.monotonic() - appended

    assert count(tmp_path, "ticket") == 1
    assert sink.received[0].rcpt_tos == ["alice@customer.example"]
    assert dovecot.count("INBOX") == 0
    print(f"append → acknowledgement: {latency:.3f}s")


def test_backlog_of_a_thousand_is_drained_once(daemon, dovecot, tmp_path) -> None:
    dovecot.append_many(
        make_mail(f"Backlog {n}", sender=f"customer{n}@example.org") for n in range(1000)
    )
    assert dovecot.count("INBOX") == 1000
    started = time.monotonic()
    proc = daemon(
        {**imap_overrides(dovecot), "acknowledgement": {"enabled": False}},
    )
    wait_until(
        lambda: count(tmp_path, "ticket") == 1000 and dovecot.count("INBOX") == 0,
        240,
        "1,000 tickets and an empty INBOX",
        proc.log,
    )
    elapsed = time.monotonic() - started
    assert proc.stop() == 0
    assert count(tmp_path, "ticket") == 1000
    assert count(tmp_path, "inbound") == 1000
    assert dovecot.count(PROCESSED) == 1000
    print(f"1,000 messages: {elapsed:.1f}s to tickets and moved")


# ---------------------------------------------------------------- crashes and drops


def test_sigkill_between_commit_and_move_then_restart_no_duplicates(
    daemon, dovecot, sink, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(CRASH_AFTER_STORE_ENV, "1")
    proc = daemon(imap_overrides(dovecot))
    dovecot.append(make_mail("[High] Crash right after my commit"))
    assert proc.proc is not None
    assert proc.proc.wait(timeout=30) == -signal.SIGKILL
    assert count(tmp_path, "inbound") == 1  # committed ...
    assert dovecot.count("INBOX") == 1  # ... but not moved

    monkeypatch.delenv(CRASH_AFTER_STORE_ENV)
    proc.start()
    wait_until(lambda: dovecot.count("INBOX") == 0, 30, "the move after restart", proc.log)
    wait_until(lambda: sink.received, 30, "the acknowledgement", proc.log)
    assert proc.stop() == 0  # graceful stop drains the queues: the counts are final

    assert "already stored as message 1 (same mailbox, UIDVALIDITY and UID)" in proc.log()
    assert count(tmp_path, "inbound") == 1
    assert count(tmp_path, "ticket") == 1
    assert dovecot.count(PROCESSED) == 1
    assert len(sink.received) == 1


def test_dovecot_restarted_under_the_daemon_loses_nothing(daemon, dovecot, tmp_path) -> None:
    proc = daemon(imap_overrides(dovecot))
    wait_until(lambda: connected_count(proc) == 1, 15, "the IMAP connection", proc.log)

    dovecot.stop()  # the IDLE connection drops under the daemon
    wait_until(lambda: "reconnecting in" in proc.log(), 15, "the drop noticed", proc.log)
    dovecot.deliver_to_maildir(make_mail("Delivered while IMAP was down"))
    dovecot.start()
    dovecot.append(make_mail("Appended right after the restart"))

    wait_until(lambda: count(tmp_path, "ticket") == 2, 30, "both tickets", proc.log)
    wait_until(lambda: dovecot.count("INBOX") == 0, 15, "an empty INBOX", proc.log)
    assert connected_count(proc) >= 2
    assert proc.stop() == 0
    assert count(tmp_path, "inbound") == 2


def test_silent_tcp_drop_is_detected_and_mail_caught_up(daemon, dovecot, tmp_path) -> None:
    proxy = FreezableProxy(dovecot.host, dovecot.port).start()
    try:
        proc = daemon(
            imap_overrides(dovecot, port=proxy.port, idle_renew=2.0, timeout=2.0),
        )
        wait_until(lambda: connected_count(proc) == 1, 15, "the IMAP connection", proc.log)
        proxy.freeze()  # no FIN, no RST: the connection just goes quiet
        dovecot.append(make_mail("Sent into the silence"))  # straight to Dovecot

        wait_until(lambda: count(tmp_path, "ticket") == 1, 30, "the ticket", proc.log)
        assert "timed out" in proc.log()
        assert connected_count(proc) >= 2
        assert dovecot.count("INBOX") == 0
        assert proc.stop() == 0
    finally:
        proxy.stop()


# ---------------------------------------------------------------- the password


def test_password_from_environment_and_missing_password(
    make_config, dovecot, tmp_path, monkeypatch
) -> None:
    path, _ = make_config(imap_overrides(dovecot))
    ok = run_cli(path, "imap-check")
    assert ok.returncode == 0, ok.stderr
    assert "folder 'INBOX': 0 message(s)" in ok.stdout

    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    refused = run_cli(path, "imap-check")
    assert refused.returncode == 69
    assert "login refused" in refused.stderr
    assert "Traceback" not in refused.stderr

    monkeypatch.delenv(PASSWORD_ENV)
    missing = run_cli(path, "run", timeout=30)
    assert missing.returncode == 78
    assert PASSWORD_ENV in missing.stderr
    assert "Traceback" not in missing.stderr


def test_password_from_a_file(make_config, dovecot, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV)
    (tmp_path / "imap-password").write_text(PASSWORD + "\n")
    path, _ = make_config(imap_overrides(dovecot, password_file="imap-password"))
    result = run_cli(path, "imap-check")
    assert result.returncode == 0, result.stderr
