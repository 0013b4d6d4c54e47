"""Waiting on an event with a time limit keeps a cancellation (the stops rely on it)."""
from __future__ import annotations

import asyncio

import pytest

from bot.core.aio import wait_event


async def _cancel_as_the_event_is_set(wait) -> bool:
    """A loop like the sender's: wait for a wake with a time limit, again and again.
    It is cancelled in the same turn of the loop as its event is set; True when the
    cancellation ended it."""
    event = asyncio.Event()

    async def loop_until_cancelled():
        while True:
            await wait(event, 30.0)
            event.clear()

    task = asyncio.create_task(loop_until_cancelled())
    await asyncio.sleep(0)  # the task waits on the event
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    if not done:
        task.cancel()  # the stray loop's end, for the test's own clean-up
        await asyncio.wait({task}, timeout=2.0)
    return bool(done) and task.cancelled()


async def test_a_cancellation_meeting_the_event_ends_the_waiting_loop():
    assert await _cancel_as_the_event_is_set(wait_event)


async def test_wait_for_loses_that_cancellation_on_this_python():
    """The reason for wait_event: asyncio.wait_for(event.wait(), t) returns the event's
    result instead of raising, so the loop runs on (Python 3.11; 3.12 fixed it)."""
    import sys

    async def old(event, timeout):
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    lost = not await _cancel_as_the_event_is_set(old)
    assert lost == (sys.version_info < (3, 12))


async def test_wait_event_times_out_and_sees_a_set_event():
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
    later = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, later.set)
    assert await wait_event(later, 5.0) is True
