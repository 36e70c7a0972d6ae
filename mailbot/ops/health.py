"""Health of each part of the daemon.

Two questions, answered separately:

- *liveness*: are our own parts alive (listener serving, worker and sender loops coming
  round)?  This feeds systemd's watchdog: restarting mailbot can fix these.
- *readiness* (``/healthz``): liveness plus what we depend on (the outbound relay
  reachable, the IMAP connection up).  Restarting cannot fix a dead relay, so these
  turn ``/healthz`` red but never stop the watchdog pings.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class Heartbeat:
    """A loop's proof of life: when it last came round and whether that round failed."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self.last: float | None = None
        self.error: str | None = None

    def beat(self, error: str | None = None) -> None:
        self.last = self.clock()
        self.error = error

    def alive(self, stuck_after: float) -> CheckResult:
        """Is the loop coming round at all?  (A round that failed still counts.)"""
        if self.last is None:
            return CheckResult(self.name, False, "not started")
        age = self.clock() - self.last
        if age > stuck_after:
            return CheckResult(self.name, False, f"stuck: no round for {age:.0f}s")
        return CheckResult(self.name, True, f"last round {age:.1f}s ago")

    def check(self, stuck_after: float) -> CheckResult:
        """Alive and its last round succeeded."""
        result = self.alive(stuck_after)
        if result.ok and self.error is not None:
            return CheckResult(self.name, False, f"failing: {self.error}")
        return result


class ConnectionStatus(Protocol):
    """What a long-lived connection exposes (``ImapIntake`` does): read, never written here."""

    connected: bool
    last_success: float | None  # unix time of the last good exchange


def connection_check(
    name: str, status: ConnectionStatus | None, wall_clock: Callable[[], float] = time.time
) -> CheckResult:
    if status is None:
        return CheckResult(name, False, "not started")
    if getattr(status, "standby", False):  # several daemons: another one leads (store/leader.py)
        return CheckResult(name, True, "standby: another daemon holds this mailbox")
    since = (
        f"last success {wall_clock() - status.last_success:.0f}s ago"
        if status.last_success is not None
        else "no successful exchange yet"
    )
    if status.connected:
        return CheckResult(name, True, f"connected; {since}")
    return CheckResult(name, False, f"not connected; {since}")


async def probe_smtp(
    host: str, port: int, *, implicit_tls: bool, verify: bool, timeout: float
) -> str | None:
    """Connect to the relay and read its greeting; None if it says 220, else the reason.

    Only the greeting: the probe must stay cheap (no EHLO/AUTH on every health check);
    ``mailbot check-config`` does the full conversation.
    """
    context: ssl.SSLContext | None = None
    if implicit_tls:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            line = await reader.readline()
            while line[3:4] == b"-":  # multi-line greeting
                line = await reader.readline()
            writer.write(b"QUIT\r\n")
            await writer.drain()
    except TimeoutError:
        return f"relay {host}:{port}: no greeting within {timeout:.0f}s"
    except ssl.SSLError as exc:
        return f"relay {host}:{port}: TLS: {exc}"
    except OSError as exc:
        return f"relay {host}:{port}: {exc.strerror or exc}"
    finally:
        if writer is not None:
            writer.close()
    if not line.startswith(b"220"):
        text = line.decode("ascii", "replace").strip() or "connection closed"
        return f"relay {host}:{port} answered: {text}"
    return None


def maildir_problem(path: Path) -> str | None:
    """None if the outbox maildir (or the folder it will be created in) is writable."""
    target = path
    while not target.exists():
        if target.parent == target:
            break
        target = target.parent
    if not os.access(target, os.W_OK | os.X_OK):
        return f"maildir {path}: {target} is not writable"
    return None


Check = Callable[[], Awaitable[CheckResult]]
