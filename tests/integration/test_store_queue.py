"""The store's coordination on SQLite and PostgreSQL: claims, leases, ON CONFLICT, numbers.

On PostgreSQL the concurrent parts really run concurrently (SKIP LOCKED lets a second
session pass a first one's locked rows); on SQLite the same tests pass because every
writing transaction is serialised by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from support.mail import make_mail

from mailbot.store.apply_service import insert_new
from mailbot.store.db import Store
from mailbot.store.models import InboundMessage, MessageRef, OutboxMessage, Ticket
from mailbot.store.repo import (
    claim_inbound,
    claim_outbox,
    enqueue,
    insert_ignore,
    insert_numbered_ticket,
)

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 27, 12, 0)
LEASE = 60.0


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url, busy_timeout=30.0)
    yield opened
    opened.dispose()


def is_postgres(store: Store) -> bool:
    return store.dialect == "postgresql"


def fill_inbound(store: Store, count: int) -> list[int]:
    with store.transaction() as session:
        return [
            enqueue(session, source="smtp", raw=make_mail(f"n{i}"), now=NOW, rcpt_to=["s@x"])
            for i in range(count)
        ]


def fill_outbox(store: Store, count: int) -> list[int]:
    with store.transaction() as session:
        rows = [
            OutboxMessage(
                kind="ack",
                message_id=f"<o{i}@test>",
                recipient="a@x.example",
                recipients="a@x.example",
                payload=b"x",
                next_attempt_at=NOW,
                created_at=NOW,
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [int(r.id) for r in rows]  # type: ignore[arg-type]


def claims_at_once(
    store: Store, claim: Callable[..., list], limit: int
) -> tuple[list[int], list[int]]:
    """Session A claims and keeps its transaction open while session B claims too."""
    got: dict[str, list[int]] = {}
    failures: list[BaseException] = []

    def ids(rows: list) -> list[int]:
        return [r if isinstance(r, int) else int(r.id) for r in rows]

    def second() -> None:
        try:
            with store.transaction() as b:
                if is_postgres(store):  # were the rows not skipped, B would wait: fail instead
                    b.execute(text("SET LOCAL lock_timeout = '10s'"))
                got["b"] = ids(claim(b, NOW, LEASE, limit))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(exc)

    waiter = threading.Thread(target=second)
    with store.transaction() as a:
        got["a"] = ids(claim(a, NOW, LEASE, limit))
        if is_postgres(store):
            second()  # runs to the end while A still holds its row locks
            assert "b" in got or failures, "B did not finish while A held its locks"
        else:
            waiter.start()  # SQLite: B waits for A's write lock, then sees A's leases
    if waiter.is_alive() or not is_postgres(store):
        waiter.join()
    if failures:
        raise failures[0]
    return got["a"], got["b"]


def test_two_sessions_claim_disjoint_inbound_rows(store: Store) -> None:
    ids = fill_inbound(store, 20)
    first, second = claims_at_once(store, claim_inbound, 10)
    assert len(first) == len(second) == 10
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == ids


def test_two_sessions_claim_disjoint_outbox_rows(store: Store) -> None:
    ids = fill_outbox(store, 12)
    first, second = claims_at_once(store, claim_outbox, 6)
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == ids


def test_many_workers_drain_the_queue_each_row_once(store: Store) -> None:
    ids = fill_inbound(store, 240)
    seen: list[int] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                with store.transaction() as session:
                    claimed = claim_inbound(session, NOW, LEASE, 7)
                if not claimed:
                    return
                with lock:
                    seen.extend(claimed)
                with store.transaction() as session:
                    session.execute(
                        update(InboundMessage)
                        .where(InboundMessage.id.in_(claimed))  # type: ignore[union-attr]
                        .values(status="done", claimed_until=None)
                    )
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [i for i, n in Counter(seen).items() if n > 1] == []
    assert sorted(seen) == ids


def test_a_dead_workers_inbound_lease_expires(store: Store) -> None:
    ids = fill_inbound(store, 3)
    with store.transaction() as session:  # a worker claims them, then dies
        assert claim_inbound(session, NOW, LEASE, 10) == ids
    with store.transaction() as session:
        assert claim_inbound(session, NOW + timedelta(seconds=LEASE - 1), LEASE, 10) == []
    later = NOW + timedelta(seconds=LEASE + 1)
    with store.transaction() as session:
        session.execute(
            update(InboundMessage).where(InboundMessage.id == ids[0]).values(status="done")
        )
    with store.transaction() as session:  # another worker, after the lease
        assert claim_inbound(session, later, LEASE, 10) == ids[1:]


def test_a_dead_senders_outbox_lease_expires(store: Store) -> None:
    ids = fill_outbox(store, 2)
    with store.transaction() as session:
        assert [r.id for r in claim_outbox(session, NOW, LEASE, 10)] == ids
    with store.transaction() as session:
        assert claim_outbox(session, NOW + timedelta(seconds=LEASE - 1), LEASE, 10) == []
    with store.transaction() as session:
        taken = claim_outbox(session, NOW + timedelta(seconds=LEASE + 1), LEASE, 10)
    assert [r.id for r in taken] == ids


def test_insert_on_conflict_does_nothing(store: Store) -> None:
    with store.transaction() as session:
        ticket = Ticket(number=1001, subject="s", severity=3, created_at=NOW, updated_at=NOW)
        session.add(ticket)
        session.flush()
        refs = [{"message_id": m, "ticket_id": ticket.id} for m in ("a@x", "b@x")]
        insert_ignore(session, MessageRef, refs)
    with store.transaction() as session:
        more = [{"message_id": m, "ticket_id": ticket.id} for m in ("b@x", "c@x", "c@x")]
        insert_ignore(session, MessageRef, more)
        row = {"message_id": "d@x", "ticket_id": ticket.id}
        assert insert_new(session, MessageRef, row) is True
        assert insert_new(session, MessageRef, row) is False
    with store.transaction() as session:
        names = session.execute(select(MessageRef.message_id)).scalars().all()
    assert sorted(names) == ["a@x", "b@x", "c@x", "d@x"]


# ---------------------------------------------------------------- ticket numbers

NEW_TICKET = {
    "subject": "t",
    "severity": 3,
    "status": "open",
    "created_at": NOW,
    "updated_at": NOW,
    "emergency_unauthorised": False,
}

ALLOCATE = """
import sys
from datetime import datetime
from mailbot.store.db import Store
from mailbot.store.models import Ticket
from mailbot.store.repo import insert_numbered_ticket

store = Store.open(sys.argv[1], busy_timeout=60.0)
now = datetime(2025, 11, 27, 12, 0)
values = {"subject": "p", "severity": 3, "status": "open", "created_at": now, "updated_at": now,
          "emergency_unauthorised": False}
for _ in range(int(sys.argv[2])):
    with store.transaction() as session:
        _, number = insert_numbered_ticket(session, values)
    print(number, flush=True)
store.dispose()
"""


def test_ticket_numbers_from_threads_and_processes_never_repeat(
    store: Store, store_url: str
) -> None:
    numbers: list[int] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def allocate(count: int) -> None:
        try:
            for _ in range(count):
                with store.transaction() as session:
                    _, number = insert_numbered_ticket(session, NEW_TICKET)
                with lock:
                    numbers.append(number)
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ALLOCATE, store_url, "40"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    threads = [threading.Thread(target=allocate, args=(40,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        numbers += [int(line) for line in out.split()]
    assert failures == []
    assert len(numbers) == 5 * 40 + 3 * 40
    assert [n for n, seen in Counter(numbers).items() if seen > 1] == []
    assert min(numbers) >= 1001
    with store.transaction() as session:
        assert session.execute(select(func.count()).select_from(Ticket)).scalar_one() == 320


def test_a_claim_on_sqlite_rewrites_the_lease_not_the_raw_mail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A new row carries an expired lease the size of the one a claim writes: the
    claim's UPDATE keeps the row's size, and SQLite rewrites in place only the page with
    the lease instead of the whole row with its raw mail (about five pages here)."""
    sqlite = Store.open(f"sqlite:///{tmp_path / 'queue.db'}", busy_timeout=30.0)
    try:
        raw = make_mail("Large", body="x" * 20_000)
        with sqlite.transaction() as session:
            ids = [enqueue(session, source="smtp", raw=raw, now=NOW) for _ in range(20)]
        wal = tmp_path / "queue.db-wal"
        before = wal.stat().st_size
        with sqlite.transaction() as session:
            assert claim_inbound(session, NOW, LEASE, 100) == ids
        written = wal.stat().st_size - before
    finally:
        sqlite.dispose()
    page = 4096 + 24  # a WAL frame: its header and one page
    assert 0 < written <= 2 * len(ids) * page, f"{written / page:.0f} pages for {len(ids)} rows"
