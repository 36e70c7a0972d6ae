"""IMAP intake against a private Dovecot: draining a full folder, and APPEND → ack with IDLE.

Reuses the Dovecot fixture of the test suite (tests/support/dovecot.py), which needs
root and ``dovecot-imapd``; without them, or without IMAP intake in mailbot, the phase
reports "not available" and why.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.checks import latency_split, latency_summary, verify
from benchmarks.daemon import REPO
from benchmarks.rig import Rig, loadavg, wait_complete
from benchmarks.store import Snapshot
from benchmarks.workload import Workload

PASSWORD_ENV = "MAILBOT_IMAP_PASSWORD"


def _dovecot_support():  # type: ignore[no-untyped-def]
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from support import dovecot

    return dovecot


def unavailable() -> str | None:
    """Why this phase cannot run here, or None."""
    try:
        from mailbot.config import ImapIntakeSection  # noqa: F401
        from mailbot.intake.imap import ImapIntake  # noqa: F401
    except ImportError as exc:
        return f"IMAP intake not in mailbot yet ({exc})"
    try:
        dovecot = _dovecot_support()
    except ImportError as exc:
        return f"the Dovecot test fixture is missing ({exc})"
    return dovecot.unavailable_reason()


def imap_run(
    folder: Path, backlog: Workload, idle: Workload, append_interval: float = 0.2
) -> dict[str, Any]:
    why_not = unavailable()
    if why_not is not None:
        return {"status": "not available", "reason": why_not}
    dovecot = _dovecot_support()
    with dovecot.running_dovecot() as server:
        started = time.monotonic()
        server.append_many(m.raw for m in backlog)
        fill_seconds = time.monotonic() - started
        overrides = {
            "intake": {
                "imap": {
                    "enabled": True,
                    "host": server.host,
                    "port": server.port,
                    "tls": "none",
                    "username": dovecot.USER,
                    "password_env": PASSWORD_ENV,
                    "timeout": 30.0,
                }
            }
        }
        load = loadavg()
        rig = Rig.start(
            folder,
            f"sqlite:///{folder / 'mailbot.db'}",
            overrides,
            env={PASSWORD_ENV: dovecot.PASSWORD},
            warm_up=False,  # the drain is measured from the start: the folder is full
        )
        try:
            ready = time.time()
            empty = Snapshot(0, 0, 0)
            drained = wait_complete(rig, backlog, empty)
            stored_at = rig.reader.last_received(empty)
            drain = verify(rig.reader, empty, backlog, drained.acks)
            if drained.timed_out:
                drain["problems"].insert(0, drained.detail)
                drain["correct"] = False
            snap = rig.reader.snapshot()
            appended: dict[str, float] = {}
            with server.client() as imap:
                for mail in idle:
                    imap.append("INBOX", mail.raw)
                    appended[mail.message_id] = time.time()
                    time.sleep(append_interval)
            pushed = wait_complete(rig, idle, snap)
            timeline = rig.reader.timeline(snap)
            push = verify(rig.reader, snap, idle, pushed.acks)
            if pushed.timed_out:
                push["problems"].insert(0, pushed.detail)
                push["correct"] = False
            left = server.count("INBOX")
            if left:
                push["problems"].append(f"{left} message(s) left in INBOX (not moved)")
                push["correct"] = False
        finally:
            rig.stop()
    latency = [pushed.acks[mid][0].at - at for mid, at in appended.items() if mid in pushed.acks]
    total = max(drained.finished - ready, 1e-9)
    return {
        "drain": {
            "messages": len(backlog),
            "fill_seconds": round(fill_seconds, 1),
            "stored_seconds": round(stored_at - ready, 2) if stored_at else None,
            "stored_per_s": round(len(backlog) / (stored_at - ready), 1) if stored_at else None,
            "total_seconds": round(total, 2),
            "processed_per_s": round(len(backlog) / total, 1),
            **drain,
        },
        "idle": {
            "messages": len(idle),
            "append_interval_s": append_interval,
            "append_to_ack": latency_summary(latency),
            **latency_split(timeline, appended, pushed.acks, appended),
            **push,
        },
        "correct": drain["correct"] and push["correct"],
        "load_before": load,
        "load_after": loadavg(),
    }
