"""The workflow engine walks a cycle of the SOP, tested without Telegram."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.core.audit import verify
from bot.core.workflow import InvalidInput, NotAllowed, NotAssignee, StaleAction, Workflow, WrongState
from models import (
    Approval, AuditLog, Cycle, CycleIndicator, Delivery, Document, LetterNumber, Outbox,
    StepRun, Submission,
)
from models.enums import (
    ApprovalAction, CycleKind, CycleStatus, DeliveryStatus, DocumentStatus, Role, StepStatus,
)
from tests.conftest import wib
from tests.helpers import person, snapshot, unit


class Walk:
    """Runs workflow calls, each in its own transaction, as the handlers will."""

    def __init__(self, sessionmaker, services, clock):
        self.sm, self.sv, self.clock = sessionmaker, services, clock

    async def __call__(self, fn):
        async with self.sm() as session, session.begin():
            return await fn(Workflow(session, self.sv), session)

    async def who(self, role, unit_code=None):
        async with self.sm() as session:
            return await person(session, role, unit_code)

    async def unit_id(self, code):
        async with self.sm() as session:
            return (await unit(session, code)).id

    async def refused(self, fn, exc=Exception):
        """The move raises ``exc`` and the database is exactly as before."""
        async with self.sm() as session:
            before = await snapshot(session)
        with pytest.raises(exc):
            await self(fn)
        async with self.sm() as session:
            assert await snapshot(session) == before


@pytest.fixture
def walk(sessionmaker, services, clock, office):
    return Walk(sessionmaker, services, clock)


async def start(walk: Walk) -> int:
    kadis = await walk.who(Role.KADIS)
    cycle = await walk(lambda wf, s: wf.start_cycle(
        kadis, CycleKind.QUARTERLY, 2024, 3, "Siapkan pengukuran kinerja triwulan III"))
    return cycle.id


async def open_run(walk: Walk, cycle_id: int, step_no: int, unit_code: str | None = None):
    uid = await walk.unit_id(unit_code) if unit_code else None
    async with walk.sm() as s:
        stmt = select(StepRun).where(StepRun.cycle_id == cycle_id, StepRun.step_no == step_no,
                                     StepRun.status == StepStatus.OPEN)
        if uid:
            stmt = stmt.where(StepRun.unit_id == uid)
        return (await s.execute(stmt)).scalar_one()


async def to_collection(walk: Walk, units=("PPTK", "IND")) -> tuple[int, dict[str, int]]:
    cycle_id = await start(walk)
    sek = await walk.who(Role.SEKRETARIS)
    run2 = await open_run(walk, cycle_id, 2)
    walk.clock.advance(minutes=3)
    await walk(lambda wf, s: wf.forward_disposition(sek, run2.id, "Mohon segera dikoordinasikan"))
    kasubag = await walk.who(Role.KASUBAG)
    run3 = await open_run(walk, cycle_id, 3)

    async def coordinate(wf, s):
        default = await wf.default_selection(await wf.get_cycle(cycle_id))
        chosen = {u: default[u] for u in [await walk.unit_id(c) for c in units]}
        return await wf.open_collection(kasubag, run3.id, chosen, days=3)

    walk.clock.advance(minutes=20)
    runs = await walk(coordinate)
    return cycle_id, {c: r.id for c, r in zip(sorted(units, key=lambda c: 0), runs)}


async def answer_all(walk: Walk, cycle_id: int, unit_code: str, values=None):
    kabid = await walk.who(Role.KABID, unit_code)
    run = await open_run(walk, cycle_id, 4, unit_code)
    async with walk.sm() as s:
        items = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cycle_id, CycleIndicator.unit_id == run.unit_id)
            .order_by(CycleIndicator.position))).scalars().all()
    for item in items:
        value = (values or {}).get(item.indicator_id, Decimal("10"))
        await walk(lambda wf, s, item=item, value=value: wf.record_answer(
            kabid, run.id, item.id, raw_text=str(value), value=value))
    return run


async def test_full_cycle_with_a_returned_bidang_and_returned_documents(walk, clock):
    cycle_id, _ = await to_collection(walk)
    kabid_pptk = await walk.who(Role.KABID, "PPTK")
    kabid_ind = await walk.who(Role.KABID, "IND")
    kasubag = await walk.who(Role.KASUBAG)
    sek = await walk.who(Role.SEKRETARIS)
    kadis = await walk.who(Role.KADIS)
    staf = await walk.who(Role.STAF, "SEK")

    # step 4: both bidang answer and submit; step 5 opens only when both are in
    run_pptk = await answer_all(walk, cycle_id, "PPTK")
    assert await walk(lambda wf, s: wf.submit_unit(kabid_pptk, run_pptk.id)) is None
    run_ind = await answer_all(walk, cycle_id, "IND")
    clock.advance(days=1)
    run5 = await walk(lambda wf, s: wf.submit_unit(kabid_ind, run_ind.id))
    assert run5 is not None and run5.step_no == 5 and run5.assignee_id == kasubag.id

    # 5 -> 4: the Kasubag returns Perindustrian once; step 5 cannot finish meanwhile
    ind_id = await walk.unit_id("IND")
    back = await walk(lambda wf, s: wf.return_unit(kasubag, cycle_id, ind_id,
                                                  "Data IKM belum sesuai laporan"))
    assert back.round == 2 and back.assignee_id == kabid_ind.id
    await walk.refused(lambda wf, s: wf.complete_process(kasubag, run5.id), WrongState)
    run_ind2 = await answer_all(walk, cycle_id, "IND")
    assert run_ind2.id == back.id
    assert await walk(lambda wf, s: wf.submit_unit(kabid_ind, back.id)) is None  # 5 still open
    run6 = await walk(lambda wf, s: wf.complete_process(kasubag, run5.id))
    assert run6.step_no == 6

    # step 6: a document version, submitted; the Sekretaris returns it (7 -> 6)
    async def add_doc(wf, s, sha):
        cycle = await wf.get_cycle(cycle_id)
        return await wf.add_document(kasubag, cycle, sha256=sha, workbook_file_id=None,
                                     pdf_file_id=None, chart_file_id=None)

    doc1 = await walk(lambda wf, s: add_doc(wf, s, "a" * 64))
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag, run6.id, doc1.id))
    assert run7.step_no == 7 and run7.assignee_id == sek.id
    run6b = await walk(lambda wf, s: wf.return_documents(sek, run7.id, doc1.id,
                                                        "Tabel capaian belum lengkap"))
    assert run6b.step_no == 6 and run6b.round == 2
    # the old button is refused now
    await walk.refused(lambda wf, s: wf.approve(sek, run7.id, doc1.id), StaleAction)

    doc2 = await walk(lambda wf, s: add_doc(wf, s, "b" * 64))
    run7b = await walk(lambda wf, s: wf.submit_documents(kasubag, run6b.id, doc2.id))
    run8 = await walk(lambda wf, s: wf.approve(sek, run7b.id, doc2.id))
    assert run8.step_no == 8 and run8.assignee_id == kadis.id
    # the Kadis returns it too (8 -> 6), then signs the third version
    run6c = await walk(lambda wf, s: wf.return_documents(kadis, run8.id, doc2.id, "Perbaiki judul"))
    doc3 = await walk(lambda wf, s: add_doc(wf, s, "c" * 64))
    run7c = await walk(lambda wf, s: wf.submit_documents(kasubag, run6c.id, doc3.id))
    run8b = await walk(lambda wf, s: wf.approve(sek, run7c.id, doc3.id))
    run9 = await walk(lambda wf, s: wf.approve(kadis, run8b.id, doc3.id))
    assert run9.step_no == 9 and run9.assignee_id == staf.id

    letter = await walk(lambda wf, s: wf.assign_number(staf, run9.id))
    assert letter.number == "050/1/II.08/2024" and letter.sequence == 1
    run10 = await open_run(walk, cycle_id, 10)
    run11 = await walk(lambda wf, s: wf.archive(kasubag, run10.id))
    assert run11.step_no == 11

    async with walk.sm() as s:
        deliveries = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    assert [d.agency_key for d in deliveries] == ["bappeda", "inspektorat", "organisasi"]
    bappeda = await walk.who(Role.CONTACT)
    await walk(lambda wf, s: wf.send_delivery(staf, deliveries[0].id))
    await walk(lambda wf, s: wf.record_receipt(bappeda, deliveries[0].id))
    await walk.refused(lambda wf, s: wf.record_receipt(staf, deliveries[1].id), InvalidInput)
    for d in deliveries[1:]:
        async def receipt(wf, s, d=d):
            from models import StoredFile
            f = StoredFile(sha256=f"{d.id:064d}", size=1, filename="tanda-terima.jpg")
            s.add(f)
            await s.flush()
            return await wf.record_receipt(staf, d.id, received_by="Petugas", receipt_file_id=f.id)
        await walk(receipt)

    async with walk.sm() as s:
        cycle = await s.get(Cycle, cycle_id)
        assert cycle.status == CycleStatus.CLOSED
        assert all(d.status == DeliveryStatus.RECEIVED
                   for d in (await s.execute(select(Delivery))).scalars())
        approvals = (await s.execute(select(Approval).order_by(Approval.id))).scalars().all()
        assert [(a.action, a.document_sha256[0]) for a in approvals] == [
            (ApprovalAction.RETURN, "a"), (ApprovalAction.PARAF, "b"), (ApprovalAction.RETURN, "b"),
            (ApprovalAction.PARAF, "c"), (ApprovalAction.SIGN, "c")]
        docs = (await s.execute(select(Document).order_by(Document.version))).scalars().all()
        assert [d.status for d in docs] == [DocumentStatus.SUPERSEDED, DocumentStatus.SUPERSEDED,
                                            DocumentStatus.ARCHIVED]
        runs = (await s.execute(select(StepRun).order_by(StepRun.id))).scalars().all()
        assert all(r.status != StepStatus.OPEN for r in runs)
        assert sorted({r.step_no for r in runs}) == list(range(1, 12))
        # every revision kept: IND answered twice
        revs = (await s.execute(select(func.max(Submission.revision)))).scalar_one()
        assert revs == 2
        assert (await verify(s)).ok
        actions = (await s.execute(select(AuditLog.action))).scalars().all()
        assert actions.count("data.return") == 1 and actions.count("document.return") == 2
        assert actions[-1] == "cycle.close"
        # everyone involved is told the cycle closed
        closed = (await s.execute(select(Outbox).where(Outbox.kind == "cycle_closed"))).scalars().all()
        assert len(closed) >= 6


async def test_due_times_follow_working_time(walk, clock):
    # Friday 11 October 2024 15:58: step 2 (5 minutes) is due Monday 07:33
    clock.set(wib(2024, 10, 11, 15, 58))
    cycle_id = await start(walk)
    run2 = await open_run(walk, cycle_id, 2)
    assert run2.due_at == wib(2024, 10, 14, 7, 33)


async def test_collection_deadline_skips_a_holiday(walk, clock):
    # Wednesday 25 December 2024 is Christmas, 26 December cuti bersama
    clock.set(wib(2024, 12, 23, 9, 0))
    kadis = await walk.who(Role.KADIS)
    cycle = await walk(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 4, ""))
    sek = await walk.who(Role.SEKRETARIS)
    run2 = await open_run(walk, cycle.id, 2)
    await walk(lambda wf, s: wf.forward_disposition(sek, run2.id))
    run3 = await open_run(walk, cycle.id, 3)
    kasubag = await walk.who(Role.KASUBAG)
    runs = await walk(lambda wf, s: wf.open_collection(kasubag, run3.id, None, days=3))
    # Monday 23 Dec 09:00 + 3 working days: 24 Dec (1), 27 Dec (2), 30 Dec (3)
    assert {r.due_at for r in runs} == {wib(2024, 12, 30, 9, 0)}
    assert len(runs) == 4  # every bidang with targets


async def test_illegal_moves_change_nothing(walk):
    cycle_id = await start(walk)
    kadis = await walk.who(Role.KADIS)
    sek = await walk.who(Role.SEKRETARIS)
    kasubag = await walk.who(Role.KASUBAG)
    kabid = await walk.who(Role.KABID, "PPTK")
    run2 = await open_run(walk, cycle_id, 2)
    # wrong role starts a cycle; the same period twice
    await walk.refused(lambda wf, s: wf.start_cycle(sek, CycleKind.QUARTERLY, 2024, 4), NotAllowed)
    await walk.refused(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3), WrongState)
    await walk.refused(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 5), InvalidInput)
    # wrong person forwards the disposition
    await walk.refused(lambda wf, s: wf.forward_disposition(kasubag, run2.id), NotAllowed)
    await walk(lambda wf, s: wf.forward_disposition(sek, run2.id))
    # double press: forwarding again is refused
    await walk.refused(lambda wf, s: wf.forward_disposition(sek, run2.id), StaleAction)
    run3 = await open_run(walk, cycle_id, 3)
    # deadline outside 1-5 working days
    await walk.refused(lambda wf, s: wf.open_collection(kasubag, run3.id, None, days=6), InvalidInput)
    await walk.refused(lambda wf, s: wf.open_collection(kabid, run3.id, None), NotAllowed)
    await walk(lambda wf, s: wf.open_collection(kasubag, run3.id, None))
    run4 = await open_run(walk, cycle_id, 4, "PPTK")
    # submit with nothing answered; another bidang's Kabid; a staf not handed the indicator
    await walk.refused(lambda wf, s: wf.submit_unit(kabid, run4.id), WrongState)
    other = await walk.who(Role.KABID, "IND")
    await walk.refused(lambda wf, s: wf.submit_unit(other, run4.id), NotAllowed)
    staf = await walk.who(Role.STAF, "PPTK")
    async with walk.sm() as s:
        item = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.unit_id == run4.unit_id))).scalars().first()
    await walk.refused(lambda wf, s: wf.record_answer(staf, run4.id, item.id, raw_text="1",
                                                     value=Decimal(1)), NotAssignee)
    await walk.refused(lambda wf, s: wf.record_answer(other, run4.id, item.id, raw_text="1",
                                                     value=Decimal(1)), NotAllowed)
    # handed over, the staf may answer
    await walk(lambda wf, s: wf.assign_item(kabid, run4.id, item.id, staf.id))
    await walk(lambda wf, s: wf.record_answer(staf, run4.id, item.id, raw_text="1", value=Decimal(1)))
    # returning a bidang that has not submitted; closing by the wrong person
    ind = await walk.unit_id("PPTK")
    await walk.refused(lambda wf, s: wf.return_unit(kasubag, cycle_id, ind, "x"), WrongState)
    await walk.refused(lambda wf, s: wf.return_unit(kasubag, cycle_id, ind, "  "), InvalidInput)
    await walk.refused(lambda wf, s: wf.close_collection(sek, cycle_id), NotAllowed)
    # later steps before their time
    await walk.refused(lambda wf, s: wf.complete_process(kasubag, run4.id), StaleAction)
    await walk.refused(lambda wf, s: wf.assign_number(staf, run4.id), StaleAction)
    # an inactive person
    async with walk.sm() as s, s.begin():
        p = await s.get(type(kabid), kabid.id)
        p.active = False
    kabid.active = False
    await walk.refused(lambda wf, s: wf.submit_unit(kabid, run4.id), NotAllowed)


async def test_close_collection_records_missing_bidang(walk):
    cycle_id, _ = await to_collection(walk)
    kabid = await walk.who(Role.KABID, "PPTK")
    kasubag = await walk.who(Role.KASUBAG)
    run = await answer_all(walk, cycle_id, "PPTK")
    await walk(lambda wf, s: wf.submit_unit(kabid, run.id))
    run5 = await walk(lambda wf, s: wf.close_collection(kasubag, cycle_id, "Tidak mengirim"))
    assert run5.step_no == 5
    async with walk.sm() as s:
        skipped = (await s.execute(select(StepRun).where(StepRun.status == StepStatus.SKIPPED))
                   ).scalars().all()
        assert len(skipped) == 1 and skipped[0].unit_id == await walk.unit_id("IND")
        text = (await s.execute(select(Outbox.payload).where(Outbox.kind == "process_open"))
                ).scalar_one()["text"]
        assert "Bidang Perindustrian" in text


async def test_letter_numbers_are_sequential_per_year(walk, services):
    async def alloc(wf, s, on):
        office = await wf.office()
        return await wf.allocate_number(office.id, on)

    from datetime import date
    a = await walk(lambda wf, s: alloc(wf, s, date(2024, 12, 30)))
    b = await walk(lambda wf, s: alloc(wf, s, date(2024, 12, 31)))
    c = await walk(lambda wf, s: alloc(wf, s, date(2025, 1, 2)))
    assert (a.sequence, b.sequence, c.sequence) == (1, 2, 1)
    services.config.numbering.format = "{kode}/{urut}/{jenis}/{bulan_romawi}/{tahun}"
    d = await walk(lambda wf, s: alloc(wf, s, date(2025, 3, 2)))
    assert d.number == "050/2/III/2025"  # a report has no jenis: left out
    async with walk.sm() as s:
        assert (await s.execute(select(func.count()).select_from(LetterNumber))).scalar_one() == 4
