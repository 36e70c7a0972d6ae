"""Reading the daemon's database from the outside (SQLite or PostgreSQL), read-only.

Plain SQL on the table names, with our own engine: the benchmark must not take the
daemon's write lock (mailbot's Store begins every transaction with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class Snapshot:
    """Where the store was before a phase: later rows belong to the phase."""

    max_inbound_id: int
    tickets: int
    inbound_entries: int


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp()  # naive UTC in the store


class StoreReader:
    def __init__(self, url: str) -> None:
        args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, connect_args=args, pool_pre_ping=True)

    def _scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def snapshot(self) -> Snapshot:
        return Snapshot(
            int(self._scalar("SELECT coalesce(max(id), 0) FROM inbound")),
            int(self._scalar("SELECT count(*) FROM ticket")),
            int(self._scalar("SELECT count(*) FROM thread_entry WHERE direction = 'inbound'")),
        )

    def backlog(self) -> tuple[int, int]:
        """(inbound messages waiting for the worker, outbox rows waiting to be sent)."""
        inbound = self._scalar("SELECT count(*) FROM inbound WHERE status = 'pending'")
        outbox = self._scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return int(inbound), int(outbox)

    def inbound_since(self, snap: Snapshot) -> dict[str, Any]:
        """Status counts of the phase's inbound rows and when the last was processed."""
        rows = self._rows(
            "SELECT status, count(*), max(processed_at) FROM inbound WHERE id > :since "
            "GROUP BY status",
            since=snap.max_inbound_id,
        )
        statuses = Counter({str(status): int(n) for status, n, _ in rows})
        last = max((t for t in (_epoch(r[2]) for r in rows) if t is not None), default=None)
        return {"statuses": statuses, "last_processed": last}

    def pending_since(self, snap: Snapshot) -> tuple[int, int]:
        """(rows stored in the phase, of which still pending)."""
        row = self._rows(
            "SELECT count(*), coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) "
            "FROM inbound WHERE id > :since",
            since=snap.max_inbound_id,
        )[0]
        return int(row[0]), int(row[1])

    def last_received(self, snap: Snapshot) -> float | None:
        """When the phase's last inbound row was stored (daemon clock, epoch seconds)."""
        value = self._scalar(
            "SELECT max(received_at) FROM inbound WHERE id > :since", since=snap.max_inbound_id
        )
        return _epoch(value)

    def timeline(self, snap: Snapshot) -> dict[str, tuple[float, float | None]]:
        """Message-ID → (stored, processed) times of the phase's messages (epoch seconds)."""
        out: dict[str, tuple[float, float | None]] = {}
        for message_id, received, processed in self._rows(
            "SELECT e.message_id, i.received_at, i.processed_at FROM thread_entry e "
            "JOIN inbound i ON i.id = e.inbound_id "
            "WHERE e.direction = 'inbound' AND i.id > :since",
            since=snap.max_inbound_id,
        ):
            stored = _epoch(received)
            if stored is not None:
                out[str(message_id)] = (stored, _epoch(processed))
        return out

    def outbox_rows(self) -> int:
        return int(self._scalar("SELECT count(*) FROM outbox"))

    def entries_since(self, snap: Snapshot) -> dict[str, list[int]]:
        """Message-ID → ticket ids of inbound thread entries created in the phase."""
        found: dict[str, list[int]] = {}
        for message_id, ticket_id in self._rows(
            "SELECT message_id, ticket_id FROM thread_entry "
            "WHERE direction = 'inbound' AND inbound_id > :since",
            since=snap.max_inbound_id,
        ):
            found.setdefault(str(message_id), []).append(int(ticket_id))
        return found

    def dispose(self) -> None:
        self.engine.dispose()


@dataclass
class BacklogSampler:
    """Samples (time, inbound pending, outbox pending) on a thread while a phase runs."""

    reader: StoreReader
    interval: float = 0.25
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> BacklogSampler:
        self._thread = threading.Thread(target=self._run, daemon=True, name="backlog-sampler")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                inbound, outbox = self.reader.backlog()
                self.samples.append((time.time(), inbound, outbox))
            except Exception:  # a busy database: skip this sample
                self.errors += 1
            self._stop.wait(self.interval)
