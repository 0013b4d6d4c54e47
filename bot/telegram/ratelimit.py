"""The Bot API rate limiter of the bot's Application.

PTB's ``AIORateLimiter`` with one fix and one addition:

* **a 429 pauses every request** (with a chat) until its ``retry_after`` has passed.
  ``AIORateLimiter`` clears an event on a 429, but any other request that finishes sets
  it again, so the requests in flight and those queued behind them went on inside the
  ``retry_after``: each an unhonoured 429, which Telegram answers with a longer one.
* **a caller may take a 429 itself**: ``rate_limit_args=0`` means no retry here
  (``AIORateLimiter`` reads 0 as "the default", 3). The outbox sender does so: it
  pauses its own pacing and reschedules the row rather than hold a turn.
* **one request at a time in a chat, ``per_chat_interval`` apart** (Telegram: "avoid
  sending more than one message per second" in a chat; ``outbox.per_chat_interval_seconds``,
  0 turns it off). Counted from the moment the previous request's answer came back (the
  latest moment Telegram can have seen it), so a slower or faster round trip never
  brings two closer at Telegram. A request that must wait for its chat waits alone:
  the other chats go on (a 429 pauses them all); its retries after a 429 keep its
  turn. The intake's taking the buttons off an old card after the commit nobody waits
  for (:data:`LOW` set by the caller; the outbox's own take-offs are not low): it goes
  once the chat has been quiet for :data:`QUIET` intervals and no other request waits
  for it, or after :data:`LOW_WAIT_LIMIT` as any other. A data-entry answer sends the
  new card and takes the old card's buttons off; made together, Telegram refused the
  second (``bench/bench_pemda.py``: 123 429s in 240 updates, each pausing every chat
  of the regency).
  :meth:`chat_wait` tells a caller how long a request would wait now: an update's run
  does not wait inside its transaction (``bot/telegram/intake.py``).

The limits themselves are PTB's: 30 requests per second overall (requests with a
chat), 20 per minute per group. The overall one is kept in any second as Telegram
counts it (:class:`_Window`), not as a leaky bucket, which let 30 go at once and 30
more within the same second.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

#: methods that the bot's own take-offs use (``bot/telegram/intake.py`` defers them)
LOW_PRIORITY = frozenset({"editMessageReplyMarkup"})
#: set (in a task's context) by a caller whose requests wait, behind every other request
#: to their chat, for the chat to be quiet: the intake's take-offs after the commit
LOW: ContextVar[bool] = ContextVar("low_priority_request", default=False)
#: seconds a low request waits for quiet at most; then it queues as the others
LOW_WAIT_LIMIT = 60.0
#: quiet, in per-chat intervals, before a LOW_PRIORITY request goes: longer than a
#: person's quick pause between two actions, so that the next action seldom finds the
#: chat's turn just taken by a take-off
QUIET = 3.0
#: with several processes: requests fewer than the overall limit while other processes'
#: requests count (they are told a moment after they go; two processes near the limit
#: would otherwise both take its last places)
SHARED_MARGIN = 2


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def chat_of(data: dict[str, Any]) -> int | str | None:
    """The chat a request's parameters name (an id as an int), or None."""
    chat_id = data.get("chat_id")
    with contextlib.suppress(ValueError, TypeError):
        chat_id = int(chat_id)
    return chat_id


class RateLimiter(BaseRateLimiter[int]):
    def __init__(self, overall_max_rate: float = 30, overall_time_period: float = 1,
                 group_max_rate: float = 20, group_time_period: float = 60,
                 max_retries: int = 3, per_chat_interval: float = 0.0) -> None:
        self._overall = _Window(int(overall_max_rate), overall_time_period)
        self._group_rate = (group_max_rate, group_time_period)
        self._groups: dict[int | str, AsyncLimiter] = {}
        self.max_retries = max_retries
        self.paused_until = 0.0  # loop time before which no request with a chat is made
        self.per_chat = per_chat_interval
        self._chats: dict[int | str, _ChatTurns] = {}
        # called with the chat of each request made here (the outbox sender tells the
        # other processes, which call foreign())
        self.listener = None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def foreign(self, chats: list[int | str]) -> None:
        """Requests to ``chats`` that another process of the bot made just now (told by
        NOTIFY, ``bot/telegram/outbox_sender.py``): they count in the overall limit
        here too, and each of those chats has its next turn an interval from now."""
        self._overall.add(len(chats))
        if not self.per_chat:
            return
        now = asyncio.get_running_loop().time()
        for chat_id in chats:
            st = self._turns(chat_id)
            st.free_at = max(st.free_at, now + self.per_chat)
            st.quiet_at = max(st.quiet_at, now + self.per_chat * QUIET)
            st.changed.set()
        self._forget(now)

    def pause(self, seconds: float) -> None:
        """No request with a chat before ``seconds`` from now (a 429's retry_after)."""
        until = asyncio.get_running_loop().time() + seconds
        self.paused_until = max(self.paused_until, until)

    async def _honour_pause(self) -> None:
        loop = asyncio.get_running_loop()
        while (left := self.paused_until - loop.time()) > 0:
            await asyncio.sleep(left)

    def chat_wait(self, chat_id: Any, low: bool = False) -> float:
        """Seconds a request to ``chat_id`` (``low``: taking buttons off) would wait for
        its turn if made now (0: it would go at once; a request under way or waiting
        before it: one interval), a 429's pause included. 0 without chat turns."""
        if not self.per_chat or chat_id is None:
            return 0.0
        now = asyncio.get_running_loop().time()
        paused = max(0.0, self.paused_until - now)
        st = self._chats.get(chat_id)
        if st is None:
            return paused
        if st.busy or st.queue:
            return max(paused, self.per_chat)
        return max(paused, st.ready(low) - now)

    async def _chat_turn(self, chat_id: int | str, low: bool) -> _ChatTurns:
        """Wait until a request may go to ``chat_id``, then take the chat's turn (given
        back by :meth:`_chat_done` when the answer is in). The chat's requests go in the
        order they asked; a ``low`` one only when none waits and the chat has been
        quiet, or, after :data:`LOW_WAIT_LIMIT` seconds, in the queue as the others."""
        st = self._turns(chat_id)
        loop = asyncio.get_running_loop()
        ticket = object()
        give_up_low = loop.time() + LOW_WAIT_LIMIT
        if not low:
            st.queue.append(ticket)
        st.users += 1
        try:
            while True:
                if low and loop.time() >= give_up_low:  # waited long enough for quiet
                    low = False
                    st.queue.append(ticket)
                if st.busy or (st.queue and (low or st.queue[0] is not ticket)):
                    left = give_up_low - loop.time() if low else None
                else:
                    left = st.ready(low) - loop.time()
                    if left <= 0:
                        break
                    if low:
                        left = min(left, give_up_low - loop.time())
                # woken when another request asks or is answered (the quiet moves)
                st.changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await st.changed.wait()
        except BaseException:  # cancelled: the requests behind it go on
            st.users -= 1
            if ticket in st.queue:
                st.queue.remove(ticket)
            st.changed.set()
            raise
        if not low:
            st.queue.popleft()
        st.busy = True
        return st

    def _turns(self, chat_id: int | str) -> _ChatTurns:
        """The chat's turns, new if it had none."""
        st = self._chats.get(chat_id)
        if st is None:
            st = self._chats[chat_id] = _ChatTurns()
        return st

    def _chat_done(self, st: _ChatTurns, low: bool) -> None:
        now = asyncio.get_running_loop().time()
        st.busy = False
        st.users -= 1
        st.free_at = now + self.per_chat
        if not low:  # taking buttons off does not make the chat less quiet
            st.quiet_at = now + self.per_chat * QUIET
        st.changed.set()
        self._forget(now)

    def _forget(self, now: float) -> None:
        if len(self._chats) > 1024:  # forget the chats nobody waits for, long quiet
            self._chats = {k: v for k, v in self._chats.items()
                           if v.users or v.quiet_at > now}

    def _group(self, chat_id: int | str) -> AsyncLimiter:
        if len(self._groups) > 512:  # forget idle groups, as AIORateLimiter does
            for key in [k for k, lim in self._groups.items()
                        if lim.has_capacity(self._group_rate[0])]:
                del self._groups[key]
        if chat_id not in self._groups:
            self._groups[chat_id] = AsyncLimiter(*self._group_rate)
        return self._groups[chat_id]

    async def process_request(self, callback, args: Any, kwargs: dict[str, Any],
                              endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        chat_id = chat_of(data)
        group = chat_id if (isinstance(chat_id, int) and chat_id < 0) or isinstance(
            chat_id, str) else None
        if chat_id is None:  # getMe, answerCallbackQuery, ...: not limited
            return await callback(*args, **kwargs)
        low = LOW.get()
        # one turn for every attempt: a retry after a 429 keeps the chat's order
        turn = await self._chat_turn(chat_id, low) if self.per_chat else None
        try:
            attempt = 0
            while True:
                try:
                    async with (self._group(group) if group is not None
                                else contextlib.nullcontext()):
                        async with self._overall:
                            await self._honour_pause()
                            try:
                                return await callback(*args, **kwargs)
                            finally:
                                if self.listener is not None:
                                    self.listener(chat_id)
                except RetryAfter as exc:
                    wait = retry_seconds(exc)
                    self.pause(wait)
                    if attempt >= retries:
                        raise
                    attempt += 1
                    log.info("%s: 429, every request waits %s s, then retry %s of %s",
                             endpoint, wait, attempt, retries)
        finally:
            if turn is not None:
                self._chat_done(turn, low)


class _ChatTurns:
    """One chat's turns (:meth:`RateLimiter._chat_turn`)."""

    __slots__ = ("busy", "free_at", "quiet_at", "queue", "users", "changed")

    def __init__(self) -> None:
        self.busy = False  # a request under way
        self.free_at = 0.0  # loop time from which the next request may go
        self.quiet_at = 0.0  # ... a low one
        self.queue: deque[object] = deque()  # the other requests waiting, in order
        self.users = 0  # requests waiting or under way
        self.changed = asyncio.Event()

    def ready(self, low: bool) -> float:
        """The loop time from which a request (``low``: a take-off) may go."""
        return max(self.free_at, self.quiet_at) if low else self.free_at


class _Window:
    """At most ``limit`` requests in any ``period`` at Telegram, as it counts them: a
    request counts from the moment it goes until ``period`` after its answer came back
    (the latest moment it can have arrived there). ``AsyncLimiter`` (a leaky bucket)
    lets ``limit`` go at once and then ``limit`` more within the same second, which
    Telegram answers with a 429 that pauses every chat."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = max(1, limit)
        self.period = period
        self._answered: deque[float] = deque()  # answers of the last period
        self._under_way = 0
        self._changed = asyncio.Event()
        self._shared_until = 0.0  # loop time until which other processes' requests count

    def add(self, count: int) -> None:
        """``count`` requests made elsewhere (another process of the bot) just now:
        they count for a period from now, and for as long :data:`SHARED_MARGIN` fewer
        go here (what the others make while the news is on its way)."""
        now = asyncio.get_running_loop().time()
        self._answered.extend([now] * count)
        self._shared_until = now + self.period
        self._changed.set()

    def _count(self, now: float) -> int:
        while self._answered and self._answered[0] <= now - self.period:
            self._answered.popleft()
        margin = SHARED_MARGIN if now < self._shared_until else 0
        return len(self._answered) + self._under_way + margin

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        while self._count(loop.time()) >= self.limit:
            self._changed.clear()
            wait = (self._answered[0] + self.period - loop.time()) if self._answered \
                else None  # all under way: until one comes back
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()
        self._under_way += 1

    async def __aexit__(self, *exc: object) -> None:
        self._under_way -= 1
        self._answered.append(asyncio.get_running_loop().time())
        self._changed.set()
