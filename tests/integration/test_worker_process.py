"""The daemon's worker in a child process (``[worker] processes = 1``, the default).

``mailbot run`` as a real subprocess: mail becomes tickets through the child; when the
child is killed the daemon keeps going and processes mail itself until it starts the
child again (``RESTART_AFTER`` later); ``processes = 0`` runs without any child.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from support.mail import make_mail, send
from support.processes import children, cmdline, worker_children
from support.servers import Sink

from mailbot.worker_process import RESTART_AFTER

pytestmark = pytest.mark.integration


def _ticket_subjects(database: Path) -> list[str]:
    if not database.exists():
        return []
    with sqlite3.connect(database) as db:
        try:
            return [row[0] for row in db.execute("SELECT subject FROM ticket ORDER BY number")]
        except sqlite3.OperationalError:  # tables not created yet
            return []


def _wait_tickets(database: Path, count: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _ticket_subjects(database)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} tickets, have {_ticket_subjects(database)}")


def _wait_for(condition, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def test_worker_runs_in_a_child_and_its_death_does_not_stop_the_daemon(
    daemon, sink: Sink, tmp_path: Path
) -> None:
    bot = daemon()
    assert bot.proc is not None
    database = tmp_path / "mailbot.db"

    send(bot.port, make_mail("[High] through the worker process"))
    assert _wait_tickets(database, 1) == ["through the worker process"]
    sink.wait_for(1)  # the acknowledgement composed in the child went out

    workers = _wait_for(lambda: worker_children(bot.proc.pid))
    assert workers, f"no worker child of the daemon: {children(bot.proc.pid)}"
    # Nothing else: no multiprocessing resource tracker beside it (issue 9, memory).
    assert children(bot.proc.pid) == workers
    [worker] = workers
    bot.wait_log(f"started (pid {worker})")  # the daemon talks to this very child

    os.kill(worker, signal.SIGKILL)
    assert _wait_for(lambda: _gone(worker), 5)
    killed_at = time.monotonic()

    send(bot.port, make_mail("[Low] after the worker died", sender="bob@customer.example"))
    subjects = _wait_tickets(database, 2)
    assert subjects == ["through the worker process", "after the worker died"]
    assert time.monotonic() - killed_at < RESTART_AFTER
    # Processed by the daemon itself: no new child was started within RESTART_AFTER.
    assert worker not in children(bot.proc.pid)
    assert worker_children(bot.proc.pid) == []
    bot.wait_log("processing in the daemon until it restarts")
    assert bot.proc.poll() is None
    assert sorted(r.rcpt_tos[0] for r in sink.wait_for(2)) == [
        "alice@customer.example",
        "bob@customer.example",
    ]
    assert bot.stop() == 0
    assert "Traceback" not in bot.log()


def test_no_worker_process_when_processes_is_zero(daemon, sink: Sink, tmp_path: Path) -> None:
    bot = daemon({"worker": {"processes": 0}})
    assert bot.proc is not None
    send(bot.port, make_mail("[High] in the daemon itself"))
    assert _wait_tickets(tmp_path / "mailbot.db", 1) == ["in the daemon itself"]
    sink.wait_for(1)
    assert children(bot.proc.pid) == []
    assert "started (pid" not in bot.log()
    assert bot.stop() == 0


def test_messages_claimed_by_a_dying_worker_process_are_released_at_once(tmp_path: Path) -> None:
    """SIGKILL of the child in the middle of its batch: the daemon gets the ids it had
    claimed back (``on_lost``), not after their 300 s lease, and processes them itself."""
    import logging
    import threading

    from support.daemon import base_config

    from mailbot.app import Application
    from mailbot.config import parse_settings
    from mailbot.worker_process import WorkerProcess, WorkerUnavailable

    config = base_config(tmp_path, smtp_port=0, sink_port=None)
    config["worker"] = {"batch_size": 200}
    settings = parse_settings(config, tmp_path)
    app = Application(settings)
    for n in range(200):  # enough that the child is still busy when it is killed
        app.store_raw_sync("smtp", f"c{n}@customer.example", ["support@example.com"],
                           make_mail(f"burst {n}", sender=f"c{n}@customer.example"))  # fmt: skip
    lost: list[list[int]] = []
    remote = WorkerProcess(settings, "test worker", logging.getLogger("test"), on_lost=lost.append)
    remote.start()
    failure: list[BaseException] = []

    def batch() -> None:
        try:
            remote.process_batch()
        except BaseException as exc:  # noqa: BLE001 - checked below
            failure.append(exc)

    runner = threading.Thread(target=batch)
    runner.start()
    _wait_for(lambda: remote._in_hand, timeout=30)  # the child has claimed its batch
    assert remote._process is not None and remote._process.pid is not None
    os.kill(remote._process.pid, signal.SIGKILL)
    runner.join(30)
    assert failure and isinstance(failure[0], WorkerUnavailable)
    assert len(lost) == 1 and len(lost[0]) == 200
    app._release_claims(lost[0])
    # Released: the daemon's own worker takes them now (no lease to wait for).
    app.drain()
    assert len(_ticket_subjects(tmp_path / "mailbot.db")) == 200
    app.store.dispose()


def _remote(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A ``WorkerProcess`` on a fresh database, started and ready (one empty batch)."""
    import logging

    from support.daemon import base_config

    from mailbot.app import Application
    from mailbot.config import parse_settings
    from mailbot.worker_process import WorkerProcess

    settings = parse_settings(base_config(tmp_path, smtp_port=0, sink_port=None), tmp_path)
    app = Application(settings)  # creates the database
    remote = WorkerProcess(settings, "test worker", logging.getLogger("test"))
    remote.start()
    assert remote.process_batch() == []
    return app, remote


def test_the_child_ignores_sigterm_and_sigint_takes_sighup_and_ends_with_its_socket(
    tmp_path: Path,
) -> None:
    app, remote = _remote(tmp_path)
    try:
        process = remote._process
        assert process is not None
        assert "mailbot.worker_child" in cmdline(process.pid)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            os.kill(process.pid, sig)
        app.store_raw_sync("smtp", "alice@customer.example", ["support@example.com"],
                           make_mail("[High] after the signals"))  # fmt: skip
        [outcome] = remote.process_batch()
        assert outcome.outcome == "created"
        assert process.poll() is None
        # The daemon's end of the socket closes (as when it dies): the child ends.
        assert remote._conn is not None
        remote._conn.close()
        assert _wait_for(lambda: process.poll() is not None, 10)
        assert process.returncode == 0
    finally:
        remote.stop(5)
        app.store.dispose()


def test_no_child_is_started_after_stop(tmp_path: Path) -> None:
    from mailbot.worker_process import WorkerUnavailable

    app, remote = _remote(tmp_path)
    try:
        process = remote._process
        assert process is not None
        remote.stop(5)
        assert process.returncode == 0  # it finished on "stop", not killed
        with pytest.raises(WorkerUnavailable):
            remote.process_batch()
        assert remote._process is None
    finally:
        app.store.dispose()


def test_the_child_imports_only_what_the_worker_needs(tmp_path: Path) -> None:
    """No listener, IMAP, metrics, HTTP or webhook client in the worker process: what
    ``python -m mailbot.worker_child`` builds (mailbot/worker_setup.py) and imports."""
    import subprocess
    import sys

    from support.daemon import base_config

    config = base_config(tmp_path, smtp_port=0, sink_port=None)
    script = f"""
import sys
from pathlib import Path
from sqlmodel import SQLModel
from mailbot.config import parse_settings
from mailbot.store.db import Store, utcnow
from datetime import date
import mailbot.worker_child
from mailbot.worker_process import _holidays_for_child
from mailbot.worker_setup import WorkerParts
settings = parse_settings({config!r}, Path({str(tmp_path)!r}))
store = Store.open(settings.database_url())
SQLModel.metadata.create_all(store.engine)
# What the daemon hands over (it has the holidays package; the child must not load it).
holidays = _holidays_for_child(settings.sla)
for name in [m for m in sys.modules if m == "holidays" or m.startswith("holidays.")]:
    del sys.modules[name]
parts = WorkerParts.build(settings, store, utcnow, official_holidays=holidays)
parts.worker.process_batch()
independence_day = next(
    day for day in (date(date.today().year + n, 7, 4) for n in range(7)) if day.weekday() < 5
)
open_then = parts.sla.clocks.calendar.is_business_day(independence_day)
print("holiday-open" if open_then else "holiday-closed")
print(" ".join(sorted(sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    verdict, listing = result.stdout.split("\n", 1)
    assert verdict == "holiday-closed"  # the dates handed over are the calendar's
    modules = set(listing.split())
    assert "mailbot.worker" in modules
    unwanted = (
        *("aiosmtpd", "imapclient", "prometheus_client", "httpx", "http.server"),
        # Loaded only where needed (a daemon on SQLite; HTML-only mail; given dates).
        *("sqlalchemy.dialects.postgresql", "inscriptis", "lxml", "holidays", "tqdm"),
        *("multiprocessing.resource_tracker", "mailbot.app", "mailbot.ops", "mailbot.intake"),
        *("mailbot.outbound.sender", "mailbot.outbound.transports"),
    )
    found = [m for m in modules if any(m == u or m.startswith(f"{u}.") for u in unwanted)]
    assert sorted(found) == []


def test_the_daemon_imports_only_what_its_configuration_uses(tmp_path: Path) -> None:
    """On SQLite, without IMAP or a paging webhook, ``mailbot run`` loads no PostgreSQL
    dialect, IMAP client, HTTP client, progress bar or HTML converter, and one country
    of the holidays package: each of those costs memory in a daemon that never uses it."""
    import subprocess
    import sys

    from support.daemon import base_config

    config = base_config(tmp_path, smtp_port=0, sink_port=None)
    script = f"""
import sys
from pathlib import Path
import mailbot.cli
from mailbot.commands.common import build_application
from mailbot.config import parse_settings
app = build_application(parse_settings({config!r}, Path({str(tmp_path)!r})))
app.store.create_schema()
print(" ".join(sorted(sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    modules = set(result.stdout.split())
    assert {"mailbot.app", "aiosmtpd", "holidays"} <= modules
    unwanted = ("sqlalchemy.dialects.postgresql", "imapclient", "httpx", "tqdm", "inscriptis")
    found = [m for m in modules if any(m == u or m.startswith(f"{u}.") for u in unwanted)]
    assert sorted(found) == []
    countries = [m for m in modules if m.startswith("holidays.countries")]
    assert countries == ["holidays.countries.united_states"]
