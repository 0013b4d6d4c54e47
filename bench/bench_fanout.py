"""Outbound fan-out: the outbox delivers N messages to N chats while the emulator
enforces Telegram's limits (30 messages/s overall, 1/s per chat).

    python bench/bench_fanout.py [--messages 1000] [--stall 0.3 --stall-every 3]
                                 [--replies 20] [--database-url postgresql://...]

The sender runs as in the bot (its own task, woken after a commit that queued a
message), through PTB's ``AIORateLimiter`` as ``bot/telegram/app.py`` builds it. Prints the
achieved rate as a share of 30/s, the 429s the emulator issued and how many of them were
not honoured (a request inside the retry_after it was given).

``--stall S --stall-every E``: every E seconds the whole process freezes for S seconds
(a ``time.sleep`` in a loop callback: a slow handler, a garbage collection, a busy
machine), so the sender's timers fire late.

``--replies K``: while the fan-out runs, K interactive replies (as a person's button
press queues them) are queued one by one, 1.5 s apart, each to a person outside the
fan-out; printed: the time from the commit of the reply to it being visible in the
person's chat."""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database  # noqa: E402
from bot.core import outbox as outbox_module  # noqa: E402
from bot.devtools.emulator import BotApiEmulator  # noqa: E402
from bot.devtools.harness import TEST_TOKEN  # noqa: E402
from bot.core.outbox import enqueue  # noqa: E402
from bot.telegram.outbox_sender import OutboxSender  # noqa: E402
from models import Office, Person  # noqa: E402
from models.enums import Role  # noqa: E402

BULK = getattr(outbox_module, "BULK", None)    # priorities, where the outbox has them
REPLY = getattr(outbox_module, "REPLY", None)


def _priority(value) -> dict:
    return {} if value is None else {"priority": value}


def _rate_limiter():
    """The rate limiter the bot's Application uses (bot/telegram/app.py)."""
    import bot.telegram.app as app_module

    factory = getattr(app_module, "rate_limiter", None)
    if factory is not None:
        return factory()
    from telegram.ext import AIORateLimiter

    return AIORateLimiter(max_retries=3)


class Stalls:
    """Freezes the process (the event loop and everything in it) for ``seconds`` every
    ``every`` seconds."""

    def __init__(self, seconds: float, every: float) -> None:
        self.seconds, self.every, self.count = seconds, every, 0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.seconds > 0:
            self._handle = asyncio.get_running_loop().call_later(self.every, self._freeze)

    def _freeze(self) -> None:
        time.sleep(self.seconds)
        self.count += 1
        self._handle = asyncio.get_running_loop().call_later(self.every, self._freeze)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def main(n: int, stall: float, every: float, replies: int, url: str | None) -> None:
    cfg, engine, sm, services = await fresh_database(url=url)
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
            await enqueue(s, p, "bench", f"Pengingat nomor {i}", at=now, **_priority(BULK))
        askers = []
        for i in range(replies):
            uid = 2_000_000 + i
            emu.add_user(user_id=uid, first_name=f"R{i}").started = True
            p = Person(office_id=office.id, name=f"Penanya {i} <Bu Sri & \"Pak\" 🙂>",
                       role=Role.KABID, telegram_user_id=uid)
            s.add(p)
            askers.append(p)
    from telegram.ext import ExtBot

    bot = ExtBot(TEST_TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url,
                 rate_limiter=_rate_limiter())
    await bot.initialize()
    sender = OutboxSender(bot, sm, services)
    stalls = Stalls(stall, every)
    loop = asyncio.get_running_loop()
    waits: list[float] = []

    async def reply(k: int, person: Person) -> None:
        await asyncio.sleep(1.0 + 1.5 * k)
        user = emu.user(person.telegram_user_id)
        text = f"Tersimpan: jawaban {k} untuk {person.name}"
        async with sm() as s, s.begin():
            await enqueue(s, person, "reply", text, at=services.clock.now(),
                          **_priority(REPLY))
        sender.wake()
        committed = loop.time()
        seen: list[float] = []
        await user.wait_for(lambda m: m.text == text and not seen.append(loop.time()),
                            timeout=n / 10 + 60)
        waits.append(seen[0] - committed)

    t0 = time.perf_counter()
    stalls.start()
    sender.start()
    asking = asyncio.gather(*(reply(k, p) for k, p in enumerate(askers)))
    shown = t0
    while emu.stats.sent_messages < n + len(askers) and time.perf_counter() - t0 < n / 10 + 60:
        await asyncio.sleep(0.05)
        if time.perf_counter() - shown > 10:
            shown = time.perf_counter()
            print(f"  ... {emu.stats.sent_messages} sent after {shown - t0:.0f} s",
                  file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    stalls.stop()
    await asyncio.wait([asking], timeout=30)
    stats = emu.stats
    bulk = stats.sent_messages - len(waits)
    rate = bulk / elapsed
    print(f"database                : {'PostgreSQL' if url else 'SQLite'}")
    print(f"event loop stalls       : {stalls.count} x {stall:g} s every {every:g} s"
          if stall > 0 else "event loop stalls       : none")
    print(f"messages delivered      : {bulk} of {n} in {elapsed:.1f} s")
    print(f"achieved rate           : {rate:.1f} msg/s = {rate / 30 * 100:.1f} % of 30/s "
          f"(target >= 90 %) {'MET' if rate >= 27 else 'NOT MET'}")
    if waits:
        every = stats.sent_messages / elapsed
        print(f"all sends (with replies): {stats.sent_messages} = {every:.1f} msg/s = "
              f"{every / 30 * 100:.1f} % of 30/s")
    print(f"429 issued by emulator  : {stats.issued_429s}")
    print(f"429 not honoured        : {stats.unhonoured_429s} (target 0) "
          f"{'MET' if stats.unhonoured_429s == 0 else 'NOT MET'}")
    if waits:
        q = statistics.quantiles(sorted(waits), n=20) if len(waits) > 1 else waits * 19
        p95 = q[18]
        print(f"replies during fan-out  : {len(waits)}, commit to visible p50 "
              f"{statistics.median(waits) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max "
              f"{max(waits) * 1000:.0f} ms (target p95 < 1 s) "
              f"{'MET' if p95 < 1 else 'NOT MET'}")

    async def teardown() -> None:
        await sender.stop()
        await bot.shutdown()
        await emu.stop()
        await engine.dispose()

    # the figures are out: a teardown stuck behind a send in flight does not hold the run
    await asyncio.wait([asyncio.ensure_future(teardown())], timeout=15)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--stall", type=float, default=0.0, help="seconds the process freezes")
    ap.add_argument("--stall-every", type=float, default=3.0)
    ap.add_argument("--replies", type=int, default=0)
    ap.add_argument("--database-url", default=None)
    a = ap.parse_args()
    asyncio.run(main(a.messages, a.stall, a.stall_every, a.replies, a.database_url))
