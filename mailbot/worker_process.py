"""The worker in a process of its own: parsing and deciding on the second core.

In one interpreter the listener, the sender and the worker take turns under the GIL,
and the worker (parse, quote stripping, decide, apply: most of the cost of a message)
then holds back the listener's 250s and the sender's acknowledgements.  The daemon
therefore runs its worker in a child process (``[worker] processes = 1``, the default).

The parent keeps its loop as it was: each round asks the child for one batch
(``process_batch``) and gets the outcomes back, for metrics; the child reports each
commit as it happens ("progress"), so the sender is woken before the batch ends.

The child ignores SIGINT/SIGTERM (the parent stops it after the batch in hand) and ends
when the pipe to the parent closes, which the kernel does when the parent dies, however
it dies.  When the child cannot start or dies, the batch is processed in the daemon
itself and a new child is started ``RESTART_AFTER`` seconds later; the messages the dead
child had claimed are released at once (``on_lost``) rather than after their lease.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from mailbot.config import Settings
from mailbot.logs import LogOptions, reopen_log_files, setup_logging
from mailbot.worker import Outcome

RESTART_AFTER = 30.0  # seconds before a child that failed is started again
START_TIMEOUT = 30.0


class WorkerUnavailable(RuntimeError):
    """The child could not take the batch; the caller processes it itself."""


def _serve(settings: Settings, conn: Connection, log_options: LogOptions, name: str) -> None:
    """The child: build the application's worker, then one batch per request."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: until ready
        signal.signal(sig, signal.SIG_IGN)
    setup_logging(**log_options._asdict())
    log = logging.getLogger("mailbot.worker")
    from mailbot.app import Application  # after logging: its import is most of the start

    try:
        app = Application(settings)
    except Exception as exc:
        conn.send(("failed", f"{exc.__class__.__name__}: {exc}"))
        return
    # The daemon forwards its SIGHUP: reopen log files, re-read templates (acks are
    # composed here).
    signal.signal(signal.SIGHUP, lambda *_: (reopen_log_files(), app.renderer.reload()))
    app.worker.on_claimed = lambda ids: conn.send(("claimed", ids))
    app.worker.on_commit = lambda count: conn.send(("progress", count))
    conn.send(("ready", name))
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the daemon is gone
                break
            if request != "batch":
                break
            try:
                reply: tuple[str, Any] = ("ok", app.worker.process_batch())
            except Exception as exc:  # database down: the parent logs it and retries
                reply = ("error", f"{exc.__class__.__name__}: {exc}")
            conn.send(reply)
    except OSError:  # the pipe broke mid-batch: the daemon is gone
        pass
    finally:
        app.store.dispose()
        log.debug("%s stopped", name)


class WorkerProcess:
    """One child process and the pipe to it; ``process_batch`` blocks (use a thread)."""

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
        self.on_progress = on_progress  # part of a batch committed (wake the sender)
        self.on_lost = on_lost  # the child died holding these claimed messages
        self._context = multiprocessing.get_context("spawn")  # safe beside our threads
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready_seen = False
        self._in_hand: list[int] = []
        self._failed_at: float | None = None
        self._stopped = False  # for good: no restart after ``stop``
        self._lock = threading.Lock()  # one request at a time

    def start(self) -> None:
        """Start the child (returns at once; ``process_batch`` waits until it is ready)."""
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(self.settings, child_end, LogOptions.current(), self.name),
            name=f"mailbot {self.name}",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._process, self._conn, self._ready_seen = process, parent_end, False

    def _ready(self) -> Connection:
        """The pipe to a running child, starting one if there is none (and may be)."""
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
            code = self._process.exitcode if self._process is not None else None
            self._fail(f"exited (status {code})")
        return status, payload

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
        if process is not None and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGHUP)

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
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(1.0)
