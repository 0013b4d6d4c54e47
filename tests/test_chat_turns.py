"""One request at a time in a chat, one interval apart (``bot/telegram/ratelimit.py``,
``RateLimiter`` with ``per_chat_interval``): a chat's second request waits for its turn,
counted from the first one's answer, while the other chats go on; taking an old card's
buttons off waits behind the chat's other requests until the chat is quiet."""
from __future__ import annotations

import asyncio

from bot.telegram.ratelimit import QUIET, RateLimiter

INTERVAL = 0.3


def _limiter(interval: float = INTERVAL):
    limiter = RateLimiter(max_retries=0, per_chat_interval=interval)
    loop = asyncio.get_running_loop()
    made: list[tuple[str, int, float, float]] = []  # (what, chat, started, answered)

    async def request(what: str, chat_id: int, method: str = "sendMessage",
                      takes: float = 0.05):
        async def call():
            started = loop.time()
            await asyncio.sleep(takes)
            made.append((what, chat_id, started, loop.time()))
            return True
        return await limiter.process_request(call, (), {}, method, {"chat_id": chat_id},
                                             None)
    return limiter, request, made


def _by_name(made):
    return {what: (started, answered) for what, _chat, started, answered in made}


async def test_a_chats_second_request_waits_an_interval_from_the_first_ones_answer_and_other_chats_do_not_wait():
    limiter, request, made = _limiter()
    loop = asyncio.get_running_loop()
    await request("a1", 1)
    asked = loop.time()
    assert limiter.chat_wait(1) > 0 and limiter.chat_wait(2) == 0
    await asyncio.gather(request("a2", 1), request("b1", 2))
    at = _by_name(made)
    assert at["b1"][0] - asked < 0.1  # another chat: at once
    assert at["a2"][0] >= at["a1"][1] + INTERVAL - 0.01  # from the answer, not the start


async def test_requests_to_one_chat_are_made_one_at_a_time_in_order():
    _limiter_, request, made = _limiter(interval=0.05)
    await asyncio.gather(*(request(f"m{i}", 7, takes=0.02) for i in range(4)))
    order = [what for what, *_ in made]
    assert order == ["m0", "m1", "m2", "m3"]
    spans = [(s, e) for _w, _c, s, e in made]
    assert all(spans[i + 1][0] >= spans[i][1] + 0.05 - 0.01 for i in range(3))


async def test_taking_buttons_off_goes_after_the_chats_other_requests_once_the_chat_is_quiet():
    limiter, request, made = _limiter()
    await request("card", 1)
    takeoff = asyncio.create_task(request("take-off", 1, method="editMessageReplyMarkup"))
    await asyncio.sleep(0.1)
    assert limiter.chat_wait(1, "editMessageReplyMarkup") > 0
    await request("next card", 1)  # asked after the take-off: goes first
    await takeoff
    at = _by_name(made)
    assert [what for what, *_ in made] == ["card", "next card", "take-off"]
    assert at["take-off"][0] >= at["next card"][1] + QUIET * INTERVAL - 0.01


async def test_a_cancelled_request_does_not_hold_up_the_take_off_behind_it():
    limiter, request, made = _limiter()
    await request("card", 1)
    waiting = asyncio.create_task(request("edit", 1))  # waits for its turn
    takeoff = asyncio.create_task(request("take-off", 1, method="editMessageReplyMarkup"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.wait_for(takeoff, 2.0)
    assert [what for what, *_ in made] == ["card", "take-off"]


async def test_without_an_interval_no_request_waits_for_its_chat():
    limiter, request, made = _limiter(interval=0.0)
    await request("a1", 1)
    assert limiter.chat_wait(1) == 0
    await asyncio.gather(request("a2", 1), request("a3", 1, method="editMessageReplyMarkup"))
    starts = sorted(s for _w, _c, s, _e in made[1:])
    assert starts[-1] - made[0][3] < 0.05
