"""A tiny HTTP/1.1 server for ``/healthz`` and ``/metrics`` in the daemon's event loop.

Two read-only GET endpoints do not justify a web framework: one request per
connection, bounded header size, a timeout, ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEADER_BYTES = 16 * 1024
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


Route = Callable[[], Awaitable[Response]]


def _plain(status: int, text: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", text.encode() + b"\n")


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Route],
        log: logging.Logger | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.routes = dict(routes)
        self.log = log or logging.getLogger("mailbot.ops.http")
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEADER_BYTES
        )
        sockets = self._server.sockets or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str] | Response:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return _plain(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers too large")
        except asyncio.IncompleteReadError:
            return _plain(HTTPStatus.BAD_REQUEST, "incomplete request")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _plain(HTTPStatus.BAD_REQUEST, "bad request line")
        method, target = parts[0], parts[1]
        return method, target.split("?", 1)[0]

    async def _respond(self, request: tuple[str, str] | Response) -> tuple[Response, bool]:
        if isinstance(request, Response):
            return request, False
        method, path = request
        route = self.routes.get(path)
        if route is None:
            endpoints = ", ".join(self.routes)
            return _plain(HTTPStatus.NOT_FOUND, f"no such endpoint; try {endpoints}"), False
        if method not in ("GET", "HEAD"):
            return _plain(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD"), False
        try:
            return await route(), method == "HEAD"
        except Exception as exc:
            self.log.exception("http %s failed", path)
            return _plain(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}"), False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                request = await self._read_request(reader)
            response, head_only = await self._respond(request)
            reason = HTTPStatus(response.status).phrase
            header = (
                f"HTTP/1.1 {response.status} {reason}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(header.encode("latin-1") + (b"" if head_only else response.body))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
