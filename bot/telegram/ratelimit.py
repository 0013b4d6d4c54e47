"""The Bot API rate limiter of the bot's Application.

PTB's ``AIORateLimiter`` with one fix and one addition:

* **a 429 pauses every request** (with a chat) until its ``retry_after`` has passed.
  ``AIORateLimiter`` clears an event on a 429, but any other request that finishes sets
  it again, so the requests in flight and those queued behind them went on inside the
  ``retry_after``: each an unhonoured 429, which Telegram answers with a longer one.
* **a 429 in a chat that just had a request pauses that chat only.** Telegram asks
  for no more than one message a second in a chat and does not say which limit a 429
  is for. A 429 for a chat whose previous request came back less than
  :data:`CHAT_WINDOW` before is taken as that chat's own limit: the chat waits its
  ``retry_after``, every other chat goes on. A data-entry answer sends the new card
  and takes the old card's buttons off at once; where Telegram refuses that second
  request, pausing every chat (in every process) stalled a whole regency behind one
  person (``bench/bench_pemda.py``: 123 such 429s in 240 updates, p50 4.6 s). A 429
  for a chat with no request just before can only be the overall limit, and so may be
  one while the bot's requests of the last second come near the overall limit
  (:data:`NEAR_OVERALL` of it): then every request waits, as above.
* **a caller may take a 429 itself**: ``rate_limit_args=0`` means no retry here
  (``AIORateLimiter`` reads 0 as "the default", 3). The outbox sender does so: it
  pauses its own pacing and reschedules the row rather than hold a turn.

The limits themselves are PTB's: 30 requests per second overall (requests with a
chat), 20 per minute per group.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

#: seconds: a 429 for a chat whose previous request came back this recently is taken as
#: the chat's own limit (one message a second), with room for a network round trip
CHAT_WINDOW = 1.5
#: of the overall rate: with this many requests answered in the last second, a 429 may
#: be the overall limit's whichever chat it came for
NEAR_OVERALL = 0.8


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class RateLimiter(BaseRateLimiter[int]):
    def __init__(self, overall_max_rate: float = 30, overall_time_period: float = 1,
                 group_max_rate: float = 20, group_time_period: float = 60,
                 max_retries: int = 3) -> None:
        self._overall = AsyncLimiter(overall_max_rate, overall_time_period)
        self._group_rate = (group_max_rate, group_time_period)
        self._groups: dict[int | str, AsyncLimiter] = {}
        self.max_retries = max_retries
        self.paused_until = 0.0  # loop time before which no request with a chat is made
        self._answered: dict[int | str, float] = {}  # chat -> loop time its last request came back
        self._chat_paused: dict[int | str, float] = {}  # chat -> loop time it waits until
        self._near = max(1, int(overall_max_rate / overall_time_period * NEAR_OVERALL))
        self._last_answers: deque[float] = deque(maxlen=self._near)  # any chat's

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def pause(self, seconds: float) -> None:
        """No request with a chat before ``seconds`` from now (a 429's retry_after)."""
        until = asyncio.get_running_loop().time() + seconds
        self.paused_until = max(self.paused_until, until)

    def pause_chat(self, chat_id: int | str, seconds: float) -> None:
        """No request to ``chat_id`` before ``seconds`` from now (its own limit's 429)."""
        until = asyncio.get_running_loop().time() + seconds
        self._chat_paused[chat_id] = max(self._chat_paused.get(chat_id, 0.0), until)

    def _chat_limit(self, chat_id: int | str, now: float) -> bool:
        """Whether a 429 for ``chat_id`` now is the chat's own limit: its previous
        request came back within :data:`CHAT_WINDOW`, and the bot's requests of the
        last second are not near the overall limit."""
        near = (len(self._last_answers) == self._near
                and now - self._last_answers[0] < 1.0)
        return not near and now - self._answered.get(chat_id, float("-inf")) < CHAT_WINDOW

    def _note_answered(self, chat_id: int | str, now: float) -> None:
        if len(self._answered) > 1024:  # forget chats quiet for longer than the window
            self._answered = {k: t for k, t in self._answered.items()
                              if now - t < CHAT_WINDOW}
            self._chat_paused = {k: t for k, t in self._chat_paused.items() if t > now}
        self._answered[chat_id] = now
        self._last_answers.append(now)

    async def _honour_pause(self, chat_id: int | str | None = None) -> None:
        loop = asyncio.get_running_loop()
        while (left := max(self.paused_until, self._chat_paused.get(chat_id, 0.0))
               - loop.time()) > 0:
            await asyncio.sleep(left)

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
        chat_id = data.get("chat_id")
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)
        group = chat_id if (isinstance(chat_id, int) and chat_id < 0) or isinstance(
            chat_id, str) else None
        attempt = 0
        while True:
            try:
                if chat_id is None:  # getMe, answerCallbackQuery, ...: not limited
                    return await callback(*args, **kwargs)
                async with (self._group(group) if group is not None
                            else contextlib.nullcontext()):
                    await self._honour_pause(chat_id)
                    async with self._overall:
                        await self._honour_pause(chat_id)
                        answer = await callback(*args, **kwargs)
                    self._note_answered(chat_id, asyncio.get_running_loop().time())
                    return answer
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                own = self._chat_limit(chat_id, asyncio.get_running_loop().time())
                if own:
                    self.pause_chat(chat_id, wait)
                else:
                    self.pause(wait)
                if attempt >= retries:
                    raise
                attempt += 1
                log.info("%s: 429, %s waits %s s, then retry %s of %s", endpoint,
                         f"chat {chat_id}" if own else "every request", wait, attempt,
                         retries)
