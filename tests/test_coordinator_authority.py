"""The coordinator of a cycle (steps 4-5: closing the collection, returning a bidang,
receiving the "bidang sent its data" card) follows the one rule of ``bot.core.authority``:
a Plh. Kasubag coordinates only while the appointment covers the moment; once it ended,
the Kasubag back in post does, and the former Plh. is refused."""
from datetime import date

import pytest
from sqlalchemy import select

from bot.core.workflow import NotAllowed
from models import CycleIndicator, Outbox
from models.enums import CycleKind, Role
from tests.conftest import wib
from tests.test_administration import adm, appoint_plh
from tests.test_documents_service import UNITS
from tests.test_workflow import Walk, open_run


@pytest.fixture
def walk(sessionmaker, services, clock, office):
    return Walk(sessionmaker, services, clock)


async def _collection_opened_by_a_plh_kasubag(walk, clock):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    kasubag, staf = await walk.who(Role.KASUBAG), await walk.who(Role.STAF, "SEK")
    cycle = await walk(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3, "x"))
    run2 = await open_run(walk, cycle.id, 2)
    await walk(lambda wf, s: wf.forward_disposition(sek, run2.id, "y"))
    # the staf of the Sekretariat is Plh. Kasubag on 7 October only
    await appoint_plh(walk, staf, date(2024, 10, 7), date(2024, 10, 7), role=Role.KASUBAG)
    run3 = await open_run(walk, cycle.id, 3)
    assert run3.assignee_id == staf.id
    await walk(lambda wf, s: wf.open_collection(staf, run3.id, None, days=3))
    clock.set(wib(2024, 10, 8, 9, 0))  # the appointment ended yesterday
    await walk(adm(lambda a: a.sync()))
    return cycle, kasubag, staf


async def test_after_the_plh_range_the_kasubag_closes_the_collection_not_the_former_plh(walk, clock):
    cycle, kasubag, staf = await _collection_opened_by_a_plh_kasubag(walk, clock)
    with pytest.raises(NotAllowed):
        await walk(lambda wf, s: wf.close_collection(staf, cycle.id, "tutup"))
    await walk(lambda wf, s: wf.close_collection(kasubag, cycle.id, "tutup"))


async def test_after_the_plh_range_a_bidang_s_data_goes_to_the_kasubag(walk, clock):
    cycle, kasubag, staf = await _collection_opened_by_a_plh_kasubag(walk, clock)
    kabid = await walk.who(Role.KABID, UNITS[0])
    run = await open_run(walk, cycle.id, 4, UNITS[0])
    async with walk.sm() as s:
        items = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cycle.id,
            CycleIndicator.unit_id == run.unit_id))).scalars().all()
    for item in items:
        await walk(lambda wf, s, item=item: wf.record_answer(
            kabid, run.id, item.id, raw_text="", skipped=True, note="tidak ada data"))
    await walk(lambda wf, s: wf.submit_unit(kabid, run.id))
    async with walk.sm() as s:
        rows = (await s.execute(select(Outbox).where(Outbox.kind == "unit_submitted"))).scalars().all()
    assert [r.person_id for r in rows] == [kasubag.id]
    # and the Kasubag, not the former Plh., may return that bidang
    with pytest.raises(NotAllowed):
        await walk(lambda wf, s: wf.return_unit(staf, cycle.id, run.unit_id, "periksa lagi"))
    await walk(lambda wf, s: wf.return_unit(kasubag, cycle.id, run.unit_id, "periksa lagi"))
