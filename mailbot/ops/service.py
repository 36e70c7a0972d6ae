"""Operations glue owned by the Application: health, metrics, the HTTP server, sd_notify.

The Application hands the worker's outcomes and the sender's delivery results to
``observe_*``, beats the loop heartbeats, and calls ``start``/``stopping``/``stop``;
nothing else in mailbot knows metrics or systemd exist.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST

from mailbot.config import Settings
from mailbot.errors import MailbotError
from mailbot.ops.health import (
    CheckResult,
    ConnectionStatus,
    Heartbeat,
    connection_check,
    maildir_problem,
    probe_smtp,
)
from mailbot.ops.http import HttpServer, Response
from mailbot.ops.metrics import Metrics
from mailbot.ops.notify import Notifier
from mailbot.store.db import Store
from mailbot.store.models import OutboxMessage
from mailbot.worker import Outcome

PROBE_TIMEOUT = 5.0


class StartupError(MailbotError):
    """The service cannot start (e.g. the HTTP port is taken); one line for the operator."""


def imap_enabled(settings: Settings) -> bool:
    """Whether an ``[intake.imap]`` section exists and is enabled (the section is optional)."""
    section = getattr(settings.intake, "imap", None)
    return section is not None and bool(getattr(section, "enabled", True))


class Ops:
    def __init__(
        self,
        settings: Settings,
        store: Store | None,
        clock: Callable[[], datetime],
        notifier: Notifier | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.log = log or logging.getLogger("mailbot.ops")
        self.imap: ConnectionStatus | None = None  # the IMAP intake, once started
        self.metrics = Metrics(clock, store, lambda: self.imap)
        self.worker = Heartbeat("worker")
        self.sender = Heartbeat("sender")
        self.notifier = notifier or Notifier.from_environ()
        self.http: HttpServer | None = None
        self._listener_alive: Callable[[], bool] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ observers

    def observe_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        self.metrics.observe_outcomes(outcomes)

    def observe_delivery(self, row: OutboxMessage, result: str, error: str | None) -> None:
        self.metrics.observe_delivery(row.kind, result, row.created_at)

    def observe_pacing(self, seconds: float) -> None:
        self.metrics.intake_paced.observe(seconds)

    # ------------------------------------------------------------ health

    def liveness(self) -> list[CheckResult]:
        """Our own parts only: what a restart could fix (feeds the watchdog)."""
        stuck_after = self.settings.http.stuck_after
        results = []
        if self._listener_alive is not None:
            alive = self._listener_alive()
            results.append(CheckResult("listener", alive, "serving" if alive else "not serving"))
        results += [self.worker.alive(stuck_after), self.sender.alive(stuck_after)]
        return results

    async def readiness(self) -> list[CheckResult]:
        """Everything ``/healthz`` reports: liveness, loop errors, relay, IMAP."""
        stuck_after = self.settings.http.stuck_after
        results = [r for r in self.liveness() if r.name not in ("worker", "sender")]
        results += [self.worker.check(stuck_after), self.sender.check(stuck_after)]
        results.append(await self.outbound_check())
        if imap_enabled(self.settings):
            results.append(connection_check("imap", self.imap))
        return results

    async def outbound_check(self) -> CheckResult:
        out = self.settings.outbound
        if out.transport == "maildir":
            path = self.settings.resolve_path(out.maildir)
            problem = maildir_problem(path)
            detail = f"maildir {path} writable"
        else:
            problem = await probe_smtp(
                out.host,
                out.port,
                implicit_tls=out.tls == "implicit",
                verify=out.verify_certificates,
                timeout=min(out.timeout, PROBE_TIMEOUT),
            )
            detail = f"relay {out.host}:{out.port} answers"
        return CheckResult("outbound", problem is None, problem or detail)

    async def healthz(self) -> Response:
        results = await self.readiness()
        failing = [r.name for r in results if not r.ok]
        body = {
            "status": "failing" if failing else "ok",
            "failing": failing,
            "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
        }
        text = json.dumps(body, indent=2).encode() + b"\n"
        return Response(503 if failing else 200, "application/json", text)

    async def metrics_page(self) -> Response:
        body = await asyncio.to_thread(self.metrics.exposition)
        return Response(200, CONTENT_TYPE_LATEST, body)

    # ------------------------------------------------------------ life cycle

    async def start(
        self,
        listener_alive: Callable[[], bool] | None,
        status: str,
        imap: ConnectionStatus | None = None,
    ) -> None:
        """Bind the HTTP server, then tell systemd we are ready and start the watchdog."""
        self._listener_alive = listener_alive
        self.imap = imap
        cfg = self.settings.http
        if cfg.enabled:
            server = HttpServer(
                cfg.host, cfg.port, {"/healthz": self.healthz, "/metrics": self.metrics_page}
            )
            try:
                await server.start()
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise StartupError(
                    f"cannot listen for HTTP on {cfg.host}:{cfg.port}: {reason}"
                ) from None
            self.http = server
            self.log.info("health and metrics on http://%s:%d/", cfg.host, server.port)
        self.notifier.ready(status)
        interval = self.notifier.watchdog_interval
        if interval:
            self._watchdog = asyncio.create_task(self._watchdog_loop(interval), name="watchdog")

    async def _watchdog_loop(self, interval: float) -> None:
        withheld = False
        while True:
            failing = [r for r in self.liveness() if not r.ok]
            if failing:
                if not withheld:
                    reasons = "; ".join(f"{r.name}: {r.detail}" for r in failing)
                    self.log.error("not feeding the systemd watchdog: %s", reasons)
                withheld = True
            else:
                if withheld:
                    self.log.info("all parts alive again; feeding the systemd watchdog")
                withheld = False
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    def reloading(self) -> None:
        self.notifier.reloading()

    def reloaded(self, status: str) -> None:
        self.notifier.ready(status)

    def stopping(self) -> None:
        self.notifier.stopping()

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        if self.http is not None:
            await self.http.stop()
            self.http = None
