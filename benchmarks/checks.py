"""Correctness of a phase, and the statistics the report prints.

A phase is correct when every message got its 250 (or was stored, for import/IMAP),
became exactly one inbound thread entry, originals opened one ticket each, replies
landed on their original's ticket, nothing is left pending or quarantined, and every
expected acknowledgement arrived exactly once (and none that was not expected).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.sink import Arrival
from benchmarks.store import Snapshot, StoreReader
from benchmarks.workload import Workload

MAX_PROBLEMS = 8


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Iterable[float]) -> dict[str, Any]:
    values = list(seconds)
    ms = [v * 1000 for v in values]

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "samples": len(ms),
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "max_ms": r(max(ms) if ms else None),
    }


def latency_split(
    timeline: dict[str, tuple[float, float | None]],
    handed_over: dict[str, float],
    acks: dict[str, list[Arrival]],
    expected: Iterable[str],
) -> dict[str, Any]:
    """Where the time from hand-over (SMTP 250, IMAP APPEND) to the ack went.

    ``timeline`` has the daemon's own times (stored, processed) per Message-ID: hand-over
    → stored is the intake, stored → processed the wait in the inbound queue plus the
    worker, processed → ack arrival the transaction, the outbox wait and the relay.
    The daemon's processed time is taken as its transaction starts.
    """
    intake, queue, outbound = [], [], []
    for mid in expected:
        times = timeline.get(mid)
        if times is None or mid not in handed_over or mid not in acks:
            continue
        stored, processed = times
        intake.append(stored - handed_over[mid])
        if processed is not None:
            queue.append(processed - stored)
            outbound.append(acks[mid][0].at - processed)
    return {
        "handover_to_stored": latency_summary(intake),
        "stored_to_processed": latency_summary(queue),
        "processed_to_ack": latency_summary(outbound),
    }


def acks_by_message(arrivals: Iterable[Arrival], workload: Workload) -> dict[str, list[Arrival]]:
    ids = {m.message_id for m in workload}
    found: dict[str, list[Arrival]] = {}
    for arrival in arrivals:
        if arrival.in_reply_to in ids:
            found.setdefault(arrival.in_reply_to, []).append(arrival)
    return found


def verify(
    reader: StoreReader,
    snap: Snapshot,
    workload: Workload,
    acks: dict[str, list[Arrival]] | None,
    accepted: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Compare the store and the sink with what the workload should have produced.

    ``acks`` None means acknowledgements are not expected at all (import).
    """
    problems: list[str] = []

    def problem(text: str) -> None:
        problems.append(text)

    if accepted is not None:
        missing = len(workload) - len(set(accepted))
        if missing:
            problem(f"{missing} message(s) did not get a 250")
    after = reader.snapshot()
    entries = reader.entries_since(snap)
    inbound = reader.inbound_since(snap)
    statuses: Counter[str] = inbound["statuses"]
    new_tickets = after.tickets - snap.tickets
    new_entries = after.inbound_entries - snap.inbound_entries
    if new_tickets != len(workload.originals):
        problem(f"{new_tickets} tickets created, expected {len(workload.originals)}")
    if new_entries != len(workload):
        problem(f"{new_entries} inbound thread entries, expected {len(workload)}")
    if statuses.get("done", 0) != len(workload) or set(statuses) - {"done"}:
        problem(f"inbound rows by status {dict(statuses)}, expected {len(workload)} done")
    ticket_of: dict[str, int] = {}
    wrong_count = wrong_thread = 0
    for mail in workload:
        tickets = entries.get(mail.message_id, [])
        if len(tickets) != 1:
            wrong_count += 1
            continue
        ticket_of[mail.message_id] = tickets[0]
    for mail in workload:
        found = ticket_of.get(mail.message_id)
        if mail.is_reply and found is not None and found != ticket_of.get(mail.root):
            wrong_thread += 1
    originals = [ticket_of[m.message_id] for m in workload.originals if m.message_id in ticket_of]
    if wrong_count:
        problem(f"{wrong_count} message(s) not exactly one thread entry")
    if wrong_thread:
        problem(f"{wrong_thread} repl(ies) not on their original's ticket")
    if len(set(originals)) != len(originals):
        problem("two originals share a ticket")
    ack_figures: dict[str, Any] = {}
    if acks is not None:
        expected = {m.message_id: m for m in workload.expected_acks}
        missing = [mid for mid in expected if mid not in acks]
        doubled = [mid for mid, got in acks.items() if mid in expected and len(got) > 1]
        unexpected = [mid for mid in acks if mid not in expected]
        misaddressed = [
            mid
            for mid, got in acks.items()
            if mid in expected and got[0].recipient != expected[mid].sender
        ]
        for label, items in (
            ("expected acknowledgement(s) missing", missing),
            ("acknowledgement(s) arrived more than once", doubled),
            ("acknowledgement(s) for replies or automatic mail", unexpected),
            ("acknowledgement(s) to the wrong address", misaddressed),
        ):
            if items:
                problem(f"{len(items)} {label} (e.g. {items[0]})")
        ack_figures = {"expected_acks": len(expected), "acks_arrived": len(acks)}
    return {
        "correct": not problems,
        "problems": problems[:MAX_PROBLEMS],
        "tickets_created": new_tickets,
        "thread_entries": new_entries,
        **ack_figures,
    }


def ack_backlog_curve(
    accepted_at: dict[str, float], acks: dict[str, list[Arrival]], expected: Iterable[str]
) -> list[tuple[float, int]]:
    """(time, acknowledgements owed and not yet delivered) at every change."""
    events: list[tuple[float, int]] = []
    for mid in expected:
        if mid in accepted_at:
            events.append((accepted_at[mid], +1))
        if mid in acks:
            events.append((acks[mid][0].at, -1))
    events.sort()
    curve, owed = [], 0
    for at, step in events:
        owed += step
        curve.append((at, owed))
    return curve


def backlog_growth(curve: Sequence[tuple[float, int]], start: float, end: float) -> dict[str, Any]:
    """Mean backlog in the first and last quarter of [start, end] and whether it grew.

    Growing means the last quarter's mean exceeds the first's by more than
    max(25, 2% of the peak): a queue that keeps up stays level while the load is steady.
    """
    span = max(end - start, 1e-9)

    def mean_between(lo: float, hi: float) -> float:
        # time-weighted mean of a step function
        total, level, last = 0.0, 0, lo
        for at, value in curve:
            if at <= lo:
                level = value
                continue
            if at >= hi:
                break
            total += level * (at - last)
            level, last = value, at
        total += level * (hi - last)
        return total / max(hi - lo, 1e-9)

    first = mean_between(start, start + span / 4)
    last = mean_between(end - span / 4, end)
    peak = max((v for at, v in curve if start <= at <= end), default=0)
    allowance = max(25.0, 0.02 * peak)
    return {
        "first_quarter_mean": round(first, 1),
        "last_quarter_mean": round(last, 1),
        "peak": peak,
        "growing": last - first > allowance,
    }


def db_backlog_summary(samples: Sequence[tuple[float, int, int]]) -> dict[str, Any]:
    if not samples:
        return {"samples": 0}
    return {
        "samples": len(samples),
        "inbound_pending_max": max(s[1] for s in samples),
        "outbox_pending_max": max(s[2] for s in samples),
        "inbound_pending_last": samples[-1][1],
        "outbox_pending_last": samples[-1][2],
    }
