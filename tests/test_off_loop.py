"""Heavy work off the event loop and out of the pressing person's update (issue 12).

"Susun dokumen" for an office of 5,000 indicators takes seconds to build. The press
records a compile job and commits with its update; the documents are built in the
background (``bot.core.compiler``), so another person is answered meanwhile. Asserted by
order, never by time: the other person's /bantuan reply is in the emulator before the
compile's result message.
"""
from __future__ import annotations

import asyncio
import threading

from sqlalchemy import func, select

from bot.devtools.example_data import add_cycle_indicators
from tests.test_e2e_signoff import has_button
from models import CompileJob, CycleIndicator, Document
from models.enums import Role
from tests.e2e import People, harness  # noqa: F401
from tests.test_documents_service import drive_to_compile
from tests.test_workflow import Walk

BIG = 5000


async def test_another_person_is_answered_while_a_large_office_compiles(
        harness, sessionmaker, services, clock):  # noqa: F811
    people = await People(harness).load((Role.KASUBAG, None), (Role.STAF, "PPTK"))
    kasubag, staf = people.user(Role.KASUBAG), people.user(Role.STAF, "PPTK")
    cycle_id, _run6 = await drive_to_compile(Walk(sessionmaker, services, clock))
    async with sessionmaker() as s, s.begin():
        await add_cycle_indicators(s, cycle_id, BIG,
                                   answered_by=people.person(Role.KASUBAG).id)
    async with sessionmaker() as s:
        total = (await s.execute(select(func.count(CycleIndicator.id)).where(
            CycleIndicator.cycle_id == cycle_id))).scalar_one()
    assert total > BIG
    await harness.sender.drain()

    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))
    data = next(b["callback_data"] for b in card.buttons
                if b.get("callback_data", "").startswith("cmp:"))
    old_markup = card.reply_markup
    q = await kasubag.press(card, text="Susun dokumen")
    progress = await kasubag.wait_for(after=q, text_contains="Menyusun dokumen", timeout=30)
    # the press is committed (a job recorded), its documents not yet
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count(Document.id)))).scalar_one() == 0

    sent = await staf.send_command("/bantuan")
    helped = await staf.wait_for(after=sent, timeout=60)
    # the same button pressed again (an older copy of the card): told it is under way,
    # no second job
    card = kasubag.message(card.message_id)
    card.reply_markup = old_markup
    again = await kasubag.press(card, data=data)
    told = await kasubag.wait_for_answer(again)
    result = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"),
                                    timeout=600)

    # by order: the other person's answer came while the compile was still running
    assert helped.seq < result.seq, (helped.seq, result.seq)
    assert "sedang disusun" in told.text, told.text
    assert "versi 1" in result.text.lower()
    done = await kasubag.wait_for(after=q, text_contains="selesai disusun")
    assert done.message_id == progress.message_id
    async with sessionmaker() as s:
        job = (await s.execute(select(CompileJob))).scalar_one()
        doc = (await s.execute(select(Document))).scalar_one()
        assert job.finished_at is not None and job.document_id == doc.id and job.error == ""
    files = harness.emulator.sent_files(kasubag.chat_id)
    assert {(f.filename or "").rsplit(".", 1)[-1] for f in files} >= {"xlsx", "pdf"}


async def test_a_compile_cut_off_by_a_stop_runs_at_the_next_start(
        harness, sessionmaker, services, clock, monkeypatch):  # noqa: F811
    """The press committed its job; the bot stopped before the documents were built (a
    crash or a restart): the next start finds the job in the database and finishes it,
    once."""
    import bot.core.documents as documents

    people = await People(harness).load((Role.KASUBAG, None),)
    kasubag = people.user(Role.KASUBAG)
    await drive_to_compile(Walk(sessionmaker, services, clock))
    await harness.sender.drain()
    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))

    real_build = documents.build_and_store
    started, release = threading.Event(), threading.Event()

    def never_done(*args, **kwargs):  # the bot stops in the middle of the build
        started.set()
        release.wait(30)
        raise RuntimeError("the process was gone by now")

    monkeypatch.setattr(documents, "WORKER", "thread")  # the stand-in runs in this process
    monkeypatch.setattr(documents, "build_and_store", never_done)
    q = await kasubag.press(card, text="Susun dokumen")
    await kasubag.wait_for(after=q, text_contains="Menyusun dokumen", timeout=30)
    for _ in range(1500):
        if started.is_set():
            break
        await asyncio.sleep(0.02)
    assert started.is_set()
    await harness.stop_bot()  # the compiler is stopped: its job is cut off
    release.set()
    async with sessionmaker() as s:
        job = (await s.execute(select(CompileJob))).scalar_one()
        assert job.finished_at is None  # committed with the press, not finished
        assert (await s.execute(select(func.count(Document.id)))).scalar_one() == 0

    monkeypatch.setattr(documents, "build_and_store", real_build)
    await harness.start_bot()
    ready = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"),
                                   timeout=60)
    await harness.settle()
    assert "versi 1" in ready.text.lower()
    async with sessionmaker() as s:
        assert (await s.execute(select(Document.version))).scalars().all() == [1]
        job = (await s.execute(select(CompileJob))).scalar_one()
        assert job.finished_at is not None and job.error == ""


async def test_a_compile_job_refused_when_it_runs_is_finished_with_the_reason(
        sessionmaker, services, clock, office):
    """The step was taken meanwhile (here: the job names someone who does not hold it):
    the background run finishes the job with the refusal, stores nothing and records
    no version; it is not run again."""
    from handlers.signoff import run_compile_job
    from tests.helpers import person

    walk = Walk(sessionmaker, services, clock)
    _cycle_id, run6 = await drive_to_compile(walk)
    async with sessionmaker() as s, s.begin():
        staf = await person(s, Role.STAF, "PPTK")
        job = CompileJob(run_id=run6, person_id=staf.id, chat_id=None, message_id=None,
                         requested_at=clock.now())
        s.add(job)
    assert await run_compile_job(None, sessionmaker, services, job.id) is None
    async with sessionmaker() as s:
        done = await s.get(CompileJob, job.id)
        assert done.finished_at is not None and done.error and done.document_id is None
        assert (await s.execute(select(func.count(Document.id)))).scalar_one() == 0
    assert await run_compile_job(None, sessionmaker, services, job.id) is None  # once
