"""Failover between two ``mailbot run`` daemons on one PostgreSQL and one IMAP mailbox.

One daemon reads the mailbox and runs the reminder sweep (each the holder of an
advisory lock); kill -9 it, and the other takes both over within 30 seconds.  Mail
appended meanwhile, and any message the dead one had stored but not yet moved, is
ticketed exactly once, and every ticket's acknowledgement arrives: once, or, for the one
the dead daemon may have had in flight (delivered, not yet marked sent), twice with its
same Message-ID, which is what the README promises on PostgreSQL.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from support.cluster import counter, start_daemon
from support.daemon import Daemon
from support.dovecot import PASSWORD, PASSWORD_ENV, Dovecot, imap_section
from support.mail import make_mail, message_id_of
from support.servers import Sink

from mailbot.store.db import Store
from mailbot.store.leader import imap_lock_name, lock_key

pytestmark = pytest.mark.integration

PROCESSED = "mailbot-processed"
TAKEOVER = 30.0  # seconds: the promise in the README


def wait_until(predicate: Callable[[], object], timeout: float, what: str, *procs: Daemon):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.log_path} ---\n{p.log()[-3000:]}" for p in procs)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(0.05)
    return value


def acknowledged(sink: Sink) -> Counter[str]:
    """Deliveries at the relay by Message-ID."""
    return Counter(message_id_of(received.raw) for received in sink.received)


def holders(engine: Engine, name: str) -> list[int]:
    """Backend pids holding the advisory lock of ``name`` in this schema."""
    with engine.connect() as conn:
        key = lock_key(conn, name) & 0xFFFF_FFFF_FFFF_FFFF
        query = text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid::bigint = :high AND objid::bigint = :low "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return list(conn.execute(query, {"high": key >> 32, "low": key & 0xFFFF_FFFF}).scalars())


def test_the_imap_leader_dies_and_the_other_daemon_takes_over(
    tmp_path: Path,
    sink: Sink,
    dovecot: Dovecot,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    overrides = {
        "intake": {"imap": imap_section(dovecot)},
        "reminders": {"team_address": "team@example.com", "interval": 3600.0},
        # What the killed daemon had claimed waits out its lease: short ones here, so
        # that the test's waits bound the takeover, not the defaults (300 s, 120 s).
        "worker": {"lease_seconds": 10.0},
        "outbound": {"lease_seconds": 10.0},
    }
    store = Store.open(postgres_url)
    count = counter(store.engine)
    mailbox = imap_lock_name(dovecot.host, dovecot.port, "support@example.com", "INBOX")
    daemons = [start_daemon(tmp_path, n, postgres_url, sink.port, overrides) for n in "ab"]
    try:
        leader = wait_until(
            lambda: next((d for d in daemons if "leader for IMAP" in d.log()), None),
            TAKEOVER,
            "one daemon leading the mailbox",
            *daemons,
        )
        (follower,) = [d for d in daemons if d is not leader]
        wait_until(lambda: "standby for IMAP" in follower.log(), TAKEOVER, "a standby", *daemons)
        wait_until(lambda: len(holders(store.engine, "reminders")) == 1, 10, "a reminder leader")
        imap_holder = holders(store.engine, mailbox)
        assert len(imap_holder) == 1

        dovecot.append_many(make_mail(f"[High] before {n}", sender=f"b{n}@customer.example")
                            for n in range(20))  # fmt: skip
        wait_until(lambda: count("SELECT count(*) FROM ticket") == 20, 60, "20 tickets", leader)

        assert leader.proc is not None
        dovecot.append_many(make_mail(f"[High] during {n}", sender=f"d{n}@customer.example")
                            for n in range(15))  # fmt: skip
        leader.kill()  # SIGKILL, possibly between a commit and its move
        killed_at = time.monotonic()
        dovecot.append_many(make_mail(f"[High] after {n}", sender=f"a{n}@customer.example")
                            for n in range(15))  # fmt: skip

        wait_until(lambda: "leader for IMAP" in follower.log(), TAKEOVER, "takeover", follower)
        took = time.monotonic() - killed_at
        wait_until(
            lambda: count("SELECT count(*) FROM ticket") == 50 and dovecot.count("INBOX") == 0,
            120,
            "50 tickets and an empty INBOX",
            follower,
        )
        wait_until(lambda: len(acknowledged(sink)) >= 50, 60, "50 acknowledgements", follower)
        assert holders(store.engine, mailbox) not in ([], imap_holder)
        assert len(holders(store.engine, "reminders")) == 1
        assert follower.stop() == 0
        assert holders(store.engine, mailbox) == []  # a clean stop frees the locks
        assert holders(store.engine, "reminders") == []
    finally:
        for proc in daemons:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.kill()
        store.dispose()

    print(f"takeover after the kill: {took:.1f}s")
    assert count("SELECT count(*) FROM ticket") == 50
    assert count("SELECT count(*) FROM inbound") == 50
    assert count("SELECT count(*) FROM outbox WHERE kind = 'ack'") == 50
    assert dovecot.count(PROCESSED) == 50
    delivered = acknowledged(sink)
    assert len(delivered) == 50
    # A SIGKILL between the relay's 250 and the "sent" mark (each delivery is marked at
    # once on PostgreSQL) leaves one delivery unmarked; the other daemon sends it again
    # after the lease, with the same Message-ID.  Never more than that one.
    resent = sum(delivered.values()) - len(delivered)
    print(f"acknowledgements delivered again after the kill: {resent}")
    assert resent <= 1, delivered
