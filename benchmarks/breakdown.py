"""``python -m benchmarks.breakdown``: per-message milliseconds per step of the intake path.

Where ``benchmarks.intake`` says how fast, this says where the time goes.  It builds
the Application in-process on a fresh SQLite file (or, with ``--postgres-url``, a
throw-away PostgreSQL database), relays to the benchmark sink, stores N generated
messages the way the SMTP listener does (``store_raw_sync``), then runs worker and
sender to the end (``Application.drain``), single-threaded, with timers wrapped around
the named steps.  Each step's time is
*exclusive* (its wrapped children are counted under their own names), so the column
adds up to the whole.  No concurrency, no event loop: these are the costs per message
before any contention, which the daemon then adds.

A step whose function is not found (the core was refactored) is reported as missing
rather than failing the tool.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.daemon import bench_config
from benchmarks.postgres import temporary_database
from benchmarks.sink import SinkProcess
from benchmarks.workload import SUPPORT, Generator

# (label, module, attribute path): what to time, innermost wins.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("intake: store raw (txn)", "mailbot.app", "Application.store_raw_sync"),
    ("intake: enqueue (INSERT)", "mailbot.app", "enqueue_many"),
    ("worker: claim batch", "mailbot.worker", "claim_inbound_sized"),
    ("worker: load row (txn)", "mailbot.worker", "Worker._load"),
    ("worker: parse (mail-parser)", "mailbot.worker", "parse"),
    ("worker: decide (lookups)", "mailbot.worker", "decide"),
    ("worker: apply (ORM)", "mailbot.worker", "apply_decision"),
    ("worker: compose ack", "mailbot.outbound.acknowledge", "AckComposer.__call__"),
    ("worker: quote stripping", "mailbot.store.threads", "new_content"),
    ("worker: participants (DB)", "mailbot.store.threads", "record_participants"),
    ("worker: Cc copies (DB)", "mailbot.store.threads", "copies"),
    ("worker: log line", "mailbot.worker", "Worker._logged"),
    ("worker: rest of process_one", "mailbot.worker", "Worker.process_one"),
    ("sender: claim batch", "mailbot.outbound.sender", "claim_outbox_numbered"),
    ("sender: relay connect", "mailbot.outbound.transports", "SmtpTransport._connect"),
    ("sender: relay send", "mailbot.outbound.transports", "SmtpTransport.send"),
    ("sender: relay quit", "mailbot.outbound.transports", "SmtpTransport.close"),
    ("sender: mark sent (UPDATE)", "mailbot.outbound.sender", "mark_outbox"),
    ("sender: rest of delivery", "mailbot.outbound.sender", "Sender._deliver"),
)


class Timers:
    """Exclusive wall time per label; nested timed calls are subtracted from the caller."""

    def __init__(self) -> None:
        self.exclusive: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._stack: list[list[Any]] = []

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [label, 0.0]
            self._stack.append(frame)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self._stack.pop()
                self.exclusive[label] += elapsed - frame[1]
                self.calls[label] += 1
                if self._stack:
                    self._stack[-1][1] += elapsed

        return timed

    def install(self, label: str, module_name: str, path: str) -> bool:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part, None)
            if owner is None:
                return False
        original = getattr(owner, name, None)
        if original is None:
            return False
        setattr(owner, name, self.wrap(label, original))
        return True

    def install_database(self, engine: Any) -> None:
        """Time the driver calls: statements (incl. BEGIN) and commits (fsync on SQLite)."""
        dialect = engine.dialect
        for attr, label in (
            ("do_execute", "database: execute"),
            ("do_execute_no_params", "database: execute"),
            ("do_executemany", "database: execute"),
            ("do_commit", "database: commit"),
        ):
            setattr(dialect, attr, self.wrap(label, getattr(dialect, attr)))


def run(args: argparse.Namespace) -> int:
    from mailbot.app import Application
    from mailbot.config import parse_settings

    timers = Timers()
    missing = [label for label, mod, path in STEPS if not timers.install(label, mod, path)]
    folder = Path(tempfile.mkdtemp(prefix="mailbot-breakdown-"))
    sink = SinkProcess(folder / "sink.log").start()
    try:
        db_url = args.db_url or f"sqlite:///{folder / 'mailbot.db'}"
        config = bench_config(folder, db_url, sink.port)
        app = Application(parse_settings(config, folder))
        timers.install_database(app.store.engine)
        workload = Generator(args.seed).build("breakdown", args.messages)
        started = time.perf_counter()
        for mail in workload:
            app.store_raw_sync("smtp", mail.sender, [SUPPORT], mail.raw)
        stored = time.perf_counter()
        app.drain()
        finished = time.perf_counter()
        app.store.dispose()
        time.sleep(0.5)
        acks = {a.in_reply_to for a in sink.poll()}
    finally:
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)
    n = len(workload)
    expected = {m.message_id for m in workload.expected_acks}
    print(
        f"{n} messages ({workload.summary()['mean_size_bytes'] / 1024:.1f} KB mean), "
        f"{len(expected)} acks expected, {len(acks & expected)} arrived; "
        f"{db_url.split(':')[0]}, single thread, no contention"
    )
    print(
        f"store {1000 * (stored - started) / n:.2f} ms/msg, worker+sender "
        f"{1000 * (finished - stored) / n:.2f} ms/msg, total "
        f"{1000 * (finished - started) / n:.2f} ms/msg = {n / (finished - started):.0f} msgs/s"
    )
    total = sum(timers.exclusive.values())
    print(f"\n{'step':<32} {'ms/msg':>7} {'share':>6} {'calls':>7}")
    for label, seconds in timers.exclusive.most_common():
        print(
            f"{label:<32} {1000 * seconds / n:7.2f} {seconds / total:6.1%} {timers.calls[label]:7d}"
        )
    if missing:
        print(f"\nnot found (core refactored?): {', '.join(missing)}")
    return 0 if acks >= expected else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres-url",
        help="run on a throw-away database on this PostgreSQL server instead of SQLite",
    )
    args = parser.parse_args(argv)
    args.db_url = None
    if not args.postgres_url:
        return run(args)
    with temporary_database(args.postgres_url) as url:
        args.db_url = url
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
