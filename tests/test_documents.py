"""The documents: workbook (with live formulas), its reader, PDF, chart and summary text.

The workbook test does not trust the formulas it generated: it evaluates each capaian
and kategori formula with a small evaluator for the formula shapes the builder writes
(IF/OR/AND/NOT/ISNUMBER, arithmetic, comparisons) against the cell values, and compares
the result with :func:`reports.measure.capaian` recomputed from the same cells.
"""
from __future__ import annotations

import re
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from pypdf import PdfReader

from models.enums import LowerFormula, Polarity, ValueType
from reports.chart import build_chart
from reports.document_data import (
    DocumentData,
    IndicatorRow,
    Signatory,
    StepTiming,
    capaian_label,
    format_working_minutes,
)
from reports.measure import CapaianStatus, CapPolicy, capaian
from reports.pdf import build_pdf, latin1_text
from reports.summary import summary_text
from reports.workbook import (
    CHART_SHEET,
    META_SHEET,
    OFFICE_SHEET,
    SUMMARY_SHEET,
    STEPS_SHEET,
    WorkbookError,
    build_workbook,
    read_workbook,
    safe_sheet_title,
)

D = Decimal
WIB = timezone(timedelta(hours=7))
PELATIHAN = "Bidang Pelatihan dan Penempatan Tenaga Kerja"
HI = "Bidang Hubungan Industrial dan Jaminan Sosial Tenaga Kerja"
INDUSTRI = "Bidang Perindustrian"
SASARAN = "Meningkatnya kualitas dan daya saing tenaga kerja"


def row(code: str, name: str, target, realisasi, *, bidang: str = PELATIHAN,
        polarity: Polarity = Polarity.HIGHER, lower: LowerFormula = LowerFormula.MIRROR,
        value_type: ValueType = ValueType.PERCENT, unit: str = "%", note: str = "",
        evidence: tuple[str, ...] = ()) -> IndicatorRow:
    return IndicatorRow(
        bidang=bidang, sasaran=SASARAN, code=code, name=name,
        definition="Realisasi dibagi target x 100%", unit=unit, polarity=polarity,
        lower_formula=lower, value_type=value_type, target=target, realisasi=realisasi,
        note=note, evidence=evidence,
    )


ROWS = (
    row("IKU-01", "Persentase kelulusan peserta pelatihan", D(80), D("60.25"),
        note="Data LPK", evidence=("daftar-lulus.pdf",)),
    row("IKU-02", "Persentase lowongan kerja yang terpenuhi", D(100), D(130)),  # capped
    row("IKU-03", "Tingkat Pengangguran Terbuka", D("5.2"), D("4.8"), bidang=HI,
        polarity=Polarity.LOWER),  # mirror
    row("IKU-04", "Persentase kasus PHK", D(5), D(4), bidang=HI, polarity=Polarity.LOWER,
        lower=LowerFormula.RATIO),  # ratio 125 -> capped 120
    row("IKU-05", "Rasio kecelakaan kerja", D(2), D(0), bidang=HI, polarity=Polarity.LOWER,
        lower=LowerFormula.RATIO),  # realisation 0 under the ratio formula
    row("IKU-06", "Predikat SAKIP", "BB", "BB", bidang="Sekretariat",
        value_type=ValueType.TEXT, unit="predikat"),
    row("IKU-07", "Jumlah IKM & UMKM yang dibina", D(0), D(3), bidang=INDUSTRI,
        value_type=ValueType.NUMERIC, unit="unit"),  # target 0
    row("IKU-08", "Jumlah sertifikat halal IKM", D(40), None, bidang=INDUSTRI,
        value_type=ValueType.NUMERIC, unit="sertifikat"),  # no data
    row("IKU-09", "Persentase IKM yang naik kelas", D(50), D(55), bidang=INDUSTRI),  # 110
    row("IKU-10", "Jumlah wirausaha baru", D(1250), D("1187.5"), bidang=INDUSTRI,
        value_type=ValueType.NUMERIC, unit="orang"),
)
CODES = [r.code for r in ROWS]

SIGNATORY = Signatory(
    place="Liwa", title="Kepala Dinas Tenaga Kerja dan Perindustrian Kabupaten Lampung Barat",
    name="Drs. HENDRA SAPUTRA, M.Si.", rank="Pembina Utama Muda",
    nip="19700512 199503 1 002", acting="Plh.",
    signed_at=datetime(2024, 10, 14, 9, 30, tzinfo=WIB),
)


def steps() -> tuple[StepTiming, ...]:
    start = datetime(2024, 10, 1, 8, 0, tzinfo=WIB)
    return (
        StepTiming(1, "Mendisposisikan kepada Sekretaris", "Kepala Dinas", "Hendra", "5 menit",
                   5, 3, start, start + timedelta(minutes=3)),
        StepTiming(2, "Mendisposisikan kepada Kasubag Perencanaan", "Sekretaris", "Rina",
                   "5 menit", 5, 40, start, start + timedelta(minutes=40)),  # late
        StepTiming(5, "Mengolah data dari bidang", "Kasubag Perencanaan", "Ahmad", "1-5 hari",
                   2550, None, start, None),  # open
    )


def document(*, cap: CapPolicy | None = CapPolicy(), example: bool = True,
             rows: tuple[IndicatorRow, ...] = ROWS, verification: bool = True) -> DocumentData:
    return DocumentData(
        office_name="Dinas Tenaga Kerja dan Perindustrian", regency="Kabupaten Lampung Barat",
        title="PENGUKURAN KINERJA", period_label="Triwulan III Tahun 2024", year=2024,
        rows=rows, steps=steps(), signatory=SIGNATORY,
        letter_number="800/123/IV.09/2024", letter_date=date(2024, 10, 14),
        verification_code="K7Q2-9XWD" if verification else None,
        verification_url_or_text="Kirim /cek K7Q2-9XWD ke bot" if verification else None,
        cap=cap, example_data=example, version=3,
    )


# ====================================================================== formula evaluator

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"]|"")*")
      | (?P<num>\d+(?:\.\d+)?)
      | (?P<ref>(?:'(?:[^']|'')+'!|[A-Za-z_][\w.]*!)?\$?[A-Z]{1,3}\$?\d+)
      | (?P<func>[A-Z]+)\(
      | (?P<op><>|<=|>=|[-+*/=<>(),&])
    )""",
    re.VERBOSE,
)


class FormulaEvaluator:
    """Evaluates the formula shapes the workbook builder writes (lazy IF)."""

    def __init__(self, workbook, sheet: str) -> None:
        self.wb = workbook
        self.sheet = sheet

    def tokens(self, formula: str) -> list[tuple[str, str]]:
        text, pos, out = formula.lstrip("="), 0, []
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            assert m, f"cannot tokenise {text[pos:]!r}"
            kind = m.lastgroup
            out.append((kind, m.group(kind)))
            pos = m.end()
        return out

    def evaluate(self, formula: str):
        self.toks = self.tokens(formula)
        self.i = 0
        node = self.comparison()
        assert self.i == len(self.toks), formula
        return node()

    # recursive descent building closures (so IF can be lazy)
    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, value=None):
        tok = self.toks[self.i]
        if value is not None:
            assert tok[1] == value, (tok, value)
        self.i += 1
        return tok

    def comparison(self):
        left = self.concat()
        kind, op = self.peek()
        if op in ("=", "<>", "<", ">", "<=", ">="):
            self.take()
            right = self.concat()
            return lambda: self.compare(op, left(), right())
        return left

    def concat(self):
        left = self.additive()
        while self.peek()[1] == "&":
            self.take()
            right = self.additive()
            left = (lambda a, b: lambda: f"{self.text(a())}{self.text(b())}")(left, right)
        return left

    def additive(self):
        left = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            right = self.term()
            left = (lambda a, b, o: lambda: self.arith(o, a(), b()))(left, right, op)
        return left

    def term(self):
        left = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            right = self.unary()
            left = (lambda a, b, o: lambda: self.arith(o, a(), b()))(left, right, op)
        return left

    def unary(self):
        if self.peek()[1] == "-":
            self.take()
            inner = self.unary()
            return lambda: -self.number(inner())
        return self.atom()

    def atom(self):
        kind, value = self.take()
        if kind == "num":
            return lambda: D(value)
        if kind == "str":
            text = value[1:-1].replace('""', '"')
            return lambda: text
        if kind == "ref":
            return lambda: self.cell(value)
        if kind == "op" and value == "(":
            inner = self.comparison()
            self.take(")")
            return inner
        if kind == "func":
            args = []
            if self.peek()[1] != ")":
                args.append(self.comparison())
                while self.peek()[1] == ",":
                    self.take()
                    args.append(self.comparison())
            self.take(")")
            return self.function(value, args)
        raise AssertionError(f"unexpected token {kind} {value}")

    def function(self, name, args):
        if name == "IF":
            cond, yes, no = args
            return lambda: yes() if self.truth(cond()) else no()
        if name == "OR":
            return lambda: any(self.truth(a()) for a in args)
        if name == "AND":
            return lambda: all(self.truth(a()) for a in args)
        if name == "NOT":
            return lambda: not self.truth(args[0]())
        if name == "ISNUMBER":
            return lambda: isinstance(args[0](), Decimal)
        raise AssertionError(f"function {name} not expected in generated formulas")

    def cell(self, ref: str):
        sheet = self.sheet
        if "!" in ref:
            sheet, ref = ref.rsplit("!", 1)
            sheet = sheet.strip("'").replace("''", "'")
        value = self.wb[sheet][ref.replace("$", "")].value
        if isinstance(value, str) and value.startswith("="):
            return FormulaEvaluator(self.wb, sheet).evaluate(value)
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return D(str(value))
        return value  # str or None

    @staticmethod
    def number(value):
        if value is None:
            return D(0)
        assert isinstance(value, Decimal), f"arithmetic on {value!r} gives #VALUE!"
        return value

    def arith(self, op, a, b):
        a, b = self.number(a), self.number(b)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        assert b != 0, "#DIV/0!"
        return a / b

    @staticmethod
    def text(value):
        return "" if value is None else str(value)

    def compare(self, op, a, b):
        if a is None:
            a = "" if isinstance(b, str) else D(0)
        if b is None:
            b = "" if isinstance(a, str) else D(0)
        if isinstance(a, str) != isinstance(b, str):  # Excel: text > number; never equal
            return {"=": False, "<>": True}.get(op, isinstance(a, str) if ">" in op else
                                                  not isinstance(a, str))
        return {"=": a == b, "<>": a != b, "<": a < b, ">": a > b, "<=": a <= b,
                ">=": a >= b}[op]

    @staticmethod
    def truth(value):
        if isinstance(value, Decimal):
            return value != 0
        return bool(value)


def test_evaluator_understands_the_shapes():
    wb = Workbook()
    ws = wb.active
    ws["A1"], ws["A2"] = 80, 60
    ev = FormulaEvaluator(wb, ws.title)
    assert ev.evaluate('=IF(A3="","x",1/0)') == "x"
    assert ev.evaluate("=(2*A1-A2)/A1*100") == D(125)
    assert ev.evaluate('=IF(ISNUMBER(A1),IF(A1>=100,"a",IF(A1>=75,"b","c")),"-")') == "b"


# ====================================================================== workbook


def _office_rows(ws) -> dict[str, int]:
    rows = {}
    for (code_cell,) in ws.iter_rows(min_col=13, max_col=13):
        if code_cell.value in CODES:
            rows[code_cell.value] = code_cell.row
    return rows


def _decimal_or_text(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return D(str(value))
    return value


@pytest.fixture(params=["cap", "no_cap"])
def built(request, tmp_path):
    cap = CapPolicy() if request.param == "cap" else None
    data = document(cap=cap)
    path = build_workbook(data, tmp_path / "pengukuran.xlsx")
    return data, path


def test_every_capaian_formula_matches_measure(built):
    data, path = built
    wb = load_workbook(path)
    ws = wb[OFFICE_SHEET]
    rows = _office_rows(ws)
    assert set(rows) == set(CODES)
    by_code = {r.code: r for r in data.rows}
    ev = FormulaEvaluator(wb, OFFICE_SHEET)
    for code, r in rows.items():
        item = by_code[code]
        target = _decimal_or_text(ws.cell(r, 6).value)
        real = _decimal_or_text(ws.cell(r, 7).value)
        # recomputed from the workbook's own cells
        expected = capaian(target, real, polarity=item.polarity,
                           lower_formula=item.lower_formula, value_type=item.value_type,
                           cap=data.cap)
        cap_cell, kat_cell = ws.cell(r, 8).value, ws.cell(r, 9).value
        if item.value_type is ValueType.TEXT:
            assert not str(cap_cell).startswith("=")
            assert cap_cell == capaian_label(expected) == "Tercapai"
            continue
        assert str(cap_cell).startswith("=IF("), (code, cap_cell)
        # the formula core is the one of the indicator's polarity
        if item.polarity is Polarity.HIGHER:
            assert f"G{r}/F{r}*100" in cap_cell
        elif item.lower_formula is LowerFormula.MIRROR:
            assert f"(2*F{r}-G{r})/F{r}*100" in cap_cell
        else:
            assert f"F{r}/G{r}*100" in cap_cell
        assert ("IF(" + f"G{r}/F{r}*100>110,120," in cap_cell) == (
            data.cap is not None and item.polarity is Polarity.HIGHER)
        value = ev.evaluate(cap_cell)
        if expected.score is not None:
            assert isinstance(value, Decimal), (code, value)
            assert round(value, 2) == round(expected.score, 2), code
        else:
            assert value == capaian_label(expected), (code, value)
            assert value != 0
        kategori = ev.evaluate(kat_cell)
        assert kategori == (expected.kategori or "-"), code


def test_specific_capaian_values(built):
    data, path = built
    wb = load_workbook(path)
    ws = wb[OFFICE_SHEET]
    rows = _office_rows(ws)
    ev = FormulaEvaluator(wb, OFFICE_SHEET)

    def cap_of(code):
        return ev.evaluate(ws.cell(rows[code], 8).value)

    assert round(cap_of("IKU-01"), 4) == D("75.3125")
    assert round(cap_of("IKU-03"), 2) == D("107.69")
    assert cap_of("IKU-02") == (D(120) if data.cap else D(130))
    assert cap_of("IKU-04") == (D(120) if data.cap else D(125))
    assert cap_of("IKU-09") == D(110)  # exactly at the threshold: not capped
    assert cap_of("IKU-05") == "Realisasi 0 (tercapai)"
    assert cap_of("IKU-07") == "Target 0 (tercapai)"
    assert cap_of("IKU-08") == "Belum ada data"
    assert ev.evaluate(ws.cell(rows["IKU-08"], 9).value) == "-"


def test_formula_reacts_to_an_edit_and_to_text(tmp_path):
    path = build_workbook(document(), tmp_path / "w.xlsx")
    wb = load_workbook(path)
    ws = wb[OFFICE_SHEET]
    r = _office_rows(ws)["IKU-08"]
    ev = FormulaEvaluator(wb, OFFICE_SHEET)
    ws.cell(r, 7).value = 30
    assert ev.evaluate(ws.cell(r, 8).value) == D(75)
    assert ev.evaluate(ws.cell(r, 9).value) == "Berhasil"
    ws.cell(r, 7).value = "tiga puluh"
    assert ev.evaluate(ws.cell(r, 8).value) == "Bukan angka"


def test_workbook_layout(tmp_path):
    data = document()
    wb = load_workbook(build_workbook(data, tmp_path / "w.xlsx"))
    names = wb.sheetnames
    assert names[0] == OFFICE_SHEET
    assert {CHART_SHEET, STEPS_SHEET, META_SHEET} <= set(names)
    assert names[1] == SUMMARY_SHEET
    bidang_sheets = [n for n in names if n not in (OFFICE_SHEET, SUMMARY_SHEET, CHART_SHEET,
                                                   STEPS_SHEET, META_SHEET)]
    assert len(bidang_sheets) == 4 and all(len(n) <= 31 for n in bidang_sheets)
    assert len({n.lower() for n in names}) == len(names)

    ws = wb[OFFICE_SHEET]
    texts = [str(c.value) for r in ws.iter_rows() for c in r if c.value is not None]
    header_row = next(c.row for r in ws.iter_rows() for c in r if c.value == "Indikator Kinerja")
    assert [ws.cell(header_row, col).value for col in range(1, 13)] == [
        "No", "Sasaran/Program", "Indikator Kinerja", "Penjelasan/Formulasi Perhitungan",
        "Satuan", "Target 2024", "Realisasi 2024", "Capaian (%)", "Kategori", "Keterangan",
        "Analisis Capaian", "Bukti"]
    assert [ws.cell(header_row + 1, col).value for col in range(1, 13)] == [
        f"({n})" for n in range(1, 13)]
    assert ws.freeze_panes == f"A{header_row + 2}"
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4)
    assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows.replace("$", "") == f"{header_row}:{header_row + 1}"
    assert "PENGUKURAN KINERJA" in texts
    assert "DINAS TENAGA KERJA DAN PERINDUSTRIAN KABUPATEN LAMPUNG BARAT" in texts
    assert "TRIWULAN III TAHUN 2024" in texts
    assert any("Nomor: 800/123/IV.09/2024" in t and "14 Oktober 2024" in t for t in texts)
    assert any("DATA CONTOH" in t for t in texts)
    # signature block, bottom right, in this order
    sig = ["Liwa, 14 Oktober 2024", "Plh. " + SIGNATORY.title, SIGNATORY.name,
           "Pembina Utama Muda", "NIP. 19700512 199503 1 002"]
    found = {c.value: c for r in ws.iter_rows() for c in r if c.value in sig}
    assert set(found) == set(sig)
    assert [found[s].row for s in sig] == sorted(found[s].row for s in sig)
    assert all(found[s].column >= 9 for s in sig)
    assert found[SIGNATORY.name].font.b and found[SIGNATORY.name].font.u == "single"
    # codes in _meta, hidden
    meta = wb[META_SHEET]
    assert meta.sheet_state == "hidden"
    assert {c.value for c in meta["A"][1:]} >= set(CODES)
    # bidang sheets point at the office sheet
    first_bidang = wb[bidang_sheets[0]]
    formulas = [c.value for r in first_bidang.iter_rows() for c in r
                if isinstance(c.value, str) and c.value.startswith("=")]
    assert formulas and all(f"'{OFFICE_SHEET}'!" in f for f in formulas)
    # chart sheet
    assert wb[CHART_SHEET]._charts
    # SOP compliance: late step red, open step marked
    steps_ws = wb[STEPS_SHEET]
    by_text = {c.value: c for r in steps_ws.iter_rows() for c in r if isinstance(c.value, str)}
    assert by_text["Selesai, terlambat"].fill.fgColor.rgb.endswith("FFC7CE")
    assert "Sedang berjalan" in by_text and "Selesai, tepat waktu" in by_text
    assert by_text["Selesai, tepat waktu"].fill.fgColor.rgb in (None, "00000000")


def test_safe_sheet_titles():
    taken = ["Pengukuran Kinerja"]
    first = safe_sheet_title("Bidang Hubungan Industrial dan Jaminan Sosial Tenaga Kerja", taken)
    assert len(first) <= 31 and not first.endswith(" ")
    taken.append(first)
    second = safe_sheet_title("Bidang Hubungan Industrial dan Jaminan Sosial [lama]", taken)
    assert second != first and len(second) <= 31
    assert safe_sheet_title("a/b:c*?", []) == "a b c"
    assert safe_sheet_title("pengukuran kinerja", taken) == "pengukuran kinerja (2)"


# ====================================================================== reading back


def _edit(path: Path, out: Path, edits) -> Path:
    wb = load_workbook(path)
    ws = wb[OFFICE_SHEET]
    rows = _office_rows(ws)
    for code, column, value, *fmt in edits:
        cell = ws.cell(rows[code], column)
        cell.value = value
        if fmt:
            cell.number_format = fmt[0]
    wb.save(out)
    return out


def test_read_workbook_round_trip(tmp_path):
    path = build_workbook(document(), tmp_path / "w.xlsx")
    untouched = read_workbook(path, CODES)
    assert untouched.errors == [] and set(untouched.rows) == set(CODES)
    assert untouched.version == 3
    assert untouched.rows["IKU-01"].realisasi == D("60.25")
    assert untouched.rows["IKU-01"].note == "Data LPK"
    assert untouched.rows["IKU-06"].target == "BB"
    assert untouched.rows["IKU-08"].realisasi is None

    edited = _edit(path, tmp_path / "edited.xlsx", [
        ("IKU-08", 7, 36),
        ("IKU-01", 7, "85,5"),
        ("IKU-10", 6, "1.300"),  # Indonesian thousands, flagged for confirmation
        ("IKU-09", 7, 0.56, "0%"),  # typed "56%" in Excel
        ("IKU-03", 10, "Sumber: BPS"),
        ("IKU-06", 7, "A"),
    ])
    result = read_workbook(edited, CODES)
    assert result.errors == []
    assert result.rows["IKU-08"].realisasi == D(36)
    assert result.rows["IKU-01"].realisasi == D("85.5")
    assert result.rows["IKU-10"].target == D(1300)
    assert any(w.row is not None and "1.300" in w.message for w in result.warnings)
    assert result.rows["IKU-09"].realisasi == D(56)
    assert result.rows["IKU-03"].note == "Sumber: BPS"
    assert result.rows["IKU-06"].realisasi == "A"


def test_read_workbook_row_errors(tmp_path):
    path = build_workbook(document(), tmp_path / "w.xlsx")
    wb = load_workbook(path)
    ws = wb[OFFICE_SHEET]
    rows = _office_rows(ws)
    ws.cell(rows["IKU-01"], 7).value = "abc"  # text in a percent indicator
    ws.cell(rows["IKU-10"], 6).value = "seribu"  # text in a numeric indicator
    ws.cell(rows["IKU-02"], 13).value = "IKU-99"  # unknown code (and IKU-02 now missing)
    ws.cell(rows["IKU-04"], 13).value = "IKU-03"  # duplicate
    ws.cell(rows["IKU-05"], 13).value = None  # a row with figures but no code
    ws.cell(rows["IKU-08"], 7).value = datetime(2024, 1, 2)  # "1/2" auto-converted
    wb.save(tmp_path / "broken.xlsx")

    result = read_workbook(tmp_path / "broken.xlsx", CODES)
    messages = [e.message for e in result.errors]
    r1 = rows["IKU-01"]
    assert f"Baris {r1}, kolom Realisasi: 'abc' bukan persentase" in messages
    assert f"Baris {rows['IKU-10']}, kolom Target: 'seribu' bukan angka" in messages
    assert any("'IKU-99' tidak dikenal" in m and f"Baris {rows['IKU-02']}" in m
               for m in messages)
    assert any("'IKU-03' ganda" in m for m in messages)
    assert any(m.startswith(f"Baris {rows['IKU-05']}:") and "Kode kosong" in m
               for m in messages)
    assert any("tanggal" in m and f"Baris {rows['IKU-08']}" in m for m in messages)
    missing = [e for e in result.errors if e.row is None]
    assert {re.search(r"'(IKU-\d+)'", e.message).group(1) for e in missing} == {
        "IKU-02", "IKU-04", "IKU-05"}
    assert all(e.sheet == OFFICE_SHEET for e in result.errors)
    assert "IKU-01" not in result.rows and "IKU-03" in result.rows
    assert not result.ok


def test_read_workbook_rejects_other_files(tmp_path):
    text = tmp_path / "not.xlsx"
    text.write_text("bukan excel")
    with pytest.raises(WorkbookError, match="xlsx"):
        read_workbook(text, CODES)
    other = tmp_path / "other.xlsx"
    wb = Workbook()
    wb.active.title = "Sheet Lain"
    wb.save(other)
    with pytest.raises(WorkbookError, match="Pengukuran Kinerja"):
        read_workbook(other, CODES)


# ====================================================================== PDF


def _pdf_text(path: Path) -> str:
    reader = PdfReader(str(path))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_pdf_contents(tmp_path):
    data = document()
    path = build_pdf(data, tmp_path / "pengukuran.pdf")
    assert path.read_bytes().startswith(b"%PDF")
    text = _pdf_text(path)
    for expected in ("PENGUKURAN KINERJA", "TRIWULAN III TAHUN 2024",
                     "Tingkat Pengangguran Terbuka", SIGNATORY.name,
                     "NIP. 19700512 199503 1 002", "Plh. Kepala Dinas",
                     "Pembina Utama Muda", "800/123/IV.09/2024", "14 Oktober 2024",
                     "Kode verifikasi: K7Q2-9XWD", "DATA CONTOH", "KEPATUHAN SOP",
                     "Selesai, terlambat", "Belum ada data", "Realisasi 0 (tercapai)",
                     "75,31", "107,69", "10 Jumlah indikator", "7 Mencapai target"):
        assert expected in text, expected
    reader = PdfReader(str(path))
    assert "Halaman 1 dari" in text and "{nb}" not in text
    assert any(page.images for page in reader.pages)  # the QR code
    # page 1 is the portrait summary, the table follows in landscape
    assert reader.pages[0].mediabox.width < reader.pages[0].mediabox.height
    assert reader.pages[1].mediabox.width > reader.pages[1].mediabox.height


def test_pdf_without_verification_and_deterministic(tmp_path):
    data = document(example=False, verification=False)
    first = build_pdf(data, tmp_path / "a.pdf")
    second = build_pdf(data, tmp_path / "b.pdf")
    text = _pdf_text(first)
    assert "Kode verifikasi" not in text and "DATA CONTOH" not in text
    assert not any(page.images for page in PdfReader(str(first)).pages)
    assert first.read_bytes() == second.read_bytes()


def test_latin1_fallback_text():
    assert latin1_text("Capaian ≥ 100 % – “baik” … ‘ok’") == "Capaian >= 100 % - \"baik\" ... 'ok'"
    assert latin1_text("Rp 1.250.000 — naïve") == "Rp 1.250.000 - naïve"


# ====================================================================== chart, summary


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_chart_png(tmp_path):
    path = build_chart(document(), tmp_path / "grafik.png")
    width, height = _png_size(path)
    assert width == 1080 and 600 <= height <= 6000
    assert path.stat().st_size > 10_000


def test_chart_with_nothing_measurable(tmp_path):
    rows = (row("X-1", "Predikat", "BB", None, value_type=ValueType.TEXT),)
    path = build_chart(document(rows=rows), tmp_path / "kosong.png")
    assert _png_size(path)[0] == 1080


def test_summary_text():
    text = summary_text(document())
    assert "Jumlah indikator: <b>10</b>" in text
    # reached: 02, 03, 04, 05, 06 (text), 07 (target 0), 09
    assert "Mencapai target: <b>7</b>" in text
    assert "Belum ada data: <b>1</b>" in text
    assert "Capaian terendah" in text and "Persentase kelulusan peserta pelatihan" in text
    assert "75,31%" in text
    assert "DATA CONTOH" in text
    assert len(text) <= 1024
    # names are escaped for Telegram's HTML mode
    rows = ROWS + (row("IKU-11", "Indeks <IKM> & Co", D(100), D(1)),)
    assert "Indeks &lt;IKM&gt; &amp; Co" in summary_text(document(rows=rows))


def test_working_time_and_late():
    assert format_working_minutes(25) == "25 menit"
    assert format_working_minutes(2 * 510 + 180) == "2 hari 3 jam"
    assert format_working_minutes(65) == "1 jam 5 menit"
    assert format_working_minutes(0) == "0 menit"
    assert format_working_minutes(None) == "-"
    late, ok, open_ = steps()[1], steps()[0], steps()[2]
    assert late.late and not ok.late and not open_.late


def test_numeric_value_given_as_text_does_not_crash(tmp_path):
    rows = (row("A-1", "Persentase A", D(80), "85,5"), row("A-2", "Persentase B", D(80), "n/a"))
    data = document(rows=rows)
    measured = dict((r.code, c) for r, c in data.measured())
    assert measured["A-1"].status is CapaianStatus.OK
    assert measured["A-2"].status is CapaianStatus.NO_DATA
    build_pdf(data, tmp_path / "x.pdf")
    build_workbook(data, tmp_path / "x.xlsx")
