"""DATA read into one buffer (mailbot/intake/smtp_data.py): the bytes stored are the
ones aiosmtpd's own DATA reading gives, the refusals are the same, and a large message
costs about its size, not aiosmtpd's list of lines.  Real listeners on loopback; the
client writes the wire bytes itself, so dot-stuffing and long lines are under control."""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import BinaryIO

import pytest
from aiosmtpd.smtp import SMTP

from mailbot.intake.smtp import IntakeHandler, SmtpListener

pytestmark = pytest.mark.integration

SUPPORT = "support@example.com"
LIMIT = 200_000


class RecordingStore:
    def __init__(self) -> None:
        self.raws: list[bytes] = []

    async def __call__(self, source: str, mail_from: str, rcpt_to: list[str], raw: bytes) -> int:
        self.raws.append(raw)
        return len(self.raws)


def _handler(store: RecordingStore, protocol: str = "smtp") -> IntakeHandler:
    return IntakeHandler(accepted=frozenset({SUPPORT}), protocol=protocol, store_raw=store)


def _session(port: int, data: list[bytes], protocol: str = "smtp") -> list[bytes]:
    """One session sending each wire DATA body (dot-stuffed, ending in CRLF.CRLF) in
    turn; the reply to each DATA's end."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        reader = sock.makefile("rb")

        def command(line: bytes) -> bytes:
            sock.sendall(line + b"\r\n")
            return _reply(reader)

        _reply(reader)  # greeting
        command(b"LHLO client" if protocol == "lmtp" else b"EHLO client")
        for body in data:
            assert command(b"MAIL FROM:<alice@customer.example>").startswith(b"250")
            assert command(f"RCPT TO:<{SUPPORT}>".encode()).startswith(b"250")
            assert command(b"DATA").startswith(b"354")
            sock.sendall(body)
            replies.append(_reply(reader))
        command(b"QUIT")
    return replies


def _reply(reader: BinaryIO) -> bytes:
    lines = []
    while True:
        line = reader.readline()
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


async def _serve(
    factory: Callable[[], SMTP], scenario: Callable[[int], Awaitable[list[bytes]]]
) -> list[bytes]:
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        return await scenario(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def _ours(data: list[bytes], protocol: str = "smtp") -> tuple[list[bytes], list[bytes]]:
    store = RecordingStore()
    listener = SmtpListener(
        _handler(store, protocol), host="127.0.0.1", port=0, protocol=protocol,
        max_message_size=LIMIT,
    )  # fmt: skip

    async def scenario() -> list[bytes]:
        await listener.start()
        try:
            return await asyncio.to_thread(_session, listener.port, data, protocol)
        finally:
            await listener.stop(grace=1)

    return asyncio.run(scenario()), store.raws


def _stock(data: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The same through aiosmtpd's own SMTP class (its list-of-lines DATA)."""
    store = RecordingStore()
    handler = _handler(store)

    def factory() -> SMTP:
        return SMTP(handler, data_size_limit=LIMIT, enable_SMTPUTF8=True, decode_data=False)

    async def scenario(port: int) -> list[bytes]:
        return await asyncio.to_thread(_session, port, data)

    return asyncio.run(_serve(factory, scenario)), store.raws


WIRE = [
    # dot-stuffed lines, a lone dot inside, 8-bit bytes, a bare LF and CR inside lines
    b"Subject: dots\r\n\r\n..leading dot\r\n.\x2e\r\nmid.dle\r\n..\r\n"
    b"caf\xc3\xa9 \xff\r\nbare\nlf and \rcr\r\n\r\n.\r\n",
    b"Subject: empty body\r\n\r\n.\r\n",
    b".\r\n",  # an empty message
    b"Subject: long but allowed\r\n\r\n" + b"x" * 998 + b"\r\n.\r\n",
]


def test_the_stored_bytes_are_those_aiosmtpd_gives() -> None:
    ours, stored = _ours(WIRE)
    theirs, expected = _stock(WIRE)
    assert [r[:3] for r in ours] == [b"250"] * len(WIRE)
    assert [r[:3] for r in theirs] == [r[:3] for r in ours]
    assert stored == expected
    assert stored[0] == (
        b"Subject: dots\r\n\r\n.leading dot\r\n.\r\nmid.dle\r\n.\r\n"
        b"caf\xc3\xa9 \xff\r\nbare\nlf and \rcr\r\n\r\n"
    )
    assert all(isinstance(raw, bytes) for raw in stored)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"Subject: big\r\n\r\n" + (b"y" * 900 + b"\r\n") * 300 + b".\r\n", b"552"),
        (b"Subject: long line\r\n\r\n" + b"z" * 1200 + b"\r\n.\r\n", b"500"),
        (b"Subject: very long\r\n\r\n" + b"z" * 100_000 + b"\r\n.\r\n", b"500"),
    ],
)
def test_refusals_are_aiosmtpds_and_the_session_goes_on(body: bytes, code: bytes) -> None:
    after = b"Subject: next\r\n\r\nfine\r\n.\r\n"
    ours, stored = _ours([body, after])
    theirs, expected = _stock([body, after])
    assert [r[:3] for r in ours] == [code, b"250"]
    assert [r.split(b" ", 1)[1] for r in ours] == [r.split(b" ", 1)[1] for r in theirs]
    assert stored == expected == [b"Subject: next\r\n\r\nfine\r\n"]


def test_lmtp_answers_per_recipient_with_the_same_bytes() -> None:
    ours, stored = _ours(WIRE[:1], protocol="lmtp")
    assert ours[0].startswith(b"250 2.0.0 OK queued as 1")
    assert stored == _stock(WIRE[:1])[1]


def test_a_large_message_costs_about_its_size() -> None:
    """aiosmtpd's list of lines needed about three times the message on top of it."""
    lines = 200_000  # of 78 bytes: 15.6 MB
    body = b"Subject: big\r\n\r\n" + (b"A" * 76 + b"\r\n") * lines + b".\r\n"
    store = RecordingStore()
    listener = SmtpListener(
        _handler(store), host="127.0.0.1", port=0, protocol="smtp",
        max_message_size=2 * len(body),
    )  # fmt: skip

    async def scenario() -> int:
        await listener.start()
        tracemalloc.start()
        try:
            await asyncio.to_thread(_session, listener.port, [body])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await listener.stop(grace=1)

    peak = asyncio.run(scenario())
    assert len(store.raws[0]) == len(body) - 3
    # The buffer (with its growth slack) and the bytes handed over, not 3-4 times that.
    assert peak < 2.5 * len(body), f"peak {peak / 1e6:.1f} MB for {len(body) / 1e6:.1f} MB"
