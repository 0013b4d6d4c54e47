"""The measurement workbook (.xlsx): build it, and read back a copy edited offline.

:func:`build_workbook` writes, with openpyxl:

``Pengukuran Kinerja``
    The office table in the shape Indonesian offices publish ("PENGUKURAN KINERJA",
    office, period; columns No ... Bukti numbered "(1) (2) ..." under the header, the
    period in the figures' headers, "Keterangan" and "Analisis Capaian" filled as in
    the PDF), indicators grouped under a bold row per bidang, the legend, and the
    signature block at the bottom right. This is the one *input* sheet: target,
    realisation and Keterangan typed here are what :func:`read_workbook` reads back.
    Column M ("Kode")
    carries each row's indicator code (outside the print area) so a returned workbook
    can be matched row by row even after rows were moved.
``RINGKASAN``
    What page 1 of the PDF shows: the counts, per kategori, per bidang (formulas on the
    office sheet) and the indicators not achieved with their hindering factor.
one sheet per bidang
    The same table for one bidang. Its figures are formulas that point at the office
    sheet, so the two never disagree.
``Grafik``
    Average capaian per bidang (live ``AVERAGE`` formulas) and a column chart of it with
    a 100 % reference line.
``Kepatuhan SOP``
    Each SOP step with holder, time standard and actual working time; late steps red.
``_meta`` (hidden)
    Indicator code, office-sheet row and value type per indicator; document version,
    title, period and office.

Design decisions
----------------
* **Capaian and Kategori are live formulas**, so the workbook recalculates when a
  figure is edited. The formula mirrors :func:`reports.measure.capaian` case by case:
  a missing target or realisation, a target of 0, a negative value and (for the
  ``target / realisasi`` formula) a realisation of 0 give the *text* of
  :func:`reports.document_data.capaian_label` ("Belum ada data", "Target 0
  (tercapai)"), never 0; a text typed into a numeric cell gives "Bukan angka". When
  ``data.cap`` is set, the capaian cell holds the *score* (e.g. above 110 % counts as
  120 %), which is what Kategori and the averages use; the legend under the table says
  so. Text indicators (a predicate such as "BB") have no formula: the cell holds the
  verdict of :func:`~reports.measure.capaian` ("Tercapai" / "Belum tercapai").
* **Formula cells carry their result.** openpyxl writes a formula with an empty
  value; the builder computes each result itself (the same arithmetic as the
  formula) and :func:`store_results` writes it into the saved file, so a viewer that
  does not recalculate (a phone's preview) shows the figures. ``fullCalcOnLoad`` stays
  set: Excel and LibreOffice still compute every formula when the file is opened.
* **Numbers are real numbers** with the formats ``#,##0`` / ``#,##0.00``. An .xlsx
  number format is locale-neutral: Excel, LibreOffice and Google Sheets show the
  separators of the viewer's regional setting (1.234,56 on an Indonesian device). A
  hard-coded "Indonesian" format would have to store the figures as text and kill the
  formulas, so we don't; a note under the table says how figures are shown.
* Styles are a handful of :class:`~openpyxl.styles.NamedStyle` objects registered once
  and assigned by name, so 5,000 rows cost no per-cell style objects.
* Row heights are estimated from the text length (viewers on phones do not autofit).
"""
from __future__ import annotations

import functools
import io
import re
import zipfile
from copy import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell
from openpyxl.cell.read_only import EMPTY_CELL
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.worksheet import Worksheet

from models.enums import LowerFormula, Polarity, ValueType
from reports.document_data import (
    DocumentData,
    IndicatorRow,
    StepTiming,
    analysis_text,
    capaian_label,
    format_working_minutes,
    measure_row,
    short_file_name,
)
from reports.cells import append_text_row, formula_cell, text_cell
from reports.measure import CapPolicy, RatingBand
from reports.numbers import NumberParseError, format_date, format_percent, parse_number

__all__ = [
    "COLUMNS",
    "META_SHEET",
    "OFFICE_SHEET",
    "RowEdit",
    "RowError",
    "WorkbookError",
    "WorkbookReadResult",
    "build_workbook",
    "capaian_formula",
    "kategori_formula",
    "read_workbook",
    "safe_sheet_title",
]

OFFICE_SHEET = "Pengukuran Kinerja"
SUMMARY_SHEET = "RINGKASAN"
CHART_SHEET = "Grafik"
STEPS_SHEET = "Kepatuhan SOP"
META_SHEET = "_meta"
RESERVED_SHEETS = (OFFICE_SHEET, SUMMARY_SHEET, CHART_SHEET, STEPS_SHEET, META_SHEET)

#: (header, width in characters). Column letters A..L in this order; M is the code.
COLUMNS: tuple[tuple[str, float], ...] = (
    ("No", 5),
    ("Sasaran/Program", 24),
    ("Indikator Kinerja", 30),
    ("Penjelasan/Formulasi Perhitungan", 34),
    ("Satuan", 9),
    ("Target", 12),
    ("Realisasi", 12),
    ("Capaian (%)", 13),
    ("Kategori", 15),
    ("Keterangan", 22),
    ("Analisis Capaian", 30),
    ("Bukti", 18),
)
CODE_HEADER = "Kode"
CODE_WIDTH = 14
_LAST_COL = get_column_letter(len(COLUMNS))  # "L"
_CODE_COL = len(COLUMNS) + 1  # M
# 1-based column numbers of the columns the formulas and the reader care about
_COL_TARGET, _COL_REAL, _COL_CAP, _COL_KAT, _COL_NOTE = 6, 7, 8, 9, 10
_COL_ANALYSIS, _COL_EVIDENCE = 11, 12
_EVIDENCE_CHARS = 20  # a file name longer than the Bukti column is shortened with "…"
_WRAPPED = {2: 24, 3: 30, 4: 34, 10: 22, 11: 30, 12: 18}  # column -> width, for row heights
# a quarterly document (issue 15): F-H hold the "s.d." figures, N-P the quarter's own
_PERIOD_COL = _CODE_COL + 1  # N
_PERIOD_WIDTHS = (14, 14, 13)  # the quarter's own target, realisation, capaian

_TZ_NAME = "Asia/Jakarta"
_LINE_HEIGHT_PT = 13.0

# Texts the formulas produce; they match reports.document_data.capaian_label.
_T_NO_TARGET = "Belum ada target"
_T_NO_DATA = "Belum ada data"
_T_NOT_NUMBER = "Bukan angka"
_T_MET = "(tercapai)"
_T_NOT_MET = "(belum tercapai)"
_T_TARGET_ZERO = "Target 0"
_T_REAL_ZERO = "Realisasi 0"
_T_NEGATIVE = "Nilai negatif"
_NO_KATEGORI = "-"


# ====================================================================== formulas


def _num(value: Decimal) -> str:
    """A Decimal as a plain formula literal (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text


def _q(text: str) -> str:
    """A string literal for a formula."""
    return '"' + text.replace('"', '""') + '"'


def _verdict(label: str, met_condition: str) -> str:
    return f"IF({met_condition},{_q(label + ' ' + _T_MET)},{_q(label + ' ' + _T_NOT_MET)})"


def capaian_formula(
    polarity: Polarity,
    lower_formula: LowerFormula,
    target_ref: str,
    real_ref: str,
    cap: CapPolicy | None = None,
) -> str:
    """The Excel formula of the capaian cell of a numeric indicator.

    ``target_ref``/``real_ref`` are cell references ("F9", "G9"). The result is the
    percentage (the *score* when ``cap`` is set) or one of the status texts, in the
    same order of checks as :func:`reports.measure.capaian`.
    """
    t, r = target_ref, real_ref
    higher = Polarity(polarity) is Polarity.HIGHER
    ratio = not higher and LowerFormula(lower_formula) is LowerFormula.RATIO
    met = f"{r}>={t}" if higher else f"{r}<={t}"
    if higher:
        core = f"{r}/{t}*100"
    elif ratio:
        core = f"{t}/{r}*100"
    else:
        core = f"(2*{t}-{r})/{t}*100"
    if cap is not None:
        core = f"IF({core}>{_num(cap.above)},{_num(cap.score)},{core})"
    if ratio:
        core = (
            f"IF({r}=0,{_verdict(_T_REAL_ZERO, met)},"
            f"IF({r}<0,{_verdict(_T_NEGATIVE, met)},{core}))"
        )
    return (
        f'=IF({t}="",{_q(_T_NO_TARGET)},'
        f'IF({r}="",{_q(_T_NO_DATA)},'
        f"IF(OR(NOT(ISNUMBER({t})),NOT(ISNUMBER({r}))),{_q(_T_NOT_NUMBER)},"
        f"IF({t}=0,{_verdict(_T_TARGET_ZERO, met)},"
        f"IF({t}<0,{_verdict(_T_NEGATIVE, met)},"
        f"{core})))))"
    )


def _figure(value: object) -> float | str | None:
    """A cell value as the formulas see it: a number (float), a text, or None (empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def capaian_result(polarity: Polarity, lower_formula: LowerFormula, target: object,
                   realisasi: object, cap: CapPolicy | None = None) -> float | str:
    """What :func:`capaian_formula` computes for these cell values, step by step in the
    same floating-point operations, so a viewer that does not recalculate shows it."""
    t, r = _figure(target), _figure(realisasi)
    if t is None:
        return _T_NO_TARGET
    if r is None:
        return _T_NO_DATA
    if isinstance(t, str) or isinstance(r, str):
        return _T_NOT_NUMBER
    higher = Polarity(polarity) is Polarity.HIGHER
    ratio = not higher and LowerFormula(lower_formula) is LowerFormula.RATIO
    met = r >= t if higher else r <= t

    def verdict(label: str) -> str:
        return f"{label} {_T_MET if met else _T_NOT_MET}"

    if t == 0:
        return verdict(_T_TARGET_ZERO)
    if t < 0:
        return verdict(_T_NEGATIVE)
    if ratio and r == 0:
        return verdict(_T_REAL_ZERO)
    if ratio and r < 0:
        return verdict(_T_NEGATIVE)
    if higher:
        core = r / t * 100
    elif ratio:
        core = t / r * 100
    else:
        core = (2 * t - r) / t * 100
    if cap is not None and core > float(cap.above):
        return float(cap.score)
    return core


@functools.lru_cache(maxsize=32)
def _ordered_bands(bands: tuple[RatingBand, ...]) -> tuple[RatingBand, ...]:
    """The bands from the highest minimum down (sorted once per set of bands)."""
    return tuple(sorted(bands, key=lambda b: b.minimum, reverse=True))


def kategori_result(capaian_value: object, bands: Sequence[RatingBand]) -> str:
    """What :func:`kategori_formula` computes for a capaian cell's value."""
    if not isinstance(capaian_value, (int, float)) or isinstance(capaian_value, bool):
        return _NO_KATEGORI
    ordered = _ordered_bands(tuple(bands))
    for band in ordered[:-1]:
        if not band.minimum.is_infinite() and capaian_value >= float(band.minimum):
            return band.label
    return ordered[-1].label


def kategori_formula(capaian_ref: str, bands: Sequence[RatingBand]) -> str:
    """Nested IF rating the capaian cell with the bands of :func:`reports.measure.rate`.

    A capaian cell holding text (no percentage) gives "-".
    """
    ordered = _ordered_bands(tuple(bands))
    expr = _q(ordered[-1].label)
    for band in reversed(ordered[:-1]):
        if band.minimum.is_infinite():
            continue
        expr = f"IF({capaian_ref}>={_num(band.minimum)},{_q(band.label)},{expr})"
    return f"=IF(ISNUMBER({capaian_ref}),{expr},{_q(_NO_KATEGORI)})"


# ====================================================================== styles

_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_TOP_LEFT = Alignment(horizontal="left", vertical="top", wrap_text=True)
_TOP_CENTER = Alignment(horizontal="center", vertical="top", wrap_text=True)
_TOP_RIGHT = Alignment(horizontal="right", vertical="top", wrap_text=True)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _style(
    name: str,
    *,
    font: Font | None = None,
    alignment: Alignment = _TOP_LEFT,
    border: Border | None = _BORDER,
    fill: str | None = None,
    number_format: str = "General",
) -> NamedStyle:
    style = NamedStyle(name=name)
    style.font = font or Font(name="Calibri", size=10)
    style.alignment = alignment
    if border is not None:
        style.border = border
    if fill:
        style.fill = PatternFill("solid", start_color=fill, end_color=fill)
    style.number_format = number_format
    return style


def _register_styles(wb: Workbook) -> dict[str, StyleArray]:
    """Register the named styles once; return each one's style array for fast reuse."""
    bold = Font(name="Calibri", size=10, bold=True)
    arrays: dict[str, StyleArray] = {}
    for style in (
        _style("sk_title", font=Font(name="Calibri", size=14, bold=True), alignment=_CENTER,
               border=None),
        _style("sk_subtitle", font=Font(name="Calibri", size=11, bold=True),
               alignment=_CENTER, border=None),
        _style("sk_plain", border=None, alignment=Alignment(vertical="top")),
        _style("sk_info", font=Font(name="Calibri", size=10), alignment=_CENTER,
               border=None),
        _style("sk_banner", font=Font(name="Calibri", size=12, bold=True, color="FFFFFF"),
               alignment=_CENTER, border=None, fill="C00000"),
        _style("sk_head", font=bold, alignment=_CENTER, fill="D9E1F2"),
        _style("sk_colnum", font=Font(name="Calibri", size=9, italic=True),
               alignment=_CENTER, fill="EDF1F9"),
        _style("sk_group", font=bold, fill="F2F2F2"),
        _style("sk_text", alignment=_TOP_LEFT),
        _style("sk_center", alignment=_TOP_CENTER),
        _style("sk_int", alignment=_TOP_RIGHT, number_format="#,##0"),
        _style("sk_dec", alignment=_TOP_RIGHT, number_format="#,##0.00"),
        _style("sk_cap", font=bold, alignment=_TOP_RIGHT, number_format="#,##0.00"),
        _style("sk_code", font=Font(name="Calibri", size=9, color="808080"),
               alignment=_TOP_LEFT),
        _style("sk_date", alignment=_TOP_CENTER, number_format="dd/mm/yyyy hh:mm"),
        _style("sk_late", font=Font(name="Calibri", size=10, color="9C0006"),
               alignment=_TOP_LEFT, fill="FFC7CE"),
        _style("sk_note", font=Font(name="Calibri", size=9, italic=True), border=None,
               alignment=Alignment(horizontal="left", vertical="top", wrap_text=True)),
        _style("sk_sig", border=None, alignment=_CENTER),
        _style("sk_sig_name", font=Font(name="Calibri", size=10, bold=True,
                                        underline="single"),
               border=None, alignment=_CENTER),
    ):
        wb.add_named_style(style)
        arrays[style.name] = style.as_tuple()
    return arrays


# ====================================================================== helpers


def safe_sheet_title(name: str, taken: Collection[str]) -> str:
    """A valid, unique (case-insensitive) sheet title of at most 31 characters.

    Drops the characters Excel forbids (``[]:*?/\\``), cuts at a word boundary and
    appends " (2)", " (3)" ... when the name is taken.
    """
    cleaned = re.sub(r"[\[\]:*?/\\]", " ", name)
    cleaned = " ".join(cleaned.split()).strip("'") or "Bidang"
    taken_lower = {t.lower() for t in taken}

    def cut(text: str, limit: int) -> str:
        if len(text) <= limit:
            return text
        head = text[:limit]
        if " " in head and not text[limit].isspace():
            head = head.rsplit(" ", 1)[0]
        return head.rstrip(" '")

    candidate = cut(cleaned, 31)
    number = 2
    while candidate.lower() in taken_lower:
        suffix = f" ({number})"
        candidate = cut(cleaned, 31 - len(suffix)) + suffix
        number += 1
    return candidate


def _cell_value(value: Decimal | str | None) -> int | float | str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    return value


def _shown_width(value: object) -> int:
    """How many characters a figure takes with the sheet's number formats."""
    value = _cell_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return len(str(value or ""))
    return len(f"{value:,.0f}" if isinstance(value, int) else f"{value:,.2f}")


def _number_style(value: object) -> str:
    if isinstance(value, int):
        return "sk_int"
    if isinstance(value, float):
        return "sk_dec"
    return "sk_center"


def _estimate_lines(text: str, width: float) -> int:
    if not text:
        return 1
    per_line = max(1.0, width * 1.15)
    lines = 0
    for paragraph in text.split("\n"):
        lines += max(1, -(-len(paragraph) // int(per_line)))
    return lines


def _row_height(texts: Iterable[tuple[str, float]]) -> float:
    lines = max((_estimate_lines(t, w) for t, w in texts), default=1)
    return max(1, min(lines, 30)) * _LINE_HEIGHT_PT + 2


def _local_naive(moment: datetime | None, zone: str = _TZ_NAME) -> datetime | None:
    """Excel has no time zones: show aware datetimes in office time (``zone``)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


_STYLE_ARRAYS: dict[int, dict[str, StyleArray]] = {}
#: The computed result of each formula cell, per workbook: {sheet: {"H9": value}}.
_RESULTS: dict[int, dict[str, dict[str, object]]] = {}
_NO_RESULT = object()


class _Error(str):
    """An Excel error value (``#N/A``) as a formula's result."""


def _put(ws: Worksheet, row: int, column: int, value: object, style: str, *,
         formula: bool = False, result: object = _NO_RESULT) -> None:
    """Write a value with one of the registered named styles.

    Equivalent to ``cell.style = style`` but copies the style array computed once at
    registration instead of looking the named style up for each of 100,000+ cells.
    A ``str`` is stored as text even when it starts with "=" (names, notes and text
    values come from people: :mod:`reports.cells`); only the builder's own formulas
    pass ``formula=True``.
    """
    arrays = _STYLE_ARRAYS.get(id(ws.parent))
    if arrays is not None and (row, column) not in ws._cells:  # noqa: SLF001
        # a new cell made at once with its value and style: what ws.cell() and the
        # setters below do, without their look-ups (100,000+ cells)
        if formula and not value.startswith("="):
            raise ValueError(f"not a formula: {value!r}")
        cell = Cell(ws, row=row, column=column, value=value,
                    style_array=copy(arrays[style]))
        if not formula and isinstance(value, str) and cell.data_type == "f":
            cell.data_type = "s"  # text from people: never a formula (reports.cells)
        ws._add_cell(cell)  # noqa: SLF001
    else:
        cell = (formula_cell(ws, row, column, value) if formula
                else text_cell(ws, row, column, value))
        if arrays is None:
            cell.style = style
        else:
            cell._style = copy(arrays[style])  # noqa: SLF001 - same as the public setter
    if formula and result is not _NO_RESULT:
        _RESULTS.setdefault(id(ws.parent), {}).setdefault(ws.title, {})[cell.coordinate] = result


def _merged_line(ws: Worksheet, row: int, text: str, style: str, last_col: int,
                 height: float | None = None, first_col: int = 1) -> None:
    _put(ws, row, first_col, text, style)
    if last_col > first_col:
        ws.merge_cells(start_row=row, start_column=first_col, end_row=row, end_column=last_col)
    if height:
        ws.row_dimensions[row].height = height


# ====================================================================== builder


@dataclass
class _Placed:
    """Where a row of the office sheet landed, for the bidang sheets and the chart."""

    row: IndicatorRow
    sheet_row: int


class _WorkbookBuilder:
    def __init__(self, data: DocumentData) -> None:
        self.data = data
        self.wb = Workbook()
        self.styles = _register_styles(self.wb)
        _STYLE_ARRAYS[id(self.wb)] = self.styles
        self.wb.calculation.fullCalcOnLoad = True
        self.placed: list[_Placed] = []
        # office-sheet row -> (target, realisation, capaian, kategori, note) as shown
        self.shown: dict[int, tuple[object, object, object, str, str | None]] = {}
        self.analysis: dict[int, str] = {}  # office-sheet row -> its Analisis text
        self.bidang_ranges: list[tuple[str, int, int]] = []  # bidang, first, last row
        self._widths: dict[int, float] | None = None

    # ------------------------------------------------------------ shared parts

    def _title_block(self, ws: Worksheet, lines: Sequence[str], last_col: int) -> int:
        """Title lines, letter number, example banner. Returns the next free row."""
        row = 1
        styles = ("sk_title", "sk_subtitle", "sk_subtitle", "sk_subtitle")
        for index, text in enumerate(lines):
            _merged_line(ws, row, text, styles[min(index, 3)], last_col,
                         20 if index == 0 else 16)
            row += 1
        data = self.data
        if data.letter_number or data.letter_date:
            parts = []
            if data.letter_number:
                parts.append(f"Nomor: {data.letter_number}")
            if data.letter_date:
                parts.append(f"Tanggal: {format_date(data.letter_date)}")
            _merged_line(ws, row, "    ".join(parts), "sk_info", last_col, 15)
            row += 1
        if data.example_data:
            _merged_line(ws, row, "DATA CONTOH - BUKAN DATA RESMI", "sk_banner", last_col, 20)
            row += 1
        return row + 1  # one blank row before the table

    def _titles(self) -> list[str]:
        """The column headers, the period in the figures' ("Target TW III 2024",
        "Realisasi s.d. TW III 2024"), as in the PDF."""
        data = self.data
        titles = [title for title, _ in COLUMNS]
        target, realisasi = data.column_period(cumulative=data.split)
        titles[_COL_TARGET - 1], titles[_COL_REAL - 1] = target, realisasi
        if data.split:
            titles[_COL_CAP - 1] = f"Capaian s.d. {data.quarter_short} (%)"
        return titles

    def _table_header(self, ws: Worksheet, row: int, with_code: bool) -> int:
        q = self.data.quarter_short
        split = with_code and self.data.split  # the quarter's own columns: office sheet
        for col, title in enumerate(self._titles(), start=1):
            _put(ws, row, col, title, "sk_head")
            _put(ws, row + 1, col, f"({col})", "sk_colnum")
        if with_code:
            _put(ws, row, _CODE_COL, CODE_HEADER, "sk_head")
            _put(ws, row + 1, _CODE_COL, "", "sk_colnum")
        if split:
            period = [*self.data.column_period(), f"Capaian {q} (%)"]
            shown = [max((_shown_width(getattr(r, a)) for r in self.data.rows), default=0)
                     for a in ("period_target", "period_realisasi")] + [0]
            for col, (title, width, need) in enumerate(zip(period, _PERIOD_WIDTHS, shown),
                                                       start=_PERIOD_COL):
                _put(ws, row, col, title, "sk_head")
                _put(ws, row + 1, col, f"({col - 1})", "sk_colnum")
                ws.column_dimensions[get_column_letter(col)].width = max(width, need + 3.0)
        ws.row_dimensions[row].height = 30
        return row + 2

    def _set_columns(self, ws: Worksheet, with_code: bool) -> None:
        """The column widths: the Satuan and figure columns wide enough for their
        longest word and figure (a wrapped cell never splits "perusahaan", a figure
        never shows as "####")."""
        widths = self._fitted_widths()
        for col, (_, width) in enumerate(COLUMNS, start=1):
            ws.column_dimensions[get_column_letter(col)].width = widths.get(col, width)
        if with_code:
            ws.column_dimensions[get_column_letter(_CODE_COL)].width = CODE_WIDTH

    def _fitted_widths(self) -> dict[int, float]:
        if self._widths is None:  # the same for every sheet: measured once
            self._widths = self._measure_widths()
        return self._widths

    def _measure_widths(self) -> dict[int, float]:
        rows = self.data.rows
        units = max((len(word) for row in rows for word in row.unit.split()), default=0)
        widths = {5: max(COLUMNS[4][1], units + 2.0)}
        for col, attribute in ((_COL_TARGET, "target"), (_COL_REAL, "realisasi")):
            shown = max((_shown_width(getattr(row, attribute)) for row in rows), default=0)
            widths[col] = max(COLUMNS[col - 1][1], shown + 3.0)
        return widths

    def _print_setup(self, ws: Worksheet, header_row: int, last_row: int,
                     last_col_letter: str = _LAST_COL) -> None:
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.page_margins.left = ws.page_margins.right = 0.4
        # the page header (the red "DATA CONTOH") sits 0.3 in from the edge, the sheet
        # starts 0.85 in down: the header never overlaps the title
        ws.page_margins.top, ws.page_margins.header = 0.85, 0.3
        ws.page_margins.bottom, ws.page_margins.footer = 0.7, 0.3
        ws.print_title_rows = f"{header_row}:{header_row + 1}"
        ws.print_area = f"A1:{last_col_letter}{max(last_row, header_row + 1)}"
        ws.oddFooter.center.text = "Halaman &P dari &N"
        ws.oddFooter.right.text = f"{self.data.period_label} - versi {self.data.version}"
        if self.data.example_data:
            ws.oddHeader.center.text = "DATA CONTOH - BUKAN DATA RESMI"
            ws.oddHeader.center.color = "C00000"

    def _legend(self, ws: Worksheet, row: int) -> int:
        data = self.data
        lines = [
            "Catatan:",
            "Capaian indikator semakin tinggi semakin baik = Realisasi / Target x 100%; "
            "semakin rendah semakin baik = (2 x Target - Realisasi) / Target x 100% "
            "atau Target / Realisasi x 100% (sesuai formulasi indikator).",
            "Kategori: "
            + "; ".join(self._band_texts())
            + ". Capaian tanpa persentase (belum ada data, target 0, indikator teks) "
            "tidak diberi kategori (\"-\").",
        ]
        if data.cap is not None:
            lines.append(
                f"Capaian di atas {format_percent(data.cap.above, None)} dinilai "
                f"{format_percent(data.cap.score, None)}; kolom Capaian memuat nilai "
                "tersebut."
            )
        lines.append(
            "Angka ditampilkan dengan pemisah ribuan/desimal sesuai pengaturan regional "
            "perangkat (Indonesia: 1.234,56). Capaian dan Kategori dihitung ulang otomatis "
            "bila Target atau Realisasi diubah; ubah angka hanya di kolom Target, "
            "Realisasi dan Keterangan, jangan ubah kolom Kode."
        )
        if data.split:
            lines.append(
                "Kolom Target, Realisasi dan Capaian triwulan itu saja (di sebelah kanan "
                "kolom Kode) hanya keterangan dan tidak dibaca bila workbook dikirim "
                "kembali: ubah angka di kolom \"s.d.\"."
            )
        for text in lines:
            _merged_line(ws, row, text, "sk_note", len(COLUMNS),
                         _row_height([(text, 185)]) - 1)
            row += 1
        return row

    def _band_texts(self) -> list[str]:
        ordered = sorted(self.data.bands, key=lambda b: b.minimum, reverse=True)
        texts = []
        for band in ordered[:-1]:
            texts.append(f"{band.label} >= {format_percent(band.minimum, None)}")
        if ordered:
            last = ordered[-1]
            if len(ordered) > 1:
                texts.append(f"{last.label} < {format_percent(ordered[-2].minimum, None)}")
            else:
                texts.append(last.label)
        return texts

    # ------------------------------------------------------------ office sheet

    def office_sheet(self) -> None:
        data = self.data
        ws = self.wb.active
        ws.title = OFFICE_SHEET
        self._set_columns(ws, with_code=True)
        header = self._title_block(
            ws,
            [data.short_title.upper(), data.office_line.upper(), data.period_label.upper()],
            len(COLUMNS),
        )
        row = self._table_header(ws, header, with_code=True)
        first_data = row
        ws.freeze_panes = ws.cell(row=first_data, column=1)
        cap = data.cap
        bands = data.bands
        number = 0
        for bidang, rows in data.bidang_groups():
            _merged_line(ws, row, bidang, "sk_group", len(COLUMNS), 16)
            _put(ws, row, _CODE_COL, None, "sk_code")
            row += 1
            start = row
            for item in rows:
                number += 1
                self._indicator_row(ws, row, number, item, cap, bands, code=True)
                self.placed.append(_Placed(item, row))
                row += 1
            self.bidang_ranges.append((bidang, start, row - 1))
        last_table_row = row - 1
        row = self._legend(ws, row + 1)
        row = self._signature_block(ws, row + 1)
        self._print_setup(ws, header, row, get_column_letter(_PERIOD_COL + 2)
                          if data.split else _LAST_COL)
        ws.sheet_view.zoomScale = 90
        self.office_first_row = first_data
        self.office_last_row = last_table_row

    def _indicator_row(self, ws: Worksheet, row: int, number: int, item: IndicatorRow,
                       cap: CapPolicy | None, bands: Sequence[RatingBand], *,
                       code: bool) -> None:
        target = _cell_value(item.target)
        real = _cell_value(item.realisasi)
        evidence = "\n".join(short_file_name(n, _EVIDENCE_CHARS) for n in item.evidence)
        _put(ws, row, 1, number, "sk_center")
        _put(ws, row, 2, item.sasaran, "sk_text")
        _put(ws, row, 3, item.name, "sk_text")
        _put(ws, row, 4, item.definition, "sk_text")
        _put(ws, row, 5, item.unit, "sk_center")
        _put(ws, row, _COL_TARGET, target, _number_style(target))
        _put(ws, row, _COL_REAL, real, _number_style(real))
        result = None
        if ValueType(item.value_type) is ValueType.TEXT:
            result = measure_row(item, self.data)
            capaian, kategori = capaian_label(result), result.kategori or _NO_KATEGORI
            _put(ws, row, _COL_CAP, capaian, "sk_cap")
            _put(ws, row, _COL_KAT, kategori, "sk_center")
        else:
            t_ref, r_ref = f"F{row}", f"G{row}"
            capaian = capaian_result(item.polarity, item.lower_formula, target, real, cap)
            kategori = kategori_result(capaian, bands)
            _put(ws, row, _COL_CAP,
                 capaian_formula(item.polarity, item.lower_formula, t_ref, r_ref, cap),
                 "sk_cap", formula=True, result=capaian)
            _put(ws, row, _COL_KAT, kategori_formula(f"H{row}", bands), "sk_center",
                 formula=True, result=kategori)
        self.shown[row] = (target, real, capaian, kategori, item.note or None)
        analysis = analysis_text(item, result)
        self.analysis[row] = analysis
        _put(ws, row, _COL_NOTE, item.note or None, "sk_text")
        _put(ws, row, _COL_ANALYSIS, analysis or None, "sk_text")
        _put(ws, row, _COL_EVIDENCE, evidence or None, "sk_text")
        if code:
            _put(ws, row, _CODE_COL, item.code, "sk_code")
        if code and self.data.split:
            self._period_cells(ws, row, item, cap)
        ws.row_dimensions[row].height = _row_height(
            [(item.sasaran, 24), (item.name, 30), (item.definition, 34),
             (item.note, 22), (analysis, 30), (evidence, 18)]
        )

    def _period_cells(self, ws: Worksheet, row: int, item: IndicatorRow,
                      cap: CapPolicy | None) -> None:
        """The quarter's own target, realisation and capaian (a formula) in N-P."""
        t_col, r_col, c_col = _PERIOD_COL, _PERIOD_COL + 1, _PERIOD_COL + 2
        if not item.aggregation:
            for col in (t_col, r_col, c_col):
                _put(ws, row, col, "-", "sk_center")
            return
        target, real = _cell_value(item.period_target), _cell_value(item.period_realisasi)
        _put(ws, row, t_col, target, _number_style(target))
        _put(ws, row, r_col, real, _number_style(real))
        t_ref, r_ref = f"{get_column_letter(t_col)}{row}", f"{get_column_letter(r_col)}{row}"
        _put(ws, row, c_col,
             capaian_formula(item.polarity, item.lower_formula, t_ref, r_ref, cap),
             "sk_cap", formula=True,
             result=capaian_result(item.polarity, item.lower_formula, target, real, cap))

    def _signature_block(self, ws: Worksheet, row: int) -> int:
        """Place and date, (acting) title, room to sign, name, rank, NIP: columns I:K."""
        sig = self.data.signatory
        if sig is None:
            return row
        first, last = _COL_KAT, len(COLUMNS)
        when = self.data.signature_date()
        place_date = (f"{sig.place}, {format_date(when)}" if when
                      else f"{sig.place}, ..................... {self.data.year}")
        lines: list[tuple[str, str, float]] = [
            (place_date, "sk_sig", 15),
            (sig.full_title, "sk_sig", _row_height([(sig.full_title, 50)])),
            ("", "sk_sig", 15), ("", "sk_sig", 15), ("", "sk_sig", 15), ("", "sk_sig", 15),
            (sig.name, "sk_sig_name", 15),
            (sig.rank, "sk_sig", 15),
            (f"NIP. {sig.nip}", "sk_sig", 15),
        ]
        for text, style, height in lines:
            _merged_line(ws, row, text, style, last, height, first_col=first)
            row += 1
        return row

    # ------------------------------------------------------------ bidang sheets

    def bidang_sheets(self) -> None:
        data = self.data
        taken = list(RESERVED_SHEETS)
        office = quote_sheetname(OFFICE_SHEET)
        by_bidang: dict[str, list[_Placed]] = {}
        for placed in self.placed:
            by_bidang.setdefault(placed.row.bidang, []).append(placed)
        self.bidang_titles: dict[str, str] = {}
        for bidang, placed_rows in by_bidang.items():
            title = safe_sheet_title(bidang, taken)
            taken.append(title)
            self.bidang_titles[bidang] = title
            ws = self.wb.create_sheet(title)
            self._set_columns(ws, with_code=False)
            header = self._title_block(
                ws,
                [data.short_title.upper(), bidang.upper(), data.office_line.upper(),
                 data.period_label.upper()],
                len(COLUMNS),
            )
            _merged_line(
                ws, header - 1,
                f"Angka pada lembar ini diambil dari lembar '{OFFICE_SHEET}'; "
                "ubah Target/Realisasi di lembar tersebut.",
                "sk_note", len(COLUMNS),
            )
            row = self._table_header(ws, header, with_code=False)
            ws.freeze_panes = ws.cell(row=row, column=1)
            for number, placed in enumerate(placed_rows, start=1):
                item, src = placed.row, placed.sheet_row
                evidence = "\n".join(short_file_name(n, _EVIDENCE_CHARS)
                                      for n in item.evidence)
                _put(ws, row, 1, number, "sk_center")
                _put(ws, row, 2, item.sasaran, "sk_text")
                _put(ws, row, 3, item.name, "sk_text")
                _put(ws, row, 4, item.definition, "sk_text")
                _put(ws, row, 5, item.unit, "sk_center")
                shown = self.shown[src]
                for index, (col, style) in enumerate((
                        (_COL_TARGET, _number_style(_cell_value(item.target))),
                        (_COL_REAL, _number_style(_cell_value(item.realisasi))),
                        (_COL_CAP, "sk_cap"), (_COL_KAT, "sk_center"),
                        (_COL_NOTE, "sk_text"))):
                    ref = f"{office}!{get_column_letter(col)}{src}"
                    value = shown[index]
                    _put(ws, row, col, f'=IF({ref}="","",{ref})', style, formula=True,
                         result="" if value is None or value == "" else value)
                analysis = self.analysis[src]
                _put(ws, row, _COL_ANALYSIS, analysis or None, "sk_text")
                _put(ws, row, _COL_EVIDENCE, evidence or None, "sk_text")
                ws.row_dimensions[row].height = _row_height(
                    [(item.sasaran, 24), (item.name, 30), (item.definition, 34),
                     (item.note, 22), (analysis, 30), (evidence, 18)]
                )
                row += 1
            self._print_setup(ws, header, row - 1)

    # ------------------------------------------------------------ summary sheet

    def summary_sheet(self) -> None:
        """RINGKASAN: what page 1 of the PDF shows, as live formulas on the office sheet
        (each with its computed result stored for viewers that do not recalculate)."""
        data = self.data
        ws = self.wb.create_sheet(SUMMARY_SHEET, 1)
        for letter, width in zip("ABCD", (52, 16, 16, 44)):
            ws.column_dimensions[letter].width = width
        office = quote_sheetname(OFFICE_SHEET)
        row = self._title_block(ws, ["RINGKASAN " + data.short_title.upper(),
                                     data.office_line.upper(), data.period_label.upper()], 4)
        first, last = self.office_first_row, self.office_last_row
        have_rows = bool(self.placed)
        cap_range = f"{office}!H{first}:H{last}"
        kat_range = f"{office}!I{first}:I{last}"
        values = [self.shown[r][2] for r in range(first, last + 1) if r in self.shown]
        kategori = [self.shown[r][3] for r in range(first, last + 1) if r in self.shown]
        reached = _count_reached(values)
        numbers = [v for v in values if isinstance(v, float)]
        not_reached = (len(numbers) - sum(1 for v in numbers if v >= 100)
                       + sum(1 for v in values if isinstance(v, str)
                             and (v.endswith(f" {_T_NOT_MET}") or v == "Belum tercapai")))
        no_data = sum(1 for v in values if v in (_T_NO_DATA, _T_NO_TARGET, _T_NOT_NUMBER))
        facts: list[tuple[str, object, str | None, str]] = [
            ("Jumlah indikator", len(self.placed), None, "sk_int"),
            ("Mencapai target", reached, _reached_formula(cap_range), "sk_int"),
            ("Belum mencapai target", not_reached,
             f"=COUNT({cap_range})-COUNTIF({cap_range},\">=100\")"
             f"+COUNTIF({cap_range},\"*{_T_NOT_MET}\")"
             f"+COUNTIF({cap_range},\"Belum tercapai\")", "sk_int"),
            ("Belum ada data/target", no_data,
             f"=COUNTIF({cap_range},{_q(_T_NO_DATA)})+COUNTIF({cap_range},{_q(_T_NO_TARGET)})"
             f"+COUNTIF({cap_range},{_q(_T_NOT_NUMBER)})", "sk_int"),
            ("Rata-rata capaian (%)", _average(numbers) if numbers else "-",
             f"=IFERROR(AVERAGE({cap_range}),\"-\")", "sk_cap"),
        ]
        for label, value, formula, style in facts:
            _put(ws, row, 1, label, "sk_text")
            if formula is None or not have_rows:
                _put(ws, row, 2, value if have_rows else 0, style)
            else:
                _put(ws, row, 2, formula, style, formula=True, result=value)
            row += 1

        row += 1
        _merged_line(ws, row, "Jumlah Indikator per Kategori", "sk_subtitle", 4, 18)
        row += 1
        for col, title in enumerate(("Kategori", "Jumlah"), start=1):
            _put(ws, row, col, title, "sk_head")
        row += 1
        ordered = sorted(data.bands, key=lambda b: b.minimum, reverse=True)
        for band in ordered:
            label = band.label
            _put(ws, row, 1, label, "sk_text")
            count = sum(1 for k in kategori if k == label)
            if have_rows:
                criterion = _q(re.sub(r"([*?~])", r"~\1", label))
                _put(ws, row, 2, f"=COUNTIF({kat_range},{criterion})", "sk_int", formula=True,
                     result=count)
            else:
                _put(ws, row, 2, 0, "sk_int")
            row += 1
        _put(ws, row, 1, "Tanpa kategori (belum ada data/target, target 0, indikator teks)",
             "sk_text")
        if have_rows:
            _put(ws, row, 2, f"=COUNTIF({kat_range},{_q(_NO_KATEGORI)})", "sk_int",
                 formula=True, result=sum(1 for k in kategori if k == _NO_KATEGORI))
        else:
            _put(ws, row, 2, 0, "sk_int")
        row += 2

        _merged_line(ws, row, "Capaian per Bidang", "sk_subtitle", 4, 18)
        row += 1
        for col, title in enumerate(("Bidang", "Indikator", "Tercapai",
                                     "Rata-rata capaian (%)"), start=1):
            _put(ws, row, col, title, "sk_head")
        row += 1
        for bidang, b_first, b_last in self.bidang_ranges:
            rng = f"{office}!H{b_first}:H{b_last}"
            shown = [self.shown[r][2] for r in range(b_first, b_last + 1)]
            scores = [v for v in shown if isinstance(v, float)]
            _put(ws, row, 1, bidang, "sk_text")
            _put(ws, row, 2, b_last - b_first + 1, "sk_int")
            _put(ws, row, 3, _reached_formula(rng), "sk_int", formula=True,
                 result=_count_reached(shown))
            _put(ws, row, 4, f"=IFERROR(AVERAGE({rng}),\"-\")", "sk_cap", formula=True,
                 result=_average(scores) if scores else "-")
            ws.row_dimensions[row].height = _row_height([(bidang, 52)])
            row += 1
        row += 1

        missed = [(placed.row, self.shown[placed.sheet_row]) for placed in self.placed
                  if _is_missed(self.shown[placed.sheet_row][2])]
        _merged_line(ws, row, f"Indikator Belum Mencapai Target ({len(missed)})",
                     "sk_subtitle", 4, 18)
        row += 1
        for col, title in enumerate(("Indikator (Bidang)", "Capaian (%)", "Kategori",
                                     "Faktor penghambat"), start=1):
            _put(ws, row, col, title, "sk_head")
        row += 1
        missed.sort(key=lambda m: (not isinstance(m[1][2], float),
                                   m[1][2] if isinstance(m[1][2], float) else 0))
        for item, shown in missed:
            name = f"{item.name} ({item.bidang})"
            value = shown[2]
            _put(ws, row, 1, name, "sk_text")
            _put(ws, row, 2, value, "sk_cap" if isinstance(value, float) else "sk_center")
            _put(ws, row, 3, shown[3], "sk_center")
            penghambat = " ".join(item.penghambat.split())
            _put(ws, row, 4, penghambat or "belum diisi", "sk_text")
            ws.row_dimensions[row].height = _row_height([(name, 52), (penghambat, 44)])
            row += 1
        _merged_line(ws, row + 1, "Angka di lembar ini dihitung dari lembar "
                     f"'{OFFICE_SHEET}'; daftar indikator yang belum mencapai target "
                     "disusun saat dokumen dibuat.", "sk_note", 4, 28)
        self._one_page_portrait(ws, f"A1:D{row + 1}")

    def _one_page_portrait(self, ws: Worksheet, area: str) -> None:
        """Print ``area`` fitted to the width of a portrait A4 page."""
        self._one_page(ws, area)
        ws.page_setup.orientation = "portrait"
        ws.page_setup.fitToHeight = 0

    # ------------------------------------------------------------ chart sheet

    def chart_sheet(self) -> None:
        ws = self.wb.create_sheet(CHART_SHEET)
        ws.column_dimensions["A"].width = 48
        for letter in "BCD":
            ws.column_dimensions[letter].width = 18
        _merged_line(ws, 1, "RATA-RATA CAPAIAN PER BIDANG", "sk_title", 4, 20)
        _merged_line(ws, 2, self.data.period_label.upper(), "sk_subtitle", 4, 16)
        headers = ("Bidang", "Rata-rata Capaian (%)", "Target (%)",
                   "Indikator dengan capaian")
        for col, title in enumerate(headers, start=1):
            _put(ws, 4, col, title, "sk_head")
        ws.row_dimensions[4].height = 30  # the wrapped headers
        office = quote_sheetname(OFFICE_SHEET)
        row = 5
        for bidang, first, last in self.bidang_ranges:
            rng = f"{office}!H{first}:H{last}"
            scores = self._scores(first, last)
            _put(ws, row, 1, bidang, "sk_text")
            _put(ws, row, 2, f"=IFERROR(AVERAGE({rng}),NA())", "sk_cap", formula=True,
                 result=_average(scores) if scores else _Error("#N/A"))
            _put(ws, row, 3, 100, "sk_int")
            _put(ws, row, 4, f"=COUNT({rng})&\" dari {last - first + 1}\"", "sk_center",
                 formula=True, result=f"{len(scores)} dari {last - first + 1}")
            row += 1
        last_row = row - 1
        _merged_line(
            ws, row + 1,
            "Rata-rata dihitung dari indikator yang memiliki capaian berupa angka; "
            "#N/A berarti belum ada indikator bidang itu yang dapat dihitung.",
            "sk_note", 4, 28,
        )
        if last_row < 5:
            self._one_page(ws, f"A1:D{row + 1}")
            return
        bars = BarChart()
        bars.type = "col"
        bars.title = f"Rata-rata Capaian per Bidang - {self.data.period_label}"
        bars.y_axis.title = "Capaian (%)"
        bars.y_axis.scaling.min = 0
        bars.y_axis.majorGridlines = None
        bars.y_axis.number_format = "#,##0"
        bars.x_axis.delete = False
        bars.y_axis.delete = False
        bars.add_data(Reference(ws, min_col=2, min_row=4, max_row=last_row), titles_from_data=True)
        bars.set_categories(Reference(ws, min_col=1, min_row=5, max_row=last_row))
        line = LineChart()
        line.add_data(Reference(ws, min_col=3, min_row=4, max_row=last_row), titles_from_data=True)
        line.series[0].graphicalProperties.line.solidFill = "C00000"
        line.series[0].graphicalProperties.line.dashStyle = "dash"
        line.series[0].smooth = False
        bars += line
        bars.legend.position = "b"
        bars.height = 10
        bars.width = 25  # cm: the sheet prints on one landscape page
        ws.add_chart(bars, f"A{row + 3}")
        self._one_page(ws, f"A1:F{row + 3 + 22}")

    def _one_page(self, ws: Worksheet, area: str) -> None:
        """Print ``area`` on one landscape A4 page."""
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = ws.page_setup.fitToHeight = 1
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.page_margins.left = ws.page_margins.right = 0.4
        ws.page_margins.top, ws.page_margins.header = 0.85, 0.3
        ws.page_margins.bottom, ws.page_margins.footer = 0.7, 0.3
        ws.print_area = area
        ws.oddFooter.right.text = f"{self.data.period_label} - versi {self.data.version}"
        if self.data.example_data:
            ws.oddHeader.center.text = "DATA CONTOH - BUKAN DATA RESMI"
            ws.oddHeader.center.color = "C00000"

    def _scores(self, first: int, last: int) -> list[float]:
        """The numeric capaian of the office sheet's rows ``first``..``last``."""
        return [shown[2] for r in range(first, last + 1)
                if (shown := self.shown.get(r)) is not None
                and isinstance(shown[2], float)]

    # ------------------------------------------------------------ SOP compliance

    def steps_sheet(self) -> None:
        data = self.data
        ws = self.wb.create_sheet(STEPS_SHEET)
        columns = (("No", 5), ("Langkah", 40), ("Pelaksana", 22), ("Nama", 24),
                   ("Mulai", 17), ("Selesai", 17), ("Standar Waktu", 14),
                   ("Waktu Aktual (kerja)", 18), ("Menit Kerja", 11), ("Status", 16))
        for col, (_, width) in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(col)].width = width
        last_col = len(columns)
        comp = data.compliance
        lines = ["KEPATUHAN SOP PENGUMPULAN DAN PENGUKURAN DATA KINERJA",
                 data.office_line.upper(), data.period_label.upper()]
        if comp is not None and comp.as_of is not None:
            when = _local_naive(comp.as_of, data.timezone)
            lines.append(f"Keadaan per {format_date(when.date())} {when:%H.%M} {data.zone_label}"
                         + (f", {comp.as_of_note}" if comp.as_of_note else ""))
        header = self._title_block(ws, lines, last_col)
        for col, (title, _) in enumerate(columns, start=1):
            _put(ws, header, col, title, "sk_head")
            _put(ws, header + 1, col, f"({col})", "sk_colnum")
        ws.row_dimensions[header].height = 30
        row = header + 2
        ws.freeze_panes = ws.cell(row=row, column=1)
        for step in data.steps:
            self._step_row(ws, row, step)
            row += 1
        if not data.steps:
            _merged_line(ws, row, "Belum ada catatan waktu langkah SOP.", "sk_text", last_col)
            row += 1
        if comp is not None:
            late = comp.met is False
            style = "sk_late" if late else "sk_group"
            status = {True: "Memenuhi standar", False: "Melewati standar",
                      None: "Masih berjalan"}[comp.met]
            for col, value in enumerate(
                    ["", "Total siklus", "", "", None, None, comp.standard_text,
                     format_working_minutes(comp.actual_minutes, data.day_minutes),
                     comp.actual_minutes, status],
                    start=1):
                _put(ws, row, col, value, "sk_int" if col == 9 and not late else style)
            row += 1
            _merged_line(
                ws, row + 1,
                f"Total standar waktu SOP (jumlah batas atas langkah 1-11): "
                f"{comp.standard_text}. Total waktu aktual siklus (dari mulai langkah 1 sampai "
                f"selesai penyampaian langkah 11" + ("" if comp.finished else ", sejauh ini")
                + f"): {format_working_minutes(comp.actual_minutes, data.day_minutes)}. "
                f"{comp.verdict}.",
                "sk_note", last_col, 28,
            )
            row += 1
        _merged_line(
            ws, row + 1,
            f"Waktu aktual dihitung dalam jam kerja: 1 hari kerja = {data.day_minutes} menit "
            f"(jam kantor, {data.zone_label}), Senin-Jumat di luar "
            "hari libur nasional dan cuti bersama; "
            "langkah yang dikembalikan dijumlahkan semua putarannya. Baris merah: melewati "
            "standar waktu SOP. Tanda terima OPD adalah waktu OPD penerima, dicatat tanpa "
            "standar dan tidak dihitung sebagai keterlambatan kantor.",
            "sk_note", last_col, 40,
        )
        self._print_setup(ws, header, row + 1, get_column_letter(last_col))

    def _step_row(self, ws: Worksheet, row: int, step: StepTiming) -> None:
        late = step.late
        text_style = "sk_late" if late else "sk_text"
        status = step.status
        values: list[tuple[object, str]] = [
            (step.number, "sk_late" if late else "sk_center"),
            (step.label, text_style),
            (step.role_title, text_style),
            (step.holder, text_style),
            (_local_naive(step.started, self.data.timezone), "sk_date"),
            (_local_naive(step.completed, self.data.timezone), "sk_date"),
            (step.standard_text, text_style),
            (format_working_minutes(step.actual_minutes, self.data.day_minutes), text_style),
            (step.actual_minutes, "sk_late" if late else "sk_int"),
            (status, text_style),
        ]
        for col, (value, style) in enumerate(values, start=1):
            _put(ws, row, col, value, style)
        ws.row_dimensions[row].height = _row_height(
            [(step.label, 40), (step.role_title, 22), (step.holder, 24), (status, 16)]
        )

    # ------------------------------------------------------------ metadata

    def meta_sheet(self) -> None:
        ws = self.wb.create_sheet(META_SHEET)
        headers = ("Kode", "Baris", "Jenis Nilai")
        ws.append(list(headers) + ["", "Kunci", "Nilai"])
        doc_info = [
            ("versi", self.data.version),
            ("judul", self.data.title),
            ("periode", self.data.period_label),
            ("tahun", self.data.year),
            ("kantor", self.data.office_line),
            ("jumlah_indikator", len(self.placed)),
        ]
        for index, placed in enumerate(self.placed):
            item = placed.row
            values: list[object] = [item.code, placed.sheet_row, str(ValueType(item.value_type))]
            if index < len(doc_info):
                values += ["", *doc_info[index]]
            append_text_row(ws, values)
        for index in range(len(self.placed), len(doc_info)):
            append_text_row(ws, [""] * 4 + list(doc_info[index]))
        ws.sheet_state = "hidden"

    def build(self, path: Path) -> Path:
        self.office_sheet()
        self.bidang_sheets()
        self.summary_sheet()
        self.chart_sheet()
        self.steps_sheet()
        self.meta_sheet()
        self.wb.active = 0
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # openpyxl writes the parts uncompressed into memory; store_results adds
            # the formulas' results and compresses each part once, into ``path``
            from openpyxl.writer.excel import ExcelWriter

            raw = io.BytesIO()
            self.wb.properties.modified = datetime.now(timezone.utc).replace(tzinfo=None)
            ExcelWriter(self.wb, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED,
                                                 allowZip64=True)).save()
            store_results(path, _RESULTS.get(id(self.wb), {}), source=raw.getvalue())
        finally:
            _STYLE_ARRAYS.pop(id(self.wb), None)
            _RESULTS.pop(id(self.wb), None)
        return path


def _average(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _reached_formula(rng: str) -> str:
    """How many capaian cells of ``rng`` say the target is met: a percentage of at
    least 100, "... (tercapai)" or "Tercapai" (a text indicator)."""
    return (f"=COUNTIF({rng},\">=100\")+COUNTIF({rng},\"*{_T_MET}\")"
            f"+COUNTIF({rng},\"Tercapai\")")


def _count_reached(values: Iterable[object]) -> int:
    """What :func:`_reached_formula` counts."""
    return sum(1 for v in values
               if (isinstance(v, float) and v >= 100)
               or (isinstance(v, str) and (v.endswith(f" {_T_MET}") or v == "Tercapai")))


def _is_missed(value: object) -> bool:
    """A capaian cell's value that says the target is not met."""
    if isinstance(value, float):
        return value < 100
    return isinstance(value, str) and (value.endswith(f" {_T_NOT_MET}")
                                       or value == "Belum tercapai")


_CELL_RE = re.compile(r'<c r="([A-Z]+[0-9]+)"([^>]*)><f>(.*?)</f><v\s*/?>(?:</v>)?</c>', re.S)


def store_results(path: Path, results: Mapping[str, Mapping[str, object]], *,
                  source: bytes | None = None) -> None:
    """Write the computed result of each formula cell into the saved workbook.

    openpyxl writes a formula with an empty value, so a viewer that does not
    recalculate (a phone's preview, a web viewer) shows nothing. The builder knows
    every result (it computed the capaian itself): this puts it in the ``<v>`` of each
    formula cell of ``results`` ({sheet title: {"H9": value}}), as Excel would store
    it: a number, a text (``t="str"``) or an error (``t="e"``). ``fullCalcOnLoad``
    stays set, so Excel and LibreOffice still recalculate on opening. Keeping
    openpyxl as the one writer (rather than a second library) keeps the reader and
    writer of the workbook the same library.

    ``source``: the workbook as saved (any compression), else the file at ``path``;
    ``path`` is written with every part deflated.
    """
    from xml.sax.saxutils import escape as xml_escape
    from xml.etree import ElementTree

    path = Path(path)
    with zipfile.ZipFile(io.BytesIO(source) if source is not None else path) as saved:
        entries = [(info, saved.read(info.filename)) for info in saved.infolist()]
    for info, _ in entries:
        info.compress_type = zipfile.ZIP_DEFLATED
    files = {info.filename: data for info, data in entries}
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
          "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
          "p": "http://schemas.openxmlformats.org/package/2006/relationships"}
    book = ElementTree.fromstring(files["xl/workbook.xml"])
    rels = ElementTree.fromstring(files["xl/_rels/workbook.xml.rels"])
    targets = {rel.get("Id"): rel.get("Target") for rel in rels.findall("p:Relationship", ns)}
    sheet_files: dict[str, str] = {}
    for sheet in book.findall("m:sheets/m:sheet", ns):
        target = targets.get(sheet.get(f"{{{ns['r']}}}id"), "")
        target = target.lstrip("/")
        sheet_files[sheet.get("name")] = target if target.startswith("xl/") else f"xl/{target}"

    def cell_xml(match: re.Match, values: Mapping[str, object]) -> str:
        ref, attrs, formula = match.group(1), match.group(2), match.group(3)
        if ref not in values:
            return match.group(0)
        value = values[ref]
        attrs = re.sub(r'\s+t="[^"]*"', "", attrs)
        if isinstance(value, _Error):
            return f'<c r="{ref}"{attrs} t="e"><f>{formula}</f><v>{xml_escape(value)}</v></c>'
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f'<c r="{ref}"{attrs}><f>{formula}</f><v>{float(value)!r}</v></c>'
        return (f'<c r="{ref}"{attrs} t="str"><f>{formula}</f>'
                f'<v>{xml_escape(str(value))}</v></c>')

    changed = {}
    for title, values in results.items():
        name = sheet_files.get(title)
        if not name or name not in files or not values:
            continue
        text = files[name].decode("utf-8")
        changed[name] = _CELL_RE.sub(lambda m: cell_xml(m, values), text).encode("utf-8")
    if not changed and source is None:
        return
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as target_zip:
        for info, data in entries:
            target_zip.writestr(info, changed.get(info.filename, data))


def build_workbook(data: DocumentData, path: Path) -> Path:
    """Write the measurement workbook of ``data`` to ``path`` and return the path."""
    return _WorkbookBuilder(data).build(path)


# ====================================================================== reading back


class WorkbookError(ValueError):
    """The file cannot be read as this office's measurement workbook (message in Indonesian)."""


@dataclass(frozen=True)
class RowEdit:
    """The figures of one indicator as found in the returned workbook."""

    target: Decimal | str | None
    realisasi: Decimal | str | None
    note: str


@dataclass(frozen=True)
class RowError:
    """A problem in one cell or row; ``row`` is None when it concerns no single row."""

    sheet: str
    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class WorkbookReadResult:
    """What :func:`read_workbook` found: figures per indicator code, errors, warnings.

    ``warnings`` holds readings the user should confirm (e.g. "1.250" read as one
    thousand two hundred fifty); ``version`` is the document version recorded in the
    ``_meta`` sheet (None if the sheet is missing).
    """

    rows: dict[str, RowEdit] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


_HEADER_SEARCH_ROWS = 40
_EXCEL_ERRORS = {"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NAME?", "#NULL!"}


def _norm_header(value: object) -> str:
    return " ".join(str(value).split()).casefold() if value is not None else ""


def _find_header(ws: Worksheet) -> tuple[int, dict[str, int]]:
    """Row of the table header and the columns of Target, Realisasi, Keterangan, Kode."""
    wanted = {
        "target": "target",
        "realisasi": "realisasi",
        "keterangan": "keterangan",
        "kode": "kode",
        "indikator kinerja": "indikator",
    }
    for row_number, row in enumerate(
            ws.iter_rows(min_row=1, max_row=_HEADER_SEARCH_ROWS, values_only=True), start=1):
        found: dict[str, int] = {}
        for column, value in enumerate(row, start=1):
            header = _norm_header(value)
            # "Target 2024", "Target TW III 2024", "Target s.d. TW III 2024": the first
            # one of the row (the "s.d." figures come before the quarter's own)
            key = wanted.get(header) or next(
                (k for k in ("target", "realisasi") if header.startswith(f"{k} ")), None)
            if key and key not in found:
                found[key] = column
        if "indikator" in found and "target" in found and "realisasi" in found:
            if "kode" not in found:
                raise WorkbookError(
                    f"Kolom '{CODE_HEADER}' tidak ditemukan di lembar '{ws.title}'. "
                    "Gunakan berkas yang dikirim bot dan jangan hapus kolom Kode."
                )
            return row_number, found
    raise WorkbookError(
        f"Judul kolom (Indikator Kinerja, Target, Realisasi) tidak ditemukan di lembar "
        f"'{ws.title}'. Gunakan berkas yang dikirim bot."
    )


def _meta_types(wb: Workbook) -> tuple[dict[str, ValueType], int | None]:
    if META_SHEET not in wb.sheetnames:
        return {}, None
    ws = wb[META_SHEET]
    ws.reset_dimensions()
    types: dict[str, ValueType] = {}
    version: int | None = None
    for values in ws.iter_rows(min_row=2, values_only=True):
        if not values:
            continue
        code = values[0]
        if code not in (None, "") and len(values) > 2:
            try:
                types[str(code).strip()] = ValueType(str(values[2]).strip())
            except ValueError:
                pass
        if len(values) > 5 and values[4] == "versi":
            try:
                version = int(values[5])
            except (TypeError, ValueError):
                version = None
    return types, version


def _shown(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 40 else text[:39] + "…"


class _Reader:
    def __init__(self, sheet: str, value_types: Mapping[str, ValueType]) -> None:
        self.sheet = sheet
        self.value_types = value_types
        self.errors: list[RowError] = []
        self.warnings: list[RowError] = []

    def error(self, row: int | None, column: str, message: str) -> None:
        self.errors.append(RowError(self.sheet, row, column, message))

    def value(self, row: int, column: str, cell_value: object, number_format: str,
              value_type: ValueType) -> tuple[bool, Decimal | str | None]:
        """Parse one Target/Realisasi cell. Returns (ok, value)."""
        where = f"Baris {row}, kolom {column}"
        if cell_value is None or (isinstance(cell_value, str) and not cell_value.strip()):
            return True, None
        if isinstance(cell_value, str) and cell_value.strip() in _EXCEL_ERRORS:
            self.error(row, column, f"{where}: sel berisi galat {cell_value.strip()}")
            return False, None
        if value_type is ValueType.TEXT:
            if isinstance(cell_value, (datetime, date, time)):
                self.error(row, column, f"{where}: '{_shown(cell_value)}' terbaca sebagai "
                                        "tanggal/jam, bukan nilai teks")
                return False, None
            if isinstance(cell_value, float) and cell_value.is_integer():
                cell_value = int(cell_value)
            return True, " ".join(str(cell_value).split())
        if isinstance(cell_value, bool):
            self.error(row, column, f"{where}: '{cell_value}' bukan angka")
            return False, None
        if isinstance(cell_value, (datetime, date, time)):
            self.error(row, column, f"{where}: '{_shown(cell_value)}' terbaca sebagai "
                                    "tanggal/jam, bukan angka. Tulis angkanya, misalnya 85,5")
            return False, None
        if isinstance(cell_value, (int, float, Decimal)):
            try:
                number = Decimal(str(cell_value))
            except InvalidOperation:
                self.error(row, column, f"{where}: '{_shown(cell_value)}' bukan angka")
                return False, None
            if not number.is_finite():
                self.error(row, column, f"{where}: '{_shown(cell_value)}' bukan angka")
                return False, None
            if "%" in (number_format or ""):
                number *= 100  # typed as "85%" in Excel: stored as 0.85
            return True, number
        text = str(cell_value)
        if text.startswith("="):
            self.error(row, column, f"{where}: berisi rumus tanpa hasil; isi dengan angka")
            return False, None
        try:
            parsed = parse_number(text)
        except NumberParseError:
            kind = "persentase" if value_type is ValueType.PERCENT else "angka"
            self.error(row, column, f"{where}: '{_shown(text)}' bukan {kind}")
            return False, None
        if parsed.ambiguous:
            self.warnings.append(RowError(self.sheet, row, column, f"{where}: {parsed.reading}"))
        return True, parsed.value


def read_workbook(
    path: Path,
    expected_codes: Collection[str],
    value_types: Mapping[str, ValueType] | None = None,
) -> WorkbookReadResult:
    """Read target, realisation and Keterangan per indicator from a returned workbook.

    Only the ``Pengukuran Kinerja`` sheet is read (the bidang sheets are formulas on
    it). Rows are matched by the code in the "Kode" column. Problems are collected as
    :class:`RowError` with Indonesian messages ("Baris 7, kolom Realisasi: 'abc' bukan
    angka"): unknown code, duplicate code, a row with figures but no code, an expected
    code missing from the sheet, a non-numeric value in a numeric or percent indicator.
    Figures may be real numbers or Indonesian text ("85,5", "1.250.000"); a cell Excel
    shows as a percentage (0.85 shown as 85%) is read as 85.

    ``value_types`` (code -> :class:`ValueType`) says which indicators are text; by
    default it is taken from the ``_meta`` sheet, and unknown codes count as numeric.
    A row with an error is left out of ``rows``.

    Raises :class:`WorkbookError` (Indonesian message) only when the file is not an
    .xlsx workbook or has no ``Pengukuran Kinerja`` sheet / table header.
    """
    path = Path(path)
    try:
        # read-only: rows are streamed from the zip instead of building every cell
        # (the caller checks the size and cell count first: reports.xlsx_limits)
        wb = load_workbook(path, data_only=True, read_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError,
            TypeError, IndexError, AttributeError) as exc:
        raise WorkbookError(
            "Berkas tidak dapat dibaca sebagai buku kerja Excel (.xlsx). Kirim kembali "
            "berkas .xlsx yang dikirim bot, setelah diisi."
        ) from exc
    try:
        if OFFICE_SHEET not in wb.sheetnames:
            raise WorkbookError(
                f"Lembar '{OFFICE_SHEET}' tidak ditemukan di berkas ini. Gunakan berkas "
                "yang dikirim bot dan jangan ganti nama lembarnya."
            )
        ws = wb[OFFICE_SHEET]
        ws.reset_dimensions()  # rows as they are in the file, whatever <dimension> says
        header_row, cols = _find_header(ws)
        meta_types, version = _meta_types(wb)
        types = dict(meta_types)
        if value_types:
            types.update({k: ValueType(v) for k, v in value_types.items()})
        result = WorkbookReadResult(version=version)
        reader = _Reader(OFFICE_SHEET, types)
        expected = {str(c) for c in expected_codes}
        seen: dict[str, int] = {}
        c_target, c_real, c_code = cols["target"], cols["realisasi"], cols["kode"]
        c_note = cols.get("keterangan")
        start = header_row + 1
        first = next(ws.iter_rows(min_row=start, max_row=start, max_col=1, values_only=True),
                     (None,))
        if _norm_header(first[0] if first else None) == "(1)":
            start += 1
        width = max(c_target, c_real, c_code, c_note or 0)  # no row wider than needed
        for row_number, cells in enumerate(ws.iter_rows(min_row=start, max_col=width),
                                           start=start):
            by_col = {column: cell for column, cell in enumerate(cells, start=1)
                      if cell is not EMPTY_CELL}
            if not by_col:
                continue
            code_cell = by_col.get(c_code)
            target_cell, real_cell = by_col.get(c_target), by_col.get(c_real)
            code_value = code_cell.value if code_cell is not None else None
            code = " ".join(str(code_value).split()) if code_value is not None else ""
            t_raw = target_cell.value if target_cell is not None else None
            r_raw = real_cell.value if real_cell is not None else None
            if not code:
                if any(v not in (None, "") and not (isinstance(v, str) and not v.strip())
                       for v in (t_raw, r_raw)):
                    reader.error(row_number, CODE_HEADER,
                                 f"Baris {row_number}: ada Target/Realisasi tetapi kolom "
                                 f"{CODE_HEADER} kosong; baris ini tidak dapat dicocokkan")
                continue
            if code not in expected:
                reader.error(row_number, CODE_HEADER,
                             f"Baris {row_number}, kolom {CODE_HEADER}: kode '{_shown(code)}' "
                             "tidak dikenal")
                continue
            if code in seen:
                reader.error(row_number, CODE_HEADER,
                             f"Baris {row_number}, kolom {CODE_HEADER}: kode '{_shown(code)}' "
                             f"ganda (sudah ada di baris {seen[code]})")
                continue
            seen[code] = row_number
            value_type = types.get(code, ValueType.NUMERIC)
            ok_t, target = reader.value(
                row_number, "Target", t_raw,
                target_cell.number_format if target_cell is not None else "", value_type)
            ok_r, real = reader.value(
                row_number, "Realisasi", r_raw,
                real_cell.number_format if real_cell is not None else "", value_type)
            note_cell = by_col.get(c_note) if c_note else None
            note_value = note_cell.value if note_cell is not None else None
            note = "" if note_value is None else str(note_value).strip()
            if ok_t and ok_r:
                result.rows[code] = RowEdit(target, real, note)
        for code in sorted(expected - set(seen)):
            reader.error(None, CODE_HEADER,
                         f"Indikator dengan kode '{_shown(code)}' tidak ditemukan di lembar "
                         f"'{OFFICE_SHEET}'")
        result.errors = reader.errors
        result.warnings = reader.warnings
        return result
    finally:
        wb.close()
