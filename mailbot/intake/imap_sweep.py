"""One pass over the watched folder: every UID in it is stored, then moved away.

The order is what makes it safe: raw bytes are committed first, the message is moved
only after the commit.  A crash in between leaves a stored message in the folder; the
next pass recognises it (same mailbox+UIDVALIDITY+UID ``origin``, or the same bytes)
and only moves it.  Processing goes by UID, never by the \\Seen flag.

Memory stays flat: UIDs are taken ``batch_size`` at a time, RFC822.SIZE is fetched
first (oversized mail is quarantined without being downloaded) and bodies are fetched in
groups of at most ``FETCH_BYTES``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from urllib.parse import quote

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbot.batching import chunks, size_groups
from mailbot.intake.imap_conn import ImapConfig
from mailbot.store.db import is_transient

FETCH_BYTES = 16 * 1024 * 1024
MAX_FETCH_FAILURES = 2
DELETED = b"\\Deleted"


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    new: bool  # False: this message was already in the store (only move it)
    why: str = ""  # for an old one: "same UID" or "same bytes"


@dataclass(frozen=True)
class ToStore:
    origin: str  # mailbox + UIDVALIDITY + UID, see origin_url
    raw: bytes
    mail_from: str | None  # from Return-Path; None when there is none


# Stores a group in ONE transaction (one commit, one fsync per group, not per message)
# and returns what happened to each, in order; raises when the database cannot take it.
StoreFn = Callable[[list[ToStore]], list[Stored]]


class StoreUnavailable(Exception):
    """The database is down or locked: leave the mail on the server and retry later."""


# ---------------------------------------------------------------- pure helpers


def origin_url(cfg: ImapConfig, uidvalidity: int, uid: int) -> str:
    """RFC 5092 IMAP URL naming one message: mailbox, UIDVALIDITY and UID."""
    user = quote(cfg.username, safe="")
    folder = quote(cfg.folder, safe="/")
    return f"imap://{user}@{cfg.host}:{cfg.port}/{folder};UIDVALIDITY={uidvalidity}/;UID={uid}"


def return_path(raw: bytes) -> str | None:
    """The envelope sender recorded at final delivery (RFC 5321 4.4), or None.

    ``""`` is the null sender ``<>`` of a bounce; None means the message carries no
    Return-Path (e.g. it was APPENDed by a client), so nothing is known about it.
    """
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Return-Path")
    if value is None:
        return None
    value = str(value).strip()
    if value.startswith("<") and ">" in value:
        return value[1 : value.index(">")].strip()
    return value


# ---------------------------------------------------------------- the selected folder


class Mailbox:
    """The watched folder on one connection, and what the server can do with it."""

    def __init__(self, client: IMAPClient, cfg: ImapConfig) -> None:
        self.client = client
        self.cfg = cfg
        caps = set(client.capabilities())
        self.can_idle = b"IDLE" in caps
        self.can_move = b"MOVE" in caps
        self.can_uid_expunge = b"UIDPLUS" in caps

    def features(self) -> str:
        names = [n for n, ok in (("IDLE", self.can_idle), ("MOVE", self.can_move)) if ok]
        if self.can_uid_expunge:
            names.append("UIDPLUS")
        return ", ".join(names) or "none of IDLE/MOVE/UIDPLUS"

    def ensure_folders(self) -> list[str]:
        """Create the processed and quarantine folders when missing; returns those created."""
        created = []
        for name in (self.cfg.processed_folder, self.cfg.quarantine_folder):
            if not self.client.folder_exists(name):
                self.client.create_folder(name)
                created.append(name)
        return created

    def select(self) -> tuple[int, int]:
        """Select the watched folder read-write; returns (UIDVALIDITY, message count)."""
        info = self.client.select_folder(self.cfg.folder)
        return int(info[b"UIDVALIDITY"]), int(info.get(b"EXISTS", 0))

    def pending_uids(self) -> list[int]:
        """Every UID still in the folder, read or not.

        Messages flagged \\Deleted are left alone: they are on their way out already
        (copied by us on a server without UIDPLUS, or deleted by a person).
        """
        return sorted(self.client.search(["NOT", "DELETED"]))

    def sizes(self, uids: list[int]) -> dict[int, int]:
        data = self.client.fetch(uids, ["RFC822.SIZE"])
        return {uid: int(item[b"RFC822.SIZE"]) for uid, item in data.items()}

    def bodies(self, uids: list[int]) -> tuple[dict[int, bytes], dict[int, str]]:
        """Raw bytes by UID without setting \\Seen; plus the reason for each UID that failed.

        A failing group is retried one UID at a time, so one bad message cannot hold
        the rest of the group hostage.
        """
        try:
            return self._fetch(uids), {}
        except IMAPClientAbortError:
            raise  # the connection is gone: reconnect, do not quarantine
        except IMAPClientError as exc:
            if len(uids) == 1:
                return {}, {uids[0]: f"fetch failed: {exc}"}
        found: dict[int, bytes] = {}
        failed: dict[int, str] = {}
        for uid in uids:
            one, why = self.bodies([uid])
            found |= one
            failed |= why
        return found, failed

    def _fetch(self, uids: list[int]) -> dict[int, bytes]:
        data = self.client.fetch(uids, ["BODY.PEEK[]"])
        return {uid: item[b"BODY[]"] for uid, item in data.items() if b"BODY[]" in item}

    def move(self, uids: list[int], folder: str) -> None:
        """MOVE; else COPY, then \\Deleted and UID EXPUNGE of exactly these UIDs.

        COPY raises on failure, so nothing is flagged or expunged unless the copy exists.
        Never a bare EXPUNGE: that would also purge messages a person flagged \\Deleted.
        """
        if not uids:
            return
        if self.can_move:
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.add_flags(uids, [DELETED], silent=True)
        if self.can_uid_expunge:
            self.client.uid_expunge(uids)


# ---------------------------------------------------------------- one pass


@dataclass
class SweepResult:
    seen: int = 0
    stored: int = 0
    already: int = 0
    quarantined: int = 0
    vanished: int = 0
    notes: list[str] = field(default_factory=list)


class Sweep:
    """Store-then-move every pending UID of the selected folder."""

    def __init__(
        self,
        mailbox: Mailbox,
        uidvalidity: int,
        store: StoreFn,
        *,
        on_stored: Callable[[], None],
        after_commit: Callable[[], None] = lambda: None,
        suspects: dict[int, int] | None = None,
        stopping: Callable[[], bool] = lambda: False,
        log: logging.Logger,
    ) -> None:
        self.mailbox = mailbox
        self.cfg = mailbox.cfg
        self.uidvalidity = uidvalidity
        self.store = store
        self.on_stored = on_stored
        self.after_commit = after_commit
        # UID → failed single fetches; owned by the caller so it outlives a connection.
        self.suspects = suspects if suspects is not None else {}
        self.stopping = stopping  # checked between groups: each group is stored and moved
        self.log = log

    def run(self) -> SweepResult:
        result = SweepResult()
        uids = self.mailbox.pending_uids()
        result.seen = len(uids)
        for chunk in chunks(uids, self.cfg.batch_size):
            if self.stopping():
                break
            self._chunk(chunk, result)
        return result

    def _chunk(self, chunk: list[int], result: SweepResult) -> None:
        sizes = self.mailbox.sizes(chunk)
        result.vanished += sum(1 for uid in chunk if uid not in sizes)
        limit = self.cfg.max_message_size
        quarantine = {
            uid: f"{size} bytes is over max_message_size ({limit})"
            for uid, size in sizes.items()
            if size > limit
        }
        self._quarantine(quarantine, result)
        wanted = [uid for uid in chunk if uid in sizes and uid not in quarantine]
        for group in size_groups(wanted, sizes, FETCH_BYTES):
            if self.stopping():
                return
            self._group(group, result)

    def _group(self, group: list[int], result: SweepResult) -> None:
        """Fetch, store and move one group; UIDs that broke a fetch before go one by one.

        Some servers (Dovecot among them) answer a FETCH of an unreadable message with
        BYE and drop the connection, so one bad message would otherwise stall its whole
        group forever.  A UID in a group whose fetch failed becomes a suspect; suspects
        are fetched alone, and one that fails alone MAX_FETCH_FAILURES times goes to the
        quarantine folder without another fetch.
        """
        doomed = {
            uid: f"fetch failed {self.suspects[uid]} times (server error or dropped connection)"
            for uid in group
            if self.suspects.get(uid, 0) >= MAX_FETCH_FAILURES
        }
        clean = [uid for uid in group if uid not in self.suspects]
        alone = sorted(
            (uid for uid in group if uid in self.suspects and uid not in doomed),
            key=lambda uid: (self.suspects[uid], uid),
        )
        self._quarantine(doomed, result)
        for part in ([clean] if clean else []) + [[uid] for uid in alone]:
            self._fetch_store_move(part, result)

    def _fetch_store_move(self, group: list[int], result: SweepResult) -> None:
        try:
            bodies, failed = self.mailbox.bodies(group)
        except Exception:
            for uid in group:  # remember them across the reconnection that follows
                self.suspects[uid] = self.suspects.get(uid, 0) + (1 if len(group) == 1 else 0)
            raise
        for uid in group:
            if uid not in bodies:
                failed.setdefault(uid, "the server returned no message body")
        fetched = [uid for uid in group if uid in bodies]
        items = [
            ToStore(
                origin_url(self.cfg, self.uidvalidity, uid), bodies[uid], return_path(bodies[uid])
            )
            for uid in fetched
        ]
        unavailable: BaseException | None = None
        stored: dict[int, Stored] = {}
        try:
            stored = dict(zip(fetched, self.store(items), strict=True)) if items else {}
        except Exception as exc:
            if is_transient(exc):
                unavailable = exc
            else:  # one bad message must not sink the group: store them one by one
                stored, unavailable = self._store_each(fetched, items, failed)
        new = sum(1 for one in stored.values() if one.new)
        if new:
            result.stored += new
            self.after_commit()
            self.on_stored()
        for uid, one in stored.items():
            if not one.new:
                result.already += 1
                self.log.info(
                    "imap UID %d already stored as message %d (%s); moving it only",
                    uid,
                    one.inbound_id,
                    one.why,
                )
        done = [uid for uid in fetched if uid in stored]
        self.mailbox.move(done, self.cfg.processed_folder)
        for uid in done:
            self.suspects.pop(uid, None)
        self._quarantine(failed, result)
        if unavailable is not None:
            raise StoreUnavailable(f"database unavailable: {unavailable}") from unavailable

    def _store_each(
        self, uids: list[int], items: list[ToStore], failed: dict[int, str]
    ) -> tuple[dict[int, Stored], BaseException | None]:
        stored: dict[int, Stored] = {}
        for uid, item in zip(uids, items, strict=True):
            try:
                (stored[uid],) = self.store([item])
            except Exception as exc:
                if is_transient(exc):
                    return stored, exc
                failed[uid] = f"could not be stored: {exc.__class__.__name__}: {exc}"
        return stored, None

    def _quarantine(self, reasons: dict[int, str], result: SweepResult) -> None:
        if not reasons:
            return
        for uid, reason in sorted(reasons.items()):
            self.suspects.pop(uid, None)
            self.log.error(
                "imap UID %d in %s: %s; moving it to %s",
                uid,
                self.cfg.folder,
                reason,
                self.cfg.quarantine_folder,
            )
        self.mailbox.move(sorted(reasons), self.cfg.quarantine_folder)
        result.quarantined += len(reasons)
