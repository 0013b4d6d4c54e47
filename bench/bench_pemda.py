"""A regency on one PostgreSQL database (issue 16): many offices, several bot processes.

For each number of worker processes (``--processes 1 2 4``) a database gets
``--offices`` offices of ``--people`` people each (Kadis, Sekretaris, Kasubag, a staff
member of the Sekretariat and one Kabid per bidang for the rest), every person bound to
a Telegram account of the emulator, and in every office a quarterly cycle taken to the
data collection (each Kabid has an open data-entry run). Then that many ``sopbot run``
processes (the real program, over real HTTP, as ``tests/test_processes.py`` starts them)
serve the emulator, which enforces Telegram's limits (30 messages/s per bot, one per
second per chat, 429 with ``retry_after``), and three things are measured:

(a) **updates**: ``--senders`` Kabid per office (the same people, pauses and answers
    for every process count: seeded) each press "Mulai isi data" and then answer
    ``--answers`` indicators (a typed answer, then "Lanjut"), pausing ``--pause`` seconds
    (uniform) before each action. Throughput (updates/s over the whole phase) and
    time-to-reply (the update queued at the emulator to the reply visible in the chat):
    p50, p95. Meanwhile the database sessions waiting for a lock are sampled (how
    many on average, and on what statement): where people of different offices queue.
(b) **a regency-wide reminder round**: every open step run of every office is made
    due a minute ago (``due_at`` set in the database), the sweep runs (in this script,
    with ``office_hours_only`` off: the round goes out whatever the hour), and the
    processes' outbox senders deliver one reminder per holder. Measured: messages/s from
    the sweep's commit to the last reminder in the chats, as % of Telegram's 30/s (target
    >= 90 %), the 429s the emulator issued and those not honoured (a request made inside
    the ``retry_after`` it was given). A round of fewer than 30 messages may go out
    within one second (above 100 %): the rate means something from a few hundred on.
(c) **sweep time**: the sweep that records that round (every office at once), then the
    mean of ``--steady`` sweeps right after (nothing new due: what the repeating job costs
    every minute with every office's runs open).

``--growth-offices 10`` adds runs at 1 process with that many offices (same people per
office, same senders per office), to see how each figure grows with offices.

Usage::

    python bench/bench_pemda.py [--offices 40] [--people 60] [--processes 1 2 4]
        [--growth-offices 10] [--senders 1] [--answers 3] [--pause 1 2]
        [--database-url postgresql://postgres@127.0.0.1:5432/SCRATCH]
    python bench/bench_pemda.py --quick     # 4 offices x 12 people, 1 and 2 processes

The regency is seeded once per office count into a database ``NAME_seedN`` and every
run gets a fresh copy of it (``CREATE DATABASE NAME TEMPLATE NAME_seedN``), so each
process count starts from the same state. NAME is ``pemda_bench`` on
postgresql://postgres@127.0.0.1:5432, or the database of ``--database-url``: a SCRATCH
name, since it is dropped and re-created; all of them are dropped at the end. The bot
processes get this script's environment (``SOPBOT_SPLIT_CALLS=always``, say, makes
them make an update's Bot API calls outside its transaction). The machine's load
average is printed with every figure: on a shared machine the figures say as much
about the other work as about the bot. No asserts: it prints the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import Worker  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.core.clock import SystemClock  # noqa: E402
from bot.core.office_data import (  # noqa: E402
    IndicatorSpec, OfficeSpec, PersonSpec, TargetSpec, UnitSpec, apply_office,
)
from bot.core.reminders import sweep  # noqa: E402
from bot.core.services import build_services  # noqa: E402
from bot.core.workflow import Workflow  # noqa: E402
from bot.telegram.ratelimit import QUIET  # noqa: E402
from models import Outbox, Person, StepRun, Unit  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.enums import CycleKind, OutboxStatus, Role, StepStatus  # noqa: E402
from models.session import make_engine, make_sessionmaker  # noqa: E402

CEILING = 30.0  # Telegram: messages per second per bot
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
YEAR, QUARTER = 2026, 3
UID0 = 70_000_000  # Telegram user ids: UID0 + office * 1000 + k


def load() -> str:
    return "load %.1f/%.1f/%.1f" % os.getloadavg()


def note(text_: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text_}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the regency
def office_spec(n: int, people: int, answers: int) -> OfficeSpec:
    """Office ``n``: 4 people of the Sekretariat and one Kabid per bidang for the rest;
    ``answers`` indicators per bidang. Names carry <, &, quotes and an emoji."""
    units = max(1, people - 4)
    us = [UnitSpec("SEK", "Sekretariat", True)] + [
        UnitSpec(f"U{i:02d}", f"Bidang {i} & \"Layanan\" <{n}>") for i in range(1, units + 1)]
    base = 10 ** 17 * (1 + n % 9) + n * 10_000
    ps = [PersonSpec(f"Kadis {n} 🙂", Role.KADIS, f"{base + 1:018d}"),
          PersonSpec(f"Sekretaris {n}", Role.SEKRETARIS, f"{base + 2:018d}", "SEK"),
          PersonSpec(f"Kasubag {n} & Co", Role.KASUBAG, f"{base + 3:018d}", "SEK"),
          PersonSpec(f"Staf Sek {n}", Role.STAF, f"{base + 4:018d}", "SEK")]
    ps += [PersonSpec(f"Kabid {i} <{n}> \"Bu Sri\"", Role.KABID, f"{base + 10 + i:018d}",
                      f"U{i:02d}") for i in range(1, units + 1)]
    inds = [IndicatorSpec(f"U{u:02d}-{k:02d}", f"U{u:02d}", f"Indikator {k} bidang {u}",
                          unit_of_measure="orang",
                          targets=(TargetSpec(YEAR, QUARTER, Decimal(100)),))
            for u in range(1, units + 1) for k in range(1, answers + 1)]
    return OfficeSpec(f"Dinas {n:02d} Kabupaten", "Kabupaten Lampung Barat", "Liwa",
                      f"B.{n:02d}", tuple(us), tuple(ps), tuple(inds))


# how long a chat must be quiet before an old card's buttons come off, as the bots here
# are configured (Config's default interval)
QUIET_SECONDS = QUIET * Config().outbox.per_chat_interval_seconds


def services_for(url: str, folder: Path):
    cfg = Config()
    cfg.base_dir = folder
    cfg.database.url = url
    cfg.storage.path = str(folder / "files")
    cfg.reminders.office_hours_only = False  # the round goes out whatever the hour
    return cfg, build_services(cfg, SystemClock())


async def seed(url: str, folder: Path, offices: int, people: int, answers: int,
               senders: int) -> dict:
    """The offices, every person bound to an account, every office's cycle at the
    collection. Set-up messages are marked sent except the senders' data requests."""
    _, services = services_for(url, folder)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    t0 = time.perf_counter()
    users: list[tuple[int, str]] = []
    sender_uids: list[int] = []
    for n in range(1, offices + 1):
        async with sm() as s, s.begin():
            office = await apply_office(s, office_spec(n, people, answers))
            rows = (await s.execute(select(Person).where(Person.office_id == office.id)
                                    .order_by(Person.id))).scalars().all()
            for k, p in enumerate(rows):
                p.telegram_user_id = UID0 + n * 1000 + k
                users.append((p.telegram_user_id, p.name[:60]))
            units = {u.id: u.code for u in (await s.execute(
                select(Unit).where(Unit.office_id == office.id))).scalars()}
            kabids = sorted((p for p in rows if p.role == Role.KABID),
                            key=lambda p: units.get(p.unit_id, ""))
            sender_uids += [p.telegram_user_id for p in kabids[:senders]]
            role = {p.role: p for p in rows if p.role != Role.KABID}
        oid = office.id

        async def step(fn):
            async with sm() as s, s.begin():
                return await fn(await Workflow(s, services, oid).ready())

        cycle = await step(lambda wf: wf.start_cycle(role[Role.KADIS], CycleKind.QUARTERLY,
                                                     YEAR, QUARTER, "Mohon segera"))

        async def open_step(no: int) -> int:
            async with sm() as s:
                return (await s.execute(select(StepRun.id).where(
                    StepRun.cycle_id == cycle.id, StepRun.step_no == no,
                    StepRun.status == StepStatus.OPEN))).scalar_one()

        run2 = await open_step(2)
        await step(lambda wf: wf.forward_disposition(role[Role.SEKRETARIS], run2, "Mohon"))
        run3 = await open_step(3)
        await step(lambda wf: wf.open_collection(role[Role.KASUBAG], run3, None))
        if n % 10 == 0:
            note(f"seeded {n} offices in {time.perf_counter() - t0:.0f} s")
    async with sm() as s, s.begin():
        keep = select(Person.id).where(Person.telegram_user_id.in_(sender_uids))
        await s.execute(update(Outbox).where(
            Outbox.status == OutboxStatus.PENDING,
            ~(Outbox.person_id.in_(keep) & Outbox.payload["text"].as_string().contains(
                "Permintaan data kinerja"))).values(status=OutboxStatus.SENT, sent_at=utcnow()))
        open_runs = (await s.execute(select(func.count()).select_from(StepRun).where(
            StepRun.status == StepStatus.OPEN))).scalar_one()
        pending = (await s.execute(select(func.count()).select_from(Outbox).where(
            Outbox.status == OutboxStatus.PENDING))).scalar_one()
    await engine.dispose()
    return {"users": users, "senders": sender_uids, "open_runs": open_runs,
            "requests": pending, "seconds": time.perf_counter() - t0}


async def outbox_busy(url: str) -> int:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        busy = (await s.execute(select(func.count()).select_from(Outbox).where(
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).scalar_one()
    await engine.dispose()
    return busy


async def round_and_sweeps(url: str, folder: Path, steady: int) -> dict:
    """Every open run due a minute ago; the sweep that records the round (timed), then
    ``steady`` sweeps with nothing new due (timed)."""
    _, services = services_for(url, folder)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    now = utcnow()
    async with sm() as s, s.begin():
        await s.execute(update(StepRun).where(StepRun.status == StepStatus.OPEN).values(
            due_at=now - timedelta(minutes=1)))
        await s.execute(text("ANALYZE"))
    t0 = time.perf_counter()
    async with sm() as s, s.begin():
        made = await sweep(s, services)
    committed = time.time()
    first_ms = (time.perf_counter() - t0) * 1000
    async with sm() as s:
        queued = (await s.execute(select(func.count()).select_from(Outbox).where(
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).scalar_one()
    times = []
    for _ in range(steady):
        t1 = time.perf_counter()
        async with sm() as s, s.begin():
            await sweep(s, services)
        times.append((time.perf_counter() - t1) * 1000)
    await engine.dispose()
    return {"first_ms": first_ms, "reminders": len(made), "queued": queued,
            "committed": committed, "steady_ms": statistics.mean(times) if times else 0.0}


async def outbox_outcome(url: str) -> dict:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        rows = dict((await s.execute(select(Outbox.status, func.count()).group_by(
            Outbox.status))).all())
        retried = (await s.execute(select(func.count()).select_from(Outbox).where(
            Outbox.attempts > 1))).scalar_one()
    await engine.dispose()
    return {"failed": rows.get(OutboxStatus.FAILED, 0), "retried": retried}


class LockWaits:
    """Samples, every ``every`` seconds in a thread of its own, the database sessions
    that wait for a lock (``pg_stat_activity.wait_event_type = 'Lock'``) and what they
    run: where updates of different people queue behind each other."""

    SQL = ("SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity "
           "WHERE datname = current_database() AND wait_event_type = 'Lock'")

    def __init__(self, url: str, every: float = 0.25) -> None:
        import threading
        from collections import Counter

        self.url, self.every = url, every
        self.samples = 0
        self.waiting = 0          # sum over the samples of the sessions waiting
        self.busy = 0             # samples with at least one session waiting
        self.queries: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.run(self._sample())

    async def _sample(self) -> None:
        engine = make_engine(self.url)
        try:
            async with engine.connect() as conn:
                while not self._stop.is_set():
                    rows = (await conn.execute(text(self.SQL))).scalars().all()
                    await conn.commit()
                    self.samples += 1
                    self.waiting += len(rows)
                    self.busy += bool(rows)
                    self.queries.update(rows)
                    await asyncio.sleep(self.every)
        finally:
            await engine.dispose()

    def __enter__(self) -> "LockWaits":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        top = "; ".join(f"{n} x {q!r}" for q, n in self.queries.most_common(2))
        return (f"sessions waiting for a lock: mean {self.waiting / self.samples:.1f}, in "
                f"{self.busy / self.samples * 100:.0f} % of {self.samples} samples"
                + (f"; most: {top}" if top else ""))


# ------------------------------------------------------------------ the processes
# ------------------------------------------------------------------ the people
async def enter_data(emu, uids: list[int], answers: int, pause: tuple[float, float],
                     seed_: int = 16) -> dict:
    """The senders start the data entry, then answer: the measured phase."""
    loop = asyncio.get_running_loop()
    users = [emu.user(uid) for uid in uids]
    starts = {}

    async def start(user) -> None:
        request = await user.wait_for(text_contains="Permintaan data kinerja", timeout=180)
        q = await user.press(request, text="Mulai isi data")
        starts[user.user_id] = await user.wait_for(
            after=q, text_contains="Indikator 1 dari", timeout=180)

    await asyncio.gather(*(start(u) for u in users))
    samples: list[float] = []
    rngs = {u.user_id: random.Random(seed_ * 1_000_003 + u.user_id) for u in users}
    failures: list[str] = []

    def visible(seen: list[float], test):
        def predicate(m) -> bool:
            if test(m):
                seen.append(loop.time())
                return True
            return False
        return predicate

    async def person(user) -> None:
        rng = rngs[user.user_id]
        await asyncio.sleep(rng.uniform(0, pause[1]))
        try:
            for k in range(answers):
                await asyncio.sleep(rng.uniform(*pause))
                seen: list[float] = []
                t0 = loop.time()
                sent = await user.send_text(f"{80 + k},5")
                card = await user.wait_for(visible(seen, lambda m: "Tersimpan" in m.text),
                                           after=sent, timeout=180)
                samples.append(seen[0] - t0)
                await asyncio.sleep(rng.uniform(*pause))
                seen = []
                t0 = loop.time()
                q = await user.press(card, text="Lanjut")
                await user.wait_for(visible(seen, lambda m: bool(m.buttons) and (
                    "Ringkasan data" in m.text or f"Indikator {k + 2} dari" in m.text)),
                    after=q, timeout=180)
                samples.append(seen[0] - t0)
        except Exception as exc:  # noqa: BLE001 - reported with the figures
            shown = [(m.message_id, m.text[:50], bool(m.buttons)) for m in user.messages[-3:]]
            failures.append(f"{user.user_id}: {type(exc).__name__}; the chat's last messages "
                            f"(id, text, buttons): {shown}")

    t0 = time.perf_counter()
    await asyncio.gather(*(person(u) for u in users))
    elapsed = time.perf_counter() - t0
    lat = sorted(samples)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    # each update follows one pause: a person offers at most one per mean pause
    offered = len(users) / statistics.mean(pause) if pause[1] > 0 else float("nan")
    return {"updates": len(lat), "seconds": elapsed, "throughput": len(lat) / elapsed,
            "p50": q[49] * 1000, "p95": q[94] * 1000, "offered": offered,
            "failures": failures}


async def delivered(emu, expect: int, since: int, timeout: float) -> tuple[int, float]:
    """Wait until ``expect`` more messages than ``since`` are in the chats; returns the
    count and the wall-clock moment the last one arrived."""
    end = time.monotonic() + timeout
    last, seen_at = since, time.time()
    while time.monotonic() < end:
        now_count = emu.stats.sent_messages
        if now_count != last:
            last, seen_at = now_count, time.time()
        if now_count - since >= expect:
            break
        await asyncio.sleep(0.02)
    return last - since, seen_at


# ------------------------------------------------------------------ one configuration
@dataclass
class Result:
    offices: int
    processes: int
    people: int
    figures: dict = field(default_factory=dict)


def run_one(args, server: dict, name: str, seeded: dict, offices: int,
            processes: int) -> Result:
    from bot.devtools.emulator import EmulatorThread

    res = Result(offices, processes, offices * args.people)
    f = res.figures
    print(f"\n== {offices} offices x {args.people} people, {processes} process(es); "
          f"{load()} ==", flush=True)
    # the same seeded regency for every process count: a copy of the seeded database
    asyncio.run(create_database(server, name, template=seeded["database"]))
    url = server["url"](name)
    folder = Path(tempfile.mkdtemp(prefix="sopbot-pemda-"))
    f["seed_s"] = seeded["seconds"]
    f["open_runs"] = seeded["open_runs"]
    workers: list[Worker] = []
    with EmulatorThread(enforce_limits=True) as emu:
        emulator = emu.emulator
        for uid, name in seeded["users"]:
            emu.call(emulator.add_user, user_id=uid, first_name=name).started = True
        cfg = folder / "config.toml"
        cfg.write_text(
            f'[telegram]\napi_base_url = "{emu.base_url}"\n'
            f'file_base_url = "{emu.base_file_url}"\n'
            f'[database]\nurl = "{url}"\n[storage]\npath = "{folder / "files"}"\n'
            # the start-up tick only; the round's sweep is this script's
            f'[reminders]\nsweep_interval_seconds = 86400\n')
        try:
            workers.append(Worker(0, cfg, folder, receive=True))
            workers[0].wait_for(r"receives the updates", 120)
            workers += [Worker(n, cfg, folder, receive=False) for n in range(1, processes)]
            for w in workers[1:]:
                w.wait_for(r"holds its life lock", 120)
            # the start-up messages (the senders' data requests, a digest) out first
            end = time.monotonic() + 300
            while asyncio.run(outbox_busy(url)) and time.monotonic() < end:
                time.sleep(0.5)
            note(f"{processes} process(es) up; {load()}")

            # (a) updates
            cpu0 = [w.cpu() for w in workers]
            f["load_a"] = os.getloadavg()[0]
            issued0, unhonoured0 = emulator.stats.issued_429s, emulator.stats.unhonoured_429s
            overall0 = emulator.stats.overall_429s
            with LockWaits(url) as waits:
                a = emu.run(enter_data(emulator, seeded["senders"], args.answers,
                                       tuple(args.pause)), timeout=None)
            f["lock_wait_mean"] = waits.waiting / max(1, waits.samples)
            f["cpu_a"] = [round(w.cpu() - c, 1) for w, c in zip(workers, cpu0)]
            f.update({k: a[k] for k in ("updates", "throughput", "p50", "p95", "offered")})
            f["failures"] = a["failures"]
            f["issued_429_a"] = emulator.stats.issued_429s - issued0
            f["unhonoured_429_a"] = emulator.stats.unhonoured_429s - unhonoured0
            f["overall_429_a"] = emulator.stats.overall_429s - overall0
            print(f"(a) {len(seeded['senders'])} people, {a['updates']} updates in "
                  f"{a['seconds']:.1f} s: {a['throughput']:.1f} updates/s (offered about "
                  f"{a['offered']:.1f}), time to reply p50 {a['p50']:.0f} ms, p95 "
                  f"{a['p95']:.0f} ms; 429s issued {f['issued_429_a']} (of the overall "
                  f"limit {f['overall_429_a']}), not honoured "
                  f"{f['unhonoured_429_a']}; CPU s per process {f['cpu_a']}; {load()}"
                  + (f"; FAILED: {a['failures'][:3]}" if a["failures"] else ""), flush=True)
            print(f"    {waits.summary()}", flush=True)
            # (a)'s old cards lose their buttons once each chat has been quiet
            # (bot/telegram/ratelimit.py, QUIET intervals): (b) measures the round, not
            # them
            time.sleep(QUIET_SECONDS + 2)
            end = time.monotonic() + 120
            while asyncio.run(outbox_busy(url)) and time.monotonic() < end:
                time.sleep(0.5)

            # (b) + (c) the reminder round and the sweep
            since = emulator.stats.sent_messages
            issued0, unhonoured0 = emulator.stats.issued_429s, emulator.stats.unhonoured_429s
            cpu0 = [w.cpu() for w in workers]
            f["load_b"] = os.getloadavg()[0]
            r = asyncio.run(round_and_sweeps(url, folder, args.steady))
            count, last_at = emu.run(delivered(emulator, r["queued"], since,
                                               r["queued"] / 10 + 120), timeout=None)
            seconds = max(1e-6, last_at - r["committed"])
            rate = count / seconds
            out = asyncio.run(outbox_outcome(url))
            f.update({"sweep_ms": r["first_ms"], "steady_ms": r["steady_ms"],
                      "reminders": r["reminders"], "queued": r["queued"],
                      "delivered": count, "round_s": seconds, "rate": rate,
                      "issued_429": emulator.stats.issued_429s - issued0,
                      "unhonoured_429": emulator.stats.unhonoured_429s - unhonoured0,
                      "failed": out["failed"], "retried": out["retried"],
                      "cpu_b": [round(w.cpu() - c, 1) for w, c in zip(workers, cpu0)]})
            print(f"(b) round: {count} of {r['queued']} messages in {seconds:.1f} s = "
                  f"{rate:.1f} msg/s = {rate / CEILING * 100:.1f} % of 30/s (target >= 90 %) "
                  f"{'MET' if rate >= 0.9 * CEILING else 'NOT MET'}; 429s issued "
                  f"{f['issued_429']}, not honoured {f['unhonoured_429']}; rows retried "
                  f"{out['retried']}, failed {out['failed']}; CPU s per process "
                  f"{f['cpu_b']}; {load()}", flush=True)
            print(f"(c) sweep: {r['reminders']} reminder points over {f['open_runs']} open "
                  f"runs recorded in {r['first_ms']:.0f} ms; steady sweep mean "
                  f"{r['steady_ms']:.1f} ms over {args.steady}", flush=True)
        finally:
            rcs = [w.stop() for w in workers]
        errors = sum(len(re.findall(r"Traceback|ERROR", w.text())) for w in workers)
        f["log_errors"] = errors
        if errors or any(rcs) or f.get("failures"):
            print(f"    worker exit codes {rcs}; ERROR/Traceback lines in their logs: {errors} "
                  f"(logs in {folder})", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return res


def table(results: list[Result]) -> None:
    cols = [(f"{r.offices}x{r.people // r.offices}, {r.processes}p") for r in results]
    rows = [
        ("people / open runs", lambda f, r: f"{r.people}/{f['open_runs']}"),
        ("load avg (a)", lambda f, r: f"{f['load_a']:.1f}"),
        ("(a) updates", lambda f, r: f"{f['updates']}"),
        ("(a) updates/s", lambda f, r: f"{f['throughput']:.1f}"),
        ("(a) offered/s", lambda f, r: f"{f['offered']:.1f}"),
        ("(a) p50 ms", lambda f, r: f"{f['p50']:.0f}"),
        ("(a) p95 ms", lambda f, r: f"{f['p95']:.0f}"),
        ("(a) CPU s, sum", lambda f, r: f"{sum(f['cpu_a']):.1f}"),
        ("(a) lock waiters", lambda f, r: f"{f['lock_wait_mean']:.1f}"),
        ("(a) 429 issued (overall)", lambda f, r: f"{f['issued_429_a']} ({f['overall_429_a']})"),
        ("(a) 429 unhonoured", lambda f, r: f"{f['unhonoured_429_a']}"),
        ("load avg (b)", lambda f, r: f"{f['load_b']:.1f}"),
        ("(b) messages", lambda f, r: f"{f['delivered']}/{f['queued']}"),
        ("(b) seconds", lambda f, r: f"{f['round_s']:.1f}"),
        ("(b) msg/s", lambda f, r: f"{f['rate']:.1f}"),
        ("(b) % of 30/s", lambda f, r: f"{f['rate'] / CEILING * 100:.1f}"),
        ("(b) 429 issued", lambda f, r: f"{f['issued_429']}"),
        ("(b) 429 unhonoured", lambda f, r: f"{f['unhonoured_429']}"),
        ("(b) rows failed", lambda f, r: f"{f['failed']}"),
        ("(c) round sweep ms", lambda f, r: f"{f['sweep_ms']:.0f}"),
        ("(c) steady sweep ms", lambda f, r: f"{f['steady_ms']:.1f}"),
    ]
    width = max(14, *(len(c) for c in cols))
    print("\n" + f"{'':<20}" + "".join(f"{c:>{width + 2}}" for c in cols))
    for label, cell in rows:
        values = []
        for r in results:
            try:
                values.append(cell(r.figures, r))
            except (KeyError, TypeError, ValueError):
                values.append("-")
        print(f"{label:<20}" + "".join(f"{v:>{width + 2}}" for v in values))


def pg_server(url: str) -> dict:
    """The server of ``url``: where the scratch databases are made."""
    u = make_url(url)
    return {"host": u.host or "127.0.0.1", "port": u.port or 5432,
            "user": u.username or "postgres", "password": u.password,
            "url": lambda db: u.set(database=db).render_as_string(hide_password=False)}


async def _admin(server: dict):
    import asyncpg

    return await asyncpg.connect(host=server["host"], port=server["port"],
                                 user=server["user"], password=server["password"],
                                 database="postgres")


async def create_database(server: dict, name: str, template: str | None = None) -> None:
    conn = await _admin(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"'
                           + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await conn.close()


async def drop_database(server: dict, name: str) -> None:
    conn = await _admin(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def seed_regency(args, server: dict, name: str, offices: int) -> dict:
    """A database with the seeded regency, the template of every run of this size."""
    from models.migrate import upgrade

    db = f"{name}_seed{offices}"
    asyncio.run(create_database(server, db))
    url = server["url"](db)
    upgrade(url)
    folder = Path(tempfile.mkdtemp(prefix="sopbot-pemda-seed-"))
    seeded = asyncio.run(seed(url, folder, offices, args.people, args.answers, args.senders))
    seeded["database"] = db
    shutil.rmtree(folder, ignore_errors=True)
    note(f"seeded {offices} offices ({len(seeded['users'])} people, {seeded['open_runs']} "
         f"open runs) in {seeded['seconds']:.0f} s; {load()}")
    return seeded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offices", type=int, default=40)
    ap.add_argument("--people", type=int, default=60, help="people per office (>= 5)")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--growth-offices", type=int, nargs="*", default=[10],
                    help="also run these office counts at 1 process (growth with offices)")
    ap.add_argument("--senders", type=int, default=1, help="Kabid per office answering in (a)")
    ap.add_argument("--answers", type=int, default=3, help="indicators each sender answers")
    ap.add_argument("--pause", type=float, nargs=2, default=[1.0, 2.0])
    ap.add_argument("--steady", type=int, default=3, help="steady sweeps timed in (c)")
    ap.add_argument("--database-url", default="",
                    help="a SCRATCH PostgreSQL database: its public schema is dropped")
    ap.add_argument("--quick", action="store_true",
                    help="4 offices x 12 people, 1 and 2 processes, growth 2 offices")
    args = ap.parse_args()
    if args.quick:
        args.offices, args.people, args.processes, args.growth_offices = 4, 12, [1, 2], [2]
    name = make_url(args.database_url).database if args.database_url else "pemda_bench"
    server = pg_server(args.database_url or f"{PG_SERVER}/{name}")
    if args.database_url and make_url(args.database_url).get_backend_name() != "postgresql":
        ap.error("several processes need PostgreSQL")
    import logging

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL)
    print(f"bench_pemda: {args.offices} offices x {args.people} people, processes "
          f"{args.processes}, growth {args.growth_offices} offices at 1 process; "
          f"{args.senders} sender(s) per office x {args.answers} answers, pause "
          f"{args.pause[0]:g}-{args.pause[1]:g} s; {os.cpu_count()} CPUs; {load()}; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    results: list[Result] = []
    made: list[str] = []
    t0 = time.perf_counter()
    try:
        for offices in sorted(set(args.growth_offices) - {args.offices}):
            seeded = seed_regency(args, server, name, offices)
            made.append(seeded["database"])
            results.append(run_one(args, server, name, seeded, offices, 1))
        seeded = seed_regency(args, server, name, args.offices)
        made.append(seeded["database"])
        for p in args.processes:
            results.append(run_one(args, server, name, seeded, args.offices, p))
    finally:
        for db in made + [name]:
            asyncio.run(drop_database(server, db))
    table(results)
    print(f"\nwall-clock {time.perf_counter() - t0:.0f} s; {load()} at the end "
          f"({os.cpu_count()} CPUs, a shared machine)")


if __name__ == "__main__":
    main()
