"""The data-entry card's "Realisasi periode lalu" and the answer saved in the cycle come
from one statement (``bot.core.data_entry.previous_realisation``): the latest revision
of the indicator in the cycle and in the office's cycles of the periods before it. For
the first quarter that is last year's fourth quarter, else (no value there) last year's
annual cycle; another office's cycles never count; the answer of the cycle itself is
kept for ``Workflow.latest_submission``, which then reads nothing."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import event

from bot.core.data_entry import previous_realisation
from bot.core.workflow import Workflow
from models import Cycle, Indicator, Office, Person, Submission, Unit
from models.enums import CycleKind, IndicatorLevel, Role


async def _office(s, name: str):
    office = Office(name=name)
    s.add(office)
    await s.flush()
    unit = Unit(office_id=office.id, code="B1", name="Bidang <Industri> & \"Dagang\" 🏭")
    s.add(unit)
    await s.flush()
    kabid = Person(office_id=office.id, unit_id=unit.id, name="Ir. A. Kabid 🙂",
                   role=Role.KABID)
    s.add(kabid)
    await s.flush()
    return office, unit, kabid


def _cycle(office, kabid, kind, year, quarter=0) -> Cycle:
    return Cycle(office_id=office.id, kind=kind, year=year, quarter=quarter,
                 started_by_id=kabid.id)


def _answers(cycle, ind, kabid, *values) -> list[Submission]:
    """Revisions 1, 2, ... of ``values`` (None: a skipped answer)."""
    return [Submission(cycle_id=cycle.id, indicator_id=ind.id, revision=no,
                       raw_text=str(v), value=v, skipped=v is None, person_id=kabid.id)
            for no, v in enumerate(values, 1)]


async def test_one_statement_gives_the_previous_period_and_the_cycle_s_own_answer(
        engine, sessionmaker, services):
    async with sessionmaker() as s, s.begin():
        office, unit, kabid = await _office(s, "Dinas <Tenaga Kerja> & Perindustrian")
        other, _u, other_kabid = await _office(s, "Dinas Lain")
        ind = Indicator(office_id=office.id, unit_id=unit.id, code="1.1",
                        level=IndicatorLevel.SASARAN, name="Jumlah IKM \"binaan\" <baru>",
                        unit_of_measure="unit")
        s.add(ind)
        annual = _cycle(office, kabid, CycleKind.ANNUAL, 2025)
        q4 = _cycle(office, kabid, CycleKind.QUARTERLY, 2025, 4)
        q1 = _cycle(office, kabid, CycleKind.QUARTERLY, 2026, 1)
        q2 = _cycle(office, kabid, CycleKind.QUARTERLY, 2026, 2)
        elsewhere = _cycle(other, other_kabid, CycleKind.QUARTERLY, 2025, 4)
        s.add_all([annual, q4, q1, q2, elsewhere])
        await s.flush()
        s.add_all(_answers(annual, ind, kabid, Decimal("40"), Decimal("1234567890123")))
        s.add_all(_answers(q4, ind, kabid, Decimal("77"), None))  # the latest is skipped
        s.add_all(_answers(elsewhere, ind, other_kabid, Decimal("999")))
        s.add_all(_answers(q1, ind, kabid, Decimal("10"), Decimal("12.5"), Decimal("13")))
        ids = {"q1": q1.id, "q2": q2.id, "ind": ind.id}

    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split())[:60])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessionmaker() as s, s.begin():
            wf = Workflow(s, services)
            q1 = await s.get(Cycle, ids["q1"])
            q2 = await s.get(Cycle, ids["q2"])
            ind = await s.get(Indicator, ids["ind"])
            seen.clear()
            # TW I: last year's TW IV was skipped at last, so last year's annual figure
            label, prev = await previous_realisation(wf, q1, ind)
            latest = await wf.latest_submission(q1.id, ind.id)
            q1_reads = list(seen)
            seen.clear()
            # TW II: TW I's latest revision; TW II has no answer yet
            label2, prev2 = await previous_realisation(wf, q2, ind)
            none_yet = await wf.latest_submission(q2.id, ind.id)
            q2_reads = list(seen)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert (label, prev.value, prev.revision) == ("Tahun 2025", Decimal("1234567890123"), 2)
    assert (latest.value, latest.revision) == (Decimal("13"), 3)
    assert len(q1_reads) == 1, q1_reads  # the card's two answers in one statement
    assert (label2, prev2.value, prev2.revision) == ("Triwulan I Tahun 2026", Decimal("13"), 3)
    assert none_yet is None and len(q2_reads) == 1, q2_reads


async def test_no_previous_period_with_a_value_gives_none(engine, sessionmaker, services):
    async with sessionmaker() as s, s.begin():
        office, unit, kabid = await _office(s, "Dinas A")
        other, _u, other_kabid = await _office(s, "Dinas B")
        ind = Indicator(office_id=office.id, unit_id=unit.id, code="2.1",
                        level=IndicatorLevel.SASARAN, name="Persentase . . . 😀")
        s.add(ind)
        q4 = _cycle(office, kabid, CycleKind.QUARTERLY, 2025, 4)
        q1 = _cycle(office, kabid, CycleKind.QUARTERLY, 2026, 1)
        elsewhere = _cycle(other, other_kabid, CycleKind.ANNUAL, 2025)
        s.add_all([q4, q1, elsewhere])
        await s.flush()
        s.add_all(_answers(q4, ind, kabid, None))
        s.add_all(_answers(elsewhere, ind, other_kabid, Decimal("5")))
        await s.flush()
        wf = Workflow(s, services)
        assert await previous_realisation(wf, q1, ind) is None
        assert await wf.latest_submission(q1.id, ind.id) is None
