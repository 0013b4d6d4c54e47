"""The agenda register: 50 concurrent allocations are unique and gapless (the database
serialises them: a row lock on the year's counter)."""
from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.core.workflow import Workflow
from models import LetterCounter, LetterNumber, Office


async def test_fifty_concurrent_allocations_are_unique_and_gapless(sessionmaker, services, engine):
    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas", regency="Kab", unit_code="II.08")
        s.add(office)
    office_id = office.id

    async def allocate(i: int) -> str:
        for attempt in range(20):
            try:
                async with sessionmaker() as s, s.begin():
                    letter = await Workflow(s, services).allocate_number(
                        office_id, date(2024, 10, 14), subject=f"Surat {i}")
                    return letter.number
            except OperationalError:  # SQLite: "database is locked" under contention
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("allocation did not get through")

    numbers = await asyncio.gather(*(allocate(i) for i in range(50)))
    assert len(set(numbers)) == 50
    async with sessionmaker() as s:
        seqs = sorted((await s.execute(select(LetterNumber.sequence))).scalars())
        counter = (await s.execute(select(LetterCounter))).scalar_one()
    assert seqs == list(range(1, 51))
    assert counter.last_sequence == 50
    assert sorted(numbers, key=lambda n: int(n.split("/")[1])) == [
        f"050/{i}/II.08/2024" for i in range(1, 51)]  # a report: no "KPTS"


async def test_the_number_takes_classification_and_code_from_the_document_type(
        sessionmaker, services, tmp_path):
    """A measurement report is not a keputusan: no "KPTS"; an office that configures
    its report's classification and code (or another format) gets exactly that; the
    set-up template's help shows the number in the configured format."""
    from openpyxl import load_workbook

    from bot.cli import main
    from bot.config import MEASUREMENT_REPORT, DocumentNumbering, load_config
    from reports.setup_workbook import SHEET_GUIDE, SHEET_OFFICE

    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas", regency="Kab", unit_code="II.08")
        s.add(office)
    numbering = services.config.numbering

    async def allocate(on: date, **kw) -> str:
        async with sessionmaker() as s, s.begin():
            return (await Workflow(s, services).allocate_number(office.id, on, **kw)).number

    assert await allocate(date(2024, 10, 14)) == "050/1/II.08/2024"
    numbering.types[MEASUREMENT_REPORT] = DocumentNumbering(
        nama="Laporan Pengukuran Kinerja", kode="000.8.3", jenis="LAP")
    assert await allocate(date(2024, 10, 15)) == "000.8.3/2/LAP/II.08/2024"
    numbering.types["keputusan"] = DocumentNumbering(nama="Keputusan Kepala Dinas",
                                                     kode="800.1", jenis="KPTS")
    assert await allocate(date(2024, 10, 16), doc_type="keputusan") == \
        "800.1/3/KPTS/II.08/2024"
    numbering.types[MEASUREMENT_REPORT].format = "{kode}/{urut}/{unit}/{bulan_romawi}/{tahun}"
    assert await allocate(date(2024, 11, 1)) == "000.8.3/4/II.08/XI/2024"
    # a type without an entry: the general kode and jenis
    assert numbering.number("lain", sequence=5, on=date(2024, 1, 2), unit="II.08") == \
        "050/5/II.08/2024"

    # the set-up template: the unit code's help shows the configured number
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text('[office]\nunit_code = "III.20"\n[numbering.types.pengukuran_kinerja]\n'
                        'nama = "Laporan Pengukuran Kinerja"\nkode = "000.8.3"\njenis = "LAP"\n')
    assert load_config(cfg_file, env={}).numbering.types[MEASUREMENT_REPORT].jenis == "LAP"
    out = tmp_path / "isian.xlsx"
    assert main(["--config", str(cfg_file), "setup", "template", str(out), "--year", "2025"]) == 0
    wb = load_workbook(out)
    office_help = " ".join(str(c.value) for row in wb[SHEET_OFFICE].iter_rows() for c in row
                           if c.value)
    guide = " ".join(str(c.value) for row in wb[SHEET_GUIDE].iter_rows() for c in row if c.value)
    for text in (office_help, guide):
        assert "Laporan Pengukuran Kinerja: 000.8.3/123/LAP/III.20/2025" in text
        assert "050/123/II.08" not in text and "{nomor}" not in text
