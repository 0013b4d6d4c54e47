"""Several processes, one database (issue 16): compile jobs claimed by one live process,
and an office's settings changed in one process seen by the others.

The process tests start real ``python`` processes (``WORKER`` below: the project's
:class:`bot.core.compiler.Compiler` with its claims, building with a stand-in for the
documents that takes a moment and records who built) on the PostgreSQL database.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event, select, update

from bot.core import compiler as compile_jobs
from bot.core.services import Services
from bot.core.workflow import Workflow
from bot.devtools.botprocess import bot_env, ended
from bot.devtools.example_data import example_office
from bot.telegram import processes
from models import CompileJob, Cycle, Office, Person, StepRun
from models.base import utcnow
from models.enums import CycleKind, Role
from models.session import make_engine, make_sessionmaker
from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[1]

needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="several processes need PostgreSQL: set SOPBOT_TEST_DATABASE_URL")

OFFICE_NAME = 'Dinas Tenaga Kerja & "Transmigrasi" <Kab. Sikka> 🏛️'
PERSON_NAME = "Maria Goretti da Silva <Kasubag> & 'Perencanaan' 📊 " + "panjang " * 10

# One compiler process: builds every job it claims (a stand-in build of BUILD seconds,
# SLOW seconds for a job whose payload says "slow"), printing "building ID" and
# "built ID"; the job is finished with the builder's name (as the real job commits:
# the first statement matches it still unfinished). Stops when the file STOP exists.
WORKER = r"""
import asyncio, sys
from pathlib import Path
from bot.core import compiler as compile_jobs
from bot.core.compiler import Compiler
from bot.telegram import processes
from models import CompileJob
from models.base import utcnow
from models.session import make_engine, make_sessionmaker

url, stop, build, slow = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])

async def main():
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    me = processes.identity()

    async def run_job(job_id):
        async with sm() as s:
            job = await s.get(CompileJob, job_id)
            slow_job = bool((job.payload or {}).get("slow"))
        print(f"building {job_id}", flush=True)
        await asyncio.sleep(slow if slow_job else build)
        async with sm() as s, s.begin():
            if not await compile_jobs.claim(s, job_id):
                print(f"finished meanwhile {job_id}", flush=True)
                return
            await compile_jobs.finish(s, job_id, utcnow(), f"dibangun oleh {me}")
        print(f"built {job_id}", flush=True)

    c = Compiler(sm, run_job)
    assert c.claims is not None
    c.start()
    while c.claims.life is None or not c.claims.life.alive:
        await asyncio.sleep(0.05)
    print(f"ready {me}", flush=True)
    while not stop.exists():
        await asyncio.sleep(0.1)
    await c.stop()
    await engine.dispose()

asyncio.run(main())
"""


class Worker:
    def __init__(self, tmp: Path, n: int, *, build: float = 0.3, slow: float = 120.0) -> None:
        self.stop_file = tmp / f"stop{n}"
        self.log_path = tmp / f"worker{n}.log"
        self.log = open(self.log_path, "w")
        env = bot_env()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, POSTGRES_URL, str(self.stop_file), str(build),
             str(slow)], cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_for(self, pattern: str, timeout: float) -> re.Match:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(pattern, self.text(), re.M)
            if found:
                return found
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in worker log:\n{self.text()[-3000:]}")

    def built(self) -> list[int]:
        return [int(i) for i in re.findall(r"^built (\d+)$", self.text(), re.M)]

    def finish(self) -> int:
        self.stop_file.touch()
        return ended(self.proc, self.log)


async def _run_and_person(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as s, s.begin():
        office = Office(name=OFFICE_NAME, regency="Kabupaten Sikka")
        s.add(office)
        await s.flush()
        person = Person(office_id=office.id, name=PERSON_NAME, role=Role.KASUBAG,
                        telegram_user_id=5_550_001)
        s.add(person)
        await s.flush()
        cycle = Cycle(office_id=office.id, kind=CycleKind.QUARTERLY, year=2026, quarter=3,
                      started_by_id=person.id)
        s.add(cycle)
        await s.flush()
        run = StepRun(cycle_id=cycle.id, step_no=6, role=Role.KASUBAG,
                      assignee_id=person.id)
        s.add(run)
        await s.flush()
        return run.id, person.id


async def _record_jobs(sessionmaker, run_id: int, person_id: int, n: int,
                       payload: dict | None = None) -> list[int]:
    async with sessionmaker() as s, s.begin():
        jobs = [CompileJob(run_id=run_id, person_id=person_id, chat_id=5_550_001,
                           requested_at=utcnow(),
                           payload=dict(payload or {}, judul=f"{OFFICE_NAME} #{k}"))
                for k in range(n)]
        s.add_all(jobs)
        await s.flush()
        return [j.id for j in jobs]


async def _jobs(sessionmaker) -> dict[int, CompileJob]:
    async with sessionmaker() as s:
        return {j.id: j for j in (await s.execute(select(CompileJob))).scalars()}


async def _until_finished(sessionmaker, ids: list[int], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = await _jobs(sessionmaker)
        if all(jobs[i].finished_at is not None for i in ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"jobs not finished: {[i for i in ids if jobs[i].finished_at is None]}")


# ------------------------------------------------------------------ claims, in parts
@needs_postgres
async def test_a_job_claimed_by_a_live_process_is_kept_a_dead_ones_taken_over(sessionmaker):
    run_id, person_id = await _run_and_person(sessionmaker)
    me = processes.identity()
    ghost = ":".join(me.split(":")[:2] + ["0123456789"])  # same host and pid, not alive
    live, dead, free = await _record_jobs(sessionmaker, run_id, person_id, 3)
    async with sessionmaker() as s, s.begin():
        await s.execute(update(CompileJob).where(CompileJob.id == live)
                        .values(claimed_by=me, claimed_at=utcnow()))
        await s.execute(update(CompileJob).where(CompileJob.id == dead)
                        .values(claimed_by=ghost, claimed_at=utcnow()))
    life = await processes.Life.join(sessionmaker)
    try:
        other = "h:1:bbbbbbbbbb"  # another process
        # the free job only: the live process's is never taken, the dead one's not yet
        assert await processes.claim_job(sessionmaker, other) == free
        assert await processes.claim_job(sessionmaker, other) is None
        assert await processes.my_jobs(sessionmaker, me) == [live]
        # release_dead frees the jobs of processes not alive ("other" holds no lock)
        await processes.release_dead(sessionmaker)
        jobs = await _jobs(sessionmaker)
        assert {i: j.claimed_by for i, j in jobs.items()} == {live: me, dead: None,
                                                               free: None}
        assert await processes.claim_job(sessionmaker, other) == dead
        assert await processes.claim_job(sessionmaker, other) == free
        assert await processes.claim_job(sessionmaker, other) is None
    finally:
        await life.leave()
    # this process gone: its job is free too
    await processes.release_dead(sessionmaker)
    assert (await _jobs(sessionmaker))[live].claimed_by is None


@needs_postgres
async def test_two_compilers_with_their_own_engines_share_the_jobs(sessionmaker,
                                                                   monkeypatch):
    """In one test process, two compilers with engines and names of their own."""
    run_id, person_id = await _run_and_person(sessionmaker)
    ids = await _record_jobs(sessionmaker, run_id, person_id, 8)
    built: list[tuple[str, int]] = []
    compilers, engines = [], []
    for n in range(2):
        engine = make_engine(POSTGRES_URL)
        engines.append(engine)
        sm = make_sessionmaker(engine)
        name = f"uji:{n}:{'abcdefghij'[n] * 10}"

        def runner(sm=sm, name=name):
            async def run_job(job_id: int) -> None:
                built.append((name, job_id))
                await asyncio.sleep(0.05)
                async with sm() as s, s.begin():
                    if await compile_jobs.claim(s, job_id):
                        await compile_jobs.finish(s, job_id, utcnow(), name)
            return run_job

        monkeypatch.setattr(processes, "_IDENTITY", (os.getpid(), name))
        c = compile_jobs.Compiler(sm, runner())
        assert c.claims is not None and c.claims.me == name
        await c.claims.start(c._notified)  # its life lock under its own name
        c._claiming = True
        assert c.claims.life.name == name
        compilers.append(c)
    try:
        await asyncio.gather(*(c.run_open() for c in compilers))
        await _until_finished(sessionmaker, ids, 30)
    finally:
        for c in compilers:
            await c.stop()
        for engine in engines:
            await engine.dispose()
    assert sorted(j for _, j in built) == ids  # each once
    assert {n for n, _ in built} == {c.claims.me for c in compilers}  # both worked


# ------------------------------------------------------------------ real processes
@pytest.mark.slow
@needs_postgres
async def test_two_processes_build_each_job_exactly_once(sessionmaker, tmp_path):
    run_id, person_id = await _run_and_person(sessionmaker)
    workers = [Worker(tmp_path, n) for n in range(2)]
    try:
        names = [(await w.wait_for(r"ready (\S+)", 60)).group(1) for w in workers]
        ids = []
        for _ in range(4):  # recorded in batches, as presses come: each wakes both
            ids += await _record_jobs(sessionmaker, run_id, person_id, 4)
            await asyncio.sleep(0.4)
        await _until_finished(sessionmaker, ids, 60)
        jobs = await _jobs(sessionmaker)
    finally:
        rcs = [w.finish() for w in workers]
    logs = [w.text() for w in workers]
    built = [w.built() for w in workers]
    every = Counter(i for b in built for i in b)
    building = Counter(int(i) for log in logs for i in re.findall(r"^building (\d+)$", log, re.M))
    print(f"\ntwo processes: {len(ids)} jobs, built {[len(b) for b in built]}")
    assert rcs == [0, 0], logs
    assert every == Counter(ids) and building == Counter(ids)  # each built once, by one
    assert all(built), built  # the work was shared
    for n, b in enumerate(built):  # finished by the process that built it
        assert all(jobs[i].error == f"dibangun oleh {names[n]}" for i in b)
        assert all(jobs[i].claimed_by == names[n] for i in b)
    assert "finished meanwhile" not in "".join(logs)


@pytest.mark.slow
@needs_postgres
async def test_a_job_of_a_killed_process_is_taken_over_and_built_once(sessionmaker, tmp_path):
    run_id, person_id = await _run_and_person(sessionmaker)
    first = Worker(tmp_path, 0)  # builds the "slow" job for two minutes
    second = None
    try:
        first_name = (await first.wait_for(r"ready (\S+)", 60)).group(1)
        [job] = await _record_jobs(sessionmaker, run_id, person_id, 1, {"slow": True})
        await first.wait_for(rf"^building {job}$", 30)
        second = Worker(tmp_path, 1, slow=0.3)  # builds any job at once
        name = (await second.wait_for(r"ready (\S+)", 60)).group(1)
        await asyncio.sleep(processes.WATCH_SECONDS + 1)  # the first is alive: kept
        assert f"building {job}" not in second.text()
        assert (await _jobs(sessionmaker))[job].claimed_by == first_name
        first.proc.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        await second.wait_for(rf"^built {job}$", processes.WATCH_SECONDS * 3 + 10)
        took = time.monotonic() - t0
        done = (await _jobs(sessionmaker))[job]
    finally:
        killed = first.finish()
        rc = second.finish() if second is not None else None
    print(f"\ntaken over and built {took:.1f} s after the kill")
    assert killed == -signal.SIGKILL and rc == 0, second.text() if second else ""
    assert first.built() == [] and second.built() == [job]
    assert done.finished_at is not None and done.error == f"dibangun oleh {name}"
    assert done.claimed_by == name


# ------------------------------------------------------------------ office settings
async def _bound_zone(sessionmaker, services: Services, office_id: int) -> str:
    async with sessionmaker() as s:
        wf = Workflow(s, services, office_id)
        await wf.ready()
        return wf.sv.config.calendar.timezone


def _services(services: Services) -> Services:
    """Another process's services: the same configuration, views of its own."""
    other = dataclasses.replace(services, views={})
    other.views["base"] = other
    return other


async def _import_zone(sessionmaker, office_id: int, zone: str) -> None:
    """The office's set-up workbook imported again with another time zone."""
    from bot.core.office_data import apply_office

    spec = dataclasses.replace(example_office(2024), settings={"calendar": {"timezone": zone}})
    async with sessionmaker() as s, s.begin():
        await apply_office(s, spec, office_id=office_id)


async def test_an_office_changed_in_this_process_is_seen_at_the_next_update(
        sessionmaker, services, office):
    a, b = _services(services), _services(services)
    assert await _bound_zone(sessionmaker, a, office.id) == "Asia/Jakarta"
    assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Jakarta"
    await _import_zone(sessionmaker, office.id, "Asia/Makassar")
    # the commit tells this process's views: both read the office again
    assert await _bound_zone(sessionmaker, a, office.id) == "Asia/Makassar"
    assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Makassar"
    async with sessionmaker() as s:
        assert (await s.get(Office, office.id)).settings_version == 2


async def test_another_processs_change_is_seen_within_the_view_ttl_without_notify(
        sessionmaker, services, office, monkeypatch, db_url):
    """No NOTIFY (SQLite, or a listening connection lost): the office's version is
    compared every VIEW_TTL seconds: one query, the parsed view kept when unchanged."""
    from bot.core import services as services_module

    engine = make_engine(db_url)  # the other process: an engine of its own
    other_sm = make_sessionmaker(engine)
    monkeypatch.setattr(Services, "VIEW_TTL", 300.0)
    b = _services(services)
    try:
        assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Jakarta"
        # the change, elsewhere: nothing told to this process
        monkeypatch.setattr(services_module, "office_settings_changed", lambda _id: None)
        monkeypatch.setattr(processes, "office_settings_changed", lambda _id: None)
        await _import_zone(other_sm, office.id, "Asia/Jayapura")
        assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Jakarta"  # kept
        monkeypatch.setattr(Services, "VIEW_TTL", 0.5)
        await asyncio.sleep(0.6)
        assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Jayapura"
        assert b.known_version(office.id) == 2
        # unchanged: after VIEW_TTL only the version is read (the row is not)
        statements: list[str] = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        sync_engine = sessionmaker.kw["bind"].sync_engine
        sa_event.listen(sync_engine, "before_cursor_execute", listen)
        try:
            await asyncio.sleep(0.6)
            assert b.cached_office(office.id) is None
            assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Jayapura"
        finally:
            sa_event.remove(sync_engine, "before_cursor_execute", listen)
        selects = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
        assert len(selects) == 1 and "office.settings_version" in selects[0], selects
        assert "office.settings," not in selects[0], selects
    finally:
        await engine.dispose()


SETUP_IMPORT = r"""
import asyncio, dataclasses, sys
from bot.core.office_data import apply_office
from bot.devtools.example_data import example_office
from models.session import make_engine, make_sessionmaker

async def main(url, office_id, zone):
    engine = make_engine(url)
    spec = dataclasses.replace(example_office(2024), settings={"calendar": {"timezone": zone}})
    async with make_sessionmaker(engine)() as s, s.begin():
        await apply_office(s, spec, office_id=office_id)
    await engine.dispose()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""


@needs_postgres
async def test_a_setup_import_in_another_process_is_seen_at_the_next_update(
        sessionmaker, services, office, monkeypatch):
    """The set-up workbook imported by another process (the CLI here): its commit's
    NOTIFY reaches this process's life connection; the next update reads the office
    again, long before VIEW_TTL."""
    monkeypatch.setattr(Services, "VIEW_TTL", 300.0)
    b = _services(services)
    life = await processes.Life.join(sessionmaker)
    try:
        assert await _bound_zone(sessionmaker, b, office.id) == "Asia/Jakarta"
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SETUP_IMPORT, POSTGRES_URL, str(office.id), "Asia/Makassar",
            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=str(ROOT))
        assert await proc.wait() == 0
        committed = time.monotonic()
        while (zone := await _bound_zone(sessionmaker, b, office.id)) != "Asia/Makassar":
            # told by NOTIFY (else seen only when the view's VIEW_TTL of 300 s ran out)
            assert time.monotonic() < committed + 30.0, zone
            await asyncio.sleep(0.02)
        print(f"\nseen {time.monotonic() - committed:.2f} s after the other process "
              f"ended ({committed - t0:.2f} s to start and import)")
    finally:
        await life.leave()


# ------------------------------------------------------------------ one job built twice
class _Bot:
    """What the person would see outside the outbox: the progress message's edits."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def edit_message_text(self, text, chat_id=None, message_id=None, **_kw):
        self.calls.append(("edit", chat_id, message_id, text))

    async def send_message(self, chat_id, text, **_kw):
        self.calls.append(("send", chat_id, text))


async def test_one_job_built_by_two_processes_is_recorded_and_told_once(
        sessionmaker, services, clock, db_url, office, monkeypatch):
    """Where two processes do build one job (one taken for dead while it builds: its
    claim freed, the job claimed by another), both builds run to their end, both having
    read the data before either records (held at a barrier): one version, one outbox
    message with the files, one edit of the progress message, the job marked once."""
    import bot.core.documents as documents
    from handlers.signoff import run_compile_job
    from models import Document, Outbox
    from tests.test_documents_service import drive_to_compile
    from tests.test_workflow import Walk

    monkeypatch.setattr(documents, "WORKER", "thread")
    walk = Walk(sessionmaker, services, clock)
    cycle_id, run6 = await drive_to_compile(walk)
    kasubag = await walk.who(Role.KASUBAG)
    async with sessionmaker() as s, s.begin():
        job = CompileJob(run_id=run6, person_id=kasubag.id, chat_id=777_001,
                         message_id=4242, requested_at=clock.now())
        s.add(job)
        await s.flush()
        job_id = job.id
    real_build = documents.build_off_loop
    started, both = [], asyncio.Event()

    async def build(*args, **kwargs):
        started.append(1)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 60)  # both have read the data
        return await real_build(*args, **kwargs)

    monkeypatch.setattr(documents, "build_off_loop", build)
    engine = make_engine(db_url)  # the other process's engine
    bots = [_Bot(), _Bot()]
    try:
        results = await asyncio.gather(
            run_compile_job(bots[0], sessionmaker, services, job_id),
            run_compile_job(bots[1], make_sessionmaker(engine), services, job_id))
    finally:
        await engine.dispose()
    assert len(started) == 2  # built twice
    async with sessionmaker() as s:
        docs = (await s.execute(select(Document).where(Document.cycle_id == cycle_id))
                ).scalars().all()
        sent = (await s.execute(select(Outbox).where(
            Outbox.person_id == kasubag.id, Outbox.kind == "compiled"))).scalars().all()
        done = await s.get(CompileJob, job_id)
    assert [d.version for d in docs] == [1]
    assert sorted(r is None for r in results) == [False, True]  # one recorded it
    assert len(sent) == 1 and len(sent[0].payload.get("files") or []) >= 2, [
        r.payload for r in sent]
    edits = bots[0].calls + bots[1].calls
    assert len(edits) == 1 and edits[0][:3] == ("edit", 777_001, 4242)
    assert done.finished_at is not None and done.document_id == docs[0].id
    assert done.error == ""
