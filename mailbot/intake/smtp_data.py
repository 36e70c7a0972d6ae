"""DATA read into one buffer instead of aiosmtpd's list of lines.

aiosmtpd (1.4) keeps every line of DATA as a ``bytearray`` in a list and joins them at
the end: a line of 78 bytes costs about 150 in the list, so a 25 MB message briefly
needed some 75 MB before its bytes were even stored (issue 9).  ``OneBufferData`` reads
the same lines, applies the same rules (RFC 5321 4.5.2 dot-unstuffing, the size limit,
the line-length limit, a 500/552 answer only once DATA has ended) and appends them to
one ``bytearray``; the handler gets ``bytes`` (``envelope.content`` and
``original_content`` are the same object, ``decode_data`` being off).

It replaces ``SMTP.smtp_DATA`` and so depends on aiosmtpd 1.4's internals (``_reader``,
``_call_handler_hook``, ``_set_post_data_state``); tests/integration/test_smtp_data.py
checks it against the wire.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("mailbot.intake.smtp")

_END = b".\r\n"


class OneBufferData(SMTP):
    """``SMTP`` (or ``LMTP``) whose DATA is collected in one ``bytearray``."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self._read_data()
        if content is None:  # refused (too long a line, too much data) or disconnected
            return
        self.envelope.original_content = self.envelope.content = content
        if "DATA" in self._handle_hooks:
            status = await self._call_handler_hook("DATA")
        else:
            status = MISSING
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> bytes | None:
        """The message, unstuffed; None once refused (after the final dot) or cut off."""
        buffer = bytearray()
        limit = self.data_size_limit
        received = 0  # bytes on the wire, as aiosmtpd counts them for the size limit
        line_start = True  # the next bytes begin a line (a fragment's rest does not)
        line_length = 0
        refusal: str | None = None
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:  # a line longer than the reader's limit
                refusal = refusal or "500 Line too long (see RFC5321 4.5.3.1.6)"
                line = await self._reader.read(exc.consumed)
            if line_start and line == _END:
                break
            received += len(line)
            if refusal is None and limit and received > limit:
                refusal = "552 Error: Too much mail data"
            line_length += len(line)
            complete = line.endswith(b"\r\n")
            if refusal is None and complete and line_length > self.line_length_limit:
                refusal = "500 Line too long (see RFC5321 4.5.3.1.6)"
            if refusal is not None:
                buffer = bytearray()  # drop what came so far: nothing of it is kept
            elif line_start and line.startswith(b"."):
                buffer += memoryview(line)[1:]
            else:
                buffer += line
            line_start = complete
            if complete:
                line_length = 0
        else:  # the connection closed before the final dot
            return None
        if refusal is not None:
            await self.push(refusal)
            self._set_post_data_state()
            return None
        return bytes(buffer)
