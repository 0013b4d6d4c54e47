"""Duplicates and stale presses (DESIGN principles 1 and 6), over real HTTP.

* The same Telegram update delivered twice (same ``update_id``: Telegram redelivers
  updates whose confirmation was lost, e.g. when the bot crashed before its next
  getUpdates) has the effect of one: its inbox row is already there and processed
  (``bot/telegram/intake.py``), so it is not processed again.
* Two presses of the same button (two different callback queries, a double tap) have
  the effect of one.
* An older card's button pressed after a newer card exists is refused as stale and
  changes nothing.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import func, select

from bot.core.documents import compile_documents
from models import (
    Approval, AuditLog, CycleIndicator, Document, Inbox, LetterNumber, Outbox, StepRun,
    Submission,
)
from models.enums import ApprovalAction, DocumentStatus, OutboxStatus, Role, StepStatus
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.helpers import snapshot
from tests.test_documents_service import drive_to_compile
from tests.test_e2e_data_entry import to_collection
from tests.test_workflow import Walk, open_run

STALE = "Tombol ini sudah tidak berlaku."


async def last_update_id(sm) -> int:
    async with sm() as s:
        return (await s.execute(select(func.max(Inbox.update_id)))).scalar_one()


async def count(sm, model, *where) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))
                ).scalar_one()


async def state(sm) -> dict:
    async with sm() as s:
        snap = await snapshot(s)
    return snap


async def quiet(harness) -> None:
    """Settled, and no outbox row still being sent: settle() may return while the
    background sender is in the middle of a claimed row."""
    await harness.settle()
    for _ in range(1000):
        if not await count(harness.sessionmaker, Outbox, Outbox.chat_id.is_not(None),
                           Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the outbox did not empty")


async def redeliver_after_restart(harness, *update_ids: int) -> None:
    """Telegram sends these updates again to the restarted bot (their confirmation was
    lost); the bot takes every pending update and settles."""
    await quiet(harness)
    await harness.stop_bot()
    for update_id in update_ids:
        await harness.emulator.redeliver(update_id)
    assert harness.emulator.updates_pending() >= len(update_ids)
    await harness.start_bot()
    await harness.settle()


def chat_seq(user) -> int:
    return max((m.seq for m in user.messages), default=0)


async def test_data_entry_redelivered_double_pressed_and_stale(harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK", "IND"))
    kabid = people.user(Role.KABID, "PPTK")
    unit_id = people.person(Role.KABID, "PPTK").unit_id
    async with sm() as s:
        items = list((await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cycle_id, CycleIndicator.unit_id == unit_id)
            .order_by(CycleIndicator.position))).scalars())

    async def revisions(item) -> list[Submission]:
        async with sm() as s:
            return list((await s.execute(select(Submission).where(
                Submission.cycle_id == cycle_id, Submission.indicator_id == item.indicator_id)
                .order_by(Submission.revision))).scalars())

    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    q = await kabid.press(request, text="Mulai isi data")
    card1 = await kabid.wait_for(after=q, text_contains="Indikator 1 dari 6")
    old_markup = card1.reply_markup

    # a typed answer and a "Lewati" press, each taken once ...
    sent = await kabid.send_text("4,2")
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
    await harness.settle()
    answer_update = await last_update_id(sm)
    q = await kabid.press(card, text="Lanjut")
    card = await kabid.wait_for(after=q, text_contains="Indikator 2 dari 6")
    q = await kabid.press(card, text="Lewati")
    card = await kabid.wait_for(after=q, text_contains="Indikator 3 dari 6")
    await harness.settle()
    skip_update = await last_update_id(sm)
    await quiet(harness)
    before, seq = await state(sm), chat_seq(kabid)
    processed = await count(sm, Inbox, Inbox.processed_at.is_not(None))

    # ... and delivered again with the same update ids: no effect at all
    await redeliver_after_restart(harness, answer_update, skip_update)
    await quiet(harness)
    assert await state(sm) == before
    assert await count(sm, Inbox, Inbox.processed_at.is_not(None)) == processed
    assert chat_seq(kabid) == seq  # not even a reply
    assert [s.value for s in await revisions(items[0])] == [Decimal("4.2")]
    assert [s.skipped for s in await revisions(items[1])] == [True]
    assert await revisions(items[2]) == []  # a second "Lewati" would have skipped it

    # out of order: the first card (its answer already given, a newer card exists) is
    # pressed again from a copy that still has its buttons: refused, nothing changes
    stale = kabid.message(card1.message_id)
    stale.reply_markup = old_markup
    q = await kabid.press(stale, text="Lewati")
    assert (await kabid.wait_for_answer(q)).text == STALE
    await quiet(harness)
    assert await state(sm) == before

    # two presses of "Kirim ke Kasubag" (two callback queries): submitted once
    run = await open_run(Walk(sm, harness.services, harness.services.clock), cycle_id, 4, "PPTK")
    kabid_person = people.person(Role.KABID, "PPTK")
    for item in items[2:]:
        async with sm() as s, s.begin():
            from bot.core.workflow import Workflow

            await Workflow(s, harness.services).record_answer(
                kabid_person, run.id, item.id, raw_text="10", value=Decimal(10))
    q = await kabid.press(card, text="Ringkasan")
    summary = await kabid.wait_for(after=q, text_contains="Kirim ke Kasubag")
    markup = summary.reply_markup
    q1 = await kabid.press(summary, text="Kirim ke Kasubag")
    kabid.message(summary.message_id).reply_markup = markup  # a double tap: both queued
    q2 = await kabid.press(summary, text="Kirim ke Kasubag")
    first, second = await kabid.wait_for_answer(q1), await kabid.wait_for_answer(q2)
    assert second.text == STALE, (first, second)
    await harness.settle()
    async with sm() as s:
        assert (await s.get(StepRun, run.id)).status == StepStatus.DONE
    assert await count(sm, AuditLog, AuditLog.action == "data.submit") == 1
    assert await count(sm, Outbox, Outbox.kind == "unit_submitted") == 1


async def test_paraf_and_number_redelivered_and_double_pressed(harness, people, sessionmaker,
                                                               services, clock):
    sm = sessionmaker
    sek, kadis = people.user(Role.SEKRETARIS), people.user(Role.KADIS)
    staf = people.user(Role.STAF, "SEK")
    walk = Walk(sm, services, clock)
    cycle_id, run6 = await drive_to_compile(walk)
    kasubag = await walk.who(Role.KASUBAG)

    async def compile_and_submit(wf, s):
        doc = await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))
        await wf.submit_documents(kasubag, run6, doc.id)
        return doc
    doc = await walk(compile_and_submit)
    harness.sender.wake()
    await harness.sender.drain()
    await harness.settle()

    # "Paraf" pressed twice (a double tap): initialled once, the second press is told so
    card = await sek.wait_for(predicate=lambda m: "Paraf" in m.button_texts)
    markup = card.reply_markup
    q1 = await sek.press(card, text="Paraf")
    sek.message(card.message_id).reply_markup = markup
    q2 = await sek.press(card, text="Paraf")
    first, second = await sek.wait_for_answer(q1), await sek.wait_for_answer(q2)
    assert "sudah Anda paraf" in (second.text or ""), (first, second)
    await harness.settle()
    paraf_update = await last_update_id(sm)  # the second press
    first_press = paraf_update - 1

    async def approvals(action) -> int:
        return await count(sm, Approval, Approval.action == action)
    assert await approvals(ApprovalAction.PARAF) == 1
    assert await count(sm, Outbox, Outbox.kind == "review8") == 1

    # the first press delivered again: dropped, no reply, nothing changes
    await quiet(harness)
    before, seq = await state(sm), chat_seq(sek)
    await redeliver_after_restart(harness, first_press, paraf_update)
    await quiet(harness)
    assert await state(sm) == before and chat_seq(sek) == seq
    assert await approvals(ApprovalAction.PARAF) == 1

    # the Kadis signs; "Beri nomor" pressed twice: one number is allocated
    card = await kadis.wait_for(predicate=lambda m: "Tandatangani" in m.button_texts)
    q = await kadis.press(card, text="Tandatangani")
    await kadis.wait_for(after=q, text_contains="Ditandatangani")
    await harness.settle()
    card = await staf.wait_for(predicate=lambda m: "Beri nomor" in m.button_texts)
    markup = card.reply_markup
    q1 = await staf.press(card, text="Beri nomor")
    staf.message(card.message_id).reply_markup = markup
    q2 = await staf.press(card, text="Beri nomor")
    first, second = await staf.wait_for_answer(q1), await staf.wait_for_answer(q2)
    await harness.settle()
    async with sm() as s:
        letters = (await s.execute(select(LetterNumber))).scalars().all()
        assert len(letters) == 1 and letters[0].sequence == 1
        # the second press finds the first one's job under way, or its number given
        assert ("sedang disiapkan" in (second.text or "")
                or "sudah diberi nomor" in (second.text or "")), (first, second)
        assert (await s.get(Document, doc.id)).status in (DocumentStatus.SUPERSEDED,
                                                          DocumentStatus.NUMBERED)
    assert await count(sm, StepRun, StepRun.step_no == 10) == 1
