"""Group commit: messages that arrive while a commit runs share the next transaction.

``store_many`` here is a plain function run on asyncio's thread pool, as in the daemon;
threading events hold a commit open so that others arrive meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from mailbot.intake.group_commit import GroupCommitter, RawMessage

T = TypeVar("T")


def _run(scenario: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """``asyncio.run`` that fails instead of hanging when a caller is never answered."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


def _message(n: int) -> RawMessage:
    return RawMessage("smtp", f"c{n}@customer.example", ["support@example.com"], b"m%d" % n)


class RecordingStore:
    """Records each group; commit number ``k`` (1-based) waits for ``hold[k]`` if given,
    and raises if ``k`` is in ``fail``."""

    def __init__(
        self, hold: dict[int, threading.Event] | None = None, fail: frozenset[int] = frozenset()
    ) -> None:
        self.groups: list[list[bytes]] = []
        self.entered: dict[int, threading.Event] = {k: threading.Event() for k in range(1, 10)}
        self.hold = hold or {}
        self.fail = fail
        self._ids = itertools.count(1)

    def __call__(self, messages: list[RawMessage]) -> list[int]:
        self.groups.append([m.raw for m in messages])
        number = len(self.groups)
        self.entered[number].set()
        if number in self.hold:
            assert self.hold[number].wait(5), "test did not release the commit"
        if number in self.fail:
            raise RuntimeError(f"commit {number} failed")
        return [next(self._ids) for _ in messages]


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def _settle() -> None:
    """Let freshly created tasks run up to their first real wait."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_messages_arriving_during_a_commit_go_together_into_the_next() -> None:
    release = threading.Event()
    store = RecordingStore(hold={1: release})
    committer = GroupCommitter(store)

    async def scenario() -> list[int]:
        first = asyncio.create_task(committer.store(_message(1)))
        await _until(store.entered[1].is_set)
        later = [asyncio.create_task(committer.store(_message(n))) for n in (2, 3, 4)]
        await _settle()
        assert store.groups == [[b"m1"]]  # nobody else commits while the first one runs
        release.set()
        return await asyncio.gather(first, *later)

    ids = _run(scenario())
    assert store.groups == [[b"m1"], [b"m2", b"m3", b"m4"]]
    assert ids == [1, 2, 3, 4]  # each caller its own id, in the order they came


def test_a_lone_message_is_committed_at_once() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store)

    async def scenario() -> list[int]:
        return [await committer.store(_message(n)) for n in (1, 2)]

    assert _run(scenario()) == [1, 2]
    assert store.groups == [[b"m1"], [b"m2"]]


def test_a_failed_group_fails_all_its_callers_and_the_next_group_succeeds() -> None:
    first_open, second_open = threading.Event(), threading.Event()
    store = RecordingStore(hold={1: first_open, 2: second_open}, fail=frozenset({2}))
    committer = GroupCommitter(store)

    async def scenario() -> list[int | BaseException]:
        first = asyncio.create_task(committer.store(_message(1)))
        await _until(store.entered[1].is_set)
        failing = [asyncio.create_task(committer.store(_message(n))) for n in (2, 3)]
        await _settle()
        first_open.set()
        await _until(store.entered[2].is_set)
        last = asyncio.create_task(committer.store(_message(4)))  # arrives during commit 2
        await _settle()
        second_open.set()
        return await asyncio.gather(first, *failing, last, return_exceptions=True)

    results = _run(scenario())
    assert store.groups == [[b"m1"], [b"m2", b"m3"], [b"m4"]]
    assert results[0] == 1
    for failed in results[1:3]:
        assert isinstance(failed, RuntimeError) and str(failed) == "commit 2 failed"
    assert results[1] is results[2]  # the group's one error, given to each of its callers
    assert results[3] == 2  # a later group is not affected (the failed one used no ids)


def test_groups_are_capped_at_max_group() -> None:
    release = threading.Event()
    store = RecordingStore(hold={1: release})
    committer = GroupCommitter(store, max_group=2)

    async def scenario() -> list[int]:
        first = asyncio.create_task(committer.store(_message(1)))
        await _until(store.entered[1].is_set)
        later = [asyncio.create_task(committer.store(_message(n))) for n in (2, 3, 4, 5, 6)]
        await _settle()
        release.set()
        return await asyncio.gather(first, *later)

    assert _run(scenario()) == [1, 2, 3, 4, 5, 6]
    assert store.groups == [[b"m1"], [b"m2", b"m3"], [b"m4", b"m5"], [b"m6"]]


@pytest.mark.parametrize("max_group", [1, 64])
def test_the_committer_can_be_used_again_after_it_went_idle(max_group: int) -> None:
    store = RecordingStore()
    committer = GroupCommitter(store, max_group=max_group)

    async def burst(numbers: tuple[int, ...]) -> list[int]:
        return list(await asyncio.gather(*(committer.store(_message(n)) for n in numbers)))

    async def scenario() -> tuple[list[int], list[int]]:
        first = await burst((1, 2))
        await _settle()
        return first, await burst((3,))

    first, second = _run(scenario())
    assert first == [1, 2] and second == [3]
    assert [raw for group in store.groups for raw in group] == [b"m1", b"m2", b"m3"]
