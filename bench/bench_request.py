"""CPU per Bot API call of the bot's HTTP client (``bot/telegram/request.py``,
aiohttp) beside PTB's own ``HTTPXRequest``, in the same run:

    python bench/bench_request.py [--calls 400] [--repeat 3]

The emulator runs in a thread of its own; the bot's event loop in the main thread
makes the calls one after the other (a card's message, then its edit, as a data-entry
update does), through a PTB ``Bot`` with the one client, then the other. The CPU
counted is the main thread's (``time.thread_time``: the bot's side of each call, PTB's
parameters and parsing included, the emulator's work not); figures are the best of
``--repeat`` runs."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def measure(request_factory, base_url: str, chat_id: int, calls: int) -> dict:
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

    from bench.common import TOKEN

    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Lanjut \u27a1\ufe0f", callback_data="x:1"),
                                    InlineKeyboardButton("Ubah", callback_data="x:2")]])
    bot = Bot(TOKEN, base_url=base_url, request=request_factory(),
              get_updates_request=request_factory())
    await bot.initialize()
    try:
        for _ in range(10):  # connections open, caches warm
            await bot.send_message(chat_id, "warm", reply_markup=markup)
        cpu, wall = time.thread_time(), time.perf_counter()
        for i in range(calls // 2):
            msg = await bot.send_message(chat_id, f"Indikator {i} &lt;b&gt; \u2705 " * 8,
                                         reply_markup=markup)
            await bot.edit_message_text(f"Tersimpan {i}", chat_id=chat_id,
                                        message_id=msg.message_id, reply_markup=markup)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    finally:
        await bot.shutdown()
    n = calls // 2 * 2
    return {"cpu_ms": cpu / n * 1000, "wall_ms": wall / n * 1000}


def main() -> None:
    from telegram.request import HTTPXRequest

    from bot.devtools.emulator import EmulatorThread
    from bot.telegram.request import AiohttpRequest

    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    clients = [("PTB HTTPXRequest (baseline)", lambda: HTTPXRequest(connection_pool_size=8)),
               ("bot.telegram.request.AiohttpRequest", lambda: AiohttpRequest(8))]
    load = os.getloadavg()[0]
    best: dict[str, dict] = {}
    with EmulatorThread() as emu:
        emu.call(emu.emulator.add_user, user_id=777, first_name="Bench").started = True
        for _ in range(a.repeat):
            for name, factory in clients:
                r = asyncio.run(measure(factory, emu.base_url, 777, a.calls))
                if name not in best or r["cpu_ms"] < best[name]["cpu_ms"]:
                    best[name] = r
    print(f"Bot API calls (sendMessage + editMessageText with a keyboard), {a.calls} per run, "
          f"best of {a.repeat}, load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'client':<38} {'CPU ms/call':>11} {'wall ms/call':>12}")
    for name, _f in clients:
        print(f"{name:<38} {best[name]['cpu_ms']:>11.2f} {best[name]['wall_ms']:>12.2f}")
    base, new = best[clients[0][0]], best[clients[1][0]]
    print(f"{'aiohttp / httpx':<38} {new['cpu_ms'] / base['cpu_ms']:>11.0%} "
          f"{new['wall_ms'] / base['wall_ms']:>12.0%}")


if __name__ == "__main__":
    main()
