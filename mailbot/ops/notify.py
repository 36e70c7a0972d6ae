"""systemd's sd_notify protocol, by hand: one datagram per state change.

``READY=1`` once the listener is bound, ``WATCHDOG=1`` pings while our own parts are
alive, ``RELOADING=1``/``READY=1`` around SIGHUP, ``STOPPING=1`` on shutdown.  Without
``NOTIFY_SOCKET`` (not started by systemd) every call does nothing.  The protocol is a
``KEY=VALUE`` text datagram on a unix socket (abstract if the path starts with ``@``):
sd_notify(3).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(
        self,
        address: str | None,
        watchdog_usec: int | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self.log = log or logging.getLogger("mailbot.ops.notify")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def _socket_address(self) -> str | bytes:
        assert self.address is not None
        if self.address.startswith("@"):
            return b"\0" + self.address[1:].encode()
        return self.address

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines; False (and a debug log) if systemd is not listening."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._socket_address())
                sock.sendall("\n".join(fields).encode())
        except OSError as exc:
            self.log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping: finishing in-flight messages")
