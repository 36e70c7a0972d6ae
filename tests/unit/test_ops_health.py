"""Heartbeats, connection state and the maildir check behind /healthz."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailbot.ops.health import Heartbeat, connection_check, maildir_problem


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_heartbeat_not_started_alive_stuck_and_failing() -> None:
    clock = FakeClock()
    beat = Heartbeat("worker", clock=clock)
    assert not beat.check(60).ok and beat.check(60).detail == "not started"
    beat.beat()
    assert beat.check(60).ok
    clock.now += 61
    assert not beat.alive(60).ok and "stuck" in beat.alive(60).detail
    beat.beat(error="OperationalError: database is locked")
    assert beat.alive(60).ok  # a failing round is still a round: no watchdog restart
    assert not beat.check(60).ok and "database is locked" in beat.check(60).detail
    beat.beat()
    assert beat.check(60).ok


@dataclass
class FakeImap:
    connected: bool = False
    last_success: float | None = None


def test_connection_check() -> None:
    assert connection_check("imap", None).detail == "not started"
    status = FakeImap()
    assert not connection_check("imap", status).ok
    status.connected, status.last_success = True, 95.0
    result = connection_check("imap", status, wall_clock=lambda: 100.0)
    assert result.ok and result.detail == "connected; last success 5s ago"
    status.connected = False
    assert not connection_check("imap", status, wall_clock=lambda: 100.0).ok


def test_maildir_problem(tmp_path: Path) -> None:
    assert maildir_problem(tmp_path / "not" / "yet" / "there") is None
    afile = tmp_path / "file"
    afile.write_text("x")
    # a path under a regular file can never be created
    assert maildir_problem(afile / "outbox") is not None
