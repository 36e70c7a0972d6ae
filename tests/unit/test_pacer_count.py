"""The pacer's count (mailbot/intake/pacing.py): held above the high-water mark, freed by
the worker's progress or by the daemon stopping, never below zero, off at 0."""

from __future__ import annotations

import asyncio

from mailbot.intake.pacing import IntakePacer


def _held(pacer: IntakePacer, then: object = None, delay: float = 0.05) -> float:
    """Seconds ``wait_turn`` took, with ``then()`` called ``delay`` seconds into it."""

    async def scenario() -> float:
        if then is not None:
            asyncio.get_running_loop().call_later(delay, then)
        return await pacer.wait_turn()

    return asyncio.run(scenario())


def test_below_the_mark_nothing_waits_and_above_it_the_wait_is_bounded() -> None:
    pacer = IntakePacer(high_water=2, max_delay=0.2)
    pacer.stored(2)
    assert _held(pacer) == 0.0
    pacer.stored(1)
    assert 0.15 < _held(pacer) < 1.0


def test_progress_of_the_worker_frees_a_held_250() -> None:
    pacer = IntakePacer(high_water=2, max_delay=5.0)
    pacer.stored(4)
    assert _held(pacer, lambda: pacer.processed(2)) < 1.0
    pacer.processed(10)  # other sources' messages: the count stays at zero
    assert pacer.backlog == 0


def test_stopping_frees_every_held_250_and_pacing_can_be_off() -> None:
    pacer = IntakePacer(high_water=1, max_delay=5.0)
    pacer.stored(3)
    assert _held(pacer, pacer.stop) < 1.0
    pacer.stored(100)
    assert _held(pacer) == 0.0
    off = IntakePacer(high_water=0, max_delay=5.0)
    off.stored(1000)
    assert _held(off) == 0.0
