"""The daemon's worker and sender loops (``Application.run``, in this process) over a real
SMTP listener and relay: after a batch that emptied its queue the worker waits for news
instead of claiming again at once, the sender is woken only by commits that queued mail,
and acknowledgements go out over one relay connection until it has been idle
``KEEP_IDLE_CONNECTION``, when the sender closes it, even with a long poll interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.daemon import base_config, merge, run_here
from support.mail import make_mail, send
from support.servers import Sink, free_port, wait_for_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.outbound import sender as sender_module
from mailbot.outbound.sender import MARK_WITHIN

pytestmark = pytest.mark.integration

MESSAGES = 4
# Longer than the test: only a stored message (or a worker commit) wakes a loop.
POLL = 60.0


class Calls:
    """Wraps a method of the application, recording what each call returned."""

    def __init__(self, method: Callable[[], Any]) -> None:
        self.method = method
        self.results: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        result = self.method()
        with self._lock:
            self.results.append(result)
        return result


def _app(tmp_path: Path, sink: Sink, sender_poll: float = POLL) -> Application:
    overrides = {
        "worker": {"processes": 0, "poll_interval": POLL},
        "outbound": {"poll_interval": sender_poll},
    }
    config = merge(base_config(tmp_path, free_port(), sink.port), overrides)
    return Application(parse_settings(config, tmp_path))


def _one_at_a_time(
    app: Application, sink: Sink, replies: bool, pause: float = 0.0
) -> Callable[[], None]:
    """New tickets (each acknowledged), one at a time; with ``replies``, a reply to the
    first ticket after each (it queues no acknowledgement).  Each message is sent once
    the one before has been acknowledged or processed, and ``pause`` seconds later."""
    port = app.settings.intake.smtp.port

    def client() -> None:
        wait_for_port(port)
        for n in range(MESSAGES):
            send(port, make_mail(f"[High] number {n}", message_id=f"n{n}@customer.example"))
            sink.wait_for(n + 1)
            time.sleep(pause)
            if replies:
                send(port, make_mail(f"Re: number {n}", in_reply_to="n0@customer.example"))
                _wait_for(lambda done=2 * (n + 1): _processed(app) == done)

    return client


def _processed(app: Application) -> int:
    with app.store.read() as session:
        query = "SELECT count(*) FROM inbound WHERE status = 'done'"
        return int(session.connection().exec_driver_sql(query).scalar_one())


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _noting_relay_sessions(sink: Sink) -> list[tuple[str, int]]:
    """The client address of each message the relay receives (one per SMTP session)."""
    sessions: list[tuple[str, int]] = []
    handle_data = sink.handler.handle_DATA

    async def noting_peer(server, session, envelope):  # type: ignore[no-untyped-def]
        sessions.append(session.peer)
        return await handle_data(server, session, envelope)

    sink.handler.handle_DATA = noting_peer  # type: ignore[method-assign]
    return sessions


def test_a_batch_that_emptied_the_queue_is_not_followed_by_an_empty_claim(
    tmp_path: Path, sink: Sink
) -> None:
    app = _app(tmp_path, sink)
    batches = Calls(app._process_batch)
    app._process_batch = batches  # type: ignore[method-assign]
    run_here(app, _one_at_a_time(app, sink, replies=False))
    sizes = [len(outcomes) for outcomes in batches.results]
    assert [o.outcome for r in batches.results for o in r] == ["created"] * MESSAGES
    # One claim per stored message, each finding it; none right after a batch (the
    # queue was empty), only the daemon's first claim may find nothing.
    assert [size for size in sizes if size] == [1] * MESSAGES
    assert sizes.count(0) <= 1


def test_the_sender_is_woken_by_commits_that_queued_mail_and_not_by_others(
    tmp_path: Path, sink: Sink
) -> None:
    app = _app(tmp_path, sink)
    sender = app.sender
    send_due = sender.send_due
    calls: list[tuple[bool, int]] = []  # (deliveries to mark when called, rows sent)

    def noting_send_due() -> int:
        unmarked = sender.unmarked
        calls.append((unmarked, send_due()))
        return calls[-1][1]

    sender.send_due = noting_send_due  # type: ignore[method-assign]
    # The pause: each acknowledgement is marked sent before the reply after it comes.
    run_here(app, _one_at_a_time(app, sink, replies=True, pause=3 * MARK_WITHIN))
    assert len(sink.received) == MESSAGES  # the replies are not acknowledged
    # Each acknowledgement was sent by a call of its own; the replies' commits woke
    # nobody: between the daemon's first call and its drain at shutdown, no call had
    # nothing to send and nothing to mark.
    assert [sent for _, sent in calls if sent] == [1] * MESSAGES
    assert (False, 0) not in calls[1:-1]


@pytest.mark.parametrize("keep", [True, False])
def test_a_relay_connection_outlives_idle_polls_until_it_has_been_idle_a_while(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    if not keep:
        monkeypatch.setattr(sender_module, "KEEP_IDLE_CONNECTION", 0.0)
    app = _app(tmp_path, sink, sender_poll=0.05)
    sends = Calls(app.sender.send_due)
    app.sender.send_due = sends  # type: ignore[method-assign]
    sessions = _noting_relay_sessions(sink)
    run_here(app, _one_at_a_time(app, sink, replies=False, pause=0.3))
    assert len(sessions) == MESSAGES
    assert sends.results.count(0) >= MESSAGES  # polls in the pauses found nothing ...
    # ... and kept the connection (1.2 s in all, within KEEP_IDLE_CONNECTION), or,
    # without the keeping, closed it: one connection per acknowledgement.
    assert len(set(sessions)) == (1 if keep else MESSAGES)


def test_an_idle_relay_connection_is_closed_without_waiting_for_the_poll(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll interval is a minute: the sender still wakes to let the relay go."""
    monkeypatch.setattr(sender_module, "KEEP_IDLE_CONNECTION", 0.2)
    app = _app(tmp_path, sink)  # poll intervals of POLL
    seen: list[bool] = []  # whether a connection was open, once the ack had arrived

    def client() -> None:
        port = app.settings.intake.smtp.port
        wait_for_port(port)
        send(port, make_mail("[High] one", message_id="one@customer.example"))
        sink.wait_for(1)
        seen.append(app.sender.holds_connection)
        _wait_for(lambda: not app.sender.holds_connection, timeout=3.0)

    run_here(app, client)
    assert seen == [True]
