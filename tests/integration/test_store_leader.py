"""Leadership by advisory lock on a real PostgreSQL (and its trivial SQLite form)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from support.postgres import private_schema

from mailbot.store.db import make_engine
from mailbot.store.leader import Election, Leadership, imap_lock_name

pytestmark = pytest.mark.integration


@pytest.fixture
def elect(postgres_url: str) -> Iterator[Callable[..., Election]]:
    """``elect(name) -> Election`` on the test schema; all released afterwards."""
    made: list[Election] = []
    engines = []

    def _elect(name: str, url: str = postgres_url) -> Election:
        engine = make_engine(url)
        engines.append(engine)
        election = Election(engine, name)
        made.append(election)
        return election

    yield _elect
    for election in made:
        election.release()
    for engine in engines:
        engine.dispose()


def backend_pid(election: Election) -> int:
    assert election._conn is not None
    return int(election._conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_one_leader_until_it_lets_go(elect) -> None:
    first, second = elect("reminders"), elect("reminders")
    assert first.poll() is True
    assert second.poll() is False
    assert first.poll() is True  # still leading: the check does not give it up
    assert second.poll() is False
    first.release()
    assert second.poll() is True
    assert first.poll() is False


def test_jobs_and_schemas_do_not_contend(elect, postgres_url: str) -> None:
    mailbox = imap_lock_name("imap.example.com", 993, "Support@Example.com", "INBOX")
    assert elect(mailbox).poll() is True
    assert elect(imap_lock_name("imap.example.com", 993, "support@example.com", "Other")).poll()
    assert elect("reminders").poll() is True
    assert (
        elect(imap_lock_name("IMAP.example.com", 993, "support@example.com", "INBOX")).poll()
        is False
    )
    server = os.environ["MAILBOT_TEST_POSTGRES_URL"]
    with private_schema(server) as other_installation:
        elsewhere = elect("reminders", other_installation)
        assert elsewhere.poll() is True
        elsewhere.release()


def test_a_leader_whose_session_dies_is_replaced(elect, postgres_url: str) -> None:
    leader, follower = elect("reminders"), elect("reminders")
    assert leader.poll() is True
    assert follower.poll() is False
    engine = make_engine(postgres_url)  # the leader's session dies (crash, network, restart)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid(leader)})
    finally:
        engine.dispose()
    # pg_terminate_backend only signals the backend: its lock goes when it has exited.
    deadline = time.monotonic() + 10
    while not follower.poll() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert follower.poll() is True
    assert leader.poll() is False  # it notices, and does not get it back
    assert leader.poll() is False


def test_sqlite_always_leads(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    first, second = Election(engine, "reminders"), Election(engine, "reminders")
    assert first.poll() and second.poll()
    first.release()
    engine.dispose()


def test_leadership_starts_the_service_and_hands_it_over(elect) -> None:
    events: list[str] = []

    async def scenario() -> None:
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        a = Leadership(
            elect("job"), start=lambda: events.append("a start"),
            stop=lambda: events.append("a stop"), what="job", retry=0.1,
        )  # fmt: skip
        b = Leadership(
            elect("job"), start=lambda: events.append("b start"),
            stop=lambda: events.append("b stop"), what="job", retry=0.1,
        )  # fmt: skip
        task_a = asyncio.create_task(a.run(stop_a))
        await until(lambda: a.running)
        task_b = asyncio.create_task(b.run(stop_b))
        await until(lambda: b.election._conn is not None)  # b has asked, and waits
        assert b.standby and not a.standby
        stop_a.set()  # a shuts down: stops the service, frees the lock
        await task_a
        await until(lambda: b.running)
        stop_b.set()
        await task_b

    asyncio.run(scenario())
    assert events == ["a start", "a stop", "b start", "b stop"]


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
