"""The office set-up workbook: template -> filled with openpyxl -> read -> imported."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import datetime as dt
import os
import zipfile

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.devtools.example_data import example_office
from bot.core.office_data import TargetSpec
from bot.core.office_setup import import_setup as _import_setup
from models import Indicator, Office, Person, Target, Unit
from models.enums import IndicatorLevel, LowerFormula, Polarity, Role, ValueType
from reports.setup_workbook import (
    SetupError,
    SetupWorkbookError,
    read_setup,
    write_template,
)

YEAR = 2024
NOW = dt.datetime(2024, 7, 1, 2, 0, tzinfo=dt.timezone.utc)


async def import_setup(session, path):
    return await _import_setup(session, path, at=NOW)


# ----------------------------------------------------------------- helpers


def header_col(ws, header: str) -> int:
    for cell in ws[1]:
        if cell.value == header:
            return cell.column
    raise AssertionError(f"no column {header!r} in {ws.title}")


def set_cell(ws, row: int, header: str, value) -> None:
    ws.cell(row=row, column=header_col(ws, header)).value = value  # None clears the cell


def fill_row(ws, row: int, values: dict) -> None:
    for header, value in values.items():
        set_cell(ws, row, header, value)


def kantor_row(ws, label: str) -> int:
    for row in range(2, ws.max_row + 1):
        if ws.cell(row=row, column=1).value == label:
            return row
    raise AssertionError(label)


def clear_row(ws, row: int) -> None:
    for cell in ws[row]:
        cell.value = None


@pytest.fixture
def example_path(tmp_path: Path) -> Path:
    return write_template(tmp_path / "contoh.xlsx", year=YEAR, example=example_office(YEAR))


def where(errors: list[SetupError]) -> list[tuple]:
    return sorted(((e.sheet, e.row or 0, e.column or "") for e in errors))


# ----------------------------------------------------------------- the template


def test_template_layout_and_dropdowns(tmp_path: Path):
    path = write_template(tmp_path / "isian.xlsx", year=YEAR)
    assert path.exists()
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Petunjuk", "Kantor", "Bidang", "Pegawai", "Indikator",
                             "Pengaturan", "Penomoran", "Penerima"]

    guide = "\n".join(str(c.value) for c in wb["Petunjuk"]["A"] if c.value)
    assert "kadis" in guide and "naik" in guide and "2T-R" in guide and "Target 2025" in guide

    kantor = wb["Kantor"]
    labels = [kantor.cell(row=r, column=1).value for r in range(2, 7)]
    assert labels == ["Nama Dinas", "Kabupaten/Kota", "Tempat (kota penandatanganan)",
                      "Kode Unit", "Data Contoh"]

    def lists(ws) -> dict[str, str]:
        """column letter -> list formula of the drop-down covering rows 2..1000"""
        out = {}
        for dv in ws.data_validations.dataValidation:
            assert dv.type == "list"
            for rng in dv.sqref.ranges:
                if rng.min_row == 2 and rng.max_row == 1000:
                    out[openpyxl.utils.get_column_letter(rng.min_col)] = dv.formula1
        return out

    bidang = wb["Bidang"]
    assert [c.value for c in bidang[1]] == ["Kode", "Nama", "Sekretariat"]
    assert lists(bidang) == {"C": '"Ya,Tidak"'}

    pegawai = wb["Pegawai"]
    assert [c.value for c in pegawai[1]] == [
        "Nama", "NIP", "Peran", "Kode Bidang", "Pangkat/Golongan", "Jabatan", "Kode OPD"]
    assert lists(pegawai) == {
        "C": '"kadis,sekretaris,kasubag,kabid,staf,kontak"',
        "D": "='Bidang'!$A$2:$A$1000",
    }
    assert pegawai.column_dimensions["B"].number_format == "@"

    ind = wb["Indikator"]
    headers = [c.value for c in ind[1]]
    assert headers[-5:] == ["Target 2024", "Target TW I 2024", "Target TW II 2024",
                            "Target TW III 2024", "Target TW IV 2024"]
    col = {h: openpyxl.utils.get_column_letter(i) for i, h in enumerate(headers, start=1)}
    assert lists(ind) == {
        col["Kode Bidang"]: "='Bidang'!$A$2:$A$1000",
        col["Tingkat"]: '"tujuan,sasaran,program,kegiatan"',
        col["Polaritas"]: '"naik,turun"',
        col["Rumus Turun"]: '"2T-R,T/R"',
        col["Jenis Nilai"]: '"angka,persen,teks"',
        col["Kumulatif"]: '"Ya,Tidak"',
        col["Agregasi Triwulan"]: '"jumlah,terakhir,rata-rata"',
    }

    for ws in (kantor, bidang, pegawai, ind):
        assert ws.freeze_panes in ("A2", "C2")
        for cell in ws[1]:
            assert cell.font.bold
            assert cell.fill.fill_type == "solid"
            assert cell.comment is not None and cell.comment.text
            assert ws.column_dimensions[cell.column_letter].width > 5
    # an empty template has no data rows, so rows can be appended
    assert pegawai.max_row == 1 and ind.max_row == 1


def test_example_template_prefilled_with_nip_as_text(example_path: Path):
    wb = openpyxl.load_workbook(example_path)
    ws = wb["Pegawai"]
    nip = ws.cell(row=2, column=2)
    assert nip.value == "196601011990031001" and nip.number_format == "@"
    assert wb["Kantor"].cell(row=2, column=2).value == "Dinas Tenaga Kerja dan Perindustrian"
    ind = wb["Indikator"]
    row = next(r for r in range(2, ind.max_row + 1) if ind.cell(row=r, column=1).value == "HIJS-04")
    assert ind.cell(row=row, column=header_col(ind, "Polaritas")).value == "turun"
    assert ind.cell(row=row, column=header_col(ind, "Rumus Turun")).value == "T/R"


# ----------------------------------------------------------------- reading


def test_example_round_trip(example_path: Path):
    result = read_setup(example_path)
    assert result.errors == []
    spec = result.spec
    # every unit, person, indicator and target; no setting filled in: the office's
    # settings are none of its own (config.toml's), replacing what it had
    expected = replace(example_office(YEAR), settings={})
    assert spec == expected
    assert [u.code for u in spec.units] == ["SEK", "PPTK", "HIJS", "IND"]
    assert spec.units[0].is_secretariat and not spec.units[1].is_secretariat
    kadis = spec.people[0]
    assert kadis.role == Role.KADIS and kadis.nip == "196601011990031001"
    assert all(isinstance(p.nip, str) and len(p.nip) == 18 for p in spec.people if p.nip)
    contact = spec.people[-1]
    assert contact.role == Role.CONTACT and contact.agency_key == "bappeda" and contact.nip is None
    by_code = {i.code: i for i in spec.indicators}
    tpt = by_code["PPTK-01"]
    assert tpt.polarity == Polarity.LOWER and tpt.lower_formula == LowerFormula.MIRROR
    assert tpt.value_type == ValueType.PERCENT and tpt.level == IndicatorLevel.TUJUAN
    assert [t.value for t in tpt.targets] == [Decimal("4.1"), Decimal("4.3"), Decimal("4.25"),
                                             Decimal("4.15"), Decimal("4.1")]
    hijs4 = by_code["HIJS-04"]
    assert (hijs4.polarity, hijs4.lower_formula, hijs4.cumulative) == (
        Polarity.LOWER, LowerFormula.RATIO, True)
    assert by_code["SEK-01"].targets[0] == TargetSpec(YEAR, 0, None, "BB")
    assert by_code["IND-05"].targets[0].value == Decimal(12_500_000_000)
    for ind in spec.indicators:
        for t in ind.targets:
            assert (t.value is None) == (ind.value_type == ValueType.TEXT)
            assert t.value is None or isinstance(t.value, Decimal)


def test_fill_empty_template_row_by_row(tmp_path: Path):
    path = write_template(tmp_path / "isian.xlsx", year=YEAR)
    wb = openpyxl.load_workbook(path)

    kantor = wb["Kantor"]
    for label, value in {"Nama Dinas": "Dinas Koperasi dan UKM",
                         "Kabupaten/Kota": "Kabupaten Contoh",
                         "Tempat (kota penandatanganan)": "Kota Contoh",
                         "Kode Unit": "II.09"}.items():
        kantor.cell(row=kantor_row(kantor, label), column=2, value=value)

    bidang = wb["Bidang"]
    fill_row(bidang, 2, {"Kode": "SEK", "Nama": "Sekretariat", "Sekretariat": "Ya"})
    # row 3 left blank on purpose: blank rows are skipped
    fill_row(bidang, 4, {"Kode": "KOP", "Nama": "Bidang Koperasi"})  # Sekretariat blank = Tidak

    pegawai = wb["Pegawai"]
    rows = [
        ("Kepala", "096601011990031001", "kadis", None, "Pembina Utama Muda, IV/c", "Kepala Dinas"),
        ("Sekretaris", "197002021995031002", "Sekretaris", "sek", "", "Sekretaris"),
        ("Kasubag", "198003032005012003", "kasubag", "SEK", "Penata Tk. I", "Kasubag"),
        ("Kabid", "19750505 200003 1 005", "kabid", "KOP", "Pembina", "Kepala Bidang"),
        ("Staf Honorer", None, "staf", "KOP", "", "Pengadministrasi"),
    ]
    for r, (name, nip, role, unit, rank, pos) in enumerate(rows, start=2):
        fill_row(pegawai, r, {"Nama": name, "NIP": nip, "Peran": role, "Kode Bidang": unit,
                              "Pangkat/Golongan": rank, "Jabatan": pos})
    fill_row(pegawai, 8, {"Nama": "Petugas Inspektorat", "Peran": "kontak",
                          "Jabatan": "Inspektorat", "Kode OPD": "inspektorat"})

    ind = wb["Indikator"]
    # an extra year as a further column group
    last = ind.max_column
    ind.cell(row=1, column=last + 1, value="Target 2025")
    ind.cell(row=1, column=last + 2, value="Target TW I 2025")
    base = {"Tingkat": "sasaran", "Polaritas": "naik", "Jenis Nilai": "angka"}
    fill_row(ind, 2, {**base, "Kode": "KOP-01", "Kode Bidang": "KOP",
                      "Nama Indikator": "Persentase koperasi aktif", "Jenis Nilai": "persen",
                      "Satuan": "%", "Target 2024": "85,5", "Target TW I 2024": 80,
                      "Target TW II 2024": 82.25, "Target TW IV 2024": "112",
                      "Target 2025": "90", "Target TW I 2025": "86 %"})
    fill_row(ind, 3, {**base, "Kode": "KOP-02", "Kode Bidang": "kop", "Tingkat": "program",
                      "Nama Indikator": "Nilai pinjaman bergulir", "Satuan": "Rp",
                      "Kumulatif": "Ya", "Target 2024": "1.250.000",
                      "Target TW I 2024": "Rp 250.000", "Target TW II 2024": 500000})
    fill_row(ind, 4, {**base, "Kode": "KOP-03", "Kode Bidang": "KOP", "Tingkat": "tujuan",
                      "Nama Indikator": "Angka kredit macet", "Polaritas": "turun",
                      "Target 2024": "2,5"})
    fill_row(ind, 5, {**base, "Kode": "SEK-01", "Kode Bidang": "SEK",
                      "Nama Indikator": "Predikat SAKIP", "Jenis Nilai": "teks",
                      "Satuan": "predikat", "Target 2024": "BB", "Target 2025": "A"})
    wb.save(path)

    result = read_setup(path)
    assert result.errors == []
    spec = result.spec
    assert (spec.name, spec.regency, spec.place, spec.unit_code, spec.example_data) == (
        "Dinas Koperasi dan UKM", "Kabupaten Contoh", "Kota Contoh", "II.09", False)
    assert [(u.code, u.is_secretariat) for u in spec.units] == [("SEK", True), ("KOP", False)]

    people = spec.people
    assert [p.nip for p in people] == [
        "096601011990031001", "197002021995031002", "198003032005012003",
        "197505052000031005", None, None]
    assert [p.role for p in people] == [Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.KABID,
                                        Role.STAF, Role.CONTACT]
    assert people[1].unit_code == "SEK"  # "sek" resolved to the code on the Bidang sheet
    assert people[0].unit_code is None and people[0].rank == "Pembina Utama Muda, IV/c"
    assert people[5].agency_key == "inspektorat" and people[5].position == "Inspektorat"

    kop1, kop2, kop3, sek1 = spec.indicators
    assert kop1.value_type == ValueType.PERCENT and not kop1.cumulative
    assert [(t.year, t.period, t.value) for t in kop1.targets] == [
        (2024, 0, Decimal("85.5")), (2024, 1, Decimal(80)), (2024, 2, Decimal("82.25")),
        (2024, 4, Decimal(112)),  # a percent above 100 is allowed; TW III left empty
        (2025, 0, Decimal(90)), (2025, 1, Decimal(86)),
    ]
    assert kop2.unit_code == "KOP" and kop2.cumulative and kop2.level == IndicatorLevel.PROGRAM
    assert [t.value for t in kop2.targets] == [Decimal(1_250_000), Decimal(250_000),
                                              Decimal(500_000)]
    assert (kop3.polarity, kop3.lower_formula) == (Polarity.LOWER, LowerFormula.MIRROR)
    assert kop3.targets == (TargetSpec(2024, 0, Decimal("2.5")),)
    assert sek1.targets == (TargetSpec(2024, 0, None, "BB"), TargetSpec(2025, 0, None, "A"))


def test_broken_workbook_reports_every_problem(example_path: Path):
    wb = openpyxl.load_workbook(example_path)
    peg, ind = wb["Pegawai"], wb["Indikator"]
    clear_row(peg, 2)  # the only kadis
    set_cell(peg, 9, "Peran", "direktur")
    set_cell(peg, 10, "NIP", "1991020220")
    set_cell(ind, 5, "Target TW II 2024", "delapan puluh")
    set_cell(ind, 6, "Kode Bidang", "XYZ")
    set_cell(ind, 8, "Kode", "PPTK-01")  # already on row 7
    wb.save(example_path)

    result = read_setup(example_path)
    assert result.spec is None
    assert where(result.errors) == sorted([
        ("Pegawai", 0, "Peran"),
        ("Pegawai", 9, "Peran"),
        ("Pegawai", 10, "NIP"),
        ("Indikator", 5, "Target TW II 2024"),
        ("Indikator", 6, "Kode Bidang"),
        ("Indikator", 8, "Kode"),
    ]), [str(e) for e in result.errors]
    text = {(e.sheet, e.row): str(e) for e in result.errors}
    assert text[("Pegawai", 10)] == (
        "Pegawai baris 10, kolom NIP: NIP harus 18 angka (tertulis '1991020220')")
    assert "direktur" in text[("Pegawai", 9)] and "kadis" in text[("Pegawai", 9)]
    assert "kadis" in text[("Pegawai", None)]
    assert "XYZ" in text[("Indikator", 6)]
    assert "baris 7" in text[("Indikator", 8)]
    assert "delapan puluh" in text[("Indikator", 5)]


async def test_broken_workbook_imports_nothing(example_path: Path, sessionmaker):
    wb = openpyxl.load_workbook(example_path)
    set_cell(wb["Pegawai"], 10, "NIP", "1991020220")
    wb.save(example_path)
    async with sessionmaker() as session, session.begin():
        result = await import_setup(session, example_path)
    assert result.spec is None and len(result.errors) == 1
    async with sessionmaker() as session:
        for model in (Office, Unit, Person, Indicator, Target):
            assert await session.scalar(select(func.count()).select_from(model)) == 0


def test_more_checks(example_path: Path):
    wb = openpyxl.load_workbook(example_path)
    peg, ind, bid, kan = wb["Pegawai"], wb["Indikator"], wb["Bidang"], wb["Kantor"]
    set_cell(peg, 3, "Peran", "kadis")  # a second kadis, and no sekretaris any more
    set_cell(peg, 4, "Peran", "staf")  # no kasubag left
    set_cell(peg, 5, "NIP", 1.96601011990031e17)  # a float: digits already lost
    set_cell(peg, 11, "NIP", "197002021995031002")  # duplicate of row 3
    set_cell(peg, 13, "Kode OPD", None)  # kontak without kode OPD
    set_cell(peg, 8, "Peran", "staf")  # IND loses its kabid
    set_cell(ind, 7, "Polaritas", "menurun")
    set_cell(ind, 7, "Jenis Nilai", "desimal")
    set_cell(ind, 9, "Kumulatif", "mungkin")
    set_cell(ind, 10, "Tingkat", "misi")
    set_cell(ind, 11, "Nama Indikator", None)
    fill_row(bid, 6, {"Kode": "ind", "Nama": "Duplikat"})
    kan.cell(row=kantor_row(kan, "Kode Unit"), column=2).value = None
    wb.save(example_path)

    errors = read_setup(example_path).errors
    assert where(errors) == sorted([
        ("Kantor", 5, "Nilai"),
        ("Bidang", 5, "Kode"),  # IND has indicators but no kabid
        ("Bidang", 6, "Kode"),  # duplicate unit code
        ("Pegawai", 3, "Peran"),  # second kadis
        ("Pegawai", 0, "Peran"),  # no sekretaris
        ("Pegawai", 0, "Peran"),  # no kasubag
        ("Pegawai", 5, "NIP"),
        ("Pegawai", 11, "NIP"),
        ("Pegawai", 13, "Kode OPD"),
        ("Indikator", 7, "Polaritas"),
        ("Indikator", 7, "Jenis Nilai"),
        ("Indikator", 9, "Kumulatif"),
        ("Indikator", 10, "Tingkat"),
        ("Indikator", 11, "Nama Indikator"),
    ]), [str(e) for e in errors]
    msg = {(e.sheet, e.row, e.column): e.message for e in errors}
    assert "Teks" in msg[("Pegawai", 5, "NIP")]  # tells to format the column as text
    assert "baris 3" in msg[("Pegawai", 11, "NIP")]


def patch_xml(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite the stored XML: openpyxl itself writes big numbers as floats, as Excel
    does, but other programs write an 18-digit integer literally."""
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info)) for info in z.infolist()]
    assert any(old in data for _i, data in items)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            z.writestr(info, data.replace(old, new))


def test_number_cells_for_nip_and_targets(tmp_path: Path, example_path: Path):
    wb = openpyxl.load_workbook(example_path)
    peg, ind = wb["Pegawai"], wb["Indikator"]
    set_cell(peg, 2, "NIP", 196601011990031001)  # stored as 1.96601011990031e+17 ...
    cell = ind.cell(row=3, column=header_col(ind, "Target 2024"), value=0.85)
    cell.number_format = "0%"  # Excel keeps 85 % as 0,85
    set_cell(ind, 4, "Target 2024", "=90+5")  # a formula never calculated
    set_cell(ind, 6, "Target TW I 2024", dt.datetime(2024, 10, 4))  # "4.10" become a date
    ind.cell(row=1, column=ind.max_column + 1, value="Target 2024 TW1")
    wb.save(example_path)
    errors = read_setup(example_path).errors
    assert where(errors) == sorted([
        ("Pegawai", 2, "NIP"),  # ... so the last digits are gone
        ("Indikator", 1, "Target 2024 TW1"),
        ("Indikator", 4, "Target 2024"),
        ("Indikator", 6, "Target TW I 2024"),
    ]), [str(e) for e in errors]

    ind.cell(row=1, column=ind.max_column).value = None
    set_cell(ind, 4, "Target 2024", 95)
    set_cell(ind, 6, "Target TW I 2024", 80)
    ind.cell(row=6, column=header_col(ind, "Target TW I 2024")).number_format = "General"
    wb.save(example_path)
    patch_xml(example_path, b"<v>1.96601011990031e+17</v>", b"<v>196601011990031001</v>")
    assert openpyxl.load_workbook(example_path)["Pegawai"]["B2"].value == 196601011990031001
    result = read_setup(example_path)
    assert result.errors == []
    assert result.spec.people[0].nip == "196601011990031001"
    sek02 = result.spec.indicators[1]
    assert sek02.code == "SEK-02" and sek02.targets[0].value == Decimal(85)


def test_setup_error_text():
    assert str(SetupError("Pegawai", 5, "NIP", "NIP harus 18 angka (tertulis '1980')")) == (
        "Pegawai baris 5, kolom NIP: NIP harus 18 angka (tertulis '1980')")
    assert str(SetupError("Pegawai", None, "Peran", "x")) == "Pegawai kolom Peran: x"
    assert str(SetupError("Kantor", None, None, "x")) == "Kantor: x"


def test_not_an_xlsx(tmp_path: Path):
    bad = tmp_path / "bukan.xlsx"
    bad.write_text("nama,nip\nA,1\n")
    with pytest.raises(SetupWorkbookError) as exc:
        read_setup(bad)
    assert "bukan buku kerja Excel" in exc.value.message
    with pytest.raises(SetupWorkbookError):
        read_setup(tmp_path / "tidak-ada.xlsx")
    wb = openpyxl.Workbook()
    wb.active.title = "Kantor"
    wb.save(tmp_path / "kurang.xlsx")
    with pytest.raises(SetupWorkbookError) as exc:
        read_setup(tmp_path / "kurang.xlsx")
    assert "Bidang" in exc.value.message and "Indikator" in exc.value.message


# ----------------------------------------------------------------- importing


async def test_import_into_database(example_path: Path, sessionmaker):
    async with sessionmaker() as session, session.begin():
        result = await import_setup(session, example_path)
    assert result.errors == []
    spec = example_office(YEAR)
    n_targets = sum(len(i.targets) for i in spec.indicators)

    async def counts():
        async with sessionmaker() as session:
            return [await session.scalar(select(func.count()).select_from(m))
                    for m in (Office, Unit, Person, Indicator, Target)]

    assert await counts() == [1, 4, len(spec.people), len(spec.indicators), n_targets]
    assert n_targets == 105

    async with sessionmaker() as session:
        office = (await session.execute(select(Office))).scalar_one()
        assert (office.name, office.unit_code, office.example_data) == (
            "Dinas Tenaga Kerja dan Perindustrian", "II.08", True)
        kadis = (await session.execute(
            select(Person).where(Person.role == Role.KADIS))).scalar_one()
        assert kadis.nip == "196601011990031001" and kadis.unit_id is None
        tpt = (await session.execute(
            select(Indicator).where(Indicator.code == "PPTK-01"))).scalar_one()
        assert tpt.polarity == Polarity.LOWER and tpt.lower_formula == LowerFormula.MIRROR
        assert tpt.value_type == ValueType.PERCENT
        unit = await session.get(Unit, tpt.unit_id)
        assert unit.code == "PPTK"
        targets = (await session.execute(
            select(Target).where(Target.indicator_id == tpt.id).order_by(Target.period)
        )).scalars().all()
        assert [(t.year, t.period, t.value) for t in targets] == [
            (YEAR, 0, Decimal("4.10")), (YEAR, 1, Decimal("4.30")), (YEAR, 2, Decimal("4.25")),
            (YEAR, 3, Decimal("4.15")), (YEAR, 4, Decimal("4.10"))]
        sakip = (await session.execute(
            select(Indicator).where(Indicator.code == "SEK-01"))).scalar_one()
        texts = (await session.execute(
            select(Target.value_text).where(Target.indicator_id == sakip.id))).scalars().all()
        assert set(texts) == {"BB"}

    # importing the same workbook again updates in place: no duplicate office, unit,
    # indicator, target or person (matched by NIP, or by name and role without one)
    async with sessionmaker() as session, session.begin():
        assert (await import_setup(session, example_path)).errors == []
    assert await counts() == [1, 4, len(spec.people), len(spec.indicators), n_targets]
    async with sessionmaker() as session:
        with_nip = await session.scalar(
            select(func.count()).select_from(Person).where(Person.nip.is_not(None)))
    assert with_nip == sum(1 for p in spec.people if p.nip)


# ----------------------------------------------------------------- audit, limits, bulk


def _changes(row) -> list[dict]:
    import json

    return json.loads(row.payload)["changes"]


async def test_every_change_of_an_import_is_audited(example_path: Path, sessionmaker):
    """One audit row per import, listing each created or changed unit, person and
    indicator (with its targets), old and new value of every changed field."""
    from bot.core import audit
    from models import AuditLog

    async with sessionmaker() as session, session.begin():
        await import_setup(session, example_path)
    async with sessionmaker() as session:
        rows = (await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
    assert [r.action for r in rows] == ["setup.import"]
    first = _changes(rows[0])
    spec = example_office(YEAR)
    kinds = [(c["jenis"], c["aksi"]) for c in first]
    assert kinds.count(("bidang", "baru")) == 4
    assert kinds.count(("pegawai", "baru")) == len(spec.people)
    assert kinds.count(("indikator", "baru")) == len(spec.indicators)
    tpt = next(c for c in first if c["kunci"] == "PPTK-01")
    assert tpt["isi"]["target 2024 TW II"] == "4.25" and tpt["isi"]["bidang"] == "PPTK"
    assert tpt["isi"]["polarity"] == "lower"

    # the office changes one indicator's name and a quarterly target, and one jabatan
    wb = openpyxl.load_workbook(example_path)
    ind, peg = wb["Indikator"], wb["Pegawai"]
    row = next(r for r in range(2, ind.max_row + 1) if ind.cell(row=r, column=1).value == "PPTK-01")
    hostile = "Tingkat <pengangguran> & \"terbuka\" 'TPT' 😀 Kab. Lampung Barat"
    set_cell(ind, row, "Nama Indikator", hostile)
    set_cell(ind, row, "Target TW II 2024", "4,5")
    set_cell(peg, 3, "Jabatan", "Sekretaris Dinas & Plt. <Kabid>")
    wb.save(example_path)
    async with sessionmaker() as session, session.begin():
        assert (await import_setup(session, example_path)).errors == []
    # and imports the same workbook once more: the row says nothing changed
    async with sessionmaker() as session, session.begin():
        assert (await import_setup(session, example_path)).errors == []
    async with sessionmaker() as session:
        rows = (await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
        assert (await audit.verify(session)).ok
    assert [r.action for r in rows] == ["setup.import"] * 3
    second = sorted(_changes(rows[1]), key=lambda c: c["jenis"])
    old_name = next(i.name for i in spec.indicators if i.code == "PPTK-01")
    assert second == [
        {"jenis": "indikator", "kunci": "PPTK-01", "aksi": "ubah",
         "ubah": {"name": [old_name, hostile], "target 2024 TW II": ["4.25", "4.5"]}},
        {"jenis": "pegawai", "kunci": "197002021995031002", "aksi": "ubah",
         "ubah": {"position": ["Sekretaris", "Sekretaris Dinas & Plt. <Kabid>"]}},
    ]
    assert _changes(rows[2]) == []


def test_row_cap_and_size_limits_are_checked_before_the_workbook_is_opened(
        example_path: Path, monkeypatch):
    import reports.setup_workbook as sw
    from reports.setup_workbook import SetupTooManyRows
    from reports.xlsx_limits import XlsxLimits, XlsxTooLarge

    with pytest.raises(SetupTooManyRows) as exc:
        read_setup(example_path, max_rows=10)
    assert (exc.value.sheet, exc.value.limit) == ("Pegawai", 10) and exc.value.rows > 10
    assert "Lembar Pegawai berisi" in exc.value.message

    def refuse(*_a, **_k):
        raise AssertionError("openpyxl opened a workbook over the limits")

    monkeypatch.setattr(sw, "load_workbook", refuse)
    with pytest.raises(XlsxTooLarge) as too_big:
        read_setup(example_path, limits=XlsxLimits(50 * 1024 * 1024, 100))
    assert too_big.value.kind == "cells"
    with pytest.raises(XlsxTooLarge) as too_big:
        read_setup(example_path, limits=XlsxLimits(10_000, 200_000))
    assert too_big.value.kind == "bytes"


@pytest.fixture
def keep_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_cli_import_refuses_over_the_limits_and_writes_nothing(
        example_path: Path, tmp_path: Path, capsys, keep_umask):
    import sqlite3

    from bot.cli import main

    db = tmp_path / "kantor.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n'
                   "[uploads]\nmax_xlsx_cells = 100\nmax_setup_rows = 10\n")
    assert main(["--config", str(cfg), "setup", "import", str(example_path)]) == 1
    err = capsys.readouterr().err
    assert "Workbook terlalu besar: berisi lebih dari 100 sel" in err
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n[uploads]\nmax_setup_rows = 10\n')
    assert main(["--config", str(cfg), "setup", "import", str(example_path)]) == 1
    assert "Lembar Pegawai berisi" in capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM indicator").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n')
    assert main(["--config", str(cfg), "setup", "import", str(example_path)]) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM indicator").fetchone() == (21,)
        assert conn.execute(
            "SELECT action FROM audit_log").fetchall() == [("setup.import",)]


async def test_5000_indicators_import_correctly_with_one_insert_per_table(
        tmp_path: Path, engine, sessionmaker):
    """The bulk import: 5,000 indicators (120-character names with <, &, quotes and
    emoji; 13-digit rupiah targets) arrive complete, written with one executemany for
    the indicators and one for the targets instead of one flush per indicator."""
    from sqlalchemy import event

    from bench.bench_setup_import import office_with_indicators

    spec = office_with_indicators(5000)
    path = write_template(tmp_path / "besar.xlsx", year=YEAR, example=spec)
    inserts: dict[str, int] = {}

    def count(_conn, _cursor, statement, _params, _context, _executemany):
        words = statement.split()
        if words[:2] == ["INSERT", "INTO"]:
            inserts[words[2].strip('"')] = inserts.get(words[2].strip('"'), 0) + 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with sessionmaker() as session, session.begin():
            result = await import_setup(session, path)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert result.errors == []
    assert inserts["indicator"] == 1 and inserts["target"] == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Indicator)) == 5000
        assert await session.scalar(select(func.count()).select_from(Target)) == 25000
        for i in (0, 2999, 4999):
            want = spec.indicators[i]
            got = (await session.execute(
                select(Indicator).where(Indicator.code == want.code))).scalar_one()
            assert (got.name, got.sasaran, got.sort_order, got.polarity) == (
                want.name, want.sasaran, i, want.polarity)
            assert len(got.name) == 120 and "<" in got.name and "😀" in got.name
            values = (await session.execute(
                select(Target.period, Target.value).where(Target.indicator_id == got.id)
                .order_by(Target.period))).all()
            assert values == [(t.period, t.value) for t in want.targets]
        rupiah = (await session.execute(
            select(Target.value).join(Indicator, Indicator.id == Target.indicator_id)
            .where(Indicator.code == spec.indicators[3].code, Target.period == 0))).scalar_one()
        assert rupiah == Decimal("1250000000003")


def test_a_missing_column_is_refused_and_role_synonyms_are_taken_or_named(example_path: Path):
    wb = openpyxl.load_workbook(example_path)
    peg = wb["Pegawai"]
    headers = [c.value for c in peg[1]]
    peg.delete_cols(headers.index("NIP") + 1)  # a whole column gone
    wb.save(example_path)
    result = read_setup(example_path)
    assert result.spec is None
    text = [str(e) for e in result.errors]
    assert any('Kolom "NIP" tidak ditemukan di baris judul' in t for t in text), text

    # the roles as people type them: "Kepala" and "Kepala Dinas" are the Kadis, "Kepala
    # Bidang" a Kabid; an unknown word is named with the accepted ones
    wb = openpyxl.load_workbook(write_template(example_path, year=YEAR,
                                               example=example_office(YEAR)))
    peg = wb["Pegawai"]
    role_col = [c.value for c in peg[1]].index("Peran") + 1
    roles = {r: peg.cell(r, role_col).value for r in range(2, peg.max_row + 1)}
    kadis_row = next(r for r, v in roles.items() if v == "kadis")
    kabid_row = next(r for r, v in roles.items() if v == "kabid")
    peg.cell(kadis_row, role_col).value = "Kepala"
    peg.cell(kabid_row, role_col).value = "Kepala Bidang"
    wb.save(example_path)
    result = read_setup(example_path)
    assert result.ok, [str(e) for e in result.errors]
    assert sum(p.role == Role.KADIS for p in result.spec.people) == 1
    peg.cell(kadis_row, role_col).value = "Pimpinan"
    wb.save(example_path)
    text = [str(e) for e in read_setup(example_path).errors]
    assert any('"Pimpinan" tidak dikenal' in t and "kadis" in t for t in text), text


# ----------------------------------------------------------------- the office's settings

from bot.core.sop import PACKAGED_DEFINITION  # noqa: E402
from reports.setup_workbook import (  # noqa: E402
    SHEET_AGENCIES,
    SHEET_NUMBERING,
    SHEET_SETTINGS,
    example_settings,
)

AGENCY_LONG = ("Badan Perencanaan Pembangunan, Riset & Inovasi Daerah \"Bapperida\" 🏛️ "
               "Kabupaten Lampung Barat, Provinsi Lampung, Republik Indonesia ....")[:120]
DOC_NAME = 'Keputusan Kepala Dinas "Tim SAKIP" & Verifikator 📑'


def settings_rows(ws) -> dict[str, int]:
    return {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}


def fill_settings(path: Path, out: Path, base_dir: Path) -> Path:
    """The example workbook with every kind of office setting filled in, as an admin
    would: a copied SOP definition in a subfolder of the config folder, a number
    format of its own for the measurement report and a keputusan type, its own
    recipients (names with &, quotes, emoji; one of 120 characters) and reminders."""
    sop = base_dir / "sop" / "dinas_saya.toml"
    sop.parent.mkdir(parents=True, exist_ok=True)
    sop.write_text(PACKAGED_DEFINITION.read_text(encoding="utf-8").replace(
        'name = "Pengumpulan dan Pengukuran Data Kinerja"',
        'name = "SOP Data Kinerja Dinas Saya & Mitra"', 1), encoding="utf-8")
    wb = openpyxl.load_workbook(path)
    ws = wb["Kantor"]
    ws.cell(kantor_row(ws, "Kode Klasifikasi Surat"), 2, "800")
    ws.cell(kantor_row(ws, "Kode Jenis Naskah"), 2, "-")
    ws = wb[SHEET_SETTINGS]
    rows = settings_rows(ws)
    share = ws.cell(rows["Pengingat Pertama (% Waktu)"], 2, 0.3)
    share.number_format = "0%"  # typed as 30 % in Excel: stored as 0.3
    for label, value in (("Definisi SOP", "sop/dinas_saya.toml"),
                         ("Pengingat Pagi Hari Terakhir", "Tidak"),
                         ("Pengingat Hanya pada Jam Kerja", "tidak"),
                         ("Eskalasi Diulang Setiap (Hari Kerja)", 2),
                         ("Eskalasi dari staf", "kabid"),
                         ("Eskalasi dari kabid", "tidak ada"),
                         ("Ringkasan Harian", "Tidak"),
                         ("Tawaran Siklus Baru", "Ya"),
                         ("Pengingat Tanda Terima Setelah (Hari Kerja)", "2"),
                         ("Pengingat Tanda Terima Paling Banyak", 0)):
        ws.cell(rows[label], 2, value)
    ws = wb[SHEET_NUMBERING]
    fill_row(ws, 2, {"Jenis Dokumen": "pengukuran_kinerja", "Kode Jenis Naskah": "LAP",
                     "Format Nomor": "{kode}/{urut}/{jenis}/{unit}/{bulan_romawi}/{tahun}"})
    fill_row(ws, 3, {"Jenis Dokumen": "Keputusan Kadis", "Nama Dokumen": DOC_NAME,
                     "Kode Klasifikasi": "800.1", "Kode Jenis Naskah": "KPTS"})
    ws = wb[SHEET_AGENCIES]
    clear_row(ws, 3)
    clear_row(ws, 4)
    fill_row(ws, 2, {"Kode OPD": "bappeda", "Nama OPD": AGENCY_LONG})
    fill_row(ws, 3, {"Kode OPD": "itkab&ok", "Nama OPD": "Inspektorat \"Itkab\" & <Irban> 🔎"})
    ws = wb["Pegawai"]
    contact = max(r for r in range(2, ws.max_row + 1)
                  if ws.cell(r, header_col(ws, "Peran")).value == "kontak")
    set_cell(ws, contact, "Kode OPD", "BAPPEDA")  # matched case-insensitively
    wb.save(out)
    return out


def test_template_explains_and_offers_every_office_setting(tmp_path: Path):
    from bot.config import Config, office_settings

    path = write_template(tmp_path / "isian.xlsx", year=YEAR,
                          defaults=office_settings(Config()))
    wb = openpyxl.load_workbook(path)
    ws = wb[SHEET_SETTINGS]
    rows = settings_rows(ws)
    assert list(rows) == [
        "Definisi SOP", "Pengingat Pertama (% Waktu)", "Pengingat Pagi Hari Terakhir",
        "Pengingat Hanya pada Jam Kerja", "Eskalasi Diulang Setiap (Hari Kerja)",
        "Eskalasi dari staf", "Eskalasi dari kabid", "Eskalasi dari kasubag",
        "Eskalasi dari sekretaris", "Ringkasan Harian", "Tawaran Siklus Baru",
        "Pengingat Tanda Terima Setelah (Hari Kerja)", "Pengingat Tanda Terima Paling Banyak"]
    assert all(ws.cell(r, 2).value is None for r in rows.values())  # empty: the defaults
    notes = {label: ws.cell(r, 3).value for label, r in rows.items()}
    assert notes["Pengingat Pertama (% Waktu)"].endswith("Bawaan kabupaten: 50.")
    assert notes["Eskalasi dari staf"].endswith("Bawaan kabupaten: kasubag.")
    assert notes["Ringkasan Harian"].endswith("Bawaan kabupaten: Ya.")
    assert notes["Definisi SOP"].endswith("Bawaan kabupaten: definisi bawaan bot.")
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    assert lists[f"B{rows['Ringkasan Harian']}"] == '"Ya,Tidak"'
    assert lists[f"B{rows['Eskalasi dari kabid']}"] == \
        '"kadis,sekretaris,kasubag,kabid,staf,tidak ada"'
    kantor = wb["Kantor"]
    assert kantor.cell(kantor_row(kantor, "Kode Klasifikasi Surat"), 3).value.endswith(
        "Bawaan kabupaten: 050.")
    assert [c.value for c in wb[SHEET_NUMBERING][1]] == [
        "Jenis Dokumen", "Nama Dokumen", "Kode Klasifikasi", "Kode Jenis Naskah",
        "Format Nomor"]
    assert [c.value for c in wb[SHEET_AGENCIES][1]] == ["Kode OPD", "Nama OPD"]
    guide = "\n".join(str(c.value) for c in wb["Petunjuk"]["A"])
    for words in ("Lembar Pengaturan", "Lembar Penomoran", "Lembar Penerima",
                  "bawaan kabupaten (config.toml)", "jalur mutlak",
                  "sopbot office add --zona"):
        assert words in guide

    # an empty template imports as no setting of its own
    result = read_setup(write_template(tmp_path / "contoh.xlsx", year=YEAR,
                                       example=example_office(YEAR)))
    assert result.errors == [] and result.spec.settings == {}


def test_example_template_shows_numbering_and_recipients(tmp_path: Path):
    example = replace(example_office(YEAR), settings=example_settings())
    path = write_template(tmp_path / "contoh.xlsx", year=YEAR, example=example)
    wb = openpyxl.load_workbook(path)
    assert [c.value for c in wb[SHEET_NUMBERING][2]] == [
        "pengukuran_kinerja", "Laporan Pengukuran Kinerja", "050", "-", None]
    assert [r[0].value for r in wb[SHEET_AGENCIES].iter_rows(min_row=2)] == [
        "bappeda", "inspektorat", "organisasi"]
    result = read_setup(path)
    assert result.errors == []
    assert result.spec.settings == {
        "numbering": {"types": {"pengukuran_kinerja": {
            "nama": "Laporan Pengukuran Kinerja", "kode": "050", "jenis": ""}}},
        "delivery": {"agencies": example.settings["delivery"]["agencies"]}}


async def test_settings_round_trip_into_the_offices_configuration(
        example_path: Path, tmp_path: Path, sessionmaker, services, config):
    """Template -> filled in -> imported -> Office.settings -> the office's view: its
    letter number, recipients, SOP, reminder share and escalation are the workbook's;
    the office's cached view is forgotten; re-importing without them gives the
    regency's values back."""
    from types import SimpleNamespace

    from bot.core.reminders import SHARE, _Plan

    async with sessionmaker() as s, s.begin():  # the office as it was first set up
        assert (await _import_setup(s, example_path, at=NOW, config=config,
                                    services=services)).errors == []
        office = (await s.execute(select(Office))).scalar_one()
    before = services.for_office(office)
    assert services.cached_office(office.id) is not None
    assert before.config.reminders.share_of_time == 0.5

    filled = fill_settings(example_path, tmp_path / "diisi.xlsx", config.base_dir)
    async with sessionmaker() as s, s.begin():
        result = await _import_setup(s, filled, at=NOW, config=config, services=services)
    assert result.errors == []
    assert services.cached_office(office.id) is None  # read again on the next update
    async with sessionmaker() as s:
        office = await s.get(Office, office.id)
        contact = (await s.execute(select(Person).where(Person.role == Role.CONTACT)
                                   .order_by(Person.id.desc()))).scalars().first()
    assert contact.agency_key == "bappeda"
    settings = office.settings
    assert settings["sop"] == {"definition": "sop/dinas_saya.toml"}
    assert settings["numbering"]["types"]["keputusan_kadis"] == {
        "nama": DOC_NAME, "kode": "800.1", "jenis": "KPTS", "format": ""}
    assert settings["reminders"] == {
        "share_of_time": 0.3, "last_day_morning": False, "office_hours_only": False,
        "escalation_interval_working_days": 2, "digest_enabled": False,
        "quarterly_prompt": True,
        "escalation": {"staf": "kabid", "kasubag": "sekretaris", "sekretaris": "kadis"}}

    view = services.for_office(office)
    cfg = view.config
    on = dt.date(2024, 10, 14)
    assert cfg.numbering.number("pengukuran_kinerja", sequence=7, on=on, unit="II.08") == \
        "050/7/LAP/II.08/X/2024"
    assert cfg.numbering.number("keputusan_kadis", sequence=8, on=on, unit="II.08") == \
        "800.1/8/KPTS/II.08/2024"
    assert cfg.numbering.number("surat_lain", sequence=9, on=on, unit="II.08") == \
        "800/9/II.08/2024"  # Kantor's code, no jenis ("-")
    assert [(a.key, a.name) for a in cfg.delivery.agencies] == [
        ("bappeda", AGENCY_LONG), ("itkab&ok", "Inspektorat \"Itkab\" & <Irban> 🔎")]
    assert len(AGENCY_LONG) == 120
    assert (cfg.delivery.receipt_reminder_days, cfg.delivery.receipt_reminder_max) == (2, 0)
    assert view.sop.name == "SOP Data Kinerja Dinas Saya & Mitra"
    assert cfg.reminders.sweep_interval_seconds == services.config.reminders.sweep_interval_seconds

    # the share is used: 35 % into a step in days the office's plan reminds, the
    # regency's (50 %) does not yet
    step = next(st for st in view.sop.steps if st.time.unit == "days")
    start = services.clock.now()
    due = view.calendar.add_working_days(start, 10)
    total = view.calendar.working_minutes_between(start, due)
    now = view.calendar.add_working_minutes(start, int(total * 0.35))
    row = SimpleNamespace(id=1, started_at=start, due_at=due, step_no=step.number,
                          r_share=None, r_lastday=None, r_due=None, r_level=None,
                          role=Role.STAF)
    assert [p.kind for p in _Plan(view, now).points(row)] == [SHARE]
    assert _Plan(services, now).points(row) == []

    # re-imported with the settings emptied and the optional sheets deleted: the
    # office's settings are the regency's again
    wb = openpyxl.load_workbook(filled)
    for name in (SHEET_SETTINGS, SHEET_NUMBERING, SHEET_AGENCIES):
        del wb[name]
    ws = wb["Kantor"]
    for label in ("Kode Klasifikasi Surat", "Kode Jenis Naskah"):
        ws.cell(kantor_row(ws, label), 2).value = None
    ws = wb["Pegawai"]
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, header_col(ws, "Peran")).value == "kontak":
            set_cell(ws, r, "Kode OPD", "bappeda")
    wb.save(tmp_path / "kosong.xlsx")
    services.for_office(office)
    async with sessionmaker() as s, s.begin():
        result = await _import_setup(s, tmp_path / "kosong.xlsx", at=NOW, config=config,
                                     services=services)
    assert result.errors == [] and services.cached_office(office.id) is None
    async with sessionmaker() as s:
        office = await s.get(Office, office.id)
    assert office.settings == {}
    assert services.for_office(office).config.delivery == services.config.delivery


async def test_an_empty_time_zone_keeps_the_offices_zone(example_path: Path, sessionmaker,
                                                         config):
    """`sopbot office add --zona WITA` then the office's workbook without a zone: the
    office stays in WITA; a zone written in the workbook replaces it."""
    async with sessionmaker() as s, s.begin():
        s.add(Office(name="Dinas Tenaga Kerja dan Perindustrian", unit_code="II.08",
                     regency="Kabupaten Lampung Barat", place="Liwa",
                     settings={"calendar": {"timezone": "Asia/Makassar"}}))
    async with sessionmaker() as s, s.begin():
        assert (await _import_setup(s, example_path, at=NOW, config=config)).errors == []
    async with sessionmaker() as s:
        office = (await s.execute(select(Office))).scalar_one()
    assert office.settings == {"calendar": {"timezone": "Asia/Makassar"}}
    wb = openpyxl.load_workbook(example_path)
    ws = wb["Kantor"]
    ws.cell(kantor_row(ws, "Zona Waktu"), 2, "WIT")
    wb.save(example_path)
    async with sessionmaker() as s, s.begin():
        assert (await _import_setup(s, example_path, at=NOW, config=config)).errors == []
    async with sessionmaker() as s:
        office = (await s.execute(select(Office))).scalar_one()
    assert office.settings == {"calendar": {"timezone": "Asia/Jayapura"}}


def test_bad_settings_are_refused_with_sheet_row_and_column(example_path: Path,
                                                            tmp_path: Path):
    wb = openpyxl.load_workbook(example_path)
    ws = wb["Kantor"]
    ws.cell(kantor_row(ws, "Format Nomor Surat"), 2, "{kode}/{nomor}/{urut}")
    ws.cell(kantor_row(ws, "Zona Waktu"), 2, "Mars/Olympus")
    ws = wb[SHEET_SETTINGS]
    rows = settings_rows(ws)
    bad = {"Pengingat Pertama (% Waktu)": "0,5",
           "Pengingat Pagi Hari Terakhir": "Mungkin",
           "Pengingat Hanya pada Jam Kerja": dt.date(2024, 1, 1),
           "Eskalasi Diulang Setiap (Hari Kerja)": "1,5",
           "Eskalasi dari staf": "bupati",
           "Eskalasi dari kabid": "kabid",
           "Pengingat Tanda Terima Setelah (Hari Kerja)": 0,
           "Pengingat Tanda Terima Paling Banyak": "dua"}
    for label, value in bad.items():
        ws.cell(rows[label], 2, value)
    ws = wb[SHEET_NUMBERING]
    fill_row(ws, 2, {"Jenis Dokumen": "Laporan Kinerja!"})
    fill_row(ws, 3, {"Jenis Dokumen": "pengukuran kinerja", "Format Nomor": "{kode}/{tahun}"})
    fill_row(ws, 4, {"Jenis Dokumen": "pengukuran_kinerja", "Kode Klasifikasi": "050"})
    ws = wb[SHEET_AGENCIES]
    fill_row(ws, 2, {"Kode OPD": "bappeda", "Nama OPD": "Bappeda & Litbang \"Lambar\" 📊"})
    fill_row(ws, 3, {"Kode OPD": "BAPPEDA", "Nama OPD": "Bappeda lagi"})
    fill_row(ws, 4, {"Kode OPD": "dprd", "Nama OPD": None})
    fill_row(ws, 5, {"Kode OPD": "bpkad", "Nama OPD": "B" * 201})
    ws = wb["Pegawai"]
    contact = max(r for r in range(2, ws.max_row + 1)
                  if ws.cell(r, header_col(ws, "Peran")).value == "kontak")
    set_cell(ws, contact, "Kode OPD", "inspektorat")
    wb.save(tmp_path / "salah.xlsx")
    result = read_setup(tmp_path / "salah.xlsx")
    assert result.spec is None
    got = {(e.sheet, e.row, e.column): e.message for e in result.errors}
    k = openpyxl.load_workbook(tmp_path / "salah.xlsx")["Kantor"]
    assert "tidak dikenal" in got[("Kantor", kantor_row(k, "Format Nomor Surat"), "Nilai")]
    assert "WIB, WITA atau WIT" in got[("Kantor", kantor_row(k, "Zona Waktu"), "Nilai")]
    s = {label: (SHEET_SETTINGS, r, "Nilai") for label, r in rows.items()}
    assert "Tulis dalam persen" in got[s["Pengingat Pertama (% Waktu)"]]
    assert "Pilihan: Ya, Tidak" in got[s["Pengingat Pagi Hari Terakhir"]]
    assert "Pilihan: Ya, Tidak" in got[s["Pengingat Hanya pada Jam Kerja"]]
    assert "bilangan bulat" in got[s["Eskalasi Diulang Setiap (Hari Kerja)"]]
    assert "bupati" in got[s["Eskalasi dari staf"]]
    assert "kabid sendiri" in got[s["Eskalasi dari kabid"]]
    assert "1 sampai 365" in got[s["Pengingat Tanda Terima Setelah (Hari Kerja)"]]
    assert ("Pengaturan", rows["Pengingat Tanda Terima Paling Banyak"], "Nilai") in got
    assert "huruf kecil" in got[(SHEET_NUMBERING, 2, "Jenis Dokumen")]
    assert "{urut}" in got[(SHEET_NUMBERING, 3, "Format Nomor")]
    assert "sudah ditulis di baris 3" in got[(SHEET_NUMBERING, 4, "Jenis Dokumen")]
    assert "sudah dipakai di baris 2" in got[(SHEET_AGENCIES, 3, "Kode OPD")]
    assert "wajib diisi" in got[(SHEET_AGENCIES, 4, "Nama OPD")]
    assert "201 karakter" in got[(SHEET_AGENCIES, 5, "Nama OPD")]
    assert "tidak ada di lembar Penerima" in got[("Pegawai", contact, "Kode OPD")]
    assert len(result.errors) == 17, [str(e) for e in result.errors]


async def test_a_bad_setting_imports_nothing(example_path: Path, tmp_path: Path,
                                             sessionmaker, config):
    """Checked on import (config.toml's rules, the SOP file): refused by its cell and
    nothing is written, not even the office."""
    wb = openpyxl.load_workbook(example_path)
    ws = wb["Kantor"]
    ws.cell(kantor_row(ws, "Jam Masuk"), 2, dt.time(17, 0))  # Excel made it a time cell
    wb.save(tmp_path / "jam.xlsx")
    ws = wb[SHEET_SETTINGS]
    ws.cell(settings_rows(ws)["Definisi SOP"], 2, "../rahasia.toml")
    wb.save(tmp_path / "sop.xlsx")
    for name, where_ in (("jam.xlsx", ("Kantor", kantor_row(wb["Kantor"], "Jam Masuk"))),
                         ("sop.xlsx", (SHEET_SETTINGS,
                                       settings_rows(wb[SHEET_SETTINGS])["Definisi SOP"]))):
        async with sessionmaker() as s, s.begin():
            result = await _import_setup(s, tmp_path / name, at=NOW, config=config)
        assert result.spec is None and len(result.errors) == 1
        err = result.errors[0]
        assert (err.sheet, err.row, err.column) == (*where_, "Nilai"), str(err)
        async with sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Office)) == 0
    assert "luar folder" in str(err)


def test_the_sop_definition_is_read_only_from_the_allowed_folders(tmp_path: Path):
    from bot.config import Config
    from bot.core.office_setup import DefinitionRefused, definition_setting

    base = tmp_path / "etc"
    (base / "sop").mkdir(parents=True)
    cfg = Config()
    cfg.base_dir = base
    (base / "sop" / "dinas saya.toml").write_text(
        PACKAGED_DEFINITION.read_text(encoding="utf-8"), encoding="utf-8")
    (base / "rusak.toml").write_text("[sop\nname = 'x'", encoding="utf-8")
    (base / "bukan_sop.toml").write_text("[telegram]\ntoken = \"123:RAHASIA\"\n",
                                         encoding="utf-8")
    outside = tmp_path / "luar.toml"
    outside.write_text(PACKAGED_DEFINITION.read_text(encoding="utf-8"), encoding="utf-8")
    os.symlink(outside, base / "tautan.toml")

    assert definition_setting("sop/dinas saya.toml", cfg) == "sop/dinas saya.toml"
    assert definition_setting(" sop\\dinas saya.toml ", cfg) == "sop/dinas saya.toml"
    assert definition_setting(PACKAGED_DEFINITION.name, cfg) == str(
        PACKAGED_DEFINITION.resolve())  # the bundled definition
    refusals = {
        "/etc/passwd": "jalur mutlak", str(outside): "jalur mutlak",
        "C:/sop.toml": "jalur mutlak", "~/sop.toml": "jalur mutlak",
        "sop.txt": ".toml", "../luar.toml": "di luar folder",
        "sop/../../luar.toml": "di luar folder", "tautan.toml": "di luar folder",
        "tidak_ada.toml": "tidak ditemukan", "rusak.toml": "TOML tidak sah",
        "bukan_sop.toml": "bukan definisi SOP", "hari_libur.toml": "bukan definisi SOP",
    }
    for name, words in refusals.items():
        with pytest.raises(DefinitionRefused) as exc:
            definition_setting(name, cfg)
        assert words in str(exc.value), (name, str(exc.value))
        assert "RAHASIA" not in str(exc.value) and str(base) not in str(exc.value)


def test_cli_example_template_shows_the_regency_defaults_and_imports(
        tmp_path: Path, capsys, keep_umask):
    """`sopbot setup template --example`: the Keterangan names config.toml's values, the
    Penomoran and Penerima sheets are filled in, and `setup import` takes it as it is;
    a SOP definition file the workbook names outside the config folder is refused."""
    import json
    import sqlite3

    from bot.cli import main

    db = tmp_path / "kantor.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n'
                   "[reminders]\nshare_of_time = 0.4\n"
                   '[numbering]\nkode = "000.8"\n')
    out = tmp_path / "contoh.xlsx"
    assert main(["--config", str(cfg), "setup", "template", str(out), "--example",
                 "--year", str(YEAR)]) == 0
    wb = openpyxl.load_workbook(out)
    ws = wb[SHEET_SETTINGS]
    assert ws.cell(settings_rows(ws)["Pengingat Pertama (% Waktu)"], 3).value.endswith(
        "Bawaan kabupaten: 40.")
    ws = wb["Kantor"]
    assert ws.cell(kantor_row(ws, "Kode Klasifikasi Surat"), 3).value.endswith(
        "Bawaan kabupaten: 000.8.")
    assert wb[SHEET_NUMBERING].cell(2, 1).value == "pengukuran_kinerja"
    assert wb[SHEET_AGENCIES].cell(2, 1).value == "bappeda"
    assert main(["--config", str(cfg), "setup", "import", str(out)]) == 0
    with sqlite3.connect(db) as conn:
        (settings,) = conn.execute("SELECT settings FROM office").fetchone()
    assert [a["key"] for a in json.loads(settings)["delivery"]["agencies"]] == [
        "bappeda", "inspektorat", "organisasi"]

    ws = wb[SHEET_SETTINGS]
    ws.cell(settings_rows(ws)["Definisi SOP"], 2, "/etc/passwd")
    wb.save(out)
    capsys.readouterr()
    assert main(["--config", str(cfg), "setup", "import", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Impor dibatalkan" in err and "Pengaturan baris 2, kolom Nilai" in err
    assert "jalur mutlak" in err


@pytest.mark.parametrize("written, read", [
    (dt.time(7, 30), "07:30"), ("07.30", "07:30"), ("7:30", "07:30"), (7.3, "07:30"),
    (16, "16:00"), ("16.00", "16:00"), ("7-30", "7-30")])  # the last: refused on import
def test_office_hours_as_excel_or_indonesian_writing(example_path: Path, tmp_path: Path,
                                                     written, read):
    wb = openpyxl.load_workbook(example_path)
    ws = wb["Kantor"]
    ws.cell(kantor_row(ws, "Jam Masuk"), 2, written)
    wb.save(tmp_path / "jam.xlsx")
    result = read_setup(tmp_path / "jam.xlsx")
    assert result.spec.settings == {"calendar": {"office_start": read}}
