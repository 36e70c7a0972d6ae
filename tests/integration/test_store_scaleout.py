"""Two ``mailbot run`` daemons on one PostgreSQL: exactly once, whichever daemon gets the mail.

1,000 messages, half to each daemon's SMTP listener, and 100 of them to both at the
same moment (an MTA retrying to the other MX): exactly 1,000 tickets and exactly
1,000 acknowledgements at the sink, both daemons having done part of the work.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster import counter, start_daemon
from support.daemon import Daemon
from support.mail import make_mail, message_id_of
from support.servers import Sink

from mailbot.store.db import Store

pytestmark = pytest.mark.integration

MESSAGES = 1000
TWINS = 100  # of the MESSAGES, sent to both daemons
SMTP_THREADS = 6


@pytest.fixture
def daemons(tmp_path: Path, sink: Sink, postgres_url: str) -> Iterator[tuple[Daemon, Daemon]]:
    Store.open(postgres_url).dispose()  # the schema, made once before both start
    first = start_daemon(tmp_path, "a", postgres_url, sink.port)
    second = start_daemon(tmp_path, "b", postgres_url, sink.port)
    yield first, second
    for proc in (first, second):
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()


def send_all(port: int, raws: list[bytes], failures: list[BaseException]) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            for raw in raws:
                client.sendmail("customer@example.org", ["support@example.com"], raw)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)


def wait_until(predicate, timeout: float, what: str, *daemons: Daemon) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {d.log_path} ---\n{d.log()[-3000:]}" for d in daemons)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(0.1)


def test_two_daemons_one_ticket_and_one_ack_per_message(
    daemons: tuple[Daemon, Daemon], sink: Sink, postgres_url: str
) -> None:
    first, second = daemons
    raws = [
        make_mail(f"[Normal] case {n}", sender=f"customer{n}@example.org") for n in range(MESSAGES)
    ]
    half = MESSAGES // 2
    to_first, to_second = raws[:half], raws[half:]
    twins = to_first[: TWINS // 2] + to_second[: TWINS // 2]
    jobs: list[tuple[int, list[bytes]]] = []
    for port, share in ((first.port, to_first), (second.port, to_second)):
        singles = share[TWINS // 2 :]
        step = len(singles) // (SMTP_THREADS // 2) + 1
        jobs += [(port, singles[i : i + step]) for i in range(0, len(singles), step)]
    # The twins go to both daemons at the same time, in the same order.
    jobs += [(first.port, twins), (second.port, twins)]

    failures: list[BaseException] = []
    threads = [threading.Thread(target=send_all, args=(p, r, failures)) for p, r in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(len(r) for _, r in jobs) == MESSAGES + TWINS

    engine = Store.open(postgres_url).engine
    count = counter(engine)
    try:
        wait_until(lambda: len(sink.received) >= MESSAGES, 600, "1,000 acks", first, second)
        wait_until(
            lambda: (
                count("SELECT count(*) FROM inbound WHERE status = 'pending'") == 0
                and count("SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0
            ),
            120,
            "both queues empty",
            first,
            second,
        )
        assert first.stop() == 0
        assert second.stop() == 0

        assert count("SELECT count(*) FROM inbound") == MESSAGES + TWINS
        assert count("SELECT count(*) FROM ticket") == MESSAGES
        assert count("SELECT count(*) FROM inbound WHERE status = 'ignored'") == TWINS
        assert count("SELECT count(*) FROM outbox WHERE kind = 'ack'") == MESSAGES
    finally:
        engine.dispose()

    assert len(sink.received) == MESSAGES
    answered = Counter(r.message["In-Reply-To"].strip("<>") for r in sink.received)
    assert set(answered) == {message_id_of(raw) for raw in raws}
    assert max(answered.values()) == 1
    for proc in (first, second):  # the work was shared, not done by one of them
        assert " created SUP-" in proc.log()
