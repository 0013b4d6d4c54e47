"""Deadline reminders, escalation, the daily digest and the quarterly prompt.

The timeline drives the injected clock through a cycle of Triwulan IV 2024 that crosses
a night, two weekends, Christmas (25 December), cuti bersama (26 December) and New Year
(1 January 2025), calling ``sweep`` as the repeating job would: every minute while the
office is open, every hour while it is closed.
"""
from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import ManualClock
from bot.core.reminders import daily_digest, quarterly_prompt, sweep
from bot.telegram.scheduling import JOB_NAME, deadline_job, run_deadline_tasks, schedule
from bot.core.services import build_services
from bot.core.workflow import Workflow
from models import CycleIndicator, Outbox, Person, Reminder, StepRun
from models.enums import CycleKind, OutboxStatus, Role, StepStatus
from models.session import make_engine, make_sessionmaker
from tests.conftest import POSTGRES_URL, WIB, wib
from tests.helpers import person, unit


class Bot:
    """One bot process: its own engine, sessionmaker, services and clock."""

    def __init__(self, db_url: str, config, now: datetime, sessionmaker=None) -> None:
        self.engine = None
        if sessionmaker is None:
            self.engine = make_engine(db_url)
            sessionmaker = make_sessionmaker(self.engine)
        self.sm = sessionmaker
        self.clock = ManualClock(now)
        self.sv = build_services(config, self.clock)

    async def sweep(self) -> list[Reminder]:
        async with self.sm() as session, session.begin():
            return await sweep(session, self.sv)

    async def do(self, fn):
        async with self.sm() as session, session.begin():
            return await fn(Workflow(session, self.sv), session)

    async def who(self, role, unit_code=None) -> Person:
        async with self.sm() as session:
            return await person(session, role, unit_code)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def ticks(calendar, start: datetime, end: datetime, step: int = 1, extra=()):
    """The repeating job: each ``step`` minutes in office hours, each hour (or up to
    the opening) while the office is closed; plus the moments in ``extra``."""
    grid = []
    now = start
    while now <= end:
        grid.append(now)
        if calendar.is_office_open(now):
            now += timedelta(minutes=step)
        else:
            now = min(now + timedelta(hours=1), calendar.next_opening(now))
    return sorted(set(grid) | {e for e in extra if start <= e <= end})


async def open_run(bot: Bot, cycle_id: int, step_no: int, unit_code: str | None = None):
    async with bot.sm() as s:
        stmt = select(StepRun).where(StepRun.cycle_id == cycle_id, StepRun.step_no == step_no,
                                     StepRun.status == StepStatus.OPEN)
        if unit_code:
            stmt = stmt.where(StepRun.unit_id == (await unit(s, unit_code)).id)
        return (await s.execute(stmt)).scalar_one()


# ------------------------------------------------------------------ the story

START = wib(2024, 12, 20, 15, 20)  # Friday afternoon
END = wib(2025, 1, 3, 8, 30)  # Friday after New Year


def story(bot_ref: dict):
    """Moves of the people, by the minute they happen."""

    async def start(bot: Bot):
        kadis = await bot.who(Role.KADIS)
        cycle = await bot.do(lambda wf, s: wf.start_cycle(
            kadis, CycleKind.QUARTERLY, 2024, 4, "Siapkan pengukuran kinerja triwulan IV"))
        bot_ref["cycle"] = cycle.id

    async def forward(bot: Bot):  # five minutes late: step 2 was due 15.25
        sek = await bot.who(Role.SEKRETARIS)
        run2 = await open_run(bot, bot_ref["cycle"], 2)
        await bot.do(lambda wf, s: wf.forward_disposition(sek, run2.id, "Segera"))

    async def coordinate(bot: Bot):  # step 3 was due Friday 16.00
        kasubag = await bot.who(Role.KASUBAG)
        run3 = await open_run(bot, bot_ref["cycle"], 3)

        async def go(wf, s):
            default = await wf.default_selection(await wf.get_cycle(bot_ref["cycle"]))
            chosen = {u: default[u] for u in [(await unit(s, c)).id for c in ("PPTK", "IND")]}
            return await wf.open_collection(kasubag, run3.id, chosen, days=3)

        runs = await bot.do(go)
        bot_ref["collect"] = {r.unit_id: r.id for r in runs}

    async def pptk_submits(bot: Bot):  # one minute before its share point (12.15)
        kabid = await bot.who(Role.KABID, "PPTK")
        run = await open_run(bot, bot_ref["cycle"], 4, "PPTK")
        async with bot.sm() as s:
            items = (await s.execute(select(CycleIndicator).where(
                CycleIndicator.cycle_id == bot_ref["cycle"],
                CycleIndicator.unit_id == run.unit_id))).scalars().all()
        for item in items:
            await bot.do(lambda wf, s, item=item: wf.record_answer(
                kabid, run.id, item.id, raw_text="10", value=Decimal(10)))
        await bot.do(lambda wf, s: wf.submit_unit(kabid, run.id))
        bot_ref["pptk_run"] = run.id

    return {
        START: start,
        wib(2024, 12, 20, 15, 30): forward,
        wib(2024, 12, 23, 8, 0): coordinate,
        wib(2024, 12, 24, 12, 14): pptk_submits,
    }


async def play(db_url, config, sessionmaker, *, restart_at=None, down=None, step=1):
    """Play the story; ``restart_at``: a new process takes over at that moment;
    ``down``: (from, to) during which no process runs, a new one starts at ``to``;
    ``step``: minutes between sweeps in office hours (every point and move of the
    story is on a five-minute mark or in ``extra``)."""
    ref: dict = {}
    moves = story(ref)
    bot = Bot(db_url, config, START, sessionmaker)
    bots = [bot]
    try:
        extra = [*moves, *([restart_at] if restart_at else []), *(down or ())]
        for now in ticks(bot.sv.calendar, START, END, step, extra):
            if down and down[0] <= now < down[1]:
                continue
            if (restart_at and now == restart_at) or (down and now == down[1]):
                bot = Bot(db_url, config, now)  # a new process on the same database
                bots.append(bot)
            bot.clock.set(now)
            if now in moves:
                await moves[now](bot)
            await bot.sweep()
        async with bot.sm() as s:
            rows = (await s.execute(select(Reminder).order_by(Reminder.id))).scalars().all()
            names = {p.id: p for p in (await s.execute(select(Person))).scalars()}
            outbox = {o.id: o for o in (await s.execute(
                select(Outbox).where(Outbox.kind.like("reminder:%")))).scalars()}
        return ref, rows, names, outbox
    finally:
        for b in bots:
            await b.close()


def local(dt: datetime) -> datetime:
    return dt.astimezone(WIB)


def listing(rows, names):
    return [(local(r.sent_at), names[r.person_id].name, r.kind, r.level, local(r.due_at))
            for r in rows]


SEK = "Contoh Sekretaris, S.E., M.M."
KASUBAG = "Contoh Kasubag Perencanaan, S.T."
KABID_IND = "Contoh Kabid Perindustrian, S.T., M.T."

# Hand-computed. Step 2 (5 minutes) opened Fri 20 Dec 15.20, due 15.25. Step 3
# (30 minutes) opened 15.30, due 16.00: closing time, so "due" waits for Monday's
# opening. Step 4 (3 working days from Mon 23 Dec 08.00; 25 and 26 Dec are off):
# due Mon 30 Dec 08.00; 1.530 working minutes, half is 765: Mon 08.00-16.00 is 480,
# the other 285 from Tue 24 Dec 07.30 = 12.15. Last day: Mon 30 Dec 07.30. Escalation
# one working day apart: Tue 31 Dec, (1 Jan is New Year) Thu 2 Jan, Fri 3 Jan.
EXPECTED = [
    (wib(2024, 12, 20, 15, 25), SEK, "due", 0, wib(2024, 12, 20, 15, 25)),
    (wib(2024, 12, 23, 7, 30), KASUBAG, "due", 0, wib(2024, 12, 20, 16, 0)),
    (wib(2024, 12, 24, 12, 15), KABID_IND, "share", 0, wib(2024, 12, 24, 12, 15)),
    (wib(2024, 12, 30, 7, 30), KABID_IND, "lastday", 0, wib(2024, 12, 30, 7, 30)),
    (wib(2024, 12, 30, 8, 0), KABID_IND, "due", 0, wib(2024, 12, 30, 8, 0)),
    (wib(2024, 12, 31, 8, 0), KABID_IND, "overdue", 1, wib(2024, 12, 31, 8, 0)),
    (wib(2024, 12, 31, 8, 0), KASUBAG, "escalate", 1, wib(2024, 12, 31, 8, 0)),
    (wib(2025, 1, 2, 8, 0), KABID_IND, "overdue", 2, wib(2025, 1, 2, 8, 0)),
    (wib(2025, 1, 2, 8, 0), KASUBAG, "escalate", 2, wib(2025, 1, 2, 8, 0)),
    (wib(2025, 1, 3, 8, 0), KABID_IND, "overdue", 3, wib(2025, 1, 3, 8, 0)),
    (wib(2025, 1, 3, 8, 0), KASUBAG, "escalate", 3, wib(2025, 1, 3, 8, 0)),
]


@pytest.mark.parametrize("restart_at,step", [
    (None, 1), (wib(2024, 12, 30, 7, 45), 5), (wib(2024, 12, 24, 12, 15), 5)],
    ids=["minute-by-minute", "restart-between-points", "restart-at-a-point"])
async def test_reminders_through_night_weekend_and_holidays(db_url, config, sessionmaker, office,
                                                            restart_at, step):
    ref, rows, names, outbox = await play(db_url, config, sessionmaker, restart_at=restart_at,
                                          step=step)
    assert listing(rows, names) == EXPECTED
    # PPTK submitted a minute before its share point: nothing for it, ever
    assert all(r.step_run_id != ref["pptk_run"] for r in rows)
    # one message per reminder here (nothing coalesced), queued when recorded, in office
    # hours, to the person recorded, with the button to the task for the holder
    assert sorted(r.outbox_id for r in rows) == sorted(outbox)
    for r in rows:
        msg = outbox[r.outbox_id]
        assert msg.person_id == r.person_id and msg.created_at == r.sent_at
        assert msg.status == OutboxStatus.PENDING and msg.next_attempt_at == r.sent_at
        assert msg.kind == f"reminder:{r.kind}"
        if r.kind == "escalate":
            assert "buttons" not in msg.payload
            assert "Contoh Kabid Perindustrian" in msg.payload["text"]
        elif r.step_run_id in ref["collect"].values():
            assert msg.payload["buttons"] == [[["Mulai isi data", f"ent:{r.step_run_id}"]]]
    texts = {(r.kind, r.level): outbox[r.outbox_id].payload["text"] for r in rows}
    assert "terlambat 1 hari" in texts[("overdue", 1)]
    assert "dilaporkan kepada Kasubag Perencanaan" in texts[("overdue", 1)]
    assert "terlambat 3 hari" in texts[("escalate", 3)]
    # 765 of 1.530 working minutes left: 1 day (510) and 255 minutes
    assert "50%" in texts[("share", 0)] and "1 hari 4 jam 15 menit" in texts[("share", 0)]
    # a second sweep at the end changes nothing
    bot = Bot(db_url, config, END, sessionmaker)
    assert await bot.sweep() == []


async def test_a_day_down_is_caught_up_once_at_the_next_opening(db_url, config, sessionmaker,
                                                                office):
    # no process from Sunday 29 Dec 20.00 to Monday 30 Dec 20.00: the lastday (07.30)
    # and due (08.00) points are missed; the new process starts at night and sends
    # them at Tuesday's opening, recorded both, one message (the due one); the first
    # escalation follows at 08.00 as usual
    down = (wib(2024, 12, 29, 20, 0), wib(2024, 12, 30, 20, 0))
    ref, rows, names, outbox = await play(db_url, config, sessionmaker, down=down, step=5)
    opening = wib(2024, 12, 31, 7, 30)
    expected = [e if e[2] not in ("lastday", "due") or e[1] != KABID_IND
                else (opening, *e[1:]) for e in EXPECTED]
    assert listing(rows, names) == expected
    caught_up = [r for r in rows if local(r.sent_at) == opening]
    assert [r.kind for r in caught_up] == ["lastday", "due"]
    assert caught_up[0].outbox_id == caught_up[1].outbox_id
    msg = outbox[caught_up[0].outbox_id]
    assert msg.kind == "reminder:due" and local(msg.created_at) == opening
    assert len(outbox) == len(rows) - 1


async def test_a_long_outage_records_every_missed_level_in_one_message(db_url, config,
                                                                       sessionmaker, office):
    bot = Bot(db_url, config, wib(2024, 12, 23, 8, 0), sessionmaker)
    kadis = await bot.who(Role.KADIS)
    cycle = await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 4))
    run2 = await open_run(bot, cycle.id, 2)
    # back a week later (Mon 30 Dec 09.00): due Mon 23 08.05, levels at 08.05 on
    # Tue 24, Fri 27 and Mon 30
    bot.clock.set(wib(2024, 12, 30, 9, 0))
    rows = await bot.sweep()
    assert [(r.kind, r.level, local(r.due_at)) for r in rows] == [
        ("due", 0, wib(2024, 12, 23, 8, 5)),
        ("overdue", 1, wib(2024, 12, 24, 8, 5)),
        ("overdue", 2, wib(2024, 12, 27, 8, 5)),
        ("overdue", 3, wib(2024, 12, 30, 8, 5)),
        ("escalate", 1, wib(2024, 12, 24, 8, 5)),
        ("escalate", 2, wib(2024, 12, 27, 8, 5)),
        ("escalate", 3, wib(2024, 12, 30, 8, 5)),
    ]
    assert all(r.step_run_id == run2.id for r in rows)
    async with bot.sm() as s:
        msgs = (await s.execute(select(Outbox).where(Outbox.kind.like("reminder:%"))
                                .order_by(Outbox.id))).scalars().all()
    assert [(m.kind, m.person_id) for m in msgs] == [
        ("reminder:overdue", (await bot.who(Role.SEKRETARIS)).id),
        ("reminder:escalate", kadis.id)]
    assert "terlambat 3 hari" in msgs[0].payload["text"]
    assert msgs[0].payload["buttons"] == [[["Terima & teruskan ke Kasubag", f"dsp:{run2.id}"]]]
    assert await bot.sweep() == []


async def test_the_kadis_overdue_step_goes_to_nobody_above(db_url, config, sessionmaker, office):
    bot = Bot(db_url, config, wib(2024, 10, 7, 8, 0), sessionmaker)
    kadis = await bot.who(Role.KADIS)
    sek = await bot.who(Role.SEKRETARIS)
    cycle = await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3))

    async def sign_open(wf, s):
        # put the cycle at step 8 directly: a submitted, initialled document
        from models import Document
        from models.enums import DocumentStatus
        doc = Document(cycle_id=cycle.id, version=1, status=DocumentStatus.INITIALLED,
                       sha256="a" * 64, created_by_id=sek.id, created_at=bot.clock.now())
        s.add(doc)
        run2 = (await s.execute(select(StepRun).where(StepRun.cycle_id == cycle.id,
                                                      StepRun.step_no == 2))).scalar_one()
        run2.status = StepStatus.DONE
        await s.flush()
        run8 = await wf._open_run(cycle, wf.sop.step(8))
        return run8, doc

    run8, doc = await bot.do(sign_open)
    assert local(run8.due_at) == wib(2024, 10, 7, 8, 10)
    bot.clock.set(wib(2024, 10, 8, 8, 10))
    rows = await bot.sweep()
    assert [(r.kind, r.level, r.person_id) for r in rows] == [
        ("due", 0, kadis.id), ("overdue", 1, kadis.id)]
    async with bot.sm() as s:
        msg = await s.get(Outbox, rows[0].outbox_id)
    assert "dilaporkan" not in msg.payload["text"]
    assert [b[1] for b in msg.payload["buttons"][0]] == [f"sgn:{run8.id}:{doc.id}",
                                                         f"ret:{run8.id}:{doc.id}"]


async def test_nothing_is_sent_at_night_even_when_due(db_url, config, sessionmaker, office):
    bot = Bot(db_url, config, wib(2024, 10, 7, 15, 58), sessionmaker)
    kadis = await bot.who(Role.KADIS)
    await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3))
    # step 2 due Tuesday 07.33 (2 minutes today, 3 tomorrow)
    for moment in (wib(2024, 10, 7, 23, 0), wib(2024, 10, 8, 3, 0), wib(2024, 10, 8, 7, 32)):
        bot.clock.set(moment)
        assert await bot.sweep() == []
    bot.clock.set(wib(2024, 10, 8, 7, 33))
    assert [r.kind for r in await bot.sweep()] == ["due"]
    # with office_hours_only off a point is sent when the sweep finds it, day or night
    config.reminders.office_hours_only = False
    bot.clock.set(wib(2024, 10, 9, 3, 0))  # level 1 was Wed 07.33: still ahead
    assert await bot.sweep() == []
    bot.clock.set(wib(2024, 10, 9, 7, 33))
    assert [r.kind for r in await bot.sweep()] == ["overdue", "escalate"]


def run_sweep_process() -> None:
    """The body of one bot process (``python -c``) for the two-process test: argv is the
    database URL, a storage folder, the moment (ISO), a meeting folder and the process'
    index (0 or 1). Prints "ready", waits for "go" on stdin, runs one tick of the
    reminder sweep as the deadline job does (its own session and transaction), prints a
    JSON report; waits for "again", runs the next tick, prints its report.

    Two meeting points (marker files in the meeting folder) make both processes contend
    on every run, however the OS schedules them: "claim", after this process' first claim
    chunk that got runs (the claim holds its row locks on PostgreSQL), waits until the
    other has claimed runs too; "write", before anything is written, waits until the
    other has also read the recorded state of its claimed runs. The claim goes in chunks
    of 4 runs here (500 in the bot) so that the 30 runs are several chunks and a process
    that finds the first chunk locked by the other goes on to the next.
    """
    import json
    import sys
    import time

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.core import reminders
    from bot.config import Config
    from models.session import WriteSession

    db_url, storage, moment, meet_dir, index = sys.argv[1:6]
    met: dict[str, bool] = {}
    reminders._chunks.__defaults__ = (4,)

    async def meet(name: str) -> None:
        if db_url.startswith("sqlite"):
            # one writer: the other process's sweep (its transaction begun IMMEDIATE,
            # as the bot's) waits for this one's commit, so they can never meet
            met[name] = False
            return
        folder = Path(meet_dir)
        (folder / f"{name}.{index}").touch()
        other = folder / f"{name}.{1 - int(index)}"
        give_up = time.monotonic() + 120  # only a broken claim (a lock that blocks) waits
        while time.monotonic() < give_up:  # this long: then it goes on, and says so
            if other.exists():
                met[name] = True
                return
            await asyncio.sleep(0.01)
        met[name] = False

    class MeetingSession(AsyncSession):
        async def execute(self, statement, *args, **kwargs):
            result = await super().execute(statement, *args, **kwargs)
            if "claim" in met or getattr(statement, "_for_update_arg", None) is None:
                return result
            frozen = result.freeze()
            if frozen().scalars().all():
                await meet("claim")
            return frozen()

    record = reminders._record

    async def meeting_record(*args, **kwargs):
        if "write" not in met:
            await meet("write")
        return await record(*args, **kwargs)

    reminders._record = meeting_record

    async def tick(sm, services) -> dict:
        try:
            async with sm() as session, session.begin():
                made = await reminders.sweep(session, services)
        except Exception as exc:  # noqa: BLE001 - the deadline job logs it, we report it
            return {"recorded": [], "refused": type(exc).__name__}
        return {"recorded": [[r.step_run_id, r.kind, r.level] for r in made], "refused": ""}

    async def main() -> None:
        cfg = Config()
        cfg.database.url = db_url
        cfg.storage.path = storage
        engine = make_engine(db_url)
        sm = async_sessionmaker(engine, class_=MeetingSession, expire_on_commit=False,
                                sync_session_class=WriteSession)  # as the bot's
        services = build_services(cfg, ManualClock(datetime.fromisoformat(moment)))
        async with sm() as session:  # connected before the start
            await session.execute(select(Reminder.id).limit(1))
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        first = await tick(sm, services)
        print(json.dumps(dict(first, pid=os.getpid(), met=met)), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        print(json.dumps(await tick(sm, services)), flush=True)
        await engine.dispose()

    asyncio.run(main())


HOSTILE = 'Sri <Rahayu> & "Ani" O\'Neil, S.E., M.M. \U0001f33e '
LONG_NAME = (HOSTILE * 4)[:120]


async def _overdue_runs(bot: Bot) -> None:
    """Fifteen cycles, each left open at a step: 2022 at step 2 (the Sekretaris), 2023 at
    step 3 (the Kasubag), 2024 at step 4 (the four bidang): 30 open runs, all past
    their deadline a week later, each with a holder and a superior to escalate to."""
    async with bot.sm() as s, s.begin():  # names as offices write them
        (await person(s, Role.KASUBAG)).name = LONG_NAME
        (await person(s, Role.SEKRETARIS)).name = HOSTILE + "Sekretaris"
    kadis, sek, kasubag = [await bot.who(r) for r in (Role.KADIS, Role.SEKRETARIS,
                                                      Role.KASUBAG)]
    for year, stop in ((2022, 2), (2023, 3), (2024, 4)):
        for kind, quarter in [(CycleKind.QUARTERLY, q) for q in (1, 2, 3, 4)] + [
                (CycleKind.ANNUAL, 0)]:
            cycle = await bot.do(lambda wf, s: wf.start_cycle(
                kadis, kind, year, quarter, "Segera <hari ini> & lengkap"))
            if stop == 2:
                continue
            run2 = await open_run(bot, cycle.id, 2)
            await bot.do(lambda wf, s: wf.forward_disposition(sek, run2.id, "Segera"))
            if stop == 3:
                continue
            run3 = await open_run(bot, cycle.id, 3)

            async def go(wf, s, cycle=cycle, run3=run3):
                selection = await wf.default_selection(await wf.get_cycle(cycle.id))
                assert len(selection) == 4
                return await wf.open_collection(kasubag, run3.id, selection, days=1)

            await bot.do(go)


async def test_two_processes_never_send_the_same_reminder(db_url, config, sessionmaker, office,
                                                          tmp_path):
    """Two OS processes, each with its own engine, sweep the same database at the same
    moment over 30 overdue runs of 15 cycles (SQLite file, or PostgreSQL when
    SOPBOT_TEST_DATABASE_URL is set): every reminder point is recorded once, with one
    message per person and run, and both processes swept."""
    import json
    import sys

    bot = Bot(db_url, config, wib(2024, 10, 7, 8, 0), sessionmaker)
    await _overdue_runs(bot)
    async with bot.sm() as s:
        runs = {r.id: r for r in (await s.execute(select(StepRun).where(
            StepRun.status == StepStatus.OPEN))).scalars()}
    assert sorted(Counter(r.step_no for r in runs.values()).items()) == [(2, 5), (3, 5), (4, 20)]
    moment = wib(2024, 10, 14, 9, 0)  # the Monday after: every run is days overdue
    meet_dir = tmp_path / "meet"
    meet_dir.mkdir()
    root = Path(__file__).resolve().parents[1]
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "from tests.test_reminders import run_sweep_process; run_sweep_process()",
        db_url, str(tmp_path / "files"), moment.isoformat(), str(meet_dir), str(i), cwd=root,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE) for i in range(2)]

    async def say(word: bytes) -> list[dict]:
        for p in procs:
            p.stdin.write(word)
            await p.stdin.drain()
        lines = [await asyncio.wait_for(p.stdout.readline(), 300) for p in procs]
        assert all(lines), [await p.stderr.read() for p in procs]
        return [json.loads(line) for line in lines]

    try:
        for p in procs:
            line = await asyncio.wait_for(p.stdout.readline(), 120)
            assert line == b"ready\n", (line, await p.stderr.read())
        first = await say(b"go\n")  # both sweep at once
        second = await say(b"again\n")  # the next tick of each
        results = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err.decode()[-3000:]
    assert first[0]["pid"] != first[1]["pid"]
    if POSTGRES_URL:
        # both had claimed runs and read their recorded state before either wrote
        assert all(r["met"] == {"claim": True, "write": True} for r in first), first

    async with bot.sm() as s:
        rows = (await s.execute(select(Reminder))).scalars().all()
        outbox = {o.id: o for o in (await s.execute(
            select(Outbox).where(Outbox.kind.like("reminder:%")))).scalars()}
    keys = [(r.step_run_id, r.kind, r.level) for r in rows]
    # every reminder point recorded once: per run "due", the overdue levels one working
    # day apart (Tue 8 to Mon 14 Oct: steps 2 and 3 due Mon 7 Oct have five, step 4 due
    # Tue 8 Oct four) and the escalation of each level; step 4 (in days) also "lastday"
    # (Tue 8 Oct 07.30; its share point falls before it and is recorded with it)
    assert len(keys) == len(set(keys))
    for run in runs.values():
        levels = 5 if run.step_no in (2, 3) else 4
        expected = {(run.id, "due", 0)} | {(run.id, k, n) for k in ("overdue", "escalate")
                                           for n in range(1, levels + 1)}
        if run.step_no == 4:
            expected |= {(run.id, "share", 0), (run.id, "lastday", 0)}
        assert {k for k in keys if k[0] == run.id} == expected, run.step_no
    # each reported row is one of those, recorded by exactly one process
    reported = [tuple(k) for r in first for k in r["recorded"]]
    assert sorted(reported) == sorted(keys)
    # one message per person and run (the holder's, the superior's), each row pointing
    # at the message of its person; no message without a reminder (a sweep that was
    # refused rolled its messages back with its rows)
    assert all(r.outbox_id in outbox and outbox[r.outbox_id].person_id == r.person_id
               for r in rows)
    groups = {(r.step_run_id, r.person_id) for r in rows}
    assert len(groups) == 60 and len(outbox) == 60
    assert {r.outbox_id for r in rows} == set(outbox)
    assert len({(r.step_run_id, r.person_id, r.outbox_id) for r in rows}) == 60
    # the next tick of each process finds nothing left to remind
    assert second == [{"recorded": [], "refused": ""}] * 2
    counts = sorted(len(r["recorded"]) for r in first)
    if POSTGRES_URL:
        # FOR UPDATE SKIP LOCKED: each process reminds the runs it claimed and skips
        # those the other holds, so both record some and neither is refused
        assert counts[0] >= 1 and all(r["refused"] == "" for r in first), first
    else:
        # SQLite has one writer: the sweeps begin IMMEDIATE (as every write of the bot),
        # so the second waits for the first's commit, then finds every point recorded
        # and records nothing; neither is refused
        assert counts == [0, len(keys)], first
        assert [r["refused"] for r in first] == ["", ""], first
    print(f"\ntwo sweep processes: {' + '.join(str(len(r['recorded'])) for r in first)} "
          f"reminders of {len(keys)} recorded, each once; refused: "
          f"{[r['refused'] for r in first]}")


def test_the_quick_working_time_measure_agrees_with_the_calendar(services):
    import random

    from bot.core.reminders import _Plan

    rng = random.Random(29)
    plan = _Plan(services, wib(2024, 12, 24, 10, 0))
    cal = services.calendar
    base = wib(2024, 3, 1, 0, 0)
    for _ in range(400):
        a = base + timedelta(minutes=rng.randint(0, 60 * 24 * 400), seconds=rng.randint(0, 59))
        b = a + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        assert plan.minutes(a, b) == cal.working_minutes_between(a, b), (a, b)


# ------------------------------------------------------------------ digest

async def test_daily_digest_once_per_working_day(db_url, config, sessionmaker, office):
    bot = Bot(db_url, config, wib(2024, 10, 7, 8, 0), sessionmaker)

    async def digest():
        async with bot.sm() as s, s.begin():
            return await daily_digest(s, bot.sv)

    assert await digest() == 0  # no active cycle: nothing
    kadis = await bot.who(Role.KADIS)
    await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3))
    bot.clock.set(wib(2024, 10, 7, 9, 0))
    assert await digest() == 3
    assert await digest() == 0
    bot.clock.set(wib(2024, 10, 7, 15, 59))
    assert await digest() == 0
    bot.clock.set(wib(2024, 10, 8, 7, 29))  # before opening
    assert await digest() == 0
    bot.clock.set(wib(2024, 10, 8, 7, 30))
    assert await digest() == 3
    bot.clock.set(wib(2024, 10, 12, 9, 0))  # Saturday
    assert await digest() == 0
    async with bot.sm() as s:
        msgs = (await s.execute(select(Outbox).where(Outbox.kind.like("digest:%"))
                                .order_by(Outbox.id))).scalars().all()
        roles = [(await s.get(Person, m.person_id)).role for m in msgs]
    assert [m.kind for m in msgs] == ["digest:2024-10-07"] * 3 + ["digest:2024-10-08"] * 3
    assert sorted(roles[:3]) == sorted([Role.KADIS, Role.SEKRETARIS, Role.KASUBAG])
    first, second = msgs[0].payload["text"], msgs[3].payload["text"]
    assert "Triwulan III Tahun 2024" in first and "Contoh Sekretaris" in first
    assert "terlambat 55 menit" in first  # step 2 was due 08.05
    # Mon 08.05 to Tue 07.30 in working time: the rest of Monday
    assert "terlambat 7 jam 55 menit" in second and "Selasa, 8 Oktober 2024" in second
    config.reminders.digest_enabled = False
    bot.clock.set(wib(2024, 10, 9, 8, 0))
    assert await digest() == 0


# ------------------------------------------------------------------ quarterly prompt

async def test_quarterly_prompt_once_and_not_when_started(db_url, config, sessionmaker, office):
    bot = Bot(db_url, config, wib(2024, 10, 5, 9, 0), sessionmaker)  # Saturday

    async def prompt():
        async with bot.sm() as s, s.begin():
            return await quarterly_prompt(s, bot.sv)

    assert await prompt() == 0  # the office is closed
    bot.clock.set(wib(2024, 10, 7, 7, 30))  # first working day after Triwulan III
    assert await prompt() == 1
    assert await prompt() == 0
    bot.clock.set(wib(2024, 10, 8, 8, 0))
    assert await prompt() == 0
    async with bot.sm() as s:
        msg = (await s.execute(select(Outbox).where(Outbox.kind.like("prompt:%")))).scalar_one()
    kadis = await bot.who(Role.KADIS)
    assert msg.kind == "prompt:quarterly:2024:3" and msg.person_id == kadis.id
    assert "Triwulan III Tahun 2024" in msg.payload["text"]
    assert [b[1] for b in msg.payload["buttons"][0]] == ["start:1:2024:3"]

    # year end: Q4 and the annual report; 1 January is a holiday; a cycle that already
    # exists (Q4 started early) is not offered
    await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 4))
    bot.clock.set(wib(2025, 1, 1, 9, 0))
    assert await prompt() == 0
    bot.clock.set(wib(2025, 1, 2, 9, 0))
    assert await prompt() == 1
    async with bot.sm() as s:
        kinds = (await s.execute(select(Outbox.kind).where(Outbox.kind.like("prompt:%"))
                                 .order_by(Outbox.id))).scalars().all()
        annual = (await s.execute(select(Outbox).where(Outbox.kind == "prompt:annual:2024:0"))
                  ).scalar_one()
    assert kinds == ["prompt:quarterly:2024:3", "prompt:annual:2024:0"]
    assert [b[1] for b in annual.payload["buttons"][0]] == ["start:2:2024:0"]
    # the window is the month after the quarter
    bot.clock.set(wib(2025, 2, 3, 9, 0))
    assert await prompt() == 0
    config.reminders.quarterly_prompt = False
    bot.clock.set(wib(2025, 4, 1, 9, 0))
    assert await prompt() == 0


async def test_no_prompt_when_the_period_already_has_a_cycle(db_url, config, sessionmaker, office):
    bot = Bot(db_url, config, wib(2024, 10, 7, 8, 0), sessionmaker)
    kadis = await bot.who(Role.KADIS)
    await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3))
    async with bot.sm() as s, s.begin():
        assert await quarterly_prompt(s, bot.sv) == 0


# ------------------------------------------------------------------ scheduling

async def test_schedule_registers_one_repeating_job_and_the_job_survives_errors(
        db_url, config, sessionmaker, office, caplog):
    from telegram.ext import Application

    bot = Bot(db_url, config, wib(2024, 10, 7, 8, 5), sessionmaker)
    app = Application.builder().token("123456:TEST").build()
    app.bot_data["services"] = bot.sv
    app.bot_data["sessionmaker"] = bot.sm
    schedule(app)
    schedule(app)  # again (post_init twice): still one job
    jobs = [j for j in app.job_queue.jobs() if j.name == JOB_NAME]
    assert len(jobs) == 1
    interval = timedelta(seconds=config.reminders.sweep_interval_seconds)
    assert jobs[0].job.trigger.interval == interval

    kadis = await bot.who(Role.KADIS)
    bot.clock.set(wib(2024, 10, 7, 8, 0))
    await bot.do(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3))
    bot.clock.set(wib(2024, 10, 7, 8, 5))

    class Context:
        application = app

    await deadline_job(Context())
    async with bot.sm() as s:
        kinds = sorted(o.kind.split(":")[0] for o in (await s.execute(select(Outbox))).scalars()
                       if ":" in o.kind)
    assert kinds.count("reminder") == 1 and kinds.count("digest") == 3
    assert kinds.count("prompt") == 0  # Q3 has its cycle

    # a failing part is logged and the others still run
    import bot.telegram.scheduling as scheduling

    async def broken(session, services):
        raise RuntimeError("boom")

    original = scheduling.TASKS
    scheduling.TASKS = (("sweep", broken), *original[1:])
    try:
        done = await run_deadline_tasks(bot.sm, bot.sv)
    finally:
        scheduling.TASKS = original
    assert done == {"sweep": -1, "receipts": 0, "digest": 0, "prompt": 0}
    assert "boom" in caplog.text
