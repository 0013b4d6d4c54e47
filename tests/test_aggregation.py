"""Issue 15: SAKIP figures right in every period.

Cumulative indicators in quarterly cycles: two cycles (Triwulan I and II) run through
the workflow core, the documents compiled by the bot's own path (bot.core.documents), and the
"s.d. Triwulan II" capaian is built from both quarters by the indicator's aggregation.
Text indicators on a grade scale: A against a target of BB is achieved.
"""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from bot.core.documents import compile_documents, document_data
from models import Indicator, Target
from models.enums import ValueType
from reports.document_data import capaian_label
from reports.measure import capaian
from tests.test_documents_service import (
    VALUES, Formula, drive_to_compile, flat, pdf_text, stored_bytes,
)
from tests.test_workflow import Walk, walk  # noqa: F401 (fixture)

CODE = "IND-04"  # "Jumlah produk IKM yang dipromosikan", cumulative in the example office


async def set_indicator(walk: Walk, aggregation: str, targets: dict[int, Decimal]) -> None:
    async with walk.sm() as s, s.begin():
        ind = (await s.execute(select(Indicator).where(Indicator.code == CODE))).scalar_one()
        ind.aggregation = aggregation
        for period, value in targets.items():
            await s.execute(update(Target).where(
                Target.indicator_id == ind.id, Target.year == 2024, Target.period == period
            ).values(value=value))


async def two_quarters(walk: Walk, tw1: Decimal, tw2: Decimal):
    """TW I and TW II through steps 1-5, then the TW II documents compiled."""
    await drive_to_compile(walk, {**VALUES, CODE: tw1}, quarter=1)
    cycle_id, _ = await drive_to_compile(walk, {**VALUES, CODE: tw2}, quarter=2)

    async def data(wf, s):
        return await document_data(wf, await wf.get_cycle(cycle_id), version=1)

    async def compile_(wf, s):
        from tests.helpers import person
        from models.enums import Role

        kasubag = await person(s, Role.KASUBAG)
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc_data = await walk(data)
    doc = await walk(compile_)
    text = flat(pdf_text(await stored_bytes(walk, doc.pdf_file_id)))
    walk.workbook = load_workbook(io.BytesIO(await stored_bytes(walk, doc.workbook_file_id)))
    row = next(r for r in doc_data.rows if r.code == CODE)
    sd = dict((r.code, c) for r, c in doc_data.measured())[CODE]
    own = dict((r.code, c) for r, c in doc_data.measured_period())[CODE]
    return doc_data, row, sd, own, text


@pytest.mark.parametrize(
    ("aggregation", "targets", "tw1", "tw2", "sd_real", "own_real", "own_target",
     "own_percent"),
    [
        # each quarter's own count; s.d. TW II = 10 + 15 = 25 of 30; TW II alone 15 of 20
        ("sum", {1: Decimal(10), 2: Decimal(30)}, Decimal(10), Decimal(15),
         Decimal(25), Decimal(15), Decimal(20), "75,00"),
        # the figure typed is already "s.d."; TW II alone is 25 - 10 = 15 of 30 - 10
        ("last", {1: Decimal(10), 2: Decimal(30)}, Decimal(10), Decimal(25),
         Decimal(25), Decimal(15), Decimal(20), "75,00"),
        # an index averaged over the quarters: (10 + 15) / 2 = 12,5 of 15; TW II 15 of 15
        ("average", {1: Decimal(10), 2: Decimal(15)}, Decimal(10), Decimal(15),
         Decimal("12.5"), Decimal(15), Decimal(15), "100,00"),
    ],
)
async def test_the_sd_capaian_of_a_quarter_is_built_from_the_earlier_quarters(
        walk, aggregation, targets, tw1, tw2, sd_real, own_real, own_target, own_percent):
    await set_indicator(walk, aggregation, targets)
    data, row, sd, own, text = await two_quarters(walk, tw1, tw2)

    assert row.aggregation == aggregation
    assert row.realisasi == sd_real and row.target == targets[2]
    assert row.period_realisasi == own_real and row.period_target == own_target
    # 83,33 %, not 50 % (the quarter's own figure against the "s.d." target)
    assert sd.percent is not None and round(sd.percent, 2) == Decimal("83.33")
    assert own is not None and f"{own.percent:.2f}".replace(".", ",") == own_percent
    # the compiled PDF shows both, with the period in the column headers
    assert "Realisasi s.d. TW II" in text and "Capaian TW II (%)" in text
    assert "83,33" in text and own_percent in text
    # the workbook too: F-H "s.d." the quarter, N-P the quarter's own, capaian formulas
    ws = walk.workbook["Pengukuran Kinerja"]
    header = next(r for r in ws.iter_rows() if any(c.value == "Kode" for c in r))
    titles = [c.value for c in header]
    assert titles[5:8] == ["Target s.d. TW II 2024", "Realisasi s.d. TW II 2024",
                           "Capaian s.d. TW II (%)"]
    assert titles[13:16] == ["Target TW II 2024", "Realisasi TW II 2024", "Capaian TW II (%)"]
    cells = next(r for r in ws.iter_rows(min_row=header[0].row + 1) if r[12].value == CODE)
    assert Decimal(str(cells[6].value)) == sd_real and Decimal(str(cells[14].value)) == own_real
    got_sd = Formula(cells[7].value, ws).value()
    got_own = Formula(cells[15].value, ws).value()
    assert abs(got_sd - sd.percent) < Decimal("1e-9") and abs(got_own - own.percent) < Decimal("1e-9")


async def test_a_quarter_without_the_earlier_one_has_no_sd_figure_not_a_zero(walk):
    """A sum needs every quarter: TW I skipped gives "Belum ada data" for s.d. TW II,
    never 15 of 30."""
    await set_indicator(walk, "sum", {1: Decimal(10), 2: Decimal(30)})
    _, row, sd, own, _ = await two_quarters(walk, None, Decimal(15))
    assert row.realisasi is None and capaian_label(sd) == "Belum ada data"
    assert own is not None and own.percent == Decimal(75)


async def test_the_earlier_quarters_load_in_a_fixed_number_of_queries(walk):
    """quarter_history issues the same number of statements (two) for 1 and for 21
    indicators."""
    from sqlalchemy import event

    from bot.core.periods import quarter_history
    from models import Cycle

    await drive_to_compile(walk, quarter=1)
    cycle_id, _ = await drive_to_compile(walk, quarter=2)
    counts = []
    async with walk.sm() as s:
        cycle = await s.get(Cycle, cycle_id)
        ids = list((await s.execute(select(Indicator.id))).scalars())
        engine = s.bind.sync_engine if hasattr(s.bind, "sync_engine") else s.bind
        for some in (ids[:1], ids):
            seen = []

            def count(*args, seen=seen):
                seen.append(1)

            event.listen(engine, "before_cursor_execute", count)
            history = await quarter_history(s, cycle, some)
            event.remove(engine, "before_cursor_execute", count)
            counts.append(len(seen))
        assert len(history.entered) == len([i for i in ids])  # every indicator of TW I
    assert counts[0] == counts[1] == 2


def test_a_better_grade_than_the_target_is_achieved():
    from reports.document_data import DocumentData, IndicatorRow
    from models.enums import LowerFormula, Polarity

    row = IndicatorRow(
        bidang="Sekretariat", sasaran="Akuntabilitas <kinerja> & \"tata kelola\"",
        code="SEK-01", name="Predikat SAKIP Dinas", definition="Hasil evaluasi AKIP",
        unit="predikat", polarity=Polarity.HIGHER, lower_formula=LowerFormula.MIRROR,
        value_type=ValueType.TEXT, target="BB", realisasi="A")
    data = DocumentData(office_name="Dinas Tenaga Kerja", regency="Kabupaten Lampung Barat",
                        title="PENGUKURAN KINERJA", period_label="Tahun 2024", year=2024,
                        rows=(row,))
    (_, result), = data.measured()
    assert result.reached is True and capaian_label(result) == "Tercapai"
    # a worse grade is not, and a free text beside the scale keeps an explicit status
    assert capaian("BB", "B", value_type=ValueType.TEXT,
                   text_scale=data.text_scale).reached is False
    free = capaian("Tersusun", "Belum tersusun", value_type=ValueType.TEXT,
                   text_scale=data.text_scale)
    assert free.reached is False and "skala" not in free.keterangan


@pytest.mark.parametrize(("aggregation", "says", "running"), [
    ("sum", "realisasi Triwulan II saja", "Realisasi s.d. Triwulan I: <b>10</b>"),
    ("average", "realisasi Triwulan II saja", "Rata-rata s.d. Triwulan I: <b>10</b>"),
    ("last", "realisasi s.d. Triwulan II", "Realisasi s.d. Triwulan I: <b>10</b>."),
])
async def test_the_entry_card_says_what_to_type_and_the_running_figure(
        walk, aggregation, says, running):
    from bot.core.periods import entry_lines
    from models import Cycle

    await set_indicator(walk, aggregation, {1: Decimal(10), 2: Decimal(30)})
    await drive_to_compile(walk, {**VALUES, CODE: Decimal(10)}, quarter=1)
    cycle_id, _ = await drive_to_compile(walk, quarter=2)
    async with walk.sm() as s:
        ind = (await s.execute(select(Indicator).where(Indicator.code == CODE))).scalar_one()
        lines = await entry_lines(s, await s.get(Cycle, cycle_id), ind, str)
    text = "\n".join(lines)
    assert says in text and running in text, text


def test_the_setup_workbook_carries_each_indicators_aggregation(tmp_path):
    """Written into the template, read back: "jumlah" is "sum", blank is the default."""
    from dataclasses import replace

    from bot.devtools.example_data import example_office
    from reports.setup_workbook import read_setup, write_template

    office = example_office(2024)
    inds = list(office.indicators)
    inds[1] = replace(inds[1], aggregation="average")
    inds[-1] = replace(inds[-1], aggregation="sum")
    path = write_template(tmp_path / "setup.xlsx", year=2024,
                          example=replace(office, indicators=tuple(inds)))
    result = read_setup(path)
    assert result.errors == []
    got = {i.code: i.aggregation for i in result.spec.indicators}
    assert got[inds[-1].code] == "sum" and got[inds[1].code] == "average"
    assert got[inds[2].code] is None


async def test_a_grade_above_the_target_is_achieved_in_the_compiled_documents(walk):
    """SEK-01 "Predikat SAKIP Dinas", target BB, realisation A: the bot's workbook and PDF
    say "Tercapai" (the old code said "Belum tercapai")."""
    cycle_id, _ = await drive_to_compile(walk, {**VALUES, "SEK-01": "A"})

    async def compile_(wf, s):
        from models.enums import Role
        from tests.helpers import person

        return await compile_documents(wf, await person(s, Role.KASUBAG),
                                       await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    ws = load_workbook(io.BytesIO(await stored_bytes(walk, doc.workbook_file_id)))[
        "Pengukuran Kinerja"]
    cells = next(r for r in ws.iter_rows() if r[12].value == "SEK-01")
    assert (cells[5].value, cells[6].value, cells[7].value) == ("BB", "A", "Tercapai")
    text = flat(pdf_text(await stored_bytes(walk, doc.pdf_file_id)))
    assert "Realisasi (A) lebih baik dari target (BB)" in text
