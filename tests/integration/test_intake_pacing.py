"""Flow control (mailbot/intake/pacing.py) in ``mailbot run``: while the worker process is
stopped (SIGSTOP) the backlog grows, and past ``pace_backlog`` a 250 waits, at most
``pace_max_delay``; once the worker runs again a held 250 goes out as soon as it has
caught up.  Every message is stored, becomes a ticket and is acknowledged."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.mail import make_mail, send
from support.processes import worker_children
from support.servers import Sink, free_port

pytestmark = pytest.mark.integration

MAX_DELAY = 3.0


def _count(database: Path, sql: str) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute(sql).fetchone()[0])


def _wait_for(condition, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    return condition()


def _stop_between_transactions(pid: int, writer_lock: Path) -> None:
    """SIGSTOP ``pid`` (the worker falls behind), at a moment it holds no write lock: a
    stopped holder would stop every writer, the listener too."""
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        fd = os.open(writer_lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return  # closing the descriptor lets go of our probe
        except BlockingIOError:
            os.kill(pid, signal.SIGCONT)
        finally:
            os.close(fd)
        time.sleep(0.01)
    raise AssertionError("the worker never let go of the write lock")


def _timed_send(port: int, n: int) -> float:
    started = time.monotonic()
    send(port, make_mail(f"request {n}"), mail_from=f"c{n}@customer.example")
    return time.monotonic() - started


def test_a_250_waits_while_the_worker_is_far_behind_and_not_longer(
    daemon, sink: Sink, tmp_path: Path
) -> None:
    http = free_port()
    bot = daemon(
        {
            "intake": {"smtp": {"pace_backlog": 2, "pace_max_delay": MAX_DELAY}},
            "http": {"enabled": True, "port": http},
        }
    )
    assert bot.proc is not None
    database = tmp_path / "mailbot.db"
    _timed_send(bot.port, 1)
    assert _wait_for(lambda: _count(database, "SELECT count(*) FROM ticket") == 1)
    [worker] = _wait_for(lambda: worker_children(bot.proc.pid))

    _stop_between_transactions(worker, Path(f"{database}-writer.lock"))
    try:
        fast = [_timed_send(bot.port, n) for n in (2, 3)]  # backlog 1, 2: not held
        held = _timed_send(bot.port, 4)  # backlog 3: held until pace_max_delay
        assert _count(database, "SELECT count(*) FROM inbound WHERE status = 'pending'") == 3

        released: list[float] = []
        client = threading.Thread(target=lambda: released.append(_timed_send(bot.port, 5)))
        client.start()
        assert _wait_for(lambda: _count(database, "SELECT count(*) FROM inbound") == 5)
        time.sleep(0.3)
        assert not released  # held while the worker is stopped
    finally:
        os.kill(worker, signal.SIGCONT)
    client.join(MAX_DELAY + 5)

    assert all(seconds < 1.0 for seconds in fast), fast
    assert MAX_DELAY - 0.2 <= held < MAX_DELAY + 2.0, held
    assert released and released[0] < MAX_DELAY - 0.5, released  # freed by the worker
    assert _wait_for(lambda: _count(database, "SELECT count(*) FROM ticket") == 5)
    assert len(sink.wait_for(5)) == 5
    assert _paced_count(http) == 2  # the two held 250s, and only they


def _paced_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mailbot_intake_paced_seconds_count"
    )
