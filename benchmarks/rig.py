"""One daemon under test with its sink and a reader of its database, and waiting on it."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import client
from benchmarks.checks import acks_by_message
from benchmarks.daemon import Daemon, bench_config, write_config
from benchmarks.sink import Arrival, SinkProcess
from benchmarks.store import Snapshot, StoreReader
from benchmarks.workload import Workload, warm_up_mail


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: figures are noisy)."""
    with open("/proc/loadavg", encoding="ascii") as handle:
        return [float(v) for v in handle.read().split()[:3]]


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which some task waited for a CPU (PSI), in percent."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as handle:
            first = handle.readline().split()
    except OSError:
        return None
    return float(dict(f.split("=") for f in first[1:])["avg10"])


@dataclass
class Rig:
    folder: Path
    db_url: str
    sink: SinkProcess
    daemon: Daemon
    reader: StoreReader
    config: dict[str, Any] = field(default_factory=dict)
    # From the daemon listening to the acknowledgement of a first message (``warm_up``).
    first_ack_ms: float | None = None

    @classmethod
    def start(
        cls,
        folder: Path,
        db_url: str,
        overrides: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        warm_up: bool = True,
    ) -> Rig:
        folder.mkdir(parents=True, exist_ok=True)
        sink = SinkProcess(folder / "sink.log").start()
        try:
            config = bench_config(folder, db_url, sink.port, overrides)
            path = write_config(folder, config)
            port = config["intake"]["smtp"]["port"]
            daemon = Daemon(path, port, folder / "daemon.log", env).start()
        except BaseException:
            sink.stop()
            raise
        rig = cls(folder, db_url, sink, daemon, StoreReader(db_url), config)
        if warm_up:
            try:
                rig.first_ack_ms = rig.warm_up()
            except BaseException:
                rig.stop()
                raise
        return rig

    def warm_up(self, timeout: float = 60.0) -> float:
        """One message through the daemon, waiting for its acknowledgement, before any
        phase: the phases then measure a running daemon, not its start (its worker
        process is still importing for about half a second after the listener is up).
        Returns the milliseconds from the daemon listening to that acknowledgement."""
        started = time.monotonic()
        mail = warm_up_mail()
        sent = client.send(self.daemon.port, [mail])
        if sent.errors:
            raise RuntimeError(f"warm-up message refused: {sent.errors[0]}")
        while not any(a.in_reply_to == mail.message_id for a in self.sink.poll()):
            self.daemon.check_alive()
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"no acknowledgement of the warm-up within {timeout:.0f}s")
            time.sleep(0.005)
        return round((time.monotonic() - started) * 1000, 1)

    def stop(self) -> None:
        try:
            self.daemon.stop()
        finally:
            self.reader.dispose()
            self.sink.stop()


@dataclass
class Completion:
    acks: dict[str, list[Arrival]]
    finished: float  # when the last expected ack arrived or the last message was processed
    timed_out: bool
    detail: str = ""


def wait_complete(
    rig: Rig,
    workload: Workload,
    snap: Snapshot,
    *,
    expect_acks: bool = True,
    accepted: Collection[str] | None = None,
    stall: float = 60.0,
    settle: float = 0.5,
) -> Completion:
    """Wait until the phase's messages are processed and its acks arrived.

    With ``accepted`` (the Message-IDs that got a 250) only those are waited for: a
    refused message is reported by the checks, not waited on.  Gives up when nothing
    moves for ``stall`` seconds.  After completion it waits ``settle`` seconds more so
    that a duplicate acknowledgement would be seen.
    """
    wanted = set(accepted) if accepted is not None else {m.message_id for m in workload}
    expected = {m.message_id for m in workload.expected_acks} if expect_acks else set()
    expected &= wanted
    ids = {m.message_id for m in workload}
    acks: dict[str, list[Arrival]] = acks_by_message(rig.sink.arrivals, workload)

    def absorb() -> None:
        for arrival in rig.sink.poll():
            if arrival.in_reply_to in ids:
                acks.setdefault(arrival.in_reply_to, []).append(arrival)

    state: tuple[int, int, int] | None = None
    moved = time.monotonic()
    timed_out = False
    while True:
        rig.daemon.check_alive()
        absorb()
        got = sum(1 for mid in expected if mid in acks)
        stored, pending = rig.reader.pending_since(snap)
        if stored >= len(wanted) and pending == 0 and got >= len(expected):
            break
        if (got, stored, pending) != state:
            state, moved = (got, stored, pending), time.monotonic()
        elif time.monotonic() - moved > stall:
            timed_out = True
            break
        time.sleep(0.05)
    time.sleep(settle)
    absorb()
    last_ack = max((acks[mid][0].at for mid in expected if mid in acks), default=0.0)
    last_processed = rig.reader.inbound_since(snap)["last_processed"] or 0.0
    detail = ""
    if timed_out:
        detail = (
            f"stalled for {stall:.0f}s: {state[1] if state else 0} stored, "
            f"{state[2] if state else 0} pending, {state[0] if state else 0}/{len(expected)} acks"
        )
    return Completion(acks, max(last_ack, last_processed), timed_out, detail)
