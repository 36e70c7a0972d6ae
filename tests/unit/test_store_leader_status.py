"""A daemon on standby for the IMAP mailbox is healthy; the leader's connection counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine

from mailbot.ops.health import connection_check
from mailbot.store.leader import Election, Leadership, StandbyAware, imap_lock_name


@dataclass
class Link:
    connected: bool
    last_success: float | None = None


def leadership(running: bool) -> Leadership:
    election = Election(create_engine("sqlite://"), "imap")
    job = Leadership(election, start=lambda: None, stop=lambda: None, what="IMAP")
    job.running = running
    return job


def test_standby_is_healthy_even_without_a_connection() -> None:
    result = connection_check("imap", StandbyAware(Link(False), leadership(running=False)))
    assert result.ok
    assert "standby" in result.detail


def test_the_leaders_connection_decides() -> None:
    assert connection_check("imap", StandbyAware(Link(True, 1.0), leadership(True))).ok
    down = connection_check("imap", StandbyAware(Link(False), leadership(running=True)))
    assert not down.ok
    assert "not connected" in down.detail


def test_mailbox_lock_names_ignore_case_of_host_and_user_not_folder() -> None:
    assert imap_lock_name("IMAP.Example.com", 993, "Support@X", "INBOX") == imap_lock_name(
        "imap.example.com", 993, "support@x", "INBOX"
    )
    assert imap_lock_name("h", 993, "u", "INBOX") != imap_lock_name("h", 993, "u", "Inbox")
    assert imap_lock_name("h", 993, "u", "INBOX") != imap_lock_name("h", 143, "u", "INBOX")
