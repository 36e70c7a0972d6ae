"""The worker in a process of its own: parsing and deciding on the second core.

In one interpreter the listener, the sender and the worker take turns under the GIL,
and the worker (parse, quote stripping, decide, apply: most of the cost of a message)
then holds back the listener's 250s and the sender's acknowledgements.  The daemon
therefore runs its worker in a child process (``[worker] processes = 1``, the default).

The parent keeps its loop as it was: each round asks the child for one batch
(``process_batch``) and gets the outcomes back, for metrics; the child reports each
commit that queued outgoing mail as it happens ("progress"), so the sender is woken
before the batch ends, and not for mail that queued nothing.

The child (mailbot/worker_child.py) ignores SIGINT/SIGTERM (the parent stops it after
the batch in hand) and ends when its socket to the parent closes, which the kernel does
when the parent dies, however it dies.  When the child cannot start or dies, the batch
is processed in the daemon itself and a new child is started ``RESTART_AFTER`` seconds
later; the messages the dead child had claimed are released at once (``on_lost``)
rather than after their lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mailbot.config import Settings, SlaSection
from mailbot.logs import LogOptions
from mailbot.sla.calendar import holiday_dates
from mailbot.worker import Outcome

RESTART_AFTER = 30.0  # seconds before a child that failed is started again
START_TIMEOUT = 30.0
CHILD_MODULE = "mailbot.worker_child"


class WorkerUnavailable(RuntimeError):
    """The child could not take the batch; the caller processes it itself."""


def _child_environment() -> dict[str, str]:
    """The daemon's environment, with this very ``mailbot`` package first on the path
    (``-P``: not the working directory's), as multiprocessing passed its ``sys.path``."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


class WorkerProcess:
    """One child process and the socket to it; ``process_batch`` blocks (use a thread).

    The child is a plain ``python -m mailbot.worker_child`` (mailbot/worker_child.py),
    not a multiprocessing one: multiprocessing's "spawn" would also start its resource
    tracker, a third interpreter of about 13 MB, for nothing we use.
    """

    def __init__(
        self,
        settings: Settings,
        name: str,
        log: logging.Logger,
        on_progress: Callable[[], None] | None = None,
        on_lost: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.log = log
        self.on_progress = on_progress  # a commit queued outgoing mail (wake the sender)
        self.on_lost = on_lost  # the child died holding these claimed messages
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready_seen = False
        self._in_hand: list[int] = []
        self._failed_at: float | None = None
        self._stopped = False  # for good: no restart after ``stop``
        self._lock = threading.Lock()  # one request at a time

    def start(self) -> None:
        """Start the child (returns at once; ``process_batch`` waits until it is ready)."""
        holidays = _holidays_for_child(self.settings.sla)
        parent_end, child_end = socket.socketpair()  # close-on-exec; child_end is passed
        with parent_end, child_end:
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", CHILD_MODULE, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_child_environment(),
            )
            conn = Connection(parent_end.detach())
        # Read by the child once it runs (small enough for the socket's buffer); a child
        # that is already gone shows as the end of the socket in ``_ready``.
        with contextlib.suppress(OSError):
            conn.send((self.settings, LogOptions.current(), self.name, holidays))
        self._process, self._conn, self._ready_seen = process, conn, False

    def _ready(self) -> Connection:
        """The socket to a running child, starting one if there is none (and may be)."""
        if self._stopped:
            raise WorkerUnavailable(f"{self.name} stopped")
        if self._conn is None:
            if self._failed_at is not None and time.monotonic() - self._failed_at < RESTART_AFTER:
                raise WorkerUnavailable(f"{self.name} failed recently")
            self.start()
        assert self._conn is not None
        if not self._ready_seen:
            if not self._conn.poll(START_TIMEOUT):
                self._fail(f"did not start within {START_TIMEOUT:.0f}s")
            status, detail = self._receive()
            if status != "ready":
                self._fail(f"could not start: {detail}")
            self._ready_seen = True
            self.log.info("%s started (pid %s)", self.name, self._process and self._process.pid)
        return self._conn

    def _receive(self) -> tuple[str, Any]:
        assert self._conn is not None
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            self._fail(f"exited (status {self._exit_status()})")
        return status, payload

    def _exit_status(self) -> int | None:
        """The child's exit status (negative: the signal) once it has ended, else None."""
        if self._process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self._process.wait(1.0)  # its socket closed: it is ending
        return None

    def _fail(self, why: str) -> None:
        self.log.error("%s %s; processing in the daemon until it restarts", self.name, why)
        self._failed_at = time.monotonic()
        self._close()
        lost, self._in_hand = self._in_hand, []
        if lost and self.on_lost is not None:
            self.on_lost(lost)
        raise WorkerUnavailable(f"{self.name} {why}")

    def process_batch(self) -> list[Outcome]:
        """Outcomes of one batch processed by the child; WorkerUnavailable when it can't."""
        with self._lock:
            conn = self._ready()
            try:
                conn.send("batch")
            except OSError:
                self._fail("is gone")
            while True:
                status, payload = self._receive()
                if status == "claimed":
                    self._in_hand = payload
                elif status == "progress":
                    if self.on_progress is not None:
                        self.on_progress()
                else:
                    break
            self._in_hand = []
            if status == "error":
                raise RuntimeError(payload)
            outcomes: list[Outcome] = payload
            return outcomes

    def reload(self) -> None:
        """Pass SIGHUP on (log files, templates)."""
        process = self._process
        if process is not None:
            process.send_signal(signal.SIGHUP)  # nothing if it has ended

    def stop(self, timeout: float) -> None:
        """Ask the child to finish (after its batch in hand) and wait for it; no child is
        started after this."""
        with self._lock:
            self._stopped = True
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send("stop")
            self._close(timeout)

    def _close(self, timeout: float = 5.0) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(1.0)


def _holidays_for_child(sla: SlaSection) -> frozenset[date]:
    """Public holidays from last year to ten years ahead, as dates: far more than any due
    time needs (the calendar searches three years at most), and a restarted child gets
    a new span."""
    year = date.today().year
    return holiday_dates(sla.holidays_country, sla.holidays_subdivision, range(year - 1, year + 11))
