"""The benchmark's correctness check passes a right run and fails a wrong one.

A benchmark that reports a fast but wrong run as a success would be worse than none:
here a real in-process Application processes a generated workload into a real SQLite
file and relays acknowledgements to a real SMTP sink, once with the per-sender limit
raised (every ack expected arrives) and once with the default limit of 5 (acks missing).
"""

from __future__ import annotations

import pytest

from benchmarks.checks import verify
from benchmarks.sink import Arrival
from benchmarks.store import StoreReader
from benchmarks.workload import Generator

pytestmark = pytest.mark.integration


def _run(app, sink, tmp_path, limit: int):  # type: ignore[no-untyped-def]
    workload = Generator(seed=5, senders=3).build("checks", 40)
    application = app({"acknowledgement": {"max_per_sender_per_hour": limit}})
    reader = StoreReader(f"sqlite:///{tmp_path / 'mailbot.db'}")
    snap = reader.snapshot()
    for mail in workload:
        application.store_raw_sync("smtp", mail.sender, ["support@example.com"], mail.raw)
    application.drain()
    acks: dict[str, list[Arrival]] = {}
    for received in sink.received:
        in_reply_to = (received.message.get("In-Reply-To") or "").strip().strip("<>")
        arrival = Arrival(0.0, in_reply_to, received.rcpt_tos[0], "")
        acks.setdefault(in_reply_to, []).append(arrival)
    try:
        return workload, verify(reader, snap, workload, acks, [m.message_id for m in workload])
    finally:
        reader.dispose()


def test_a_correct_run_passes(app, sink, tmp_path) -> None:  # type: ignore[no-untyped-def]
    workload, verdict = _run(app, sink, tmp_path, limit=1_000_000)
    assert verdict["problems"] == []
    assert verdict["correct"]
    assert verdict["tickets_created"] == len(workload.originals)
    assert verdict["thread_entries"] == len(workload)
    assert verdict["acks_arrived"] == verdict["expected_acks"] == len(workload.expected_acks)


def test_missing_acknowledgements_fail_the_run(app, sink, tmp_path) -> None:  # type: ignore[no-untyped-def]
    workload, verdict = _run(app, sink, tmp_path, limit=5)
    assert len(workload.expected_acks) > 15  # 3 senders: the limit of 5 per hour must bite
    assert not verdict["correct"]
    assert any("expected acknowledgement(s) missing" in p for p in verdict["problems"])
