"""Update handling: the full bot processing data-entry answers (each a committed
database write) against the local emulator, side by side with a bare PTB echo bot on
the same emulator, in the same run.

    python bench/bench_updates.py [--units 10 --indicators 20] [--database-url URL]

``--database-url postgresql://...`` runs the full bot on that (scratch) PostgreSQL
database instead of a fresh SQLite file: its tables are dropped and created again.

Each simulated person sends an update, waits for the bot's answer, then sends the next
(a closed loop, as people on phones do); all people run at once. Latency is from the
moment the update is queued at the emulator to the bot's reply. Neither bot uses a rate
limiter here (the emulator does not enforce Telegram's limits in this run): the figure is
the bot's own processing."""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402

from bench.common import fresh_database  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.emulator import BotApiEmulator  # noqa: E402
from bot.harness import TEST_TOKEN, Harness  # noqa: E402
from bot.office_data import IndicatorSpec, OfficeSpec, PersonSpec, TargetSpec, UnitSpec, apply_office  # noqa: E402,E501
from bot.services import build_services  # noqa: E402
from bot.workflow import Workflow  # noqa: E402
from models import Person, StepRun  # noqa: E402
from models.enums import CycleKind, Role, StepStatus  # noqa: E402

WIB = ZoneInfo("Asia/Jakarta")


def office(units: int, indicators: int) -> OfficeSpec:
    us = [UnitSpec("SEK", "Sekretariat", True)] + [UnitSpec(f"U{i:02d}", f"Bidang {i}")
                                                   for i in range(1, units + 1)]
    people = [PersonSpec("Kadis", Role.KADIS, "1" * 18), PersonSpec("Sekretaris", Role.SEKRETARIS,
              "2" * 18, "SEK"), PersonSpec("Kasubag", Role.KASUBAG, "3" * 18, "SEK"),
              PersonSpec("Staf Sek", Role.STAF, "4" * 18, "SEK")]
    people += [PersonSpec(f"Kabid {i}", Role.KABID, f"{5 * 10 ** 17 + i}", f"U{i:02d}")
               for i in range(1, units + 1)]
    inds = [IndicatorSpec(f"U{u:02d}-{k:02d}", f"U{u:02d}", f"Indikator {k} bidang {u}",
                          unit_of_measure="orang",
                          targets=(TargetSpec(2024, 3, Decimal(100)),))
            for u in range(1, units + 1) for k in range(1, indicators + 1)]
    return OfficeSpec("Dinas", "Kabupaten", "Liwa", "X", tuple(us), tuple(people), tuple(inds))


def summary(name: str, latencies: list[float], elapsed: float) -> dict:
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100)
    result = {"name": name, "updates": len(lat), "throughput": len(lat) / elapsed,
              "p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000}
    print(f"{name:<32} {result['updates']:>7} {result['throughput']:>10.1f} "
          f"{result['p50']:>8.1f} {result['p95']:>8.1f} {result['p99']:>8.1f}")
    return result


async def full_bot(emu: BotApiEmulator, units: int, indicators: int,
                   url: str | None = None) -> dict:
    cfg, engine, sm, _ = await fresh_database(url=url)
    clock = ManualClock(datetime(2024, 10, 7, 8, 0, tzinfo=WIB))
    services = build_services(cfg, clock)
    async with sm() as s, s.begin():
        await apply_office(s, office(units, indicators))
    h = Harness(services, sm)
    h.run_jobs = False
    h.rate_limit = False  # as the echo bot: measure processing, not Telegram's limits
    await h.start(emulator=emu)
    async with sm() as s, s.begin():
        wf = Workflow(s, services)
        who = {p.role: p for p in (await s.execute(select(Person))).scalars()}
        cycle = await wf.start_cycle(who[Role.KADIS], CycleKind.QUARTERLY, 2024, 3, "bench")
        run2 = (await wf.current_steps(cycle.id))[0]
        await wf.forward_disposition(who[Role.SEKRETARIS], run2.id)
        run3 = (await wf.current_steps(cycle.id))[0]
        await wf.open_collection(who[Role.KASUBAG], run3.id, None)
    async with sm() as s:
        kabids = (await s.execute(select(Person).where(Person.role == Role.KABID))).scalars().all()
        runs = {r.assignee_id: r for r in (await s.execute(select(StepRun).where(
            StepRun.step_no == 4, StepRun.status == StepStatus.OPEN))).scalars()}
    users = [await h.register(p) for p in kabids]
    await h.sender.drain(timeout=60)
    latencies: list[float] = []

    async def person(user, kabid):
        request = await user.wait_for(text_contains="Permintaan data kinerja", timeout=60)
        q = await user.press(request, text="Mulai isi data")
        card = await user.wait_for(after=q, text_contains="Indikator 1 dari", timeout=30)
        for k in range(indicators):
            t0 = time.perf_counter()
            sent = await user.send_text(f"{80 + k},5")
            card = await user.wait_for(after=sent, text_contains="Tersimpan", timeout=30)
            latencies.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            q = await user.press(card, text="Lanjut")
            card = await user.wait_for(after=q, predicate=lambda m: bool(m.buttons) and (
                "Ringkasan data" in m.text or f"Indikator {k + 2} dari" in m.text), timeout=30)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(person(u, k) for u, k in zip(users, kabids)))
    elapsed = time.perf_counter() - t0
    await h.stop_bot()
    await engine.dispose()
    _ = runs
    return summary("full bot (answer + Lanjut)", latencies, elapsed)


async def echo_bot(emu: BotApiEmulator, people: int, per_person: int) -> dict:
    from telegram import Update
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    async def echo(update: Update, _context) -> None:
        await update.effective_message.reply_text(update.effective_message.text)

    app = (ApplicationBuilder().token(TEST_TOKEN).base_url(emu.base_url)
           .base_file_url(emu.base_file_url).build())
    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    latencies: list[float] = []

    async def person(i):
        user = emu.add_user(user_id=9_000_000 + i, first_name=f"E{i}")
        for k in range(per_person):
            t0 = time.perf_counter()
            sent = await user.send_text(f"gema {k}")
            await user.wait_for(after=sent, text_contains=f"gema {k}", timeout=30)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(person(i) for i in range(people)))
    elapsed = time.perf_counter() - t0
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    return summary("bare PTB echo bot", latencies, elapsed)


async def main(units: int, indicators: int, url: str | None = None) -> None:
    emu = BotApiEmulator(token=TEST_TOKEN)
    await emu.start()
    print(f"database: {'PostgreSQL' if url else 'SQLite'}")
    print(f"{'':<32} {'updates':>7} {'updates/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    echo = await echo_bot(emu, units, indicators * 2)
    full = await full_bot(emu, units, indicators, url)
    await emu.stop()
    ratio = full["throughput"] / echo["throughput"] * 100
    print(f"ratio full/echo throughput: {ratio:.0f} % (target >= 50 %) "
          f"{'MET' if ratio >= 50 else 'NOT MET'}")
    print(f"full bot p95: {full['p95']:.1f} ms (target < 50 ms) "
          f"{'MET' if full['p95'] < 50 else 'NOT MET'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=10)
    ap.add_argument("--indicators", type=int, default=20)
    ap.add_argument("--max-concurrent", type=int, default=0,
                    help="updates the bot processes at once (default: bot.intake's)")
    ap.add_argument("--database-url", default="",
                    help="a SCRATCH PostgreSQL database instead of SQLite: its tables are dropped")
    args = ap.parse_args()
    if args.max_concurrent:
        import bot.intake

        bot.intake.MAX_CONCURRENT = args.max_concurrent
    asyncio.run(main(args.units, args.indicators, args.database_url or None))
