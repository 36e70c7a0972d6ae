"""A stopping listener answers DATA with 421 and stores nothing, while a message already
being stored still gets its 250: a real ``SmtpListener`` on loopback, smtplib clients."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from support.mail import make_mail

from mailbot.intake.smtp import IntakeHandler, SmtpListener

pytestmark = pytest.mark.integration

SUPPORT = "support@example.com"


T = TypeVar("T")


def _run(scenario: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """``asyncio.run`` that fails instead of hanging when a caller is never answered."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


class RecordingStore:
    """``store_raw`` that records calls; while ``gate`` is set it waits for it to open."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str], bytes]] = []
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def __call__(self, source: str, mail_from: str, rcpt_to: list[str], raw: bytes) -> int:
        self.calls.append((source, mail_from, rcpt_to, raw))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return len(self.calls)


def _listener(store: RecordingStore, protocol: str = "smtp") -> SmtpListener:
    handler = IntakeHandler(accepted=frozenset({SUPPORT}), protocol=protocol, store_raw=store)
    return SmtpListener(
        handler, host="127.0.0.1", port=0, protocol=protocol, max_message_size=1_000_000
    )


def _open_session(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=5)
    client.ehlo()
    assert client.mail("alice@customer.example")[0] == 250
    assert client.rcpt(SUPPORT)[0] == 250
    return client


def test_data_after_closing_gets_421_and_is_not_stored() -> None:
    store = RecordingStore()
    raw = make_mail("before the stop")

    async def scenario() -> tuple[int, bytes, bool]:
        listener = _listener(store)
        await listener.start()
        assert listener.port != 0
        # A session that is already past RCPT when the listener starts stopping.
        client = await asyncio.to_thread(_open_session, listener.port)
        listener.handler.closing = True
        code, reply = await asyncio.to_thread(client.data, raw)
        # 421 closes the channel (RFC 5321 3.8): the next command finds it closed.
        try:
            await asyncio.to_thread(client.noop)
            closed = False
        except smtplib.SMTPServerDisconnected:
            closed = True
        await listener.stop(grace=1)
        return code, reply, closed

    code, reply, closed = _run(scenario())
    assert code == 421
    assert b"shutting down" in reply
    assert closed
    assert store.calls == []


def test_sendmail_while_closing_raises_421() -> None:
    store = RecordingStore()

    async def scenario() -> smtplib.SMTPDataError:
        listener = _listener(store)
        await listener.start()
        listener.handler.closing = True

        def send() -> smtplib.SMTPDataError:
            with smtplib.SMTP("127.0.0.1", listener.port, timeout=5) as client:
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    client.sendmail("alice@customer.example", [SUPPORT], make_mail("late"))
                return refused.value

        try:
            return await asyncio.to_thread(send)
        finally:
            await listener.stop(grace=1)

    error = _run(scenario())
    assert error.smtp_code == 421
    assert store.calls == []


def test_stop_lets_a_message_in_flight_finish_and_refuses_the_next_data() -> None:
    """The real shutdown path: ``stop()`` waits for the message being stored (it gets 250)
    and a DATA that ends meanwhile, on a session opened before, gets 421."""
    store = RecordingStore()
    first, second = make_mail("in flight"), make_mail("too late")
    opened, go = threading.Event(), threading.Event()

    async def scenario() -> tuple[dict, tuple[int, bytes]]:
        listener = _listener(store)
        await listener.start()
        store.gate = asyncio.Event()

        def send_first() -> dict:
            with smtplib.SMTP("127.0.0.1", listener.port, timeout=5) as client:
                return client.sendmail("alice@customer.example", [SUPPORT], first)

        def second_data() -> tuple[int, bytes]:
            client = _open_session(listener.port)
            opened.set()
            try:
                assert go.wait(5)
                return client.data(second)
            finally:
                client.close()

        in_flight = asyncio.create_task(asyncio.to_thread(send_first))
        late = asyncio.create_task(asyncio.to_thread(second_data))
        await asyncio.wait_for(store.entered.wait(), 5)  # the first message is being stored
        assert await asyncio.to_thread(opened.wait, 5)  # the second session waits before DATA
        stopping = asyncio.create_task(listener.stop(grace=5))
        await asyncio.sleep(0)
        assert listener.handler.closing
        go.set()
        late_reply = await asyncio.wait_for(late, 5)
        assert not stopping.done()  # still waiting for the first message's commit
        store.gate.set()
        refused = await asyncio.wait_for(in_flight, 5)
        await asyncio.wait_for(stopping, 5)
        assert not listener.running
        return refused, late_reply

    refused, (code, reply) = _run(scenario())
    assert refused == {}  # the first message got its 250
    assert code == 421 and b"shutting down" in reply
    assert [call[3] for call in store.calls] == [first]


def test_lmtp_answers_421_once_per_recipient_while_closing() -> None:
    store = RecordingStore()
    accepted = frozenset({SUPPORT, "help@example.com"})

    async def scenario() -> list[int]:
        handler = IntakeHandler(accepted=accepted, protocol="lmtp", store_raw=store)
        listener = SmtpListener(
            handler, host="127.0.0.1", port=0, protocol="lmtp", max_message_size=1_000_000
        )
        await listener.start()
        handler.closing = True

        def deliver() -> list[int]:
            client = smtplib.LMTP()
            client.connect("127.0.0.1", listener.port)
            try:
                client.ehlo()
                client.mail("alice@customer.example")
                client.rcpt(SUPPORT)
                client.rcpt("help@example.com")
                code, _ = client.data(make_mail("lmtp late"))
                return [code, client.getreply()[0]]
            finally:
                client.close()

        try:
            return await asyncio.to_thread(deliver)
        finally:
            await listener.stop(grace=1)

    assert _run(scenario()) == [421, 421]
    assert store.calls == []
