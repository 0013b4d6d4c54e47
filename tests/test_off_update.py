"""The other builds out of the pressing person's update (issue 12): an edited workbook sent
back at step 6 and the final numbered version of step 9 are built by the background
runner (``bot.core.compiler``), as "Susun dokumen" is. Their update only validates and
records a job; on SQLite it held the one write lock for the whole build before, so every
other person waited. Asserted by order, never by time: the build is held at a gate, and
another person's update is answered (and committed) while it is held, before the build's
result exists.
"""
from __future__ import annotations

import asyncio
import threading

from sqlalchemy import func, select

from bot.core.documents import compile_documents
from models import CompileJob, Document, LetterNumber, StepRun
from models.enums import Role
from tests.e2e import People, harness  # noqa: F401  (fixtures)
from tests.test_documents_service import drive_to_compile, sign_off
from tests.test_e2e_signoff import edited_workbook, has_button
from tests.test_workflow import Walk


class Gate:
    """``documents.build_and_store`` held until released (run in a thread: the stand-in
    lives in this process)."""

    def __init__(self, monkeypatch) -> None:
        import bot.core.documents as documents

        self.started, self.release = threading.Event(), threading.Event()
        self.finished = threading.Event()
        real = documents.build_and_store

        def held(*args, **kwargs):
            self.started.set()
            assert self.release.wait(120), "the gate was never opened"
            try:
                return real(*args, **kwargs)
            finally:
                self.finished.set()

        monkeypatch.setattr(documents, "WORKER", "thread")
        monkeypatch.setattr(documents, "build_and_store", held)

    async def wait_started(self) -> None:
        for _ in range(3000):
            if self.started.is_set():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the build never started")


async def _count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))
                ).scalar_one()


async def test_another_person_is_answered_while_an_uploaded_workbook_is_built(
        harness, sessionmaker, services, clock, monkeypatch):  # noqa: F811
    people = await People(harness).load((Role.KASUBAG, None), (Role.STAF, "PPTK"))
    kasubag, staf = people.user(Role.KASUBAG), people.user(Role.STAF, "PPTK")
    await drive_to_compile(Walk(sessionmaker, services, clock))
    await harness.sender.drain()
    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))
    q = await kasubag.press(card, text="Susun dokumen")
    await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"), timeout=60)
    xlsx = [f for f in harness.emulator.sent_files(kasubag.chat_id)
            if (f.filename or "").endswith(".xlsx")][-1].data
    await harness.settle()

    gate = Gate(monkeypatch)
    # two figures: one plain, one typed as text that is read with a warning to confirm
    edited = edited_workbook(edited_workbook(xlsx, "PPTK-03", 68), "PPTK-04", "1.250")
    sent = await kasubag.send_document(edited, "pengukuran-edit.xlsx")
    progress = await kasubag.wait_for(after=sent, text_contains="Workbook Anda telah dibaca")
    await gate.wait_started()
    # the upload's update is committed: its job (with the figures read) is recorded
    async with sessionmaker() as s:
        job = (await s.execute(select(CompileJob).where(CompileJob.kind == "uploaded"))
               ).scalar_one()
        assert job.finished_at is None and job.payload["rows"]["PPTK-03"][1] == ["d", "68"]

    # another person's update runs to its end while the build is held
    asked = await staf.send_command("/bantuan")
    helped = await staf.wait_for(after=asked, timeout=60)
    await harness.committed()  # (not settle: that waits for the build too)
    assert await harness.intake.pending() == 0  # every update committed
    assert not gate.finished.is_set()
    assert await _count(sessionmaker, Document) == 1  # version 2 not recorded yet
    # the same workbook sent again meanwhile: told it is under way, no second job
    again = await kasubag.send_document(edited_workbook(xlsx, "PPTK-03", 69), "lagi.xlsx")
    busy = await kasubag.wait_for(after=again, text_contains="sedang disusun", timeout=60)

    gate.release.set()
    v2 = await kasubag.wait_for(after=sent, predicate=has_button("Ajukan untuk paraf"),
                                timeout=120)
    assert helped.seq < v2.seq and busy.seq < v2.seq, (helped.seq, busy.seq, v2.seq)
    assert "versi 2" in v2.text and "Workbook yang Anda kirim telah dibaca" in v2.text
    assert "Mohon periksa pembacaan" in v2.text and "1.250" in v2.text, v2.text
    done = await kasubag.wait_for(after=sent, text_contains="selesai disusun")
    assert done.message_id == progress.message_id
    await harness.settle()
    async with sessionmaker() as s:
        doc2 = (await s.execute(select(Document).where(Document.version == 2))).scalar_one()
        assert doc2.source == "uploaded"
        jobs = (await s.execute(select(CompileJob).where(CompileJob.kind == "uploaded"))
                ).scalars().all()
        assert [(j.document_id, j.error) for j in jobs] == [(doc2.id, "")]
    assert await _count(sessionmaker, Document) == 2


async def _to_numbering(harness, sessionmaker, services, clock) -> int:
    """The example cycle compiled, initialled and signed: the step-9 run."""
    walk = Walk(sessionmaker, services, clock)
    cycle_id, run6 = await drive_to_compile(walk)
    kasubag = await walk.who(Role.KASUBAG)

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    run9 = await sign_off(walk, cycle_id, run6, doc.id)
    clock.advance(minutes=3)
    await harness.sender.drain()
    return run9


async def test_another_person_is_answered_while_the_numbered_final_is_built(
        harness, sessionmaker, services, clock, monkeypatch):  # noqa: F811
    """"Beri nomor": the press records a job; the number is given with the final
    version in the job's own transaction, after the build: while the build is held, no
    number is given yet and another person is answered; then exactly one number, with
    its final version, the card edited and the PDF sent."""
    people = await People(harness).load((Role.STAF, "SEK"), (Role.KASUBAG, None))
    staf, kasubag = people.user(Role.STAF, "SEK"), people.user(Role.KASUBAG)
    run9 = await _to_numbering(harness, sessionmaker, services, clock)
    card = await staf.wait_for(predicate=has_button("Beri nomor"))
    markup = card.reply_markup

    gate = Gate(monkeypatch)
    q = await staf.press(card, text="Beri nomor")
    progress = await staf.wait_for(after=q, text_contains="Memberi nomor", timeout=30)
    await gate.wait_started()
    async with sessionmaker() as s:
        job = (await s.execute(select(CompileJob))).scalar_one()
        assert job.kind == "numbered" and job.run_id == run9 and job.finished_at is None
    assert await _count(sessionmaker, LetterNumber) == 0  # given with the final, not before

    asked = await kasubag.send_command("/bantuan")
    helped = await kasubag.wait_for(after=asked, timeout=60)
    await harness.committed()  # (not settle: that waits for the build too)
    assert await harness.intake.pending() == 0  # every update committed
    assert not gate.finished.is_set()
    assert await _count(sessionmaker, LetterNumber) == 0
    # the button pressed again meanwhile (an older copy of the card): no second job
    staf.message(card.message_id).reply_markup = markup
    again = await staf.press(card, text="Beri nomor")
    told = await staf.wait_for_answer(again)
    assert "sedang disiapkan" in told.text, told.text

    gate.release.set()
    numbered = await staf.wait_for(after=q, text_contains="diberi nomor", timeout=120)
    assert helped.seq < numbered.seq, (helped.seq, numbered.seq)
    assert "050/1/" in numbered.content and "Kode verifikasi" in numbered.content
    await staf.wait_for(after=q, predicate=lambda m: m.document is not None)
    assert harness.emulator.sent_files(staf.chat_id)[-1].filename.endswith("-final.pdf")
    done = await staf.wait_for(after=q, text_contains="selesai disusun")
    assert done.message_id == progress.message_id
    closed = await staf.wait_for(after=q, text_contains="Diberi nomor 050/1/")
    assert closed.message_id == card.message_id and not closed.buttons
    await harness.settle()
    async with sessionmaker() as s:
        letters = (await s.execute(select(LetterNumber))).scalars().all()
        final = (await s.execute(select(Document).where(
            Document.source == "numbered"))).scalar_one()
        assert [(x.sequence, x.document_id) for x in letters] == [(1, final.id)]
        job = (await s.execute(select(CompileJob))).scalar_one()
        assert job.document_id == final.id and job.error == ""
        assert (await s.execute(select(func.count()).select_from(StepRun).where(
            StepRun.step_no == 10))).scalar_one() == 1


async def test_a_numbering_cut_off_by_a_stop_gives_its_number_once_at_the_next_start(
        harness, sessionmaker, services, clock, monkeypatch):  # noqa: F811
    """The press committed its job; the bot stopped in the middle of the build: no
    number was given (the number is given with the final version), and the next start
    gives it, once, with the final version."""
    import bot.core.documents as documents

    people = await People(harness).load((Role.STAF, "SEK"),)
    staf = people.user(Role.STAF, "SEK")
    await _to_numbering(harness, sessionmaker, services, clock)
    card = await staf.wait_for(predicate=has_button("Beri nomor"))

    real = documents.build_and_store
    gate = Gate(monkeypatch)
    q = await staf.press(card, text="Beri nomor")
    await staf.wait_for(after=q, text_contains="Memberi nomor", timeout=30)
    await gate.wait_started()
    await harness.stop_bot()  # the runner is stopped: its job is cut off
    async with sessionmaker() as s:
        job = (await s.execute(select(CompileJob))).scalar_one()
        assert job.finished_at is None
    assert await _count(sessionmaker, LetterNumber) == 0
    monkeypatch.setattr(documents, "build_and_store", real)
    gate.release.set()  # the abandoned thread ends; its result is not used

    await harness.start_bot()
    numbered = await staf.wait_for(after=q, text_contains="diberi nomor", timeout=120)
    assert "050/1/" in numbered.content
    await harness.settle()
    async with sessionmaker() as s:
        letters = (await s.execute(select(LetterNumber))).scalars().all()
        assert [x.sequence for x in letters] == [1]
        finals = (await s.execute(select(Document).where(
            Document.source == "numbered"))).scalars().all()
        assert len(finals) == 1 and letters[0].document_id == finals[0].id
        job = (await s.execute(select(CompileJob))).scalar_one()
        assert job.finished_at is not None and job.document_id == finals[0].id
