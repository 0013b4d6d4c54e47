"""Waiting on an event with a time limit, without losing a cancellation."""
from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds have passed; True when set.

    Not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 that swallows a
    cancellation arriving in the same turn of the loop as the event (it returns the
    event's result instead), so a loop that waits this way runs on after being
    cancelled and whoever awaits its end (a stop) waits for ever. ``asyncio.timeout``
    keeps the cancellation."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
