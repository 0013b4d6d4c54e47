"""Layout of the compiled documents as an office files them (issue 15, items 6-9).

The PDF: no number or word of the table split across lines, file names shortened with
"…" at a boundary, the signature block on the page of the last table row and followed
by the appendix, a portrait first page with no text under 10 pt. The workbook: the
same Analisis column and summary as the PDF, every formula cell carrying its computed
result (equal to LibreOffice's own recalculation where LibreOffice is installed), and
print settings that put each sheet on paper sensibly.

The text is read back with pypdf's text visitor: one call per line drawn, with its
font size, so "a line" here is exactly a line the reader sees in a cell.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from models.enums import LowerFormula, Polarity, ValueType
from reports.document_data import (
    DocumentData, IndicatorRow, Signatory, StepTiming, analysis_text,
)
from reports.measure import CapPolicy
from reports.numbers import format_number
from reports.pdf import build_pdf
from reports.workbook import (
    CHART_SHEET, OFFICE_SHEET, SUMMARY_SHEET, build_workbook, read_workbook,
)

D = Decimal
WIB = timezone(timedelta(hours=7))
RUPIAH = D(9_876_543_210_123)  # 13 digits: "9.876.543.210.123"
LONG_FILE = "laporan-rekapitulasi_penyerapan_anggaran_triwulan-III_2024_final_revisi2.pdf"
PENGHAMBAT = "Keterlambatan pencairan anggaran & <kegiatan> \"tertunda\" 🚧 di kecamatan"


def _name(i: int) -> str:
    """An indicator name of exactly 120 characters with markup characters and emoji."""
    base = (f"IK-{i:02d} Persentase perusahaan <PT & CV> \"binaan\" yang 'menerapkan' struktur skala "
            f"upah 📈 sesuai ketentuan nomor {i} di kabupaten")
    return (base + " x" * 60)[:120].rstrip()


def _rows() -> tuple[IndicatorRow, ...]:
    rows = []
    for b in range(10):
        bidang = f"Bidang {b + 1} Pengembangan Perindustrian, Perdagangan & Tenaga Kerja 🏭"
        for k in range(3):
            i = b * 3 + k
            numeric = k != 2
            rows.append(IndicatorRow(
                bidang=bidang,
                sasaran="Meningkatnya kualitas & daya saing <tenaga kerja> \"terampil\"",
                code=f"IKU-{i:03d}", name=_name(i),
                definition="Jumlah perusahaan yang menerapkan dibagi jumlah perusahaan "
                           "terdaftar dikali seratus persen",
                unit="perusahaan" if numeric else "rupiah",
                polarity=Polarity.HIGHER if k != 1 else Polarity.LOWER,
                lower_formula=LowerFormula.MIRROR, value_type=ValueType.NUMERIC,
                target=RUPIAH if k == 2 else D(1_250_000_000),
                realisasi=(RUPIAH - D(1_000_000_000) if k == 2
                           else D(987_654_321) if i % 2 else D(1_300_000_000)),
                note="Data dari SIPD & laporan <OPD> \"final\"" if i % 4 == 0 else "",
                evidence=(LONG_FILE, "bukti.pdf") if i % 3 == 0 else (),
                penghambat=PENGHAMBAT if i % 2 else "",
                upaya="Koordinasi dengan BPKAD setiap bulan" if i % 2 else "",
                pendukung="Dukungan anggaran APBD perubahan" if i % 5 == 0 else "",
            ))
    return tuple(rows)


SIGNATORY = Signatory(
    place="Liwa", title="Kepala Dinas Tenaga Kerja dan Perindustrian Kabupaten Lampung Barat",
    name="Drs. HENDRA SAPUTRA, M.Si.", rank="Pembina Utama Muda",
    nip="19700512 199503 1 002", signed_at=datetime(2024, 10, 14, 9, 30, tzinfo=WIB),
)


def _steps() -> tuple[StepTiming, ...]:
    start = datetime(2024, 10, 1, 8, 0, tzinfo=WIB)
    return (StepTiming(1, "Mendisposisikan kepada Sekretaris", "Kepala Dinas", "Hendra",
                       "5 menit", 5, 3, start, start + timedelta(minutes=3)),)


def _document(rows: tuple[IndicatorRow, ...] | None = None, **changes) -> DocumentData:
    data = DocumentData(
        office_name="Dinas Tenaga Kerja dan Perindustrian", regency="Kabupaten Lampung Barat",
        title="Pengukuran Kinerja Dinas Tenaga Kerja dan Perindustrian",
        period_label="Triwulan III Tahun 2024", year=2024, quarter=3,
        rows=_rows() if rows is None else rows, steps=_steps(), signatory=SIGNATORY,
        letter_number="800/123/IV.09/2024", letter_date=date(2024, 10, 14),
        verification_code="K7Q2-9XWD", verification_url_or_text="Kirim /cek K7Q2-9XWD ke bot",
        cap=CapPolicy(), example_data=True, version=2,
        address="Jalan Raden Intan Nomor 1, Liwa 34812",
    )
    return replace(data, **changes) if changes else data


def _lines(path: Path) -> list[list[tuple[str, float]]]:
    """Per page, every line drawn: (text, font size in pt)."""
    pages = []
    for page in PdfReader(str(path)).pages:
        drawn: list[tuple[str, float]] = []

        def visit(text, cm, tm, font, size, drawn=drawn):
            if text.strip():
                scale = abs(tm[0] * cm[0]) if tm and cm else 1.0
                drawn.append((" ".join(text.split()), size * scale))

        page.extract_text(visitor_text=visit)
        pages.append(drawn)
    return pages


def _page_of(pages: list[list[tuple[str, float]]], needle: str) -> list[int]:
    return [n for n, lines in enumerate(pages, start=1) if any(needle in t for t, _ in lines)]


# ====================================================================== PDF


def test_no_line_of_the_table_ends_inside_a_number_or_a_word(tmp_path):
    data = _document()
    pages = _lines(build_pdf(data, tmp_path / "panjang.pdf"))
    # every word and number the table shows, as written
    words: set[str] = set()
    for row in data.rows:
        for text in (row.sasaran, row.name, row.definition, row.unit, row.note, row.bidang,
                     analysis_text(row)):
            words.update(w.rstrip(":;,") for w in text.split())
    numbers = {format_number(v) for row in data.rows for v in (row.target, row.realisasi)}
    words |= numbers
    long_words = [w for w in words if len(w) >= 4]
    broken = []
    for number, lines in enumerate(pages, start=1):
        for text, _ in lines:
            tokens = [t.rstrip(":;,") for t in text.split()]
            last, first = tokens[-1], tokens[0]
            if "…" in last or last.endswith(("/", "-")):  # shortened, or a break after
                continue                                   # "/" or a hyphen between letters
            if last not in words and any(w.startswith(last) and w != last for w in long_words):
                broken.append((number, text))
            if first not in words and any(w.endswith(first) and w != first
                                          for w in long_words):
                broken.append((number, text))
    assert not broken, broken[:10]
    # the 13-digit figures are there whole, each on one line
    drawn = {t for lines in pages for t, _ in lines}
    assert "9.876.543.210.123" in drawn and "9.875.543.210.123" in drawn
    assert "perusahaan" in drawn  # the Satuan, set smaller rather than split


def test_long_file_names_are_shortened_with_an_ellipsis_at_a_boundary(tmp_path):
    pages = _lines(build_pdf(_document(), tmp_path / "bukti.pdf"))
    shortened = {t for lines in pages for t, _ in lines if t.endswith("….pdf")}
    assert shortened, "the long evidence file name is shown shortened"
    for text in shortened:
        kept = text[: -len("….pdf")]
        assert len(kept) >= 4 and LONG_FILE.startswith(kept), text
        assert LONG_FILE[len(kept)] in " -_.", text  # at a boundary
    assert any(t == "bukti.pdf" for lines in pages for t, _ in lines)  # short: as is


def test_the_signature_block_stays_on_the_page_of_the_last_row(tmp_path):
    """For every length of table (so that at some length the last row ends near the
    foot of a page), the signatory's name is on the page of the last row, and the
    appendix follows."""
    rows = _rows()
    table_pages = set()
    for count in range(1, len(rows) + 1):
        data = _document(rows=rows[:count])
        pages = _lines(build_pdf(data, tmp_path / f"ttd-{count}.pdf"))
        name_pages = _page_of(pages, SIGNATORY.name)
        row_pages = _page_of(pages, data.rows[-1].name.split()[0])  # "IK-07"
        assert name_pages and row_pages
        assert name_pages[-1] == row_pages[-1], (count, name_pages, row_pages)
        appendix = _page_of(pages, "LAMPIRAN")
        assert appendix and appendix[0] > name_pages[-1]
        table_pages.add(row_pages[-1])
    # not vacuous: the table ran over several pages as it grew
    assert len(table_pages) >= 3, table_pages


def test_page_one_is_a_portrait_summary_readable_on_a_phone(tmp_path):
    data = _document()
    path = build_pdf(data, tmp_path / "ringkas.pdf")
    reader = PdfReader(str(path))
    first = reader.pages[0].mediabox
    assert first.width < first.height  # portrait
    pages = _lines(path)
    table = _page_of(pages, "RINCIAN PENGUKURAN KINERJA")[0]
    for page in reader.pages[table - 1:]:  # the full table (and the appendix): landscape
        assert page.mediabox.width > page.mediabox.height
    page1 = pages[0]
    small = [(t, s) for t, s in page1 if s < 10 - 1e-6]
    assert not small, small[:5]
    text = " ".join(t for t, _ in page1)
    # the kop: Pemda, Dinas, address; the title names the office once
    assert "PEMERINTAH KABUPATEN LAMPUNG BARAT" in text
    assert "Jalan Raden Intan Nomor 1, Liwa 34812" in text
    assert text.count("DINAS TENAGA KERJA DAN PERINDUSTRIAN") == 1
    assert "PENGUKURAN KINERJA" in text and "TRIWULAN III TAHUN 2024" in text
    # capaian per bidang, counts per category, indicators not achieved with the reason
    assert "Capaian per Bidang" in text and "Jumlah Indikator per Kategori" in text
    assert "Indikator Belum Mencapai Target" in text
    assert "Keterlambatan pencairan anggaran" in text
    assert "Bidang 10 Pengembangan" in text


def test_the_column_headers_name_the_period(tmp_path):
    data = _document()
    pages = _lines(build_pdf(data, tmp_path / "kolom.pdf"))
    header = " ".join(t for t, _ in pages[_page_of(pages, "RINCIAN PENGUKURAN")[0] - 1])
    assert "Target TW III" in header and "2024" in header and "Realisasi" in header
    assert data.column_period() == ("Target TW III 2024", "Realisasi TW III 2024")
    assert data.column_period(cumulative=True) == ("Target s.d. TW III 2024",
                                                   "Realisasi s.d. TW III 2024")
    assert replace(data, quarter=None).column_period() == ("Target 2024", "Realisasi 2024")


# ====================================================================== workbook


def _formula_cells(path: Path) -> dict[tuple[str, str], tuple[str, object]]:
    """Every formula cell: (formula, the result stored for it)."""
    formulas = load_workbook(path)
    values = load_workbook(path, data_only=True)
    found = {}
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    found[(ws.title, cell.coordinate)] = (
                        cell.value, values[ws.title][cell.coordinate].value)
    return found


def test_formula_cells_carry_their_results(tmp_path):
    data = _document()
    path = build_workbook(data, tmp_path / "hasil.xlsx")
    cells = _formula_cells(path)
    assert len(cells) > 100
    # None only where the result is the empty text of a bidang sheet's reference to an
    # empty Keterangan (openpyxl reads an empty text result as None)
    missing = [key for key, (formula, value) in cells.items()
               if value is None and not (formula.startswith("=IF('") and key[1][0] == "J")]
    assert not missing, missing[:5]
    ws = load_workbook(path, data_only=True)[OFFICE_SHEET]
    header = next(r for r in ws.iter_rows() if any(c.value == "Kode" for c in r))
    col = {c.value: c.column for c in header if c.value}
    first = next(r for r in ws.iter_rows(min_row=header[0].row + 2)
                 if r[col["Kode"] - 1].value == "IKU-000")
    # 1.300.000.000 of 1.250.000.000: 104 %
    assert first[7].value == pytest.approx(104.0) and first[8].value == "Sangat Berhasil"
    # the workbook still reads back (the bot's upload path)
    result = read_workbook(path, [r.code for r in data.rows])
    assert result.ok and result.rows["IKU-002"].target == RUPIAH


def test_the_workbook_matches_the_pdf(tmp_path):
    data = _document()
    path = build_workbook(data, tmp_path / "sama.xlsx")
    wb = load_workbook(path, data_only=True)
    ws = wb[OFFICE_SHEET]
    header = next(r for r in ws.iter_rows() if any(c.value == "Kode" for c in r))
    titles = [c.value for c in header]
    assert "Keterangan" in titles and "Analisis Capaian" in titles
    assert "Target TW III 2024" in titles and "Realisasi TW III 2024" in titles
    col = {c.value: c.column for c in header if c.value}
    by_code = {r[col["Kode"] - 1].value: r for r in ws.iter_rows(min_row=header[0].row + 2)}
    row = data.rows[1]
    assert by_code[row.code][col["Analisis Capaian"] - 1].value == analysis_text(row)
    assert "Faktor penghambat: " + " ".join(PENGHAMBAT.split()) in analysis_text(row)
    summary = wb[SUMMARY_SHEET]
    texts = [str(c.value) for r in summary.iter_rows() for c in r if c.value is not None]
    assert "Capaian per Bidang" in texts and "Jumlah Indikator per Kategori" in texts
    assert any(t.startswith("Indikator Belum Mencapai Target") for t in texts)
    assert " ".join(PENGHAMBAT.split()) in texts
    assert sum(1 for t in texts if t.startswith("Bidang ") and "Pengembangan" in t) == 10


def test_every_sheet_prints_sensibly(tmp_path):
    path = build_workbook(_document(), tmp_path / "cetak.xlsx")
    wb = load_workbook(path)
    office = wb[OFFICE_SHEET]
    # the Satuan column holds "perusahaan" whole, the figure columns the 13-digit rupiah
    assert office.column_dimensions["E"].width >= len("perusahaan") + 1
    for letter in "FG":
        assert office.column_dimensions[letter].width >= len("9,876,543,210,123") + 1
    # a long evidence file name is shortened with "…" at a boundary, a short one kept
    bukti = [c.value for r in office.iter_rows() for c in r
             if isinstance(c.value, str) and "bukti.pdf" in c.value]
    assert bukti and all(v.split("\n")[0] == "laporan….pdf" for v in bukti)
    chart = wb[CHART_SHEET]
    assert chart.page_setup.orientation == "landscape"
    assert chart.page_setup.fitToWidth == 1 and chart.page_setup.fitToHeight == 1
    assert chart.sheet_properties.pageSetUpPr.fitToPage and chart.print_area
    for ws in wb.worksheets:
        if ws.sheet_state == "hidden":
            continue
        margins = ws.page_margins
        # the red "DATA CONTOH" page header ends above the sheet's first row
        assert margins.header + 0.3 <= margins.top, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.page_setup.fitToWidth == 1, ws.title


def _libreoffice() -> str | None:
    return shutil.which("libreoffice") or shutil.which("soffice")


_RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode"
 oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


@pytest.mark.skipif(_libreoffice() is None,
                    reason="LibreOffice (libreoffice/soffice) is not installed: the stored "
                           "results cannot be compared with its recalculation")
def test_stored_results_equal_libreoffice_recalculation(tmp_path):
    data = _document()
    path = build_workbook(data, tmp_path / "asli.xlsx")
    # a profile that recalculates every formula of an .xlsx on loading
    profile = tmp_path / "profil" / "user"
    profile.mkdir(parents=True)
    (profile / "registrymodifications.xcu").write_text(_RECALC_ALWAYS)
    out = tmp_path / "hitung"
    subprocess.run([_libreoffice(), f"-env:UserInstallation={profile.parent.as_uri()}",
                    "--headless", "--calc", "--convert-to", "xlsx", "--outdir", str(out),
                    str(path)], check=True, capture_output=True, timeout=240)
    ours = _formula_cells(path)
    theirs = load_workbook(out / "asli.xlsx", data_only=True)
    differ = []
    for (sheet, ref), (_, value) in ours.items():
        other = theirs[sheet][ref].value
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            if other != pytest.approx(value, rel=1e-12, abs=1e-9):
                differ.append((sheet, ref, value, other))
        elif (value or "") != (other or ""):
            differ.append((sheet, ref, value, other))
    assert not differ, differ[:10]


def test_a_last_row_too_tall_to_share_a_page_with_the_signature_still_ends(tmp_path):
    """A last row and signature block taller together than a page: the row is not moved
    from page to page forever; the block follows on the next page."""
    rows = _rows()
    tall = replace(rows[-1], definition=" ".join(["penjelasan panjang sekali"] * 180))
    data = _document(rows=rows[:-1] + (tall,))
    pages = _lines(build_pdf(data, tmp_path / "tinggi.pdf"))
    assert _page_of(pages, SIGNATORY.name) and _page_of(pages, "LAMPIRAN")


def test_the_kop_shows_the_logo_when_the_office_has_one(tmp_path):
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 140), (20, 90, 160)).save(logo)
    with_logo = PdfReader(str(build_pdf(_document(logo_path=str(logo), verification_code=None),
                                        tmp_path / "logo.pdf")))
    assert len(with_logo.pages[0].images) == 1
    # a logo file that is missing leaves the kop without it, the document is still made
    without = PdfReader(str(build_pdf(
        _document(logo_path=str(tmp_path / "hilang.png"), verification_code=None),
        tmp_path / "tanpa.pdf")))
    assert not without.pages[0].images
    assert "PEMERINTAH KABUPATEN LAMPUNG BARAT" in without.pages[0].extract_text()
