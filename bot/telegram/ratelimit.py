"""The Bot API rate limiter of the bot's Application.

PTB's ``AIORateLimiter`` with one fix and one addition:

* **a 429 pauses every request** (with a chat) until its ``retry_after`` has passed.
  ``AIORateLimiter`` clears an event on a 429, but any other request that finishes sets
  it again, so the requests in flight and those queued behind them went on inside the
  ``retry_after``: each an unhonoured 429, which Telegram answers with a longer one.
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
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)


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

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def pause(self, seconds: float) -> None:
        """No request with a chat before ``seconds`` from now (a 429's retry_after)."""
        until = asyncio.get_running_loop().time() + seconds
        self.paused_until = max(self.paused_until, until)

    async def _honour_pause(self) -> None:
        loop = asyncio.get_running_loop()
        while (left := self.paused_until - loop.time()) > 0:
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
                    async with self._overall:
                        await self._honour_pause()
                        return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                self.pause(wait)
                if attempt >= retries:
                    raise
                attempt += 1
                log.info("%s: 429, every request waits %s s, then retry %s of %s",
                         endpoint, wait, attempt, retries)
