"""The load generator: K SMTP connections (one thread and one smtplib client each).

Messages are spread over connections by sender, and each connection sends its share in
workload order, one transaction at a time: a reply is therefore always sent after its
original's 250, on the same connection, so the expected threading is deterministic.

With ``rate`` set, message *i* is offered at ``start + i / rate`` (a steady load); a
connection that falls behind sends at once, and the achieved rate is reported.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.workload import SUPPORT, Mail


@dataclass
class SendResult:
    connections: int
    started: float = 0.0  # wall clock (time.time) when the first message was offered
    finished: float = 0.0  # when the last 250 came back
    accepted_at: dict[str, float] = field(default_factory=dict)  # Message-ID → its 250
    transaction_seconds: dict[str, float] = field(default_factory=dict)  # MAIL FROM → 250
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.accepted_at)

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


def assign(mails: Sequence[Mail], connections: int) -> list[list[tuple[int, Mail]]]:
    """Per connection, its (workload position, mail) pairs, keeping each sender on one."""
    senders: dict[str, int] = {}
    lanes: list[list[tuple[int, Mail]]] = [[] for _ in range(connections)]
    for position, mail in enumerate(mails):
        lane = senders.setdefault(mail.sender, len(senders) % connections)
        lanes[lane].append((position, mail))
    return lanes


def _connect(host: str, port: int, timeout: float) -> smtplib.SMTP:
    client = smtplib.SMTP(host, port, timeout=timeout)
    client.ehlo("bench-client.example")
    return client


def send(
    port: int,
    mails: Sequence[Mail],
    *,
    connections: int = 1,
    rate: float | None = None,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
) -> SendResult:
    """Send every mail; returns when all got an answer (or failed)."""
    result = SendResult(connections=connections)
    lanes = assign(mails, connections)
    lock = threading.Lock()
    # The barrier's action runs before anyone is released: ``started`` is set for all.
    ready = threading.Barrier(
        connections + 1, action=lambda: setattr(result, "started", time.time())
    )

    def run(lane: list[tuple[int, Mail]]) -> None:
        client: smtplib.SMTP | None = None
        try:
            client = _connect(host, port, timeout)
        except OSError as exc:
            with lock:
                result.errors.append(f"connect: {exc}")
        ready.wait()
        for position, mail in lane:
            if rate is not None:
                delay = result.started + position / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            begin = time.time()
            try:
                if client is None:
                    client = _connect(host, port, timeout)
                client.sendmail(mail.sender, [SUPPORT], mail.raw)
            except (smtplib.SMTPException, OSError) as exc:
                with lock:
                    result.errors.append(f"{mail.message_id}: {exc.__class__.__name__}: {exc}")
                if client is not None:
                    client.close()
                client = None
                continue
            done = time.time()
            with lock:
                result.accepted_at[mail.message_id] = done
                result.transaction_seconds[mail.message_id] = done - begin
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    threads = [threading.Thread(target=run, args=(lane,), daemon=True) for lane in lanes]
    for thread in threads:
        thread.start()
    ready.wait()
    for thread in threads:
        thread.join()
    result.finished = max(result.accepted_at.values(), default=time.time())
    return result
