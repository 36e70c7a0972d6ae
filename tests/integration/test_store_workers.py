"""Several workers on one store (SQLite and PostgreSQL): one ticket per message, whatever races.

Two in-process Applications stand for two daemons: they share the database and
nothing else.  Where a race matters, the test holds one transaction open and waits
(on PostgreSQL, by asking the server) until the other worker is blocked behind it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from types import SimpleNamespace

import pytest
from corpus.builders import dsn
from sqlalchemy import event, func, select, text
from sqlmodel import Session
from support.daemon import base_config, merge
from support.mail import make_mail
from support.servers import Sink, free_port

from mailbot import worker as worker_module
from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.message import parse
from mailbot.store.db import Store
from mailbot.store.models import Attachment, InboundMessage, OutboxMessage, ThreadEntry, Ticket
from mailbot.store.repo import claim_inbound, enqueue
from mailbot.worker import GROUP_MESSAGES, Outcome

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 27, 12, 0)
SENDER = "customer@customer.example"  # an envelope sender: not a bounce
RCPT = ["support@example.com"]


@pytest.fixture
def build(tmp_path: Path, sink: Sink, store_url: str) -> Iterator[Callable[..., Application]]:
    """``build(clock=...) -> Application`` on the shared store (each with its own engine)."""
    apps: list[Application] = []

    def _build(clock: Callable[[], datetime] = lambda: NOW, **sections: dict) -> Application:
        config = merge(
            base_config(tmp_path, free_port(), sink.port),
            {
                "database": {"url": store_url, "busy_timeout": 30.0},
                "acknowledgement": {"max_per_sender_per_hour": 1_000_000},
                **sections,
            },
        )
        app = Application(parse_settings(config, tmp_path), clock=clock)
        apps.append(app)
        return app

    yield _build
    for app in apps:
        app.store.dispose()


def count(store: Store, model: type, *where: object) -> int:
    with store.transaction() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        return int(session.execute(query).scalar_one())


def store_copies(app: Application, raws: list[bytes], copies: int) -> list[list[int]]:
    """Each message stored ``copies`` times, as if delivered to several daemons."""
    with app.store.transaction() as session:
        return [
            [
                enqueue(session, source="smtp", raw=raw, now=NOW, mail_from=SENDER, rcpt_to=RCPT)
                for raw in raws
            ]
            for _ in range(copies)
        ]


def blocked_behind(session: Session) -> Callable[[], bool]:
    """On PostgreSQL: is some other session waiting for a lock this one holds?"""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    store_engine = session.get_bind()

    def check() -> bool:
        with store_engine.connect() as conn:
            query = text(
                "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
            )
            return conn.execute(query, {"pid": pid}).scalar_one() > 0

    return check


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the other worker to block"
        time.sleep(0.02)


def in_thread(fn: Callable[[], Outcome]) -> tuple[threading.Thread, list]:
    result: list = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - the test checks result
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@contextmanager
def statements_of(store: Store) -> Iterator[list[str]]:
    """The SQL the block runs on both of the store's engines (durable and lazy), in order."""
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    engines = (store.engine, store.lazy_engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", remember)


def test_twin_deliveries_processed_by_two_workers_make_one_ticket_each(build) -> None:
    first, second = build(), build()
    raws = [make_mail(f"[High] twin {i}", sender=f"c{i}@customer.example") for i in range(30)]
    store_copies(first, raws, 2)
    failures: list[BaseException] = []

    def drain(app: Application) -> None:
        try:
            while app.worker.process_batch():
                pass
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=drain, args=(app,)) for app in (first, second) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    store = first.store
    assert count(store, Ticket) == 30
    assert count(store, OutboxMessage, OutboxMessage.kind == "ack") == 30
    with store.transaction() as session:
        statuses = Counter(session.execute(select(InboundMessage.status)).scalars())
    assert statuses == {"done": 30, "ignored": 30}


def test_a_twin_committed_meanwhile_turns_into_a_duplicate(build) -> None:
    """Both copies pass the duplicate check; the unique dedup key stops the second."""
    worker_a, worker_b = build(), build()
    raw = make_mail("[Emergency] racing", sender="racer@customer.example")
    (a_id,), (b_id,) = store_copies(worker_a, [raw], 2)
    dedup_key = parse(raw).dedup_key
    with worker_a.store.transaction() as session:  # A is inside its transaction ...
        ticket = Ticket(number=5000, subject="racing", severity=1, created_at=NOW, updated_at=NOW)
        session.add(ticket)
        session.flush()
        session.add(ThreadEntry(ticket_id=ticket.id, direction="inbound", dedup_key=dedup_key,
                                inbound_id=a_id, created_at=NOW))  # fmt: skip
        session.flush()
        thread, result = in_thread(lambda: worker_b.worker.process_one(b_id))  # ... B runs
        if worker_a.store.dialect == "postgresql":
            wait_until(blocked_behind(session))  # B waits on the unique dedup key
    thread.join()
    (outcome,) = result
    assert isinstance(outcome, Outcome), outcome
    assert outcome.outcome == "ignored"
    if worker_a.store.dialect == "postgresql":
        assert "concurrent delivery" in outcome.detail
    assert count(worker_a.store, Ticket) == 1
    assert count(worker_a.store, OutboxMessage) == 0


def test_a_message_still_being_processed_after_its_lease_is_not_processed_twice(build) -> None:
    """Worker A outlives its lease; worker B, after the lease, tries the same message."""
    slow = build()
    lease = slow.settings.worker.lease_seconds
    fast = build(clock=lambda: NOW + timedelta(seconds=lease + 1))
    (inbound_id,) = store_copies(slow, [make_mail("[High] slow one")], 1)[0]
    with slow.store.transaction() as session:
        assert claim_inbound(session, NOW, lease, 10) == [inbound_id]

    # Pause A inside its one transaction: its ticket is written, its thread entry is not.
    inside, release = threading.Event(), threading.Event()
    service = slow.worker.service
    assert service is not None and service.clocks is not None
    clocks = service.clocks

    class PausingClocks:
        def first_response_due(self, *args):  # type: ignore[no-untyped-def]
            inside.set()
            release.wait(60)
            return clocks.first_response_due(*args)

        def next_update_due(self, *args):  # type: ignore[no-untyped-def]
            return clocks.next_update_due(*args)

    slow.worker.service = dataclasses.replace(service, clocks=PausingClocks())
    a_thread, a_result = in_thread(lambda: slow.worker.process_one(inbound_id))
    assert inside.wait(60), a_result
    b_thread, b_result = in_thread(fast.worker.process_batch)
    if slow.store.dialect == "postgresql":  # B has finished, or waits behind A
        wait_until(lambda: not b_thread.is_alive() or lock_waits(slow.store, "inbound"))
    release.set()
    a_thread.join()
    b_thread.join()

    (a_outcome,) = a_result
    assert isinstance(a_outcome, Outcome), a_outcome
    assert a_outcome.outcome == "created"
    (b_outcomes,) = b_result
    assert [o.outcome for o in b_outcomes] in ([], ["skipped"]), b_outcomes
    assert count(slow.store, Ticket) == 1
    with slow.store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        assert (row.status, row.outcome) == ("done", "created")


def lock_waits(store: Store, table: str) -> bool:
    """Some session of this database waits for a lock in a statement on ``table``."""
    with store.engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND query ILIKE :table"
        )
        return conn.execute(query, {"table": f"%{table}%"}).scalar_one() > 0


def test_a_dead_workers_message_is_processed_by_another_after_the_lease(build) -> None:
    dead = build()
    lease = dead.settings.worker.lease_seconds
    (inbound_id,) = store_copies(dead, [make_mail("[Normal] orphan")], 1)[0]
    with dead.store.transaction() as session:  # claimed, then the daemon was killed
        assert claim_inbound(session, NOW, lease, 10) == [inbound_id]

    too_early = build(clock=lambda: NOW + timedelta(seconds=lease - 1))
    assert too_early.worker.process_batch() == []
    survivor = build(clock=lambda: NOW + timedelta(seconds=lease + 1))
    (outcome,) = survivor.worker.process_batch()
    assert (outcome.inbound_id, outcome.outcome) == (inbound_id, "created")
    assert count(survivor.store, OutboxMessage, OutboxMessage.kind == "ack") == 1


def test_a_message_failing_mid_chunk_is_quarantined_alone(build) -> None:
    """A chunk is one transaction: when one message fails in it, the chunk rolls back
    and each message is redone on its own; only the failing one is quarantined."""
    app = build()
    compose = app.worker.build_ack

    def failing_for_poison(ticket, mail, **kwargs):  # type: ignore[no-untyped-def]
        if "Poison" in mail.subject:
            raise RuntimeError("template blew up")
        return compose(ticket, mail, **kwargs)

    app.worker.build_ack = failing_for_poison
    subjects = ["First", "Second", "Poison", "Fourth", "Fifth"]
    raws = [make_mail(s, sender=f"c{i}@customer.example") for i, s in enumerate(subjects)]
    [ids] = store_copies(app, raws, 1)
    outcomes = {o.inbound_id: o for o in app.worker.process_batch()}
    assert [outcomes[i].outcome for i in ids] == [
        "created", "created", "quarantined", "created", "created"
    ]  # fmt: skip
    assert "template blew up" in outcomes[ids[2]].detail
    assert count(app.store, Ticket) == 4
    assert count(app.store, OutboxMessage, OutboxMessage.kind == "ack") == 4


def test_a_chunk_reads_statuses_known_messages_and_ticket_numbers_once(build) -> None:
    """A chunk is one transaction, and what each message used to look up on its own
    (its row's status, whether it is a duplicate, which ticket knows the Message-IDs it
    names, the highest ticket number on SQLite) is read once for the chunk
    (mailbot/store/chunk_facts.py).  The facts must follow the chunk's own writes: a
    copy later in the same chunk is the decision core's duplicate, a reply later in the
    chunk threads onto the ticket its question just opened, new tickets take the next
    numbers in order."""
    app = build()
    earlier = make_mail("Earlier", sender="e@customer.example", message_id="earlier@c.example")
    store_copies(app, [earlier], 1)
    assert [o.outcome for o in app.worker.process_batch()] == ["created"]
    question = make_mail("Question", sender="q@customer.example", message_id="q@c.example")
    twin = make_mail("Twice", sender="t@customer.example")
    answer = make_mail("Re: Question", sender="q@customer.example", in_reply_to="q@c.example")
    follow_up = make_mail(
        "Re: Earlier", sender="e@customer.example", references=["earlier@c.example"]
    )
    new = make_mail("New", sender="n@customer.example")
    # Names the question's Message-ID but goes to SUP-1001 by its subject: the question's
    # Message-ID stays SUP-1002's (ON CONFLICT DO NOTHING), as the next reply shows.
    crossed = make_mail("[SUP-1001] also", sender="e@customer.example", references=["q@c.example"])
    again = make_mail("Re: Question", sender="q@customer.example", in_reply_to="q@c.example")
    chunk = [question, twin, new, twin, answer, follow_up, crossed, again]
    assert len(chunk) <= GROUP_MESSAGES  # one chunk, one transaction ...
    app.worker.max_lock_hold = 60.0  # ... not cut short by time on a slow machine
    [ids] = store_copies(app, chunk, 1)

    with statements_of(app.store) as statements:
        outcomes = {o.inbound_id: o for o in app.worker.process_batch()}

    assert [outcomes[i].outcome for i in ids] == [
        "created", "created", "created", "ignored", "appended", "appended", "appended",
        "appended",
    ]  # fmt: skip
    assert "duplicate of an earlier message" in outcomes[ids[3]].detail  # not a redo
    refs = [outcomes[i].ticket_ref for i in ids]
    assert refs[0] == refs[4] == refs[7] == "SUP-1002"
    assert refs[5] == refs[6] == "SUP-1001"
    with app.store.transaction() as session:
        numbers = session.execute(select(Ticket.number).order_by(Ticket.id)).scalars().all()
    assert numbers == list(range(1001, 1005))

    def runs(fragment: str) -> int:
        return sum(fragment in statement for statement in statements)

    assert runs("SELECT inbound.id, inbound.status FROM inbound WHERE inbound.id IN") == 1
    assert runs("SELECT inbound.status FROM inbound WHERE inbound.id =") == 0
    assert_read_in_one_statement(statements)
    assert runs("FROM thread_entry WHERE thread_entry.dedup_key =") == 0
    highest = runs("SELECT max(ticket.number)")
    assert highest == (1 if app.store.dialect == "sqlite" else 0)
    assert runs("SELECT nextval(") == 0  # PostgreSQL: in the ticket's INSERT
    # The chunk's thread entries (its messages' and its acks') are one INSERT, their
    # Message-IDs another, its participants a third, and its messages' outcomes one UPDATE,
    # at the chunk's end.
    assert runs("INSERT INTO thread_entry") == 1
    assert runs("INSERT INTO message_ref") == 1
    assert runs("INSERT INTO participant") == 1
    assert runs("UPDATE inbound SET status=") == 1
    with app.store.read() as session:
        finished = session.execute(
            text("SELECT outcome, ticket_id IS NOT NULL FROM inbound ORDER BY id")
        ).all()
    assert [tuple(row) for row in finished[1:]] == [
        ("created", True), ("created", True), ("created", True), ("ignored", False),
        ("appended", True), ("appended", True), ("appended", True), ("appended", True),
    ]  # fmt: skip


def test_a_chunks_entries_keep_the_threads_order_around_one_written_at_once(build) -> None:
    """Thread entries wait for the chunk's end, except one with attachments (they need
    its id): it is written at once, with the entries queued before it, so the thread
    (ordered by time, then id; a chunk's entries share their time) keeps the order the
    messages and acknowledgements came in, and the files belong to their own entry."""
    app = build()
    question = make_mail("Printer", sender="p@customer.example", message_id="p@c.example")
    with_log = message_from_bytes(
        make_mail("Re: Printer", sender="p@customer.example", in_reply_to="p@c.example"),
        policy=default,
    )
    with_log.add_attachment(b"paper jam", maintype="text", subtype="plain", filename="log.txt")
    later = make_mail("Re: Printer", sender="p@customer.example", in_reply_to="p@c.example")
    app.worker.max_lock_hold = 60.0  # one chunk, even on a slow machine
    [ids] = store_copies(app, [question, with_log.as_bytes(), later], 1)

    with statements_of(app.store) as statements:
        outcomes = app.worker.process_batch()

    assert [o.outcome for o in outcomes] == ["created", "appended", "appended"]
    with app.store.read() as session:
        thread = session.execute(
            select(ThreadEntry.id, ThreadEntry.direction, ThreadEntry.inbound_id).order_by(
                ThreadEntry.created_at, ThreadEntry.id
            )
        ).all()
        files = session.execute(select(Attachment.entry_id, Attachment.filename)).all()
    assert [(direction, inbound_id) for _, direction, inbound_id in thread] == [
        ("inbound", ids[0]), ("outbound", None), ("inbound", ids[1]), ("inbound", ids[2]),
    ]  # fmt: skip
    assert [tuple(row) for row in files] == [(thread[2][0], "log.txt")]
    inserts = [s for s in statements if s.startswith("INSERT INTO thread_entry")]
    assert len(inserts) == 3  # the two queued before it (one executemany), its own, the last


def test_a_chunks_participants_count_for_the_messages_after_them(build) -> None:
    """Participants wait for the chunk's end too, yet who may append and who gets a
    copy follow them from the message that added them: Bob, Cc'd on the question, may
    reply to it later in the same chunk (he is "already on the ticket"), and the staff
    relay after that copies him, in the order he joined."""
    app = build(staff={"addresses": ["sam@example.com"]})
    question = make_mail(
        "Printer", sender="alice@customer.example", cc="bob@customer.example", message_id="q@c"
    )
    from_bob = make_mail("Re: Printer", sender="bob@customer.example", in_reply_to="q@c")
    from_sam = make_mail(
        "Re: Printer", sender="sam@example.com", cc="dave@partner.example", in_reply_to="q@c"
    )
    app.worker.max_lock_hold = 60.0  # one chunk, even on a slow machine
    [ids] = store_copies(app, [question, from_bob, from_sam], 1)

    with statements_of(app.store) as statements:
        outcomes = app.worker.process_batch()

    # Bob's reply carries no reply token: only being on the ticket lets it in.
    assert [(o.outcome, o.ticket_ref) for o in outcomes] == [
        ("created", "SUP-1001"), ("appended", "SUP-1001"), ("appended", "SUP-1001"),
    ]  # fmt: skip
    with app.store.read() as session:
        relays = session.execute(
            select(OutboxMessage.recipient, OutboxMessage.payload).where(
                OutboxMessage.kind == "relay"
            )
        ).all()
        joined = session.execute(text("SELECT address FROM participant ORDER BY id")).scalars()
        assert list(joined) == [
            "alice@customer.example", "bob@customer.example", "sam@example.com",
            "dave@partner.example",
        ]  # fmt: skip
    [(recipient, payload)] = relays
    relayed = message_from_bytes(payload, policy=default)
    assert recipient == "alice@customer.example"
    assert relayed["Cc"] == "bob@customer.example"
    # The relay's copies wrote the ones queued so far (Sam's and Dave's too: his reply
    # records them before it relays), leaving none for the chunk's end.
    inserts = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO participant")]
    relay = max(i for i, s in enumerate(statements) if s.startswith("INSERT INTO outbox"))
    assert len(inserts) == 1 and inserts[0] < relay


def test_a_reply_touches_its_ticket_in_the_statement_that_locks_it(build) -> None:
    """A reply sets its ticket's ``updated_at`` in the one ``UPDATE … RETURNING`` that
    locks and re-reads the ticket; a reply that changes nothing else writes the ticket
    no second time."""
    times = [NOW]
    app = build(clock=lambda: times[-1])
    store_copies(app, [make_mail("Printer", sender="p@customer.example", message_id="p@c")], 1)
    assert [o.outcome for o in app.worker.process_batch()] == ["created"]
    times.append(NOW + timedelta(hours=2))
    reply = make_mail("Re: Printer", sender="p@customer.example", in_reply_to="p@c")
    store_copies(app, [reply], 1)

    with statements_of(app.store) as statements:
        assert [o.outcome for o in app.worker.process_batch()] == ["appended"]

    with app.store.read() as session:
        updated = session.execute(select(Ticket.updated_at)).scalar_one()
    assert updated.replace(tzinfo=None) == times[-1]
    writes = [s for s in statements if s.startswith("UPDATE ticket")]
    assert len(writes) == 1 and "RETURNING" in writes[0], writes


def assert_read_in_one_statement(statements: list[str]) -> None:
    """The known dedup keys and Message-IDs, and the senders' acknowledgements and
    suppressions, were read in one statement (ChunkFacts), and not again on their own."""
    lookups = ("FROM thread_entry WHERE", "FROM message_ref WHERE", "FROM outbox WHERE",
               "FROM suppression WHERE")  # fmt: skip
    reads = [s for s in statements if s.startswith("SELECT") and any(f in s for f in lookups)]
    assert len(reads) == 1, reads
    assert all(fragment in reads[0] for fragment in lookups), reads[0]


def test_a_lone_message_is_read_for_like_a_chunk_and_its_ids_stored_at_once(build) -> None:
    """One message (as over one SMTP connection) takes the chunk's two reads, not one
    lookup per question, and its Message-ID and its acknowledgement's are one INSERT."""
    app = build()
    [[inbound_id]] = store_copies(app, [make_mail("Alone", sender="a@customer.example")], 1)
    with statements_of(app.store) as statements:
        [outcome] = app.worker.process_batch()
    assert (outcome.inbound_id, outcome.outcome) == (inbound_id, "created")
    assert count(app.store, OutboxMessage, OutboxMessage.kind == "ack") == 1
    assert len([s for s in statements if "FROM inbound WHERE inbound.id IN" in s]) == 2
    assert_read_in_one_statement(statements)
    assert len([s for s in statements if s.startswith("INSERT INTO message_ref")]) == 1
    with app.store.read() as session:
        refs = session.execute(text("SELECT count(*) FROM message_ref")).scalar_one()
    assert refs == 2  # the message's Message-ID and the acknowledgement's


def test_a_batch_is_loaded_in_groups_cut_by_the_sizes_its_claim_read(
    build, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim reads each message's size with its id; the batch is loaded and applied
    in groups of at most GROUP_BYTES (large messages are never all in memory at once),
    without asking the database for the sizes again."""
    app = build()
    raws = [
        make_mail(f"Sized {n}", sender=f"s{n}@customer.example", body="x" * 3000) for n in range(5)
    ]
    [ids] = store_copies(app, raws, 1)
    monkeypatch.setattr(worker_module, "GROUP_BYTES", 2 * len(raws[0]) + 10)  # two a group
    with statements_of(app.store) as statements:
        outcomes = app.worker.process_batch()
    assert [(o.inbound_id, o.outcome) for o in outcomes] == [(i, "created") for i in ids]
    loads = [s for s in statements if s.startswith("SELECT inbound.id, inbound.received_at")]
    assert len(loads) == 3  # groups of 2, 2 and 1
    assert not [
        s
        for s in statements
        if s.startswith("SELECT inbound.id, inbound.size FROM inbound WHERE inbound.id IN")
    ]


def _enqueue(app: Application, raw: bytes, mail_from: str) -> int:
    with app.store.transaction() as session:
        return enqueue(session, source="smtp", raw=raw, now=NOW, mail_from=mail_from, rcpt_to=RCPT)


def test_a_chunk_counts_its_own_acknowledgements_against_the_per_sender_limit(build) -> None:
    """The per-sender count of acknowledgements is read once for a chunk; the ones the
    chunk itself queues count too."""
    app = build()
    app.worker.policy = dataclasses.replace(app.worker.policy, max_acks_per_sender_per_hour=3)
    store_copies(app, [make_mail("Problem 0", sender="busy@customer.example")], 1)
    assert [o.outcome for o in app.worker.process_batch()] == ["created"]  # one ack before
    raws = [make_mail(f"Problem {n}", sender="busy@customer.example") for n in range(1, 5)]
    [ids] = store_copies(app, raws, 1)
    outcomes = {o.inbound_id: o for o in app.worker.process_batch()}
    assert [outcomes[i].outcome for i in ids] == ["created"] * 4
    assert count(app.store, OutboxMessage, OutboxMessage.kind == "ack") == 3
    assert "per-sender limit reached (3 in the last hour)" in outcomes[ids[2]].detail


def test_mail_stored_without_acknowledgement_is_decided_by_the_current_policy_quieted(
    build,
) -> None:
    """An import's rows (no acknowledgement) get the worker's policy with acknowledgements
    and paging off: made once, and made again when the policy is replaced."""
    worker = build().worker
    history = SimpleNamespace(send_ack=False)
    quiet = worker._policy_for(history)  # type: ignore[arg-type]
    assert (quiet.acknowledge, quiet.paging.enabled) == (False, False)
    assert worker._policy_for(history) is quiet  # type: ignore[arg-type]
    worker.policy = dataclasses.replace(worker.policy, max_acks_per_sender_per_hour=3)
    again = worker._policy_for(history)  # type: ignore[arg-type]
    assert (again.max_acks_per_sender_per_hour, again.acknowledge) == (3, False)
    assert worker._policy_for(SimpleNamespace(send_ack=True)) is worker.policy  # type: ignore[arg-type]


def test_a_bounce_early_in_a_chunk_suppresses_acknowledgements_later_in_it(build) -> None:
    """Suppressions are read once for a chunk; a bounce in the chunk adds one, and the
    sender's next message in the same chunk gets no acknowledgement."""
    app = build()
    alice = "alice@customer.example"
    _enqueue(app, make_mail("[High] Export fails", sender=alice), alice)
    assert [o.outcome for o in app.worker.process_batch()] == ["created"]
    with app.store.transaction() as session:
        ack_id = session.execute(select(OutboxMessage.message_id)).scalar_one()
    bounce_id = _enqueue(app, dsn(ack_id.strip("<>"), alice, mid="dsn-9@mx.customer.example"), "")
    again_id = _enqueue(app, make_mail("Another problem", sender=alice), alice)
    outcomes = {o.inbound_id: o for o in app.worker.process_batch()}
    assert outcomes[bounce_id].outcome == "appended"
    assert outcomes[again_id].outcome == "created"
    assert "bounced recently" in outcomes[again_id].detail
    assert count(app.store, OutboxMessage, OutboxMessage.kind == "ack") == 1
