"""``mailbot import PATH``: a backlog (mbox file or maildir folder) through the normal pipeline.

Each message is stored in the inbound queue (source ``import``) and processed by the
same worker as live mail, in this process, with acknowledgements off unless ``--ack``.
Running it twice is safe: a message whose exact bytes were stored before is skipped,
and one that differs only in transit headers is a duplicate to the pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import col, select

from mailbot.batching import chunks
from mailbot.commands.backlog import open_backlog
from mailbot.commands.common import (
    EX_OK,
    EX_USAGE,
    CommandError,
    build_worker,
    open_store,
)
from mailbot.commands.prepare_pool import Prepared, PreparePool, freeze_startup_objects
from mailbot.config import Settings
from mailbot.security_setup import limits as build_limits
from mailbot.store.db import utcnow
from mailbot.store.models import InboundMessage
from mailbot.store.repo import detached_row, enqueue_many, inbound_values
from mailbot.thread_setup import thread_settings

if TYPE_CHECKING:
    from mailbot.worker import Worker

SOURCE = "import"
# Messages stored, parsed and applied together: fewer commits and pool round trips than
# with 50 (the importing process spent a tenth less per message), a few MB in memory.
CHUNK = 200
# Seconds the import may hold SQLite's write lock while nobody else waits for it.
IMPORT_LOCK_HOLD = 0.5
# SQLite's page cache of the import's connection.  The daemon keeps 256 KiB; the import
# writes alone for a long time, and with the small cache it wrote and read back each
# page several times (a third of its system time).
IMPORT_CACHE_KIB = 16 * 1024
# SQLite's temporary files in memory for the import's connection.  A statement that may
# fail after writing part of a row (a table with several unique keys) first saves the
# pages the transaction had already changed to a statement journal, a temporary file
# once past 64 KiB: when the worker's UPDATE of an inbound row changes its size, SQLite
# writes the row anew and frees its old pages, and the entries inserted next reuse them
# and journal them first.  For 10,000 messages that was 171,000 of the importing
# process's 512,000 writes to files (350 MB through the kernel).  In memory a journal
# lasts one statement: at most a message's size.
IMPORT_TEMP_IN_MEMORY = True


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.path)
    total, messages = open_backlog(path)
    # Measured on 2 cores: one process parsing beside this one 417 msgs/s, two 328, none 230.
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1) - 1
    if jobs < 0:
        raise CommandError("--jobs must be 0 or more", EX_USAGE)
    limits = build_limits(settings)
    thread = thread_settings(settings)
    # The pool forks before the database is opened (see PreparePool), and starts on the
    # mailbox while it is.
    with PreparePool(jobs, limits, thread) as pool:
        prepared = pool.prepared(chunks(messages, CHUNK))
        store = open_store(
            settings, cache_kib=IMPORT_CACHE_KIB, temp_in_memory=IMPORT_TEMP_IN_MEMORY
        )
        worker = build_worker(settings, store)
        worker.max_lock_hold = IMPORT_LOCK_HOLD
        freeze_startup_objects()
        counts = _import(args, settings, worker, total, prepared)
    order = ["created", "appended", "ignored", "quarantined", "retry", "already imported"]
    parts = [f"{counts[k]} {'deferred (database busy)' if k == 'retry' else k}" for k in order]
    print(f"imported {total} message(s) from {path}: " + ", ".join(parts))
    if args.ack:
        print("acknowledgements are queued; the running daemon sends them")
    if counts["quarantined"]:
        print("see: mailbot quarantine list")
    return EX_OK


def _import(
    args: argparse.Namespace,
    settings: Settings,
    worker: Worker,
    total: int,
    chunks: Iterable[tuple[list[bytes], list[Prepared]]],
) -> Counter[str]:
    store = worker.store
    lease = timedelta(seconds=settings.worker.lease_seconds)
    # Here, not at the top: every command, ``run`` too, imports this module.
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    counts: Counter[str] = Counter()
    seen: set[str] = set()
    interactive = sys.stderr.isatty() and not args.no_progress
    if not args.verbose:  # one line per message would bury the bar and the summary
        for name in ("mailbot.worker", "mailbot.paging"):
            logging.getLogger(name).setLevel(logging.WARNING)
    with (
        logging_redirect_tqdm() if interactive else contextlib.nullcontext(),
        tqdm(
            total=total, unit="msg", disable=not interactive, file=sys.stderr, dynamic_ncols=True
        ) as bar,
    ):
        for chunk, prepared in chunks:
            now = utcnow()
            new: list[tuple[bytes, Prepared]] = []
            # Not durable: a power loss can take back only what a rerun imports again
            # (the backlog is still on disk; tickets commit after their rows).
            with store.transaction(durable=False) as session:
                stored = select(InboundMessage.raw_sha256).where(
                    col(InboundMessage.raw_sha256).in_([p.raw_sha256 for p in prepared])
                )
                seen.update(session.execute(stored).scalars())
                for raw, item in zip(chunk, prepared, strict=True):
                    if item.raw_sha256 in seen:
                        counts["already imported"] += 1
                        continue
                    seen.add(item.raw_sha256)
                    new.append((raw, item))
                # Stored leased to us: a running daemon leaves them alone.
                values = [
                    inbound_values(
                        source=SOURCE,
                        raw=raw,
                        now=now,
                        mail_from=item.mail_from,
                        rcpt_to=[settings.mailbot.support_address],
                        send_ack=args.ack,
                        raw_sha256=item.raw_sha256,
                        claimed_until=now + lease,
                    )
                    for raw, item in new
                ]
                ids = enqueue_many(session, values)
            rows = [
                (detached_row(InboundMessage, {"id": inbound_id, **row}), item.mail)
                for inbound_id, row, (_, item) in zip(ids, values, new, strict=True)
            ]
            for outcome in worker.apply_prepared(rows):  # in order: replies thread
                counts[outcome.outcome] += 1
            bar.update(len(chunk))
            bar.set_postfix(
                created=counts["created"], quarantined=counts["quarantined"], refresh=False
            )
    return counts


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import",
        help="import a backlog (mbox file or maildir) through the pipeline",
        description="Import an mbox file or a maildir folder through the normal pipeline, "
        "oldest first. Acknowledgements are off unless --ack. Safe to run twice.",
    )
    parser.add_argument("path", help="mbox file or maildir folder")
    parser.add_argument("--ack", action="store_true", help="send acknowledgements for new tickets")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on a TTY")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every message")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        help="processes that parse messages beside this one (default: one per CPU but one; "
        "0: parse here)",
    )
    parser.set_defaults(handler=cmd_import)
