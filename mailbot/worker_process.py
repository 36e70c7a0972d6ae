"""The worker in a process of its own: parsing and deciding on the second core.

In one interpreter the listener, the sender and the worker take turns under the GIL,
and the worker (parse, quote stripping, decide, apply: most of the cost of a message)
then holds back the listener's 250s and the sender's acknowledgements.  The daemon
therefore runs its worker in child processes (``[worker] processes``, default 1).

The parent keeps its loop as it was: each round asks a child for one batch
(``process_batch``) and gets the outcomes back, for metrics and to wake the sender.
Claims (leases, SKIP LOCKED on PostgreSQL, the writer lock on SQLite) already make
workers in several processes safe.  A child dies with the daemon (``PR_SET_PDEATHSIG``),
ignores SIGINT/SIGTERM (the parent decides when to stop, after the batch in hand), and
when one cannot start or dies, the batch is processed in the daemon itself and the
child is started again later: mail never waits for a broken child.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from mailbot.config import Settings
from mailbot.logs import LogOptions, reopen_log_files, setup_logging
from mailbot.worker import Outcome

RESTART_AFTER = 30.0  # seconds before a child that failed is started again
START_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1


class WorkerUnavailable(RuntimeError):
    """The child could not take the batch; the caller processes it itself."""


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):  # Linux only; elsewhere a stray child just idles
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _serve(settings: Settings, conn: Connection, log_options: LogOptions, name: str) -> None:
    """The child: build the application's worker, then one batch per request."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the renderer exists
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
    finally:
        app.store.dispose()
        log.debug("%s stopped", name)


class WorkerProcess:
    """One child process and the pipe to it; ``process_batch`` blocks (use a thread)."""

    def __init__(self, settings: Settings, name: str, log: logging.Logger) -> None:
        self.settings = settings
        self.name = name
        self.log = log
        self._context = multiprocessing.get_context("spawn")  # safe beside our threads
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()  # one request at a time

    def start(self) -> None:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(self.settings, child_end, LogOptions.current(), self.name),
            name=f"mailbot {self.name}",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end

    def _ready(self) -> Connection:
        """The pipe to a running child, starting one if there is none (and may be)."""
        if self._conn is not None:
            return self._conn
        if self._failed_at is not None and time.monotonic() - self._failed_at < RESTART_AFTER:
            raise WorkerUnavailable(f"{self.name} failed recently")
        self.start()
        assert self._conn is not None
        if not self._conn.poll(START_TIMEOUT):
            self._fail(f"did not start within {START_TIMEOUT:.0f}s")
        status, detail = self._receive()
        if status != "ready":
            self._fail(f"could not start: {detail}")
        self.log.info("%s started (pid %s)", self.name, self._process and self._process.pid)
        assert self._conn is not None
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
        raise WorkerUnavailable(f"{self.name} {why}")

    def process_batch(self) -> list[Outcome]:
        """Outcomes of one batch processed by the child; WorkerUnavailable when it can't."""
        with self._lock:
            conn = self._ready()
            try:
                conn.send("batch")
            except OSError:
                self._fail("is gone")
            status, payload = self._receive()
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
        """Ask the child to finish (after its batch in hand) and wait for it."""
        with self._lock:
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
