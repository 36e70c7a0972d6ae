"""The application object: built once from settings, owns every service, no globals.

``Application.run`` is the daemon: listener, worker and sender in one asyncio loop,
database work on threads, the worker's batches in worker processes
(mailbot/worker_process.py).  ``Application.drain`` runs worker and sender until
nothing is left, for tests and one-shot commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from mailbot.config import Settings
from mailbot.intake.group_commit import GroupCommitter, RawMessage
from mailbot.intake.pacing import IntakePacer
from mailbot.intake.smtp import IntakeHandler, SmtpListener
from mailbot.logs import reopen_log_files
from mailbot.ops.service import Ops
from mailbot.outbound.sender import KEEP_IDLE_CONNECTION, MARK_WITHIN, RetryPolicy, Sender
from mailbot.outbound.sent_journal import SentJournal
from mailbot.outbound.transports import MaildirTransport, SmtpTransport, Transport
from mailbot.outbound.webhook import WebhookTransport
from mailbot.pipeline.limits import scan as scan_limits
from mailbot.store.db import Store, utcnow
from mailbot.store.leader import (
    FOLLOWER_RETRY,
    Election,
    Leadership,
    StandbyAware,
    imap_lock_name,
)
from mailbot.store.repo import enqueue_many, inbound_values, release_claims
from mailbot.worker import Outcome
from mailbot.worker_process import WorkerProcess, WorkerUnavailable
from mailbot.worker_setup import WorkerParts

if TYPE_CHECKING:
    from mailbot.intake.imap import ImapIntake

SHUTDOWN_GRACE = 30.0


def build_transports(settings: Settings) -> dict[str, Callable[[], Transport]]:
    out = settings.outbound
    webhook = partial(WebhookTransport, settings.paging.webhook_timeout)  # pages (PagerDuty)
    if out.transport == "maildir":
        path = settings.resolve_path(out.maildir)
        return {"mail": partial(MaildirTransport, path), "webhook": webhook}
    return {
        "webhook": webhook,
        "mail": partial(
            SmtpTransport,
            out.host,
            out.port,
            tls=out.tls,
            verify_certificates=out.verify_certificates,
            username=out.username,
            password=out.password(),
            timeout=out.timeout,
        ),
    }


class Application:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        store: Store | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.log = log or logging.getLogger("mailbot")
        self.store = store or Store.open(
            settings.database_url(), busy_timeout=settings.database.busy_timeout
        )
        parts = WorkerParts.build(settings, self.store, clock)  # as in the worker process
        self.renderer, self.tokens, self.sla = parts.renderer, parts.tokens, parts.sla
        self.ack, self.policy, self.worker = parts.ack, parts.policy, parts.worker
        self.reminders = self.sla.reminder_sweep(self.store, clock, settings.mailbot.ticket_prefix)
        # Several daemons on one PostgreSQL: one of them sweeps (mailbot/store/leader.py).
        self.reminder_election = Election(self.store.engine, "reminders")
        # Health, metrics, HTTP and sd_notify; fed by observers, not imported everywhere.
        self.ops = Ops(settings, self.store, clock)
        out = settings.outbound
        self.sender = Sender(
            store=self.store,
            transports=build_transports(settings),
            clock=clock,
            retry=RetryPolicy(out.max_attempts, out.retry_initial, out.retry_max),
            observer=self.ops.observe_delivery,
            ticket_prefix=settings.mailbot.ticket_prefix,
            lease_seconds=out.lease_seconds,
            journal=(
                SentJournal.beside(self.store.engine.url.database)
                if self.store.dialect == "sqlite"
                else None
            ),
        )
        self.listener: SmtpListener | None = None
        self.imap: ImapIntake | None = None
        self._inbound_ready = asyncio.Event()
        self._outbox_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._remote: WorkerProcess | None = None  # the worker process, once running
        self._committer = GroupCommitter(self.store_raw_many)
        smtp = settings.intake.smtp
        self._pacer = IntakePacer(smtp.pace_backlog, smtp.pace_max_delay)

    # ------------------------------------------------------------ storing raw mail

    def store_raw_sync(
        self, source: str, mail_from: str, rcpt_to: list[str], raw: bytes, send_ack: bool = True
    ) -> int:
        [inbound_id] = self.store_raw_many([RawMessage(source, mail_from, rcpt_to, raw, send_ack)])
        return inbound_id

    def store_raw_many(self, messages: list[RawMessage]) -> list[int]:
        """Several received messages in one transaction (mailbot/intake/group_commit.py)."""
        now = self.clock()
        rows = [
            inbound_values(
                source=m.source,
                raw=m.raw,
                now=now,
                mail_from=m.mail_from,
                rcpt_to=m.rcpt_to,
                send_ack=m.send_ack,
            )
            for m in messages
        ]
        # Durable before the 250.  On SQLite the commit does not wait for the disk while
        # it holds the write lock: the log is synced after (``Store.sync``), so the
        # worker and the sender write meanwhile instead of waiting behind the sync.
        sync_after = self.store.syncs_apart
        with self.store.transaction(
            durable=not sync_after, urgent=True, single_statement=True
        ) as session:
            ids = enqueue_many(session, rows)
        if sync_after:
            self.store.sync()
        return ids

    async def store_raw(self, source: str, mail_from: str, rcpt_to: list[str], raw: bytes) -> int:
        """Store one received message; returns when its 250 may go (mailbot/intake/pacing.py:
        later while the worker is far behind)."""
        inbound_id = await self._committer.store(RawMessage(source, mail_from, rcpt_to, raw))
        self._inbound_ready.set()
        self._pacer.stored(1)
        waited = await self._pacer.wait_turn()
        if waited:
            self.ops.observe_pacing(waited)
        return inbound_id

    # ------------------------------------------------------------ one-shot processing

    def drain(self, max_rounds: int = 10_000) -> None:
        """Process the inbound queue and send due outbox rows until both are idle."""
        for _ in range(max_rounds):
            processed = self.worker.process_batch()
            self.ops.observe_outcomes(processed)
            sent = self.sender.send_due()
            if not processed and not sent:
                return

    # ------------------------------------------------------------ the daemon

    async def start_listener(self) -> None:
        cfg = self.settings.intake.smtp
        if not cfg.enabled:
            return
        handler = IntakeHandler(
            accepted=self.settings.mailbot.own_addresses,
            protocol=cfg.protocol,
            store_raw=self.store_raw,
            check=partial(scan_limits, limits=self.policy.security.limits),  # 552 when over
        )
        self.listener = SmtpListener(
            handler,
            host=cfg.host,
            port=cfg.port,
            protocol=cfg.protocol,
            max_message_size=cfg.max_message_size,
            hostname=cfg.hostname,
        )
        await self.listener.start()
        self.log.info(
            "listening for %s on %s:%d", cfg.protocol.upper(), cfg.host, self.listener.port
        )

    def build_imap(self) -> None:
        """Resolve ``[intake.imap]`` (password included) before anything starts."""
        if self.settings.intake.imap.enabled:
            from mailbot.intake.imap import ImapIntake  # imapclient only where it is used

            self.imap = ImapIntake.from_settings(self.settings, self.store, self.clock)

    def start_imap(self) -> None:
        """Run the IMAP loop on its own thread; it wakes the worker after each commit."""
        if self.imap is None:
            return
        loop = asyncio.get_running_loop()
        self.imap.wake = lambda: loop.call_soon_threadsafe(self._inbound_ready.set)
        self.imap.start()

    def imap_leadership(self) -> Leadership | None:
        """The mailbox is read by one daemon at a time: the holder of its advisory lock."""
        imap = self.imap
        if imap is None:
            return None
        cfg = imap.cfg
        name = imap_lock_name(cfg.host, cfg.port, cfg.username, cfg.folder)
        return Leadership(
            Election(self.store.engine, name),
            start=self.start_imap,
            stop=lambda: imap.stop(SHUTDOWN_GRACE),
            what=f"IMAP {cfg.where} folder {cfg.folder!r}",
        )

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)
        event.clear()

    def _release_claims(self, ids: list[int]) -> None:
        with self.store.transaction() as session:
            release_claims(session, ids)
        self.log.warning("released %d message(s) the worker process had claimed", len(ids))

    def _process_batch(self) -> list[Outcome]:
        """One batch, in the worker process when there is one that works, else here."""
        if self._remote is not None:
            try:
                return self._remote.process_batch()
            except WorkerUnavailable:
                pass
        return self.worker.process_batch()

    async def _worker_loop(self) -> None:
        interval = self.settings.worker.poll_interval
        while not self._stopping.is_set():
            try:
                outcomes = await asyncio.to_thread(self._process_batch)
                self.ops.worker.beat()
            except Exception as exc:  # database down: keep the loop alive, try again
                self.log.error("worker: %s: %s", exc.__class__.__name__, exc)
                self.ops.worker.beat(error=f"{exc.__class__.__name__}: {exc}")
                outcomes = []
                await asyncio.sleep(interval)
            self.ops.observe_outcomes(outcomes)
            self._pacer.processed(len(outcomes))
            # A batch that was not full emptied the queue: the next claim waits for news
            # (a stored message, IMAP) instead of finding nothing (a transaction and, with
            # a worker process, a round trip to it).
            if len(outcomes) < self.worker.batch_size:
                await self._wait(self._inbound_ready, interval)

    async def _sender_loop(self) -> None:
        interval = self.settings.outbound.poll_interval
        while not self._stopping.is_set():
            try:
                attempted = await asyncio.to_thread(self.sender.send_due)
                self.ops.sender.beat()
            except Exception as exc:
                self.log.error("sender: %s: %s", exc.__class__.__name__, exc)
                self.ops.sender.beat(error=f"{exc.__class__.__name__}: {exc}")
                attempted = 0
                await asyncio.sleep(interval)
            if attempted < self.sender.batch_size:  # as the worker: no claim for nothing
                soon = interval
                if self.sender.unmarked:  # marked sent with the next claim: soon
                    soon = min(soon, MARK_WITHIN)
                elif self.sender.holds_connection:  # closed by a call once idle a while
                    soon = min(soon, KEEP_IDLE_CONNECTION)
                await self._wait(self._outbox_ready, soon)

    async def _reminder_loop(self) -> None:
        """The SLA scheduler: reminders for overdue first responses and status updates."""
        interval = self.sla.reminder_interval
        election = self.reminder_election
        try:
            while not self._stopping.is_set():
                try:
                    leading = await asyncio.to_thread(election.poll)
                    if leading and await asyncio.to_thread(self.reminders.sweep):
                        self._outbox_ready.set()
                except Exception as exc:
                    self.log.error("reminders: %s: %s", exc.__class__.__name__, exc)
                # A follower asks again soon, to take over within seconds of a leader's death.
                wait = interval if election.leading else min(interval, FOLLOWER_RETRY)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=wait)
        finally:
            await asyncio.to_thread(election.release)

    def request_stop(self) -> None:
        self._stopping.set()
        self._pacer.stop()  # no 250 waits for the worker any more
        self._inbound_ready.set()
        self._outbox_ready.set()

    def reload(self) -> None:
        """SIGHUP: re-read templates and reopen log files (after logrotate)."""
        self.ops.reloading()
        reopen_log_files()
        self.renderer.reload()
        if self._remote is not None:
            self._remote.reload()
        self.log.info("templates reloaded")
        self.ops.reloaded("running; templates reloaded")

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Run until ``request_stop`` (or SIGTERM/SIGINT); then finish in-flight work."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.build_imap()
        await self.start_listener()
        imap_leader = self.imap_leadership()  # starts IMAP here once this daemon leads

        # The worker wakes the sender after each commit that queued outgoing mail.
        def wake_sender() -> None:  # from the worker's thread or the worker process's reader
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to wake
                loop.call_soon_threadsafe(self._outbox_ready.set)

        self.worker.on_commit = lambda _queued: wake_sender()
        if self.settings.worker.processes:
            self._remote = WorkerProcess(
                self.settings,
                "worker process",
                self.log,
                on_progress=wake_sender,
                on_lost=self._release_claims,
            )
            self._remote.start()  # from the main thread, now: it imports while we start
        try:
            tasks = [
                asyncio.create_task(self._worker_loop(), name="worker"),
                asyncio.create_task(self._sender_loop(), name="sender"),
            ]
            if imap_leader is not None:
                leading = imap_leader.run(self._stopping)
                tasks.append(asyncio.create_task(leading, name="imap-leader"))
            if self.sla.reminders_enabled:
                tasks.append(asyncio.create_task(self._reminder_loop(), name="reminders"))
            listener = self.listener
            await self.ops.start(
                (lambda: listener.running) if listener is not None else None,
                "running" if listener is None else f"running; listening on port {listener.port}",
                imap=StandbyAware(self.imap, imap_leader) if imap_leader is not None else None,
            )
            if ready is not None:
                ready()
            self.log.info("mailbot running")
            await self._stopping.wait()
            self.ops.stopping()
            self.log.info("stopping: no new connections; finishing in-flight messages")
            if self.listener is not None:
                await self.listener.stop(SHUTDOWN_GRACE)
            # The IMAP leadership task stops the intake (if it runs here) and frees its lock.
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._remote is not None:
                await asyncio.to_thread(self._remote.stop, SHUTDOWN_GRACE)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.drain), timeout=SHUTDOWN_GRACE)
                # Not after a timeout: the drain's thread may still be sending; the
                # journal it leaves is read at the next start.
                await asyncio.to_thread(self.sender.stop)
            except TimeoutError:
                self.log.warning("shutdown: work left in the queue for the next start")
            await self.ops.stop()
            self.store.dispose()
            self.log.info("stopped")
        finally:  # also when start-up fails: the process would wait for it at exit
            if self._remote is not None:
                await asyncio.to_thread(self._remote.stop, SHUTDOWN_GRACE)
