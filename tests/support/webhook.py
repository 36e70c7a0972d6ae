"""A real HTTP server on loopback that records webhook requests and answers from a script."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what we answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Script:
    """Answers in order from ``statuses``, then ``then`` forever; ``hold`` blocks replies."""

    statuses: list[int] = field(default_factory=list)
    then: int = 202
    hold: threading.Event | None = None


class WebhookServer:
    def __init__(self, statuses: list[int] | None = None, then: int = 202) -> None:
        self.script = Script(list(statuses or []), then)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                hold = server.script.hold
                if hold is not None:
                    hold.wait(30)
                with server.lock:
                    status = server.script.statuses.pop(0) if server.script.statuses else None
                    status = status or server.script.then
                    server.requests.append(
                        Request(self.path, dict(self.headers.items()), body, status)
                    )
                payload = json.dumps({"status": "success" if status < 300 else "error"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v2/enqueue"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.script.hold is not None:
            self.script.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, then: int) -> None:
        """From now on (after any scripted answers) reply with this status."""
        with self.lock:
            self.script.then = then

    @property
    def delivered(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, delivered: bool = False, timeout: float = 20.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [r for r in self.requests if not delivered or 200 <= r.status < 300]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(
            f"expected {count} {'delivered ' if delivered else ''}requests, got {len(found)}"
        )
