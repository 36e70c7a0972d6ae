"""IMAP intake: IDLE (or poll) a mailbox, store each message's raw bytes, then move it.

A thin adapter like the SMTP listener: it never parses for meaning and never touches
tickets.  imapclient is blocking, so the whole loop runs in one thread off the event
loop; after each commit it calls ``wake`` (the app sets the worker's event through
``loop.call_soon_threadsafe``).

Life of a connection: connect (timeouts, TLS, keepalive) → create the processed and
quarantine folders if missing → SELECT (note UIDVALIDITY) → catch-up sweep of every UID
in the folder → IDLE until the server reports new mail or ``idle_renew`` seconds pass
(or sleep ``poll_interval`` without IDLE) → sweep again, forever.  Any error drops the
connection and reconnects with exponential backoff; the first sweep after reconnecting
catches up on whatever arrived meanwhile, so a dropped connection loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime

from imapclient import IMAPClient

from mailbot.config import Settings
from mailbot.errors import MailbotError
from mailbot.intake.imap_conn import (
    ImapConfig,
    ImapError,
    close,
    connect,
    describe_error,
    imap_config,
)
from mailbot.intake.imap_sweep import Mailbox, Stored, StoreFn, Sweep, SweepResult, ToStore
from mailbot.store.db import Store
from mailbot.store.repo import enqueue, inbound_id_by_origin, inbound_id_by_sha256

__all__ = ["ImapError", "ImapIntake", "check_imap", "imap_store_fn"]

SOURCE = "imap"
IDLE_TICK = 1.0  # seconds between checks of the stop flag while in IDLE
RECONNECT_INITIAL = 1.0
# Test-only fault injection: with this set to "1" the daemon SIGKILLs itself right after
# the first message is committed and before it is moved (the crash-safety test).
CRASH_AFTER_STORE_ENV = "MAILBOT_TEST_CRASH_AFTER_STORE"


class ConnectionLost(MailbotError):
    """The server ended the session (BYE) or the connection went quiet and dead."""


def imap_store_fn(store: Store, clock: Callable[[], datetime]) -> StoreFn:
    """Store fetched messages in one transaction, recognising those stored already.

    Already stored means: the same origin (mailbox+UIDVALIDITY+UID: a crash came between
    commit and move), or the same bytes (UIDVALIDITY changed since).  The unique origin
    column makes the insert itself idempotent too, for two daemons on one mailbox.
    """

    def store_messages(items: list[ToStore]) -> list[Stored]:
        results: list[Stored] = []
        with store.transaction() as session:
            for item in items:
                existing = inbound_id_by_origin(session, item.origin)
                if existing is not None:
                    results.append(Stored(existing, False, "same mailbox, UIDVALIDITY and UID"))
                    continue
                existing = inbound_id_by_sha256(session, hashlib.sha256(item.raw).hexdigest())
                if existing is not None:
                    results.append(Stored(existing, False, "same bytes"))
                    continue
                inbound_id = enqueue(
                    session,
                    source=SOURCE,
                    raw=item.raw,
                    now=clock(),
                    mail_from=item.mail_from,
                    origin=item.origin,
                )
                results.append(Stored(inbound_id, True))
        return results

    return store_messages


def _is_bye(response: tuple) -> bool:
    return bool(response) and response[0] == b"BYE"


def _is_new_mail(response: tuple) -> bool:
    return len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def _take_exists(client: IMAPClient) -> bool:
    """Pop the EXISTS announcements that arrived with earlier commands' responses.

    imaplib files untagged responses that come with a command (SEARCH, FETCH, the IDLE
    continuation) in ``untagged_responses``, where ``idle_check`` never looks: without
    this, a message appended between the sweep's SEARCH and IDLE would wait for the next
    renewal.  imapclient reads this private dict itself (``capabilities``).
    """
    responses = client._imap.untagged_responses
    return responses.pop("EXISTS", None) is not None


class ImapIntake:
    """The IMAP intake service.  ``connected`` and ``last_success`` are read by health."""

    def __init__(
        self,
        cfg: ImapConfig,
        *,
        store: StoreFn,
        wake: Callable[[], None] = lambda: None,
        log: logging.Logger | None = None,
        crash_after_store: bool | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.wake = wake
        self.log = log or logging.getLogger("mailbot.intake.imap")
        if crash_after_store is None:
            crash_after_store = os.environ.get(CRASH_AFTER_STORE_ENV) == "1"
        self._crash_after_store = crash_after_store
        self.connected = False
        self.last_success: float | None = None  # unix time of the last good exchange
        self.uidvalidity: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept = False  # a sweep succeeded on the current connection
        self._suspects: dict[int, int] = {}  # UIDs whose fetch broke (see Sweep._group)
        if cfg.tls == "none" and cfg.host not in ("127.0.0.1", "::1", "localhost"):
            self.log.warning("imap: tls = none: the password crosses the network in clear")

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, clock: Callable[[], datetime], **kwargs: object
    ) -> ImapIntake:
        """Resolve the config (raises ConfigError, e.g. for a missing password)."""
        return cls(imap_config(settings), store=imap_store_fn(store, clock), **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------ thread control

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="imap-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to finish (it checks every IDLE_TICK) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.log.warning("imap: intake thread still busy after %.0fs", timeout)
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        """Connect, sweep, wait, sweep … until stopped; reconnect with backoff on errors."""
        delay = RECONNECT_INITIAL
        while not self._stop.is_set():
            client: IMAPClient | None = None
            self._swept = False
            try:
                client = connect(self.cfg)
                self._session(client)
            except Exception as exc:
                self.connected = False
                if self._stop.is_set():
                    break
                if self._swept:  # the link worked for a while: start the backoff afresh
                    delay = RECONNECT_INITIAL
                self.log.warning(
                    "imap: %s: %s; reconnecting in %.0fs",
                    self.cfg.where,
                    describe_error(exc, self.cfg),
                    delay,
                )
                self.log.debug("imap error details", exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, self.cfg.reconnect_max)
            finally:
                self.connected = False
                close(client)
        self.log.info("imap intake stopped")

    def run_once(self) -> SweepResult:
        """Connect, sweep the folder once, disconnect (tests and one-shot use)."""
        client = connect(self.cfg)
        try:
            mailbox, uidvalidity = self._open(client)
            return self._sweep(mailbox, uidvalidity)
        finally:
            self.connected = False
            close(client)

    def _open(self, client: IMAPClient) -> tuple[Mailbox, int]:
        """Create missing folders and SELECT the watched one; notes a UIDVALIDITY change."""
        mailbox = Mailbox(client, self.cfg)
        for name in mailbox.ensure_folders():
            self.log.info("imap: created folder %s", name)
        uidvalidity, count = mailbox.select()
        if self.uidvalidity is not None and uidvalidity != self.uidvalidity:
            self.log.warning(
                "imap: UIDVALIDITY of %s changed from %d to %d; resynchronising "
                "(messages already stored are recognised by their bytes and only moved)",
                self.cfg.folder,
                self.uidvalidity,
                uidvalidity,
            )
        if uidvalidity != self.uidvalidity:
            self._suspects.clear()  # UIDs of another UIDVALIDITY mean nothing now
        self.uidvalidity = uidvalidity
        self.connected = True
        self.log.info(
            "imap: connected to %s, folder %s (%d message(s), UIDVALIDITY %d; server has %s)",
            self.cfg.where,
            self.cfg.folder,
            count,
            uidvalidity,
            mailbox.features(),
        )
        return mailbox, uidvalidity

    def _session(self, client: IMAPClient) -> None:
        """One connection's life; returns when stopping, raises when the connection fails."""
        mailbox, uidvalidity = self._open(client)
        use_idle = self.cfg.idle and mailbox.can_idle
        if not use_idle:
            self.log.info("imap: polling every %gs", self.cfg.poll_interval)
        self._swept = False
        while not self._stop.is_set():
            self._sweep(mailbox, uidvalidity)
            if use_idle and not self._swept:
                self.log.info(
                    "imap: waiting for new mail in %s with IDLE (renewed every %gs)",
                    self.cfg.folder,
                    self.cfg.idle_renew,
                )
            self._swept = True
            if use_idle:
                self._idle(client)
            else:
                self._stop.wait(self.cfg.poll_interval)

    def _sweep(self, mailbox: Mailbox, uidvalidity: int) -> SweepResult:
        _take_exists(mailbox.client)  # the SEARCH below sees whatever these announced
        result = Sweep(
            mailbox,
            uidvalidity,
            self.store,
            on_stored=self.wake,
            after_commit=self._after_commit,
            suspects=self._suspects,
            stopping=self._stop.is_set,
            log=self.log,
        ).run()
        self._success()
        if result.seen:
            self.log.info(
                "imap: %s: %d stored, %d already stored, %d quarantined",
                self.cfg.folder,
                result.stored,
                result.already,
                result.quarantined,
            )
        return result

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until new mail, ``idle_renew`` seconds or stop; raises if the link died."""
        client.idle()
        deadline = time.monotonic() + self.cfg.idle_renew
        if _take_exists(client):  # mail arrived between the sweep's SEARCH and IDLE
            deadline = 0.0
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(IDLE_TICK, remaining)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if any(_is_bye(r) for r in responses):
                raise ConnectionLost(f"server closed the session: {responses}")
            if any(_is_new_mail(r) for r in responses):
                break
            if responses:
                self._success()  # e.g. "* OK Still here": the link is alive
            elif time.monotonic() - started < wait / 2:
                # Readable but no complete response: end of stream (or TLS-only traffic).
                # Leaving IDLE tells which: a dead link raises in idle_done.
                break
        client.idle_done()
        self._success()

    def _success(self) -> None:
        self.connected = True
        self.last_success = time.time()

    def _after_commit(self) -> None:
        if self._crash_after_store:
            self.log.warning("%s=1: killing this process after a commit", CRASH_AFTER_STORE_ENV)
            os.kill(os.getpid(), signal.SIGKILL)


def check_imap(settings: Settings) -> str:
    """Log in and look at the folder: one line of folder and message count, or ImapError.

    Raises ConfigError when the settings are incomplete (no username, no password).
    """
    cfg = imap_config(settings)
    try:
        client = connect(cfg)
    except Exception as exc:
        raise ImapError(f"{cfg.where}: {describe_error(exc, cfg)}") from None
    try:
        mailbox = Mailbox(client, cfg)
        if not client.folder_exists(cfg.folder):
            raise ImapError(f"{cfg.where}: no such folder {cfg.folder!r}")
        status = client.folder_status(cfg.folder, [b"MESSAGES"])
        missing = [
            name
            for name in (cfg.processed_folder, cfg.quarantine_folder)
            if not client.folder_exists(name)
        ]
    except ImapError:
        raise
    except Exception as exc:
        raise ImapError(f"{cfg.where}: {describe_error(exc, cfg)}") from None
    finally:
        close(client)
    note = f"; will create {', '.join(missing)}" if missing else ""
    return (
        f"{cfg.where} folder {cfg.folder!r}: {int(status[b'MESSAGES'])} message(s); "
        f"server has {mailbox.features()}{note}"
    )
