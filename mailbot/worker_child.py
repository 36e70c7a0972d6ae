"""The worker process itself: ``python -m mailbot.worker_child FD``.

Started by mailbot/worker_process.py with one end of a socket pair as ``FD``; the
first message on it is ``(settings, log options, name, holidays)``, the last the public
holidays as dates (the ``holidays`` package costs 4 MB in a process).  It builds only the worker
and what it decides with (mailbot/worker_setup.py): no listener, transports, metrics
or HTTP server are imported here, and no multiprocessing helper process is started.

It ignores SIGINT/SIGTERM (the daemon stops it after its batch in hand), takes the
SIGHUP the daemon forwards once it is ready, and ends when the socket closes, which the
kernel does when the daemon ends, however it ends.
"""

from __future__ import annotations

import logging
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from mailbot.logs import reopen_log_files, setup_logging


def serve(conn: Connection) -> None:
    """Build the worker, then process one batch per "batch" request until told to stop."""
    try:
        settings, log_options, name, holidays = conn.recv()
    except (EOFError, OSError):  # the daemon is gone already
        return
    setup_logging(**log_options._asdict())
    log = logging.getLogger("mailbot.worker")
    # After logging: these imports are most of the start.
    from mailbot.store.db import Store, utcnow
    from mailbot.worker_setup import WorkerParts

    try:
        store = Store.open(settings.database_url(), busy_timeout=settings.database.busy_timeout)
        parts = WorkerParts.build(settings, store, utcnow, official_holidays=holidays)
    except Exception as exc:
        conn.send(("failed", f"{exc.__class__.__name__}: {exc}"))
        return
    # The daemon forwards its SIGHUP: reopen log files, re-read templates (acks are
    # composed here).
    signal.signal(signal.SIGHUP, lambda *_: (reopen_log_files(), parts.renderer.reload()))
    worker = parts.worker
    worker.on_claimed = lambda ids: conn.send(("claimed", ids))
    worker.on_commit = lambda queued: conn.send(("progress", queued))
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
                reply: tuple[str, Any] = ("ok", worker.process_batch())
            except Exception as exc:  # database down: the daemon logs it and retries
                reply = ("error", f"{exc.__class__.__name__}: {exc}")
            conn.send(reply)
    except OSError:  # the socket broke mid-batch: the daemon is gone
        pass
    finally:
        store.dispose()
        log.debug("%s stopped", name)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: until ready
        signal.signal(sig, signal.SIG_IGN)
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m mailbot.worker_child FD (started by mailbot run)", file=sys.stderr)
        return 2
    conn = Connection(int(argv[1]))
    try:
        serve(conn)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
