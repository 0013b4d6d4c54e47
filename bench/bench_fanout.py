"""Outbound fan-out: the outbox delivers N messages to N chats while the emulator
enforces Telegram's limits (30 messages/s overall, 1/s per chat).

    python bench/bench_fanout.py [--messages 1000]

Prints the achieved rate as a share of 30/s, the 429s the emulator issued and how many
of them were not honoured (a request inside the retry_after it was given)."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database  # noqa: E402
from bot.emulator import BotApiEmulator  # noqa: E402
from bot.harness import TEST_TOKEN  # noqa: E402
from bot.outbox import enqueue  # noqa: E402
from bot.outbox_sender import OutboxSender  # noqa: E402
from models import Office, Person  # noqa: E402
from models.enums import Role  # noqa: E402


async def main(n: int) -> None:
    cfg, engine, sm, services = await fresh_database()
    emu = BotApiEmulator(token=TEST_TOKEN, enforce_limits=True)
    await emu.start()
    now = services.clock.now()
    async with sm() as s, s.begin():
        office = Office(name="Dinas", regency="Kab")
        s.add(office)
        await s.flush()
        for i in range(n):
            uid = 1_000_000 + i
            emu.add_user(user_id=uid, first_name=f"P{i}").started = True
            p = Person(office_id=office.id, name=f"Pegawai {i}", role=Role.STAF,
                       telegram_user_id=uid)
            s.add(p)
            await s.flush()
            await enqueue(s, p, "bench", f"Pengingat nomor {i}", at=now)
    from telegram.ext import AIORateLimiter, ExtBot

    bot = ExtBot(TEST_TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url,
                 rate_limiter=AIORateLimiter(max_retries=3))
    await bot.initialize()
    sender = OutboxSender(bot, sm, services)
    t0 = time.perf_counter()
    while emu.stats.sent_messages < n and time.perf_counter() - t0 < n / 10 + 60:
        if await sender.deliver_once() == 0:
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    stats = emu.stats
    rate = stats.sent_messages / elapsed
    print(f"messages delivered      : {stats.sent_messages} of {n} in {elapsed:.1f} s")
    print(f"achieved rate           : {rate:.1f} msg/s = {rate / 30 * 100:.1f} % of 30/s "
          f"(target >= 90 %) {'MET' if rate >= 27 else 'NOT MET'}")
    print(f"429 issued by emulator  : {stats.issued_429s}")
    print(f"429 not honoured        : {stats.unhonoured_429s} (target 0) "
          f"{'MET' if stats.unhonoured_429s == 0 else 'NOT MET'}")
    await bot.shutdown()
    await emu.stop()
    await engine.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    asyncio.run(main(ap.parse_args().messages))
