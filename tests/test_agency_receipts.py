"""Step 11: sending is the office's work (10 minutes, reminded and escalated like any
step); the receipts the agencies return are their own time, tracked per agency with
reminders to the agency's contact, and never escalated inside the office."""
from __future__ import annotations

from sqlalchemy import select

from bot.core.reminders import daily_digest, receipt_sweep, sweep
from models import Cycle, Delivery, Outbox, Person, ReceiptReminder, Reminder, StepRun
from models.enums import CycleStatus, DeliveryStatus, Role, StepStatus
from tests.e2e import harness  # noqa: F401  (fixture)
from tests.test_workflow import Walk, answer_all, open_run, to_collection

import pytest


@pytest.fixture
def walk(sessionmaker, services, clock, office):
    return Walk(sessionmaker, services, clock)


async def to_delivery(walk: Walk) -> tuple[int, int]:
    """Steps 1-10 for two bidang, documents without files; returns (cycle, step-11 run)."""
    cycle_id, _ = await to_collection(walk)
    kasubag, sek = await walk.who(Role.KASUBAG), await walk.who(Role.SEKRETARIS)
    kadis, staf = await walk.who(Role.KADIS), await walk.who(Role.STAF, "SEK")
    for code in ("PPTK", "IND"):
        run = await answer_all(walk, cycle_id, code)
        kabid = await walk.who(Role.KABID, code)
        await walk(lambda wf, s, run=run, kabid=kabid: wf.submit_unit(kabid, run.id))
    run5 = await open_run(walk, cycle_id, 5)
    run6 = await walk(lambda wf, s: wf.complete_process(kasubag, run5.id))

    async def add_doc(wf, s):
        return await wf.add_document(kasubag, await wf.get_cycle(cycle_id), sha256="d" * 64,
                                     workbook_file_id=None, pdf_file_id=None,
                                     chart_file_id=None)

    doc = await walk(add_doc)
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag, run6.id, doc.id))
    run8 = await walk(lambda wf, s: wf.approve(sek, run7.id, doc.id))
    run9 = await walk(lambda wf, s: wf.approve(kadis, run8.id, doc.id))
    await walk(lambda wf, s: wf.assign_number(staf, run9.id))
    run10 = await open_run(walk, cycle_id, 10)
    run11 = await walk(lambda wf, s: wf.archive(kasubag, run10.id))
    return cycle_id, run11.id


async def deliveries(walk: Walk) -> list[Delivery]:
    async with walk.sm() as s:
        return list((await s.execute(select(Delivery).order_by(Delivery.id))).scalars())


async def by_photo(walk: Walk, staf: Person, delivery_id: int) -> None:
    async def record(wf, s):
        photo = await wf.sv.store.put(s, b"\xff\xd8 tanda terima", "tanda-terima.jpg",
                                      "image/jpeg")
        return await wf.record_receipt(staf, delivery_id, received_by="Petugas Loket",
                                       receipt_file_id=photo.id)
    await walk(record)


async def tick(walk: Walk):
    """One deadline tick's reminder parts, as the scheduler runs them."""
    async with walk.sm() as s, s.begin():
        steps = await sweep(s, walk.sv)
    async with walk.sm() as s, s.begin():
        receipts = await receipt_sweep(s, walk.sv)
    return steps, receipts


async def test_receipt_wait_is_not_escalated_and_the_contact_is_reminded(walk, clock):
    cycle_id, run11_id = await to_delivery(walk)
    staf, contact = await walk.who(Role.STAF, "SEK"), await walk.who(Role.CONTACT)
    bappeda, inspektorat, organisasi = await deliveries(walk)
    assert bappeda.contact_person_id == contact.id

    # the office's own work: sent to Bappeda's contact in the bot, two handed over
    clock.advance(minutes=3)
    await walk(lambda wf, s: wf.send_delivery(staf, bappeda.id))
    async with walk.sm() as s:
        assert (await s.get(StepRun, run11_id)).status == StepStatus.OPEN  # two left
    clock.advance(minutes=2)
    await by_photo(walk, staf, inspektorat.id)
    await by_photo(walk, staf, organisasi.id)
    async with walk.sm() as s:
        run11 = await s.get(StepRun, run11_id)
        assert run11.status == StepStatus.DONE  # nothing left to send: step 11 is done
        sent_done = run11.completed_at
        assert walk.sv.calendar.working_minutes_between(run11.started_at, sent_done) <= 10
        assert (await s.get(Cycle, cycle_id)).status == CycleStatus.ACTIVE  # receipt awaited
        first_outbox = (await s.execute(select(Outbox.id).order_by(Outbox.id.desc()))
                        ).scalars().first()

    # waiting for Bappeda from Monday 7 to Friday 11 October 2024
    reminded = []
    for _ in range(4):
        clock.advance(days=1)
        steps, receipts = await tick(walk)
        assert steps == []  # no step is late: the office has nothing open
        reminded += receipts
    # one reminder per working day, at most three, each to Bappeda's contact
    assert [r.level for r in reminded] == [1, 2, 3]
    assert {r.person_id for r in reminded} == {contact.id}
    assert {r.delivery_id for r in reminded} == {bappeda.id}
    async with walk.sm() as s:
        assert (await s.execute(select(Reminder).where(Reminder.step_run_id == run11_id))
                ).scalars().all() == []
        new = (await s.execute(select(Outbox).where(Outbox.id > first_outbox)
                               .order_by(Outbox.id))).scalars().all()
        # nobody inside the office is escalated to: with the last reminder only the
        # staf who sent it is told, with a button to record a paper receipt
        assert [(o.person_id, o.kind.split(":")[0]) for o in new] == [
            (contact.id, "receipt_reminder")] * 3 + [(staf.id, "receipt_unconfirmed")]
        assert "Konfirmasi terima" in str(new[2].payload)
        assert "Pengingat ke-3" in str(new[2].payload)
        assert "bukan keterlambatan" in str(new[3].payload)
        assert f"dlv:{bappeda.id}" in str(new[3].payload)

    # the digest lists the wait apart, not as a late step
    async with walk.sm() as s, s.begin():
        assert await daily_digest(s, walk.sv) > 0
    async with walk.sm() as s:
        digest = (await s.execute(select(Outbox).where(Outbox.kind.like("digest:%"))
                                  .order_by(Outbox.id.desc()))).scalars().first()
        text = str(digest.payload)
    assert "Menunggu tanda terima Bappeda Kabupaten Lampung Barat" in text
    assert "Terlambat: 0 dari 0" in text

    # the contact confirms: the cycle closes, step 11 keeps its own sending time
    clock.advance(days=1)
    await walk(lambda wf, s: wf.record_receipt(contact, bappeda.id))
    async with walk.sm() as s:
        assert (await s.get(Cycle, cycle_id)).status == CycleStatus.CLOSED
        assert (await s.get(StepRun, run11_id)).completed_at == sent_done
        assert (await s.get(Delivery, bappeda.id)).status == DeliveryStatus.RECEIVED
    clock.advance(days=3)
    assert await tick(walk) == ([], [])


async def test_a_reminder_is_recorded_once_and_waits_for_office_hours(walk, clock):
    _, _ = await to_delivery(walk)
    staf, contact = await walk.who(Role.STAF, "SEK"), await walk.who(Role.CONTACT)
    bappeda, inspektorat, organisasi = await deliveries(walk)
    await walk(lambda wf, s: wf.send_delivery(staf, bappeda.id))
    # sent on Monday 7 Oct 2024; Friday evening is outside office hours: nothing
    clock.set(clock.now().replace(day=11, hour=18))
    assert await tick(walk) == ([], [])
    clock.set(clock.now().replace(day=14, hour=8))  # Monday opening: what was due goes
    steps, receipts = await tick(walk)
    assert [r.level for r in receipts] == [1, 2, 3]
    assert {r.person_id for r in receipts} == {contact.id}
    async with walk.sm() as s:
        # three points caught up at once, one message
        ids = {r.outbox_id for r in (await s.execute(select(ReceiptReminder))).scalars()}
        assert len(ids) == 1
    assert (await tick(walk))[1] == []  # recorded once


async def test_sending_itself_is_reminded_and_escalated_like_any_step(walk, clock):
    _, run11_id = await to_delivery(walk)
    staf, kasubag = await walk.who(Role.STAF, "SEK"), await walk.who(Role.KASUBAG)
    clock.advance(minutes=15)  # past the 10 minutes of step 11, nothing sent
    steps, receipts = await tick(walk)
    assert [(r.step_run_id, r.kind, r.person_id) for r in steps] == [(run11_id, "due", staf.id)]
    assert receipts == []
    clock.advance(days=1)
    steps, _ = await tick(walk)
    assert {(r.kind, r.person_id) for r in steps} == {("overdue", staf.id),
                                                      ("escalate", kasubag.id)}


async def test_the_sender_records_a_paper_receipt_after_the_sending_is_done(walk, clock):
    cycle_id, run11_id = await to_delivery(walk)
    staf, kasubag = await walk.who(Role.STAF, "SEK"), await walk.who(Role.KASUBAG)
    bappeda, inspektorat, organisasi = await deliveries(walk)
    await walk(lambda wf, s: wf.send_delivery(staf, bappeda.id))
    await by_photo(walk, staf, inspektorat.id)
    await by_photo(walk, staf, organisasi.id)
    clock.advance(days=4)
    # the contact never confirms; nobody but step 11's holder may record the paper one
    await walk.refused(lambda wf, s: wf.record_receipt(kasubag, bappeda.id,
                                                        receipt_file_id=None))
    await by_photo(walk, staf, bappeda.id)
    async with walk.sm() as s:
        assert (await s.get(Cycle, cycle_id)).status == CycleStatus.CLOSED
        assert (await s.get(Delivery, bappeda.id)).received_by == "Petugas Loket"
        run11 = await s.get(StepRun, run11_id)
        assert run11.status == StepStatus.DONE and run11.completed_at < clock.now()


async def test_over_the_bot_the_sender_records_the_paper_receipt_from_the_last_reminder(
        harness, sessionmaker, services, clock, office):
    """The staf registered in the bot gets the last reminder's notice, presses its
    button and sends the photo of the signed receipt: the cycle closes."""
    import io

    from PIL import Image

    from tests.e2e import People

    walk = Walk(sessionmaker, services, clock)
    people = await People(harness).load((Role.STAF, "SEK"), (Role.KASUBAG, None))
    staf_user = people.user(Role.STAF, "SEK")
    cycle_id, _ = await to_delivery(walk)
    staf = await walk.who(Role.STAF, "SEK")
    bappeda, inspektorat, organisasi = await deliveries(walk)
    await walk(lambda wf, s: wf.send_delivery(staf, bappeda.id))
    await by_photo(walk, staf, inspektorat.id)
    await by_photo(walk, staf, organisasi.id)
    await harness.settle()
    clock.advance(days=3)  # Thursday 10 October: the third and last reminder
    _, receipts = await tick(walk)
    assert [r.level for r in receipts] == [1, 2, 3]
    await harness.settle()
    notice = await staf_user.wait_for(
        predicate=lambda m: any("Catat tanda terima" in b for b in m.button_texts))
    assert "bukan keterlambatan" in notice.text
    q = await staf_user.press(notice, text="Catat tanda terima")
    await staf_user.wait_for(after=q, text_contains="kirim foto tanda terima")
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 200, 200)).save(buf, format="PNG")
    sent = await staf_user.send_photo(buf.getvalue(), caption="Sari Wulandari")
    await staf_user.wait_for(after=sent, text_contains="diterima oleh Sari Wulandari")
    await harness.settle()
    async with sessionmaker() as s:
        assert (await s.get(Cycle, cycle_id)).status == CycleStatus.CLOSED
        assert (await s.get(Delivery, bappeda.id)).received_by == "Sari Wulandari"
    # the Kasubag was told of the closing, never of a late receipt
    kasubag_texts = [m.text for m in people.user(Role.KASUBAG).messages]
    assert not any("terlambat" in (text or "").lower() for text in kasubag_texts)
