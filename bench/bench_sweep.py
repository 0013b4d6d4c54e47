"""How long one deadline sweep takes on a big database.

Seeds 100,000 step runs of which 10,000 are open (deadlines spread from ten days ago
to twenty days ahead) into a temporary SQLite file, then times:

* the first sweep (catch-up: every overdue run gets its due/overdue/escalate rows and
  one message per person, as after a long outage), and
* the steady sweep, one minute apart, as the repeating job runs it (mean of several).

Usage::

    python bench/bench_sweep.py [--runs 100000] [--open 10000] [--repeat 10]
                                [--database-url postgresql://...scratch-db]

No asserts: it prints the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text  # noqa: E402

import models  # noqa: E402
from bot.core.clock import ManualClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.devtools.example_data import example_office  # noqa: E402
from bot.core.office_data import apply_office  # noqa: E402
from bot.core.reminders import sweep  # noqa: E402
from bot.core.services import build_services  # noqa: E402
from models import Cycle, Outbox, Person, Reminder, StepRun  # noqa: E402
from models.enums import CycleKind, CycleStatus, Role, StepStatus  # noqa: E402
from models.session import is_sqlite, make_engine, make_sessionmaker  # noqa: E402

WIB = ZoneInfo("Asia/Jakarta")
NOW = datetime(2024, 10, 16, 10, 0, tzinfo=WIB)  # a Wednesday morning
CYCLES = 500


async def seed(sm, services, total: int, open_: int) -> None:
    rng = random.Random(5)
    cal = services.calendar
    sop = services.sop
    async with sm() as s, s.begin():
        office = await apply_office(s, example_office(2024))
        people = {p.role: p for p in (await s.execute(
            select(Person).where(Person.office_id == office.id).order_by(Person.id.desc())
        )).scalars()}
        kadis = people[Role.KADIS]
        cycles = []
        for i in range(CYCLES):
            year, period = 2000 + i // 5, i % 5
            kind = CycleKind.ANNUAL if period == 0 else CycleKind.QUARTERLY
            cycles.append({"office_id": office.id, "kind": kind, "year": year,
                           "quarter": period, "started_by_id": kadis.id,
                           "started_at": NOW - timedelta(days=60),
                           "status": CycleStatus.ACTIVE})
        await s.execute(insert(Cycle), cycles)
        cycle_ids = (await s.execute(select(Cycle.id))).scalars().all()
        rows = []
        for i in range(total):
            step = sop.step(rng.randint(2, 11))
            is_open = i % (total // open_) == 0
            if is_open:
                due = NOW + timedelta(minutes=rng.randint(-10 * 1440, 20 * 1440))
                due = cal.next_opening(due)
            else:
                due = NOW - timedelta(minutes=rng.randint(1440, 400 * 1440))
            if step.time.unit == "days":
                started = due - timedelta(days=rng.randint(1, 5))
            else:
                started = due - timedelta(minutes=step.time.maximum)
            holder = people.get(step.role, kadis)
            rows.append({
                "cycle_id": cycle_ids[i % len(cycle_ids)], "step_no": step.number,
                "role": step.role, "assignee_id": holder.id,
                "status": StepStatus.OPEN if is_open else StepStatus.DONE,
                "started_at": started, "due_at": due,
                "completed_at": None if is_open else due,
            })
        for i in range(0, len(rows), 5000):
            await s.execute(insert(StepRun), rows[i:i + 5000])


async def timed_sweep(sm, services) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with sm() as s, s.begin():
        made = await sweep(s, services)
    return (time.perf_counter() - t0) * 1000, len(made)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--open", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--database-url", default="",
                    help="a SCRATCH PostgreSQL database instead: its public schema is dropped")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        async with engine.begin() as conn:
            if not is_sqlite(url):
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await conn.run_sync(models.Base.metadata.create_all)
        sm = make_sessionmaker(engine)
        config = Config()
        config.base_dir = Path(tmp)
        config.storage.path = str(Path(tmp) / "files")
        clock = ManualClock(NOW)
        services = build_services(config, clock)
        t0 = time.perf_counter()
        await seed(sm, services, args.runs, args.open)
        async with sm() as s:
            n_runs = (await s.execute(select(func.count()).select_from(StepRun))).scalar_one()
            n_open = (await s.execute(select(func.count()).select_from(StepRun)
                                      .where(StepRun.status == StepStatus.OPEN))).scalar_one()
            n_overdue = (await s.execute(select(func.count()).select_from(StepRun).where(
                StepRun.status == StepStatus.OPEN, StepRun.due_at <= NOW))).scalar_one()
        print(f"database: {'SQLite' if is_sqlite(url) else 'PostgreSQL'}; seeded {n_runs} step "
              f"runs, {n_open} open ({n_overdue} overdue) in {time.perf_counter() - t0:.1f} s")

        ms, made = await timed_sweep(sm, services)
        async with sm() as s:
            msgs = (await s.execute(select(func.count()).select_from(Outbox))).scalar_one()
        print(f"first sweep (catch-up): {ms:.0f} ms, {made} reminders recorded, "
              f"{msgs} messages queued")

        times, counts = [], []
        for _ in range(args.repeat):
            clock.advance(minutes=1)
            ms, made = await timed_sweep(sm, services)
            times.append(ms)
            counts.append(made)
        print(f"steady sweep: mean {statistics.mean(times):.1f} ms over {args.repeat} sweeps "
              f"one minute apart (min {min(times):.1f}, max {max(times):.1f} ms; "
              f"{sum(counts)} reminders recorded in them)")
        async with sm() as s:
            total = (await s.execute(select(func.count()).select_from(Reminder))).scalar_one()
        print(f"reminder rows in the database: {total}")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
