"""Update handling: the full bot processing data-entry answers (each a committed
database write) against the local emulator, side by side with a bare PTB echo bot on
the same emulator, in the same run. Two modes:

    python bench/bench_updates.py --mode realistic [--people 10 50] [--indicators 8]
        [--pause 1 2] [--latency 0.1] [--no-limiter] [--database-url postgresql://...]
    python bench/bench_updates.py --mode saturation [--units 10 --indicators 20]
    python bench/bench_updates.py --mode realistic --bot-process [...]
    python bench/bench_updates.py --mode saturation --bot-process [...]
    python bench/bench_updates.py --mode saturation --count-statements [...]

``--bot-process``: each bot runs as its own process, the full bot as ``sopbot run``
with a deployment's configuration, the echo bot as ``bench/echo_bot.py``; the emulator
and the people run in a thread of this process, so the bot's process does only the
bot's work, as beside the real Telegram; its CPU per update is printed too, and this
process's (the emulator's and the people's), which at saturation may be what holds a
light bot up.

**realistic** (the default): each person pauses 1-2 s (uniform, seeded) before each
message or button press, as people on phones do; every Bot API call and every
``getUpdates`` answer crosses an emulated network round trip (``--latency``, the
emulator's ``latency``: half on the way in, half on the way back); both bots use the
rate limiter of ``bot/telegram/app.py`` (as in production). Printed per bot: "time the bot adds",
the moment the reply became visible in the person's chat minus the moment the person
sent the message, minus one round trip (the update's way to the bot and the reply's
way back: what any bot pays).

**saturation**: each person sends the next update as soon as the answer is there (a
closed loop without pauses), all at once, no round trip, no rate limiter (the emulator
does not enforce Telegram's limits): the bot's own processing. Latency is from the
moment the update is queued at the emulator to the bot's reply. Between the echo bot and
the full bot it prints the floor under the full bot's figure: PTB bots that make the
full bot's Bot API calls through its HTTP client and nothing else ("same calls, no
database"), that also keep a durable inbox (two commits an update), that commit once
an update, and that keep the inbox as the intake does and run the fewest SQL statements
the issue's design asks of an update, in Core, with no ORM, rules or rendering ("inbox
+ the design's SQL"; ``floor_bot``)."""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select  # noqa: E402

from bench.common import callgrind, callgrind_total, fresh_database, settle_memory  # noqa: E402,E501
from bot.core.clock import ManualClock  # noqa: E402
from bot.devtools.emulator import BotApiEmulator  # noqa: E402
from bot.devtools.harness import TEST_TOKEN, Harness  # noqa: E402
from bot.core.office_data import IndicatorSpec, OfficeSpec, PersonSpec, TargetSpec, UnitSpec, apply_office  # noqa: E402,E501
from bot.core.services import build_services  # noqa: E402
from bot.core.workflow import Workflow  # noqa: E402
from models import Person  # noqa: E402
from models.enums import CycleKind, Role  # noqa: E402

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


def _rate_limiter():
    """The rate limiter the bot's Application uses (bot/telegram/app.py)."""
    import bot.telegram.app as app_module

    factory = getattr(app_module, "rate_limiter", None)
    if factory is not None:
        return factory()
    from telegram.ext import AIORateLimiter

    return AIORateLimiter(max_retries=3)


class People:
    """How the simulated people behave: the pause before each action, and the
    measured samples (seconds from sending to the reply being visible)."""

    def __init__(self, pause: tuple[float, float], seed: int = 12) -> None:
        self.pause = pause
        self.rng = random.Random(seed)
        self.samples: list[float] = []

    async def think(self) -> None:
        if self.pause[1] > 0:
            await asyncio.sleep(self.rng.uniform(*self.pause))

    def visible(self, seen: list[float], test):
        """A wait_for predicate that notes the moment the matching reply is seen."""
        loop = asyncio.get_running_loop()

        def predicate(m) -> bool:
            if test(m):
                seen.append(loop.time())
                return True
            return False
        return predicate


def summary(name: str, latencies: list[float], elapsed: float, network: float = 0.0,
            cpu: float | None = None) -> dict:
    """Throughput and quantiles; ``network`` (one round trip) is taken off each sample;
    ``cpu``: the CPU seconds this process spent meanwhile, printed per update."""
    lat = sorted(x - network for x in latencies)
    q = statistics.quantiles(lat, n=100)
    result = {"name": name, "updates": len(lat), "throughput": len(lat) / elapsed,
              "p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000}
    more = ""
    if cpu is not None:
        result["cpu_ms"] = cpu / len(lat) * 1000
        more = f" {result['cpu_ms']:>13.2f}"
    print(f"{name:<28} {result['updates']:>7} {result['throughput']:>9.1f} "
          f"{result['p50']:>7.1f} {result['p95']:>7.1f} {result['p99']:>7.1f}{more}")
    return result


CALLGRIND_ENV = "BENCH_UPDATES_CALLGRIND"  # set in the run under valgrind (--callgrind)


COUNT_STATEMENTS = False  # --count-statements


class StatementCount:
    """``--count-statements``: the full bot's statements during the measured phase, by
    kind (SQLAlchemy's engine events: every statement, straight ones included, and each
    BEGIN, COMMIT and ROLLBACK), printed per update."""

    def __init__(self, engine) -> None:
        self.sync = engine.sync_engine
        self.kinds = collections.Counter()

    def _statement(self, _conn, _cursor, statement, *_args) -> None:
        words = " ".join(statement.split()).replace('"', "")
        table = re.search(r"(?:FROM|INTO|UPDATE) (\w+)", words)
        self.kinds[f"{words.split()[0]} {table.group(1) if table else ''}".strip()] += 1

    def _end(self, name: str):
        def count(_conn) -> None:
            self.kinds[f"<{name}>"] += 1
        return count

    def __enter__(self) -> "StatementCount":
        self._listeners = [("before_cursor_execute", self._statement)] + [
            (name, self._end(name.upper())) for name in ("begin", "commit", "rollback")]
        for name, fn in self._listeners:
            event.listen(self.sync, name, fn)
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._listeners:
            event.remove(self.sync, name, fn)

    def print(self, updates: int) -> None:
        total = sum(self.kinds.values())
        print(f"statements per update of the full bot ({updates} updates): {total / updates:.2f}")
        for kind, n in self.kinds.most_common():
            print(f"  {n / updates:6.2f}  {kind}")


def count_instructions(on: bool, name: str = "") -> None:
    """Under ``--callgrind``: only a bot's measured phase is counted (the counters zeroed
    and counting on at its start; off at its end, and dumped as ``name``)."""
    if os.environ.get(CALLGRIND_ENV):
        callgrind(*(["--zero", "--instr=on"] if on else ["--instr=off", f"--dump={name}"]))


async def person(user, answers: int, who: People, echo: bool = False) -> None:
    """One person's measured phase: pausing before each action, a typed answer and
    then "Lanjut" (the full bot), or a text and its echo (``echo``); each sample is
    sent to visible."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(who.rng.uniform(0, who.pause[1]))  # people do not start together
    for k in range(answers):
        await who.think()
        seen: list[float] = []
        t0 = loop.time()
        if echo:
            sent = await user.send_text(f"gema {k}")
            await user.wait_for(who.visible(seen, lambda m: m.text == f"gema {k}"),
                                after=sent, timeout=60)
            who.samples.append(seen[0] - t0)
            continue
        sent = await user.send_text(f"{80 + k},5")
        card = await user.wait_for(who.visible(seen, lambda m: "Tersimpan" in m.text),
                                   after=sent, timeout=60)
        who.samples.append(seen[0] - t0)
        await who.think()
        seen = []
        t0 = loop.time()
        q = await user.press(card, text="Lanjut")
        await user.wait_for(who.visible(seen, lambda m: bool(m.buttons) and (
            "Ringkasan data" in m.text or f"Indikator {k + 2} dari" in m.text)),
            after=q, timeout=60)
        who.samples.append(seen[0] - t0)


async def open_entry(user, request_timeout: float = 60, entry_timeout: float = 30) -> None:
    """A Kabid opens the data entry from the data request: indicator 1 is asked. The
    request of a long list comes in parts; its buttons are on the last one."""
    request = await user.wait_for(lambda m: "Mulai isi data" in m.button_texts,
                                  timeout=request_timeout)
    q = await user.press(request, text="Mulai isi data")
    await user.wait_for(after=q, text_contains="Indikator 1 dari", timeout=entry_timeout)


async def to_collection(sm, services) -> None:
    """The office's quarterly cycle taken to the data collection (step 3 opened): each
    Kabid has a data-entry run and a queued data request."""
    async with sm() as s, s.begin():
        wf = Workflow(s, services)
        role = {p.role: p for p in (await s.execute(select(Person))).scalars()}
        cycle = await wf.start_cycle(role[Role.KADIS], CycleKind.QUARTERLY, 2024, 3, "bench")
        run2 = (await wf.current_steps(cycle.id))[0]
        await wf.forward_disposition(role[Role.SEKRETARIS], run2.id)
        run3 = (await wf.current_steps(cycle.id))[0]
        await wf.open_collection(role[Role.KASUBAG], run3.id, None)


WEBHOOK_SECRET = "bench-secret"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def in_process_bot(emu: BotApiEmulator, units: int, indicators: int, *,
                         url: str | None, limiter: bool):
    """The full bot in this process (the harness, no scheduled jobs) against ``emu``, on
    a fresh database: the office, its cycle at the collection, every Kabid registered
    with the data entry open at indicator 1. Returns the harness, the engine and the
    Kabids' chats."""
    cfg, engine, sm, _ = await fresh_database(url=url)
    services = build_services(cfg, ManualClock(datetime(2024, 10, 7, 8, 0, tzinfo=WIB)))
    async with sm() as s, s.begin():
        await apply_office(s, office(units, indicators))
    h = Harness(services, sm)
    h.run_jobs = False
    h.rate_limit = limiter
    emu.latency = 0.0  # set-up without the round trip
    await h.start(emulator=emu)
    await to_collection(sm, services)
    async with sm() as s:
        kabids = (await s.execute(select(Person).where(Person.role == Role.KABID)
                                  .order_by(Person.id))).scalars().all()
    users = [await h.register(p) for p in kabids]
    await h.sender.drain(timeout=60)
    for user in users:
        await open_entry(user)
    return h, engine, users


async def full_bot(emu: BotApiEmulator, units: int, indicators: int, *, who: People,
                   limiter: bool, latency: float, url: str | None,
                   webhook: bool = False, split: str = "auto") -> dict:
    h, engine, users = await in_process_bot(emu, units, indicators, url=url, limiter=limiter)
    if hasattr(h.intake, "split_calls"):
        h.intake.split_calls = split
    server = None
    if webhook:  # from here the emulator POSTs the updates to the intake's webhook
        from bot.telegram.intake import WebhookServer

        h.intake._poller.cancel()
        await asyncio.wait({h.intake._poller})
        h.intake._poller = None
        server = WebhookServer(h.intake, listen="127.0.0.1", port=0, path="/hook",
                               secret=WEBHOOK_SECRET)
        await server.start()
        emu.webhook_connections = 40  # Telegram's default max_connections
        await h.app.bot.set_webhook(url="https://bench.example/hook",
                                    secret_token=WEBHOOK_SECRET)
        emu.deliver_webhook_to(f"http://127.0.0.1:{server.port}")
    emu.latency = latency
    settle_memory()
    count_instructions(True)
    counted = StatementCount(engine) if COUNT_STATEMENTS else contextlib.nullcontext()
    with counted:
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(person(u, indicators, who) for u in users))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    count_instructions(False, f"full:{len(who.samples)}")
    if COUNT_STATEMENTS:
        counted.print(len(who.samples))
    emu.latency = 0.0
    if server is not None:
        await h.app.bot.delete_webhook()
        await server.stop()
    await h.stop_bot()
    await engine.dispose()
    return summary("full bot (answer + Lanjut)", who.samples, elapsed, latency, cpu=cpu)


async def echo_bot(emu: BotApiEmulator, people: int, per_person: int, *, who: People,
                   limiter: bool, latency: float, webhook: bool = False) -> dict:
    from telegram import Update
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    async def echo(update: Update, _context) -> None:
        await update.effective_message.reply_text(update.effective_message.text)

    builder = (ApplicationBuilder().token(TEST_TOKEN).base_url(emu.base_url)
               .base_file_url(emu.base_file_url))
    if limiter:
        builder = builder.rate_limiter(_rate_limiter())
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    emu.settle_hook = None
    emu.latency = latency
    await app.initialize()
    await app.start()
    if webhook:  # PTB's own webhook server (tornado)
        port = free_port()
        emu.webhook_connections = 40
        await app.updater.start_webhook(listen="127.0.0.1", port=port, url_path="hook",
                                        webhook_url="https://bench.example/hook",
                                        secret_token=WEBHOOK_SECRET)
        emu.deliver_webhook_to(f"http://127.0.0.1:{port}")
    else:
        await app.updater.start_polling(poll_interval=0, timeout=1)

    users = [emu.add_user(user_id=9_000_000 + i, first_name=f"E{i}") for i in range(people)]
    settle_memory()
    count_instructions(True)
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(person(u, per_person, who, echo=True) for u in users))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    count_instructions(False, f"echo:{len(who.samples)}")
    await app.updater.stop()
    if webhook:
        await app.bot.delete_webhook()
    await app.stop()
    await app.shutdown()
    emu.latency = 0.0
    return summary("bare PTB echo bot", who.samples, elapsed, latency, cpu=cpu)


async def floor_bot(emu: BotApiEmulator, people: int, answers: int, *, who: People,
                    url: str | None = None, commits: int = 2, design: bool = False) -> dict:
    """What the data entry's exchange costs a bot that does nothing else: PTB's own
    application answers the measured people's typed answer and "Lanjut" with the full
    bot's Bot API calls (the new card with its buttons and the old card's buttons taken
    off; the press answered and its card edited in place), from a dict, with no
    database. With ``url`` it also keeps a durable inbox, the least the intake does:
    each update committed to a table before it is handled, and marked processed in a
    transaction of its own (the project's engine, so SQLite's WAL, ``synchronous=NORMAL``
    and ``BEGIN``; the table ``bench_floor_inbox`` is dropped and made again). With
    ``commits=1`` only the second of those transactions is made (the row written
    processed): the least an update whose effects are committed costs, as if storing
    it cost nothing (the intake stores a ``getUpdates`` batch in one transaction).

    ``design``: the durable inbox as the intake keeps it (both transactions begun
    ``IMMEDIATE``, their statements on the event loop: ``models.session.INLINE``), and
    in the processing transaction the fewest statements the issue's design asks of a
    typed answer and of "Lanjut", as Core point statements on small tables, with no
    ORM, no rules and no rendering: a typed answer reads the person with their
    conversation, the run, the indicator, its latest answer and the audit chain's head,
    writes the answer and the audit row, and updates the head and the conversation (9
    statements beside the mark); "Lanjut" reads the first four and updates the
    conversation (5). A lower bound for any bot that keeps that design on this stack."""
    import json

    import sqlalchemy as sa
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import ApplicationBuilder, CallbackQueryHandler, MessageHandler, filters

    from bot.telegram.request import AiohttpRequest
    from models.session import make_engine, make_sessionmaker

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Lanjut", callback_data="n"),
                                      InlineKeyboardButton("Ubah", callback_data="u")]])
    last: dict[int, int] = {}
    done: dict[int, int] = {}
    inbox = sa.Table("bench_floor_inbox", sa.MetaData(),
                     sa.Column("update_id", sa.BigInteger, primary_key=True),
                     sa.Column("payload", sa.Text, nullable=False),
                     sa.Column("processed", sa.Boolean, nullable=False))
    rows = sa.Table("bench_floor_rows", inbox.metadata,
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("n", sa.Integer, nullable=False),
                    sa.Column("text", sa.Text, nullable=False))
    log = sa.Table("bench_floor_log", inbox.metadata,
                   sa.Column("id", sa.Integer, primary_key=True),
                   sa.Column("text", sa.Text, nullable=False))
    engine = sm = None
    if url is not None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(inbox.metadata.drop_all)
            await conn.run_sync(inbox.metadata.create_all)
            await conn.execute(rows.insert(), [{"id": i, "n": 0, "text": "x" * 120}
                                               for i in range(1, 51)])
        sm = make_sessionmaker(engine)
    read = sa.select(rows).where(rows.c.id == sa.bindparam("k"))
    bump = rows.update().where(rows.c.id == sa.bindparam("k")).values(n=rows.c.n + 1)

    async def designed(update: Update, typed: bool) -> None:
        from models.session import INLINE

        payload = json.dumps(update.to_dict())
        async with sm(info={INLINE: True}) as session, session.begin():  # the store
            await session.execute(inbox.insert().values(
                update_id=update.update_id, payload=payload, processed=False))
        async with sm(info={INLINE: True}) as session, session.begin():  # the processing
            key = update.effective_chat.id % 50 + 1
            for _ in range(5 if typed else 4):
                (await session.execute(read, {"k": key})).first()
            if typed:
                for _ in range(2):
                    await session.execute(log.insert().values(text=payload[:200]))
                await session.execute(bump, {"k": key})
            await session.execute(bump, {"k": key})
            await session.execute(inbox.update().where(
                inbox.c.update_id == update.update_id).values(processed=True))

    async def durable(update: Update) -> None:
        if engine is None:
            return
        if design:
            await designed(update, update.effective_message is not None
                           and update.callback_query is None)
            return
        payload = json.dumps(update.to_dict())
        if commits == 1:
            async with engine.begin() as conn:
                await conn.execute(inbox.insert().values(
                    update_id=update.update_id, payload=payload, processed=True))
            return
        async with engine.begin() as conn:
            await conn.execute(inbox.insert().values(
                update_id=update.update_id, payload=payload, processed=False))
        async with engine.begin() as conn:
            await conn.execute(inbox.update().where(inbox.c.update_id == update.update_id)
                               .values(processed=True))

    async def on_text(update: Update, _context) -> None:
        await durable(update)
        chat = update.effective_chat.id
        k = done.get(chat, 0)
        card = await update.get_bot().send_message(
            chat, f"Tersimpan: {update.effective_message.text}. Indikator {k + 1}",
            reply_markup=keyboard)
        if chat in last:
            await update.get_bot().edit_message_reply_markup(chat, last[chat],
                                                             reply_markup=None)
        last[chat] = card.message_id

    async def on_press(update: Update, _context) -> None:
        await durable(update)
        chat = update.effective_chat.id
        done[chat] = done.get(chat, 0) + 1
        await update.callback_query.answer()
        await update.callback_query.edit_message_text(f"Indikator {done[chat] + 1} dari",
                                                      reply_markup=keyboard)

    # the full bot's HTTP client (bot/telegram/app.py), not PTB's httpx: the floor is
    # what the full bot's own stack pays
    app = (ApplicationBuilder().token(TEST_TOKEN).base_url(emu.base_url)
           .base_file_url(emu.base_file_url).request(AiohttpRequest(256))
           .get_updates_request(AiohttpRequest(1)).build())
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    app.add_handler(CallbackQueryHandler(on_press))
    emu.settle_hook = None
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    first = 9_600_000 if engine is None else 9_700_000 + 1000 * commits + 5000 * design
    users = [emu.add_user(user_id=first + i, first_name=f"F{i}") for i in range(people)]
    settle_memory()
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(person(u, answers, who) for u in users))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    if engine is not None:
        async with engine.begin() as conn:
            await conn.run_sync(inbox.metadata.drop_all)
        await engine.dispose()
    name = ("same calls, no database" if engine is None else "same calls + 1 commit" if
            commits == 1 else "inbox + the design's SQL" if design else
            "same calls + durable inbox")
    return summary(name, who.samples, elapsed, cpu=cpu)


HEADER = (f"{'':<28} {'updates':>7} {'updates/s':>9} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7}")


async def realistic(args) -> None:
    db = "PostgreSQL" if args.database_url else "SQLite"
    for n in args.people:
        for delivery in args.delivery:
            webhook = delivery == "webhook"
            print(f"\n{n} people pausing {args.pause[0]:g}-{args.pause[1]:g} s, round trip "
                  f"{args.latency * 1000:.0f} ms, rate limiter {'on' if args.limiter else 'off'}, "
                  f"{db}, {delivery}; figures are the time the bot adds "
                  f"(visible - sent - round trip)")
            print(HEADER + f" {'CPU ms/update':>13}")
            emu = BotApiEmulator(token=TEST_TOKEN)
            await emu.start()
            echo = await echo_bot(emu, n, args.indicators * 2, who=People(tuple(args.pause)),
                                  limiter=args.limiter, latency=args.latency, webhook=webhook)
            full = await full_bot(emu, n, args.indicators, who=People(tuple(args.pause)),
                                  limiter=args.limiter, latency=args.latency,
                                  url=args.database_url, webhook=webhook, split=args.split)
            await emu.stop()
            _ = echo
            print(f"full bot adds p95 {full['p95']:.0f} ms (target < 50 ms) "
                  f"{'MET' if full['p95'] < 50 else 'NOT MET'}; 429s issued by the emulator: "
                  f"{emu.stats.issued_429s}")


# ------------------------------------------------------------------ each bot its own process
async def _prepare_office(url: str, folder: Path, units: int, indicators: int) -> list[int]:
    """The office in a fresh database, its cycle at the collection, every person bound
    to a Telegram id (as registered): the Kabids' ids, whose data requests are queued."""
    from sqlalchemy import update

    from models import Outbox
    from models.base import utcnow
    from models.enums import OutboxStatus

    cfg, engine, sm, _ = await fresh_database(folder, url)
    services = build_services(cfg, ManualClock(datetime.now(WIB)))
    async with sm() as s, s.begin():
        await apply_office(s, office(units, indicators))
        people = (await s.execute(select(Person).order_by(Person.id))).scalars().all()
        for k, p in enumerate(people):
            p.telegram_user_id = PROCESS_UID0 + k
    await to_collection(sm, services)
    async with sm() as s, s.begin():
        kabids = (await s.execute(select(Person.telegram_user_id).where(
            Person.role == Role.KABID).order_by(Person.id))).scalars().all()
        # only the Kabids' data requests go out (the others were read long ago)
        await s.execute(update(Outbox).where(~Outbox.chat_id.in_(kabids))
                        .values(status=OutboxStatus.SENT, sent_at=utcnow()))
    await engine.dispose()
    return list(kabids)


PROCESS_UID0 = 5_100_000


async def _people(emulator, uids: list[int], answers: int, who: People, latency: float,
                  echo: bool) -> tuple[list[float], float]:
    """In the emulator's loop: each person answers (the full bot: a typed answer, then
    "Lanjut"; the echo bot: a text and its echo), pausing before each action; returns
    the samples (sent to visible) and the seconds the phase took."""
    users = [emulator.user(uid) for uid in uids]
    emulator.latency = 0.0
    if not echo:  # the data entry opened, without the round trip
        await asyncio.gather(*(open_entry(u, 120, 120) for u in users))
    emulator.latency = latency

    t0 = time.perf_counter()
    await asyncio.gather(*(person(u, answers, who, echo) for u in users))
    elapsed = time.perf_counter() - t0
    emulator.latency = 0.0
    return who.samples, elapsed


# the Bot API methods that name a chat: the rate limiter of bot/telegram/app.py holds
# them to 30 per second together (answerCallbackQuery, getUpdates, getFile ... are free)
_CHAT_METHOD = ("send", "edit", "delete", "copy", "forward", "pin", "unpin")


def limited_requests(emulator) -> int:
    """The requests the emulator received so far that the rate limiter counts."""
    return sum(count for method, count in emulator.stats.requests_by_method.items()
               if method.startswith(_CHAT_METHOD) and method != "deleteWebhook")


def realistic_processes(args, n: int, delivery: str) -> dict:
    """One realistic run with each bot as its own process (``sopbot run`` for the full
    bot, ``bench/echo_bot.py`` for the echo bot), the emulator and the people in a
    thread of this process: the bot's process does only the bot's work, as beside the
    real Telegram. Same people, pauses, round trip and limiter as the in-process run."""
    import subprocess

    from bench.common import Worker, process_cpu
    from bot.devtools.emulator import EmulatorThread

    webhook = delivery == "webhook"
    folder = Path(tempfile.mkdtemp(prefix="sopbot-bench-proc-"))
    rows = {}
    # limits counted, not enforced, as in the in-process run: the emulator's one send or
    # edit per second per chat is stricter than Telegram's (which allows short bursts),
    # and a typed answer takes the old card's buttons off and sends the new card at once
    with EmulatorThread() as emu:
        emulator = emu.emulator
        emulator.webhook_connections = 40  # Telegram's default max_connections
        # the bare echo bot: as PTB runs it by default (one update at a time), and with
        # PTB's concurrent updates (what the rate limiter alone costs a bot that answers
        # every person at once)
        for key, concurrent in (("echo", False), ("echo_concurrent", True)):
            uids = [(9_000_000 if not concurrent else 9_500_000) + i for i in range(n)]
            for uid in uids:
                emu.call(emulator.add_user, user_id=uid, first_name=f"E{uid}").started = True
            port = free_port()
            cmd = [sys.executable, str(ROOT / "bench" / "echo_bot.py"), "--base-url",
                   emu.base_url, "--file-url", emu.base_file_url]
            cmd += (["--limiter"] if args.limiter else []) + (["--concurrent"] if concurrent else [])
            if webhook:
                cmd += ["--webhook-port", str(port), "--webhook-secret", WEBHOOK_SECRET]
                emu.call(emulator.deliver_webhook_to, f"http://127.0.0.1:{port}")
            log_path = folder / f"{key}.log"
            with open(log_path, "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)})
                try:
                    end = time.monotonic() + 60
                    while "echo bot up" not in log_path.read_text() and time.monotonic() < end:
                        time.sleep(0.1)
                    time.sleep(1.0)  # the webhook set / the first poll out
                    cpu0, here0 = process_cpu(proc.pid), time.process_time()
                    calls0 = limited_requests(emulator)
                    samples, elapsed = emu.run(_people(
                        emulator, uids, args.indicators * 2, People(tuple(args.pause)),
                        args.latency, echo=True), timeout=None)
                    name = "bare PTB echo bot" + (", concurrent" if concurrent else "")
                    rows[key] = summary(name, samples, elapsed, args.latency)
                    rows[key]["cpu_ms"] = (process_cpu(proc.pid) - cpu0) / len(samples) * 1000
                    rows[key]["here_ms"] = (time.process_time() - here0) / len(samples) * 1000
                    rows[key]["limited"] = (limited_requests(emulator) - calls0) / len(samples)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
        emu.call(emulator.deliver_webhook_to, "")
        # the full bot: sopbot run
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        kabids = asyncio.run(_prepare_office(url, folder, n, args.indicators))
        for uid in kabids:
            emu.call(emulator.add_user, user_id=uid, first_name=f"Kabid {uid}").started = True
        cfg = folder / "config.toml"
        hook = ""
        if webhook:
            port = free_port()
            hook = (f'mode = "webhook"\nwebhook_url = "https://bench.example/hook"\n'
                    f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
                    f'webhook_secret = "{WEBHOOK_SECRET}"\n')
            emu.call(emulator.deliver_webhook_to, f"http://127.0.0.1:{port}")
        cfg.write_text(f'[telegram]\napi_base_url = "{emu.base_url}"\n'
                       f'file_base_url = "{emu.base_file_url}"\n{hook}'
                       f'[database]\nurl = "{url}"\n[storage]\npath = "{folder / "files"}"\n')
        worker = Worker(0, cfg, folder)
        try:
            worker.wait_for(r"webhook listening" if webhook else r"Application started", 120)
            if args.idle > 0:  # the bot up, the data entry not opened yet: nothing to do
                time.sleep(2.0)
                cpu0 = worker.cpu()
                time.sleep(args.idle)
                rows["idle_ms"] = (worker.cpu() - cpu0) / args.idle * 1000
            cpu0, here0 = worker.cpu(), time.process_time()
            calls0 = limited_requests(emulator)
            samples, elapsed = emu.run(_people(
                emulator, kabids, args.indicators, People(tuple(args.pause)), args.latency,
                echo=False), timeout=None)
            rows["full"] = summary("full bot (answer + Lanjut)", samples, elapsed, args.latency)
            rows["full"]["cpu_ms"] = (worker.cpu() - cpu0) / len(samples) * 1000
            rows["full"]["here_ms"] = (time.process_time() - here0) / len(samples) * 1000
            rows["full"]["limited"] = (limited_requests(emulator) - calls0) / len(samples)
        finally:
            rc = worker.stop()
        errors = worker.text().count("Traceback")
        rows["429s"] = emulator.stats.issued_429s
        rows["unhonoured"] = emulator.stats.unhonoured_429s
        if rc or errors:
            print(f"    the bot's exit code {rc}, {errors} tracebacks: log in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def realistic_in_processes(args) -> None:
    db = "PostgreSQL" if args.database_url else "SQLite"
    for n in args.people:
        for delivery in args.delivery:
            print(f"\n{n} people pausing {args.pause[0]:g}-{args.pause[1]:g} s, round trip "
                  f"{args.latency * 1000:.0f} ms, rate limiter {'on' if args.limiter else 'off'}, "
                  f"{db}, {delivery}, each bot its own process (the emulator and the people "
                  f"in this one); figures are the time the bot adds (visible - sent - round "
                  f"trip), load {os.getloadavg()[0]:.1f}")
            print(HEADER + f" {'CPU ms/update':>13}")
            rows = realistic_processes(args, n, delivery)
            for key in ("echo", "echo_concurrent", "full"):
                print(f"{'':<28} {'':>7} {'':>9} {'':>7} {'':>7} {'':>7} "
                      f"{rows[key]['cpu_ms']:>13.1f}  ({key})")
            print("requests with a chat (the rate limiter's 30 per second) per update: "
                  + ", ".join(f"{key} {rows[key]['limited']:.2f}"
                              for key in ("echo", "echo_concurrent", "full")))
            full = rows["full"]
            if "idle_ms" in rows:
                print(f"full bot idle before the run: {rows['idle_ms']:.1f} ms CPU per second")
            print(f"full bot adds p95 {full['p95']:.0f} ms (target < 50 ms) "
                  f"{'MET' if full['p95'] < 50 else 'NOT MET'}; 429s issued by the emulator: "
                  f"{rows['429s']}, not honoured {rows['unhonoured']}; load "
                  f"{os.getloadavg()[0]:.1f}")


def saturation_processes(args) -> None:
    """Saturation with each bot its own process (``realistic_processes`` with no pause,
    no round trip, no rate limiter, polling): the throughput of the echo bot (one update
    at a time as PTB runs it by default, and concurrent) and of the full bot, and the
    CPU per update of each bot's process and of this one."""
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nsaturation: {args.units} people, no pause, no round trip, no rate limiter, {db},"
          f" polling, each bot its own process (the emulator and the people in this one);"
          f" latency from queued to reply, load {os.getloadavg()[0]:.1f}")
    print(HEADER)
    from bot.cli import NO_RATE_LIMIT_ENV

    closed = argparse.Namespace(**{**vars(args), "pause": (0.0, 0.0), "latency": 0.0,
                                   "limiter": False, "idle": 0.0})
    os.environ[NO_RATE_LIMIT_ENV] = "1"  # sopbot run without its rate limiter
    try:
        rows = realistic_processes(closed, args.units, "polling")
    finally:
        os.environ.pop(NO_RATE_LIMIT_ENV, None)
    print("CPU ms per update: the bot's process, this process (the emulator and the people)")
    for key in ("echo", "echo_concurrent", "full"):
        r = rows[key]
        print(f"{r['name']:<36} {r['cpu_ms']:>6.2f} {r['here_ms']:>6.2f}")
    full = rows["full"]["throughput"]
    for key in ("echo", "echo_concurrent"):
        ratio = full / rows[key]["throughput"] * 100
        print(f"ratio full/{rows[key]['name']} throughput: {ratio:.0f} % (target >= 40 %) "
              f"{'MET' if ratio >= 40 else 'NOT MET'}")
    print(f"load {os.getloadavg()[0]:.1f}")


async def saturation(args) -> None:
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nsaturation: {args.units} people, no pause, no round trip, no rate limiter, {db};"
          f" latency from queued to reply")
    print(HEADER + f" {'CPU ms/update':>13}")
    emu = BotApiEmulator(token=TEST_TOKEN)
    await emu.start()
    echo = await echo_bot(emu, args.units, args.indicators * 2, who=People((0, 0)),
                          limiter=False, latency=0.0)
    if os.environ.get(CALLGRIND_ENV):  # instructions: the two bots the target compares
        await full_bot(emu, args.units, args.indicators, who=People((0, 0)), limiter=False,
                       latency=0.0, url=args.database_url, split=args.split)
        await emu.stop()
        return
    calls = await floor_bot(emu, args.units, args.indicators, who=People((0, 0)))
    folder = None
    if args.database_url is None:
        folder = Path(tempfile.mkdtemp(prefix="sopbot-bench-floor-"))
    url = args.database_url or f"sqlite:///{folder / 'floor.db'}"
    floor = await floor_bot(emu, args.units, args.indicators, who=People((0, 0)), url=url)
    least = await floor_bot(emu, args.units, args.indicators, who=People((0, 0)), url=url,
                            commits=1)
    design = await floor_bot(emu, args.units, args.indicators, who=People((0, 0)), url=url,
                             design=True)
    full = await full_bot(emu, args.units, args.indicators, who=People((0, 0)),
                          limiter=False, latency=0.0, url=args.database_url, split=args.split)
    await emu.stop()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    for row in (calls, floor, least, design, full):
        print(f"{row['name']:<28} {row['throughput'] / echo['throughput'] * 100:>6.0f} % of "
              f"the echo bot's throughput")
    ratio = full["throughput"] / echo["throughput"] * 100
    print(f"ratio full/echo throughput: {ratio:.0f} % (target >= 40 %) "
          f"{'MET' if ratio >= 40 else 'NOT MET'}; full bot / same calls + durable inbox: "
          f"{full['throughput'] / floor['throughput'] * 100:.0f} %; the design's SQL alone "
          f"(no ORM, rules or rendering): {design['throughput'] / echo['throughput'] * 100:.0f} %")
    # this process does all the work (the emulator, the people, the bot) on one thread:
    # updates per CPU second is its throughput when it waits for nothing. On a shared
    # machine CPU time moves with the others' work too (28 November: the echo bot's
    # 1.9-4.0 ms an update from run to run, as its updates/s), only less often
    by_cpu = echo["cpu_ms"] / full["cpu_ms"] * 100
    print(f"ratio full/echo by this process's CPU per update ({echo['cpu_ms']:.2f} / "
          f"{full['cpu_ms']:.2f} ms): {by_cpu:.0f} % (target >= 40 %) "
          f"{'MET' if by_cpu >= 40 else 'NOT MET'}")


def saturation_instructions(args, argv: list[str]) -> None:
    """``--callgrind``: this saturation run again under valgrind, counting the
    instructions of the echo bot's and the full bot's measured phases (repeatable where
    time and CPU time on a shared machine are not; about 50 times slower, so with few
    people), and the full bot's share of the echo bot by instructions per update."""
    folder = Path(tempfile.mkdtemp(prefix="sopbot-bench-callgrind-"))
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
           f"--callgrind-out-file={folder / 'out'}", sys.executable, str(Path(__file__)),
           *[a for a in argv if a != "--callgrind"]]
    done = subprocess.run(cmd, env={**os.environ, CALLGRIND_ENV: "1"},
                          stderr=subprocess.DEVNULL)
    if done.returncode:
        raise SystemExit(f"the run under valgrind failed ({done.returncode})")
    per_update = {}
    for dump in sorted(folder.glob("out.*")):
        text = dump.read_text()
        name = re.search(r"^desc: Trigger: dump (\w+):(\d+)$", text, re.M)
        if name:
            per_update[name.group(1)] = callgrind_total(text) / int(name.group(2))
    shutil.rmtree(folder, ignore_errors=True)
    echo, full = per_update["echo"], per_update["full"]
    print(f"instructions per update (valgrind --tool=callgrind, each bot's measured phase, "
          f"this whole process): echo bot {echo / 1e6:.2f} M, full bot {full / 1e6:.2f} M; "
          f"full/echo by instructions: {echo / full * 100:.0f} % (target >= 40 %) "
          f"{'MET' if echo / full >= 0.40 else 'NOT MET'}")


async def main(args) -> None:
    import logging

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # a poll cut at shutdown
    if args.mode in ("realistic", "both"):
        if args.bot_process:
            await asyncio.to_thread(realistic_in_processes, args)
        else:
            await realistic(args)
    if args.mode in ("saturation", "both"):
        if args.bot_process:
            await asyncio.to_thread(saturation_processes, args)
        else:
            await saturation(args)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["realistic", "saturation", "both"], default="realistic")
    ap.add_argument("--people", type=int, nargs="+", default=[10, 50],
                    help="realistic: the numbers of people, one run each")
    ap.add_argument("--units", type=int, default=10, help="saturation: the number of people")
    ap.add_argument("--indicators", type=int, default=None,
                    help="answers per person (realistic 8, saturation 20)")
    ap.add_argument("--pause", type=float, nargs=2, default=[1.0, 2.0], metavar=("MIN", "MAX"))
    ap.add_argument("--latency", type=float, default=0.1, help="round trip, seconds")
    ap.add_argument("--no-limiter", dest="limiter", action="store_false")
    ap.add_argument("--delivery", nargs="+", choices=["polling", "webhook"], default=["polling"],
                    help="realistic: how updates reach the bots (getUpdates, or the emulator "
                         "POSTing them to a webhook), one run each")
    ap.add_argument("--split", choices=["auto", "always", "never"], default="auto",
                    help="whether an update's Bot API calls are made outside its transaction "
                         "(the intake's split_calls)")
    ap.add_argument("--max-concurrent", type=int, default=0,
                    help="updates the bot processes at once (default: the intake's)")
    ap.add_argument("--idle", type=float, default=10.0,
                    help="--bot-process: seconds the full bot's idle CPU is measured "
                         "before the people start (0: not measured)")
    ap.add_argument("--bot-process", action="store_true",
                    help="each bot runs as its own process (sopbot run; "
                         "bench/echo_bot.py), the emulator and the people in this one")
    ap.add_argument("--database-url", default=None,
                    help="a SCRATCH PostgreSQL database instead of SQLite: its tables are dropped")
    ap.add_argument("--count-statements", action="store_true",
                    help="in this process: print the full bot's statements per update, "
                         "by kind, each BEGIN, COMMIT and ROLLBACK counted")
    ap.add_argument("--callgrind", action="store_true",
                    help="saturation in this process: run again under valgrind and print "
                         "the echo bot's and the full bot's instructions per update")
    a = ap.parse_args()
    COUNT_STATEMENTS = a.count_statements
    if a.indicators is None:
        a.indicators = 8 if a.mode == "realistic" else 20
    if a.max_concurrent:
        import bot.telegram.intake

        bot.telegram.intake.MAX_CONCURRENT = a.max_concurrent
    if a.callgrind:
        if a.mode != "saturation" or a.bot_process:
            raise SystemExit("--callgrind: --mode saturation in this process only")
        saturation_instructions(a, sys.argv[1:])
    else:
        asyncio.run(main(a))
