"""``SmtpTransport`` against a real aiosmtpd relay: a connection that answered within
``FRESH`` seconds is reused without a NOOP; one the relay closed meanwhile is replaced
once and the message still goes out."""

from __future__ import annotations

import select
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from support.servers import Sink, SinkHandler

from mailbot.outbound import transports
from mailbot.outbound.transports import SmtpTransport, TransientDelivery

pytestmark = pytest.mark.integration


@dataclass
class CountingHandler(SinkHandler):
    """The sink's handler, also counting NOOPs and noting each message's client port."""

    noops: int = 0
    peers: list[tuple[str, int]] = field(default_factory=list)

    async def handle_NOOP(self, server, session, envelope, arg) -> str:  # type: ignore[no-untyped-def]
        self.noops += 1
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def relay() -> Iterator[tuple[Sink, CountingHandler]]:
    server = Sink()
    handler = CountingHandler()
    server.handler = handler
    server.start()
    yield server, handler
    server.stop()


@pytest.fixture
def transport(relay: tuple[Sink, CountingHandler]) -> Iterator[SmtpTransport]:
    sink, _ = relay
    made = SmtpTransport("127.0.0.1", sink.port, timeout=3.0)
    yield made
    made.close()


def _payload(n: int) -> bytes:
    return f"From: support@example.com\r\nSubject: ack {n}\r\n\r\nbody {n}\r\n".encode()


def _closed_by_peer(conn: smtplib.SMTP, timeout: float = 2.0) -> bool:
    """Whether the relay has closed its end of ``conn`` (EOF waiting on our socket)."""
    sock = conn.sock
    assert sock is not None
    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""


def _send(transport: SmtpTransport, n: int) -> None:
    transport.send("support@example.com", [f"c{n}@customer.example"], _payload(n))


def test_a_fresh_connection_is_reused_without_noop(
    relay: tuple[Sink, CountingHandler], transport: SmtpTransport
) -> None:
    sink, handler = relay
    for n in range(3):
        _send(transport, n)
    assert [r.rcpt_tos for r in sink.received] == [[f"c{n}@customer.example"] for n in range(3)]
    assert len(set(handler.peers)) == 1  # one connection for the burst
    assert handler.noops == 0  # and no round trip to ask whether it still lives


def test_an_older_connection_is_asked_with_noop_first(
    relay: tuple[Sink, CountingHandler],
    transport: SmtpTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, handler = relay
    monkeypatch.setattr(transports, "FRESH", 0.0)  # every connection counts as old
    _send(transport, 1)
    _send(transport, 2)
    assert len(sink.received) == 2
    assert handler.noops == 1  # before the second message
    assert len(set(handler.peers)) == 1  # the NOOP answered: same connection


def test_a_reused_connection_the_relay_closed_is_replaced_once(
    relay: tuple[Sink, CountingHandler],
    transport: SmtpTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, handler = relay
    # However slow the relay's restart, the connection still counts as fresh (no NOOP).
    monkeypatch.setattr(transports, "FRESH", 60.0)
    _send(transport, 1)
    first_connection = transport._conn
    assert first_connection is not None
    # The relay restarts: our open connection is closed under us.
    sink.stop()
    assert _closed_by_peer(first_connection)
    sink.start()
    _send(transport, 2)  # must not raise
    assert [r.message["Subject"] for r in sink.received] == ["ack 1", "ack 2"]
    assert len(set(handler.peers)) == 2  # a new connection carried the second message
    assert transport._conn is not None and transport._conn is not first_connection
    assert handler.noops == 0  # it was reused as fresh, not probed
    _send(transport, 3)  # and the new connection is kept for the next one
    assert handler.peers[2] == handler.peers[1]


def test_a_relay_that_stays_down_is_a_transient_failure(
    relay: tuple[Sink, CountingHandler], transport: SmtpTransport
) -> None:
    sink, _ = relay
    _send(transport, 1)
    sink.stop()  # closes our connection and refuses new ones
    with pytest.raises(TransientDelivery):
        _send(transport, 2)
    assert transport._conn is None
    sink.start()
    _send(transport, 3)  # the next attempt connects afresh
    assert [r.message["Subject"] for r in sink.received] == ["ack 1", "ack 3"]
