"""The SMTP measurements: ceiling, burst throughput, steady-load latency, big message."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import client
from benchmarks.checks import (
    ack_backlog_curve,
    backlog_growth,
    db_backlog_summary,
    latency_split,
    latency_summary,
    verify,
)
from benchmarks.daemon import Daemon, merge
from benchmarks.rig import Rig, loadavg, wait_complete
from benchmarks.sink import SinkProcess
from benchmarks.store import BacklogSampler
from benchmarks.workload import Workload, big_message, sender_address


def ceiling(workload: Workload, connections: int) -> dict[str, Any]:
    """The same client against an aiosmtpd listener whose handler does nothing."""
    load = loadavg()
    noop = SinkProcess(None, noop=True).start()
    try:
        sent = client.send(noop.port, workload.mails, connections=connections)
    finally:
        noop.stop()
    return {
        "connections": connections,
        "messages": len(workload),
        "accepted": sent.accepted,
        "errors": sent.errors[:5],
        "seconds": round(sent.seconds, 2),
        "msgs_per_s": round(sent.rate, 1),
        "correct": not sent.errors and sent.accepted == len(workload),
        "load_before": load,
        "load_after": loadavg(),
    }


def smtp_run(
    rig: Rig, workload: Workload, connections: int, rate: float | None = None
) -> dict[str, Any]:
    """Send ``workload`` to the daemon; throughput, backlog, latency and correctness."""
    load = loadavg()
    snap = rig.reader.snapshot()
    with BacklogSampler(rig.reader) as sampler:
        sent = client.send(rig.daemon.port, workload.mails, connections=connections, rate=rate)
        done = wait_complete(rig, workload, snap, accepted=sent.accepted_at.keys())
    verdict = verify(rig.reader, snap, workload, done.acks, sent.accepted_at)
    if sent.errors:
        verdict["problems"] = [f"client: {e}" for e in sent.errors[:3]] + verdict["problems"]
        verdict["correct"] = False
    if done.timed_out:
        verdict["problems"].insert(0, done.detail)
        verdict["correct"] = False
    expected = [m.message_id for m in workload.expected_acks]
    arrived = [done.acks[mid][0].at for mid in expected if mid in done.acks]
    ack_latency = [
        done.acks[mid][0].at - sent.accepted_at[mid]
        for mid in expected
        if mid in done.acks and mid in sent.accepted_at
    ]
    split = latency_split(rig.reader.timeline(snap), sent.accepted_at, done.acks, expected)
    total = max(done.finished - sent.started, 1e-9)
    curve = ack_backlog_curve(sent.accepted_at, done.acks, expected)
    return {
        "connections": connections,
        "offered_rate": rate,
        "messages": len(workload),
        "accepted": sent.accepted,
        "send_seconds": round(sent.seconds, 2),
        "accepted_at_epoch": sent.finished,
        "accepted_per_s": round(sent.rate, 1),
        "total_seconds": round(total, 2),
        "processed_per_s": round(len(workload) / total, 1),
        "acks": len(arrived),
        "acks_per_s": round(len(arrived) / max(max(arrived, default=0) - sent.started, 1e-9), 1),
        "drain_seconds_after_last_250": round(max(done.finished - sent.finished, 0.0), 2),
        "ack_backlog": backlog_growth(curve, sent.started, sent.finished),
        "db_backlog": db_backlog_summary(sampler.samples),
        "receipt_to_ack": latency_summary(ack_latency),
        **split,
        "smtp_transaction": latency_summary(sent.transaction_seconds.values()),
        **verdict,
        "load_before": load,
        "load_after": loadavg(),
    }


class RssSampler:
    """VmRSS of the daemon every ``interval`` seconds on a thread."""

    def __init__(self, daemon: Daemon, interval: float = 0.02) -> None:
        self.daemon = daemon
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.daemon.memory()["rss_mb"]))
            except OSError:
                return
            self._stop.wait(self.interval)

    def max_between(self, start: float | None, end: float | None) -> float | None:
        if start is None and end is None:
            return None
        values = [
            mb
            for at, mb in self.samples
            if (start is None or at >= start) and (end is None or at <= end)
        ]
        return max(values, default=None)


def big_message_run(
    folder: Path, db_url: str, size: int, attachment: int, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Peak RSS of a fresh daemon handling one large message (limit raised for it)."""
    limit = max(64 * 1024 * 1024, size * 2)
    overrides = merge(settings or {}, {"intake": {"smtp": {"max_message_size": limit}}})
    rig = Rig.start(folder, db_url, overrides)
    try:
        time.sleep(0.5)  # let start-up allocations settle before the baseline
        before = rig.daemon.memory()
        mail = big_message(sender_address(999), size, attachment)
        workload = Workload("big", [mail])
        with RssSampler(rig.daemon) as rss:
            run = smtp_run(rig, workload, 1)
        after = rig.daemon.memory()
        accepted_at = run.get("accepted_at_epoch")
    finally:
        rig.stop()
    return {
        "message_bytes": len(mail.raw),
        "attachment_bytes": attachment,
        "max_message_size": limit,
        "peak_rss_before_mb": before["peak_rss_mb"],
        "peak_rss_mb": after["peak_rss_mb"],
        "rss_after_mb": after["rss_mb"],
        # VmRSS sampled every 20 ms: the highest while the message was being received
        # (until its 250) and while it was processed and acknowledged (after the 250).
        "rss_max_receiving_mb": rss.max_between(0, accepted_at),
        "rss_max_processing_mb": rss.max_between(accepted_at, None),
        "seconds": run["total_seconds"],
        "correct": run["correct"],
        "problems": run["problems"],
        "load_before": run["load_before"],
    }
