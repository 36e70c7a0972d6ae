"""The SMTP/LMTP listener: authenticate the envelope, store raw bytes, answer.

It never parses for meaning and never touches tickets.  250 is sent only after the
raw message is committed; any failure to store answers 451 so the sender retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailbot.intake.smtp_data import OneBufferData

SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"

# (source, mail_from, rcpt_tos, raw) -> inbound id; raises on storage failure
StoreRaw = Callable[[str, str, list[str], bytes], Awaitable[int]]
# raw -> the structural limit it exceeds (pipeline/limits.py), or None
CheckRaw = Callable[[bytes], str | None]
TOO_COMPLEX = "552 5.3.4 Message too complex: {}"
_CHECK_IN_THREAD = 1 << 20  # bytes: scan bigger messages off the event loop


class IntakeHandler:
    """aiosmtpd handler: RCPT policy, DATA → durable store."""

    def __init__(
        self,
        *,
        accepted: frozenset[str],
        protocol: str,
        store_raw: StoreRaw,
        log: logging.Logger | None = None,
        check: CheckRaw | None = None,
    ) -> None:
        self.check = check
        self.accepted = accepted
        self.protocol = protocol
        self.store_raw = store_raw
        self.log = log or logging.getLogger("mailbot.intake.smtp")
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        # Set when the listener stops: a DATA that ends after this gets 421 and is not
        # stored, so closing the sessions can never cut off a 250 for a stored message.
        self.closing = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list
    ) -> str:
        if address.strip().lower() not in self.accepted:
            return f"550 5.1.1 <{address}>: recipient not accepted here (no relaying)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.closing:  # 421 closes the channel (RFC 5321 3.8), after the reply is sent
            asyncio.get_running_loop().call_soon(server.transport.close)
            return self._per_recipient(envelope, SHUTTING_DOWN)
        self.in_flight += 1
        self.idle.clear()
        try:
            raw = envelope.original_content or envelope.content or b""
            if isinstance(raw, str):
                raw = raw.encode("utf-8", "surrogateescape")
            over = await self._over_limit(raw)
            if over is not None:
                self.log.warning(
                    "%s from <%s>: refused: %s", self.protocol, envelope.mail_from, over
                )
                return self._per_recipient(envelope, TOO_COMPLEX.format(over))
            inbound_id = await self.store_raw(
                self.protocol, envelope.mail_from or "", list(envelope.rcpt_tos), raw
            )
        except Exception as exc:
            self.log.error(
                "%s from <%s>: could not store message (%s: %s); answered 451",
                self.protocol,
                envelope.mail_from,
                exc.__class__.__name__,
                exc,
            )
            return self._per_recipient(envelope, TEMPFAIL)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()
        return self._per_recipient(envelope, f"250 2.0.0 OK queued as {inbound_id}")

    async def _over_limit(self, raw: bytes) -> str | None:
        """The limit ``raw`` exceeds; a failing check accepts (the worker checks again)."""
        if self.check is None:
            return None
        try:
            if len(raw) > _CHECK_IN_THREAD:
                return await asyncio.to_thread(self.check, raw)
            return self.check(raw)
        except Exception as exc:
            self.log.error("limit check failed (%s: %s); accepting", exc.__class__.__name__, exc)
            return None

    def _per_recipient(self, envelope: Envelope, status: str) -> str:
        """LMTP answers once per accepted recipient (RFC 2033); SMTP once."""
        if self.protocol != "lmtp":
            return status
        return "\r\n".join(status for _ in envelope.rcpt_tos) or status

    async def handle_exception(self, error: Exception) -> str:
        self.log.error("smtp session error: %s: %s", error.__class__.__name__, error)
        return "421 4.3.0 Temporary local problem, closing connection"


class _Smtp(OneBufferData):
    """SMTP with DATA in one buffer (mailbot/intake/smtp_data.py)."""


class _Lmtp(OneBufferData, LMTP):
    """LMTP with DATA in one buffer."""


class SmtpListener:
    """Owns the listening socket and the live sessions, for a graceful stop."""

    def __init__(
        self,
        handler: IntakeHandler,
        *,
        host: str,
        port: int,
        protocol: str,
        max_message_size: int,
        hostname: str | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.protocol = protocol
        self.max_message_size = max_message_size
        self.hostname = hostname
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[SMTP] = set()

    def _factory(self) -> SMTP:
        cls = _Lmtp if self.protocol == "lmtp" else _Smtp
        kwargs: dict[str, Any] = {
            "data_size_limit": self.max_message_size,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "ident": "mailbot",
        }
        if self.hostname:
            kwargs["hostname"] = self.hostname
        session = cls(self.handler, **kwargs)
        self._sessions.add(session)
        original_lost = session.connection_lost

        def connection_lost(error: Exception | None) -> None:
            self._sessions.discard(session)
            original_lost(error)

        session.connection_lost = connection_lost  # type: ignore[method-assign]
        return session

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self.host, self.port)
        sockets = self._server.sockets or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let messages in DATA finish storing, then close sessions.

        A client cut off before its 250 did not get one, so it retries: nothing is lost.
        """
        if self._server is None:
            return
        self._server.close()
        self.handler.closing = True
        try:
            await asyncio.wait_for(self.handler.idle.wait(), timeout=grace)
        except TimeoutError:
            logging.getLogger("mailbot.intake.smtp").warning(
                "stopping with %d message(s) still being stored", self.handler.in_flight
            )
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None
