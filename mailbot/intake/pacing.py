"""Flow control between the listener and the worker: hold the 250 while the worker is
far behind.

Under a burst the listener stores mail faster than the worker decides it.  Without
pacing the difference piles up in the queue and every acknowledgement of the burst
comes later and later.  Like Postfix's ``in_flow_delay``, the listener then answers a
little later instead: a stored message's 250 waits (at most ``max_delay`` seconds)
while more than ``high_water`` messages wait for the worker.  Nothing is refused and
nothing is at risk (the message is on disk before the wait); senders simply send at the
pace the worker keeps, and the queue stays short.

The count is kept in memory, on the event loop: messages stored by the listener, minus
outcomes the worker reported.  Other sources (IMAP, ``mailbot deliver``, mail queued
before a restart) only lower it, and it never goes below zero, so any error makes the
listener more lenient, never stuck.
"""

from __future__ import annotations

import asyncio
import contextlib


class IntakePacer:
    def __init__(self, high_water: int, max_delay: float) -> None:
        self.high_water = high_water  # 0: no pacing
        self.max_delay = max_delay
        self.backlog = 0
        self._below = asyncio.Event()
        self._below.set()

    def stored(self, count: int) -> None:
        """The listener stored ``count`` messages."""
        self._set(self.backlog + count)

    def processed(self, count: int) -> None:
        """The worker finished ``count`` messages (any outcome)."""
        self._set(max(0, self.backlog - count))

    def _set(self, backlog: int) -> None:
        self.backlog = backlog
        if not self.high_water or backlog <= self.high_water:
            self._below.set()
        else:
            self._below.clear()

    def stop(self) -> None:
        """No more pacing (the daemon is stopping: nothing may wait for the worker)."""
        self.high_water = 0
        self._below.set()

    async def wait_turn(self) -> float:
        """Return once the backlog is at or below the high-water mark, or after
        ``max_delay``; returns the seconds waited."""
        if self._below.is_set():
            return 0.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._below.wait(), timeout=self.max_delay)
        return loop.time() - started
