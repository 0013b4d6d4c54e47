"""The measurement document as PDF (fpdf2), made to be read in Telegram's viewer on a phone.

Content, top to bottom: title block (title, office, period, letter number and date),
a red "DATA CONTOH" banner for example data, a summary box (indicators, reached,
not reached, no data, average, the three lowest), the indicator table grouped by
bidang, the legend, the "Kepatuhan SOP" table, then the signature block at the bottom
right with, when a verification code is set, a QR code and the code at its left.
Every page repeats a running head and the table header, and ends with "Halaman x dari
y", the version and the verification code.

Design decisions
----------------
* **Own table renderer.** fpdf2's ``table()`` lays out each cell with ``multi_cell``
  twice; for 5,000 indicators that takes more than half a minute. Here each cell is
  wrapped once with a per-word width cache and drawn with ``text()`` and ``rect()``:
  the same 5,000 rows take about two seconds. Rows never split across pages; a cell
  too long for one page is cut with "…".
* **Fonts.** DejaVu Sans (full Latin, "≥", "–", curly quotes) is embedded, taken from
  matplotlib's own data folder, which every installation of this project has because
  matplotlib is a dependency, else from the system fonts. If neither is found, the
  built-in Helvetica is used and every text goes through :func:`latin1_text`, which
  maps typographic characters to Latin-1 ("≥" -> ">=", "–" -> "-").
* **Deterministic.** The creation date comes from the data (signature date, else
  letter date, else 1 January of the year), so the same data gives the same bytes.
* Numbers are formatted the Indonesian way with :mod:`reports.numbers` (1.234,5;
  95,12%), capaian with :func:`reports.measure.capaian` through
  :func:`reports.document_data.measure_row`.
"""
from __future__ import annotations

import importlib.util
import io
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.enums import TextMode

from models.enums import ValueType
from reports.document_data import (
    Compliance,
    DocumentData,
    IndicatorRow,
    StepTiming,
    capaian_label,
    format_working_minutes,
    iter_lowest,
)
from reports.measure import Capaian, summarise
from reports.numbers import format_date, format_number, format_percent, round_half_up

__all__ = ["build_pdf", "latin1_text"]

_FONT = "DejaVu"
_CORE_FONT = "Helvetica"
_PAGE_W, _PAGE_H = 297.0, 210.0
_MARGIN = 10.0
_BODY_W = _PAGE_W - 2 * _MARGIN
_TOP = 16.0  # below the running head
_BOTTOM = _PAGE_H - 12.0  # above the footer
_PAD = 1.2

_BLACK = (0, 0, 0)
_GREY = (90, 90, 90)
_HEAD_FILL = (217, 225, 242)
_COLNUM_FILL = (237, 241, 249)
_GROUP_FILL = (235, 235, 235)
_SUMMARY_FILL = (244, 247, 252)
_LATE_FILL = (255, 199, 206)
_WAIT_FILL = (242, 242, 242)  # an agency's receipt: its own time, not the office's
_LATE_TEXT = (156, 0, 6)
_RED = (192, 0, 0)
#: Kategori cell colours from the best band to the worst.
_BAND_FILLS = ((198, 239, 206), (226, 239, 218), (255, 235, 156), (255, 199, 206))

_LATIN1_MAP = str.maketrans({
    "≥": ">=", "≤": "<=", "≠": "!=", "–": "-", "—": "-", "‒": "-", "−": "-",
    "‘": "'", "’": "'", "‚": ",", "‛": "'", "“": '"', "”": '"', "„": '"', "…": "...",
    "•": "-", "·": "-", "→": "->", "←": "<-", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "\u200b": "", "€": "EUR", "™": "(TM)", "✓": "v", "✔": "v",
})


def latin1_text(text: str) -> str:
    """``text`` reduced to Latin-1 for the core PDF fonts (typographic marks mapped)."""
    text = unicodedata.normalize("NFKC", text).translate(_LATIN1_MAP)
    return text.encode("latin-1", "replace").decode("latin-1")


_CONTROL_TO_SPACE = str.maketrans({i: " " for i in range(32) if i != 10} | {127: " "})


def _clean(text: str) -> str:
    """Tabs and other control characters (but not newlines) become spaces."""
    return text.translate(_CONTROL_TO_SPACE)


def _find_fonts() -> dict[str, Path] | None:
    """Regular/bold/italic DejaVu Sans files, from matplotlib's data or the system."""
    folders: list[Path] = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    folders += [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
                Path("/usr/share/fonts/TTF")]
    names = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
    for folder in folders:
        paths = {style: folder / name for style, name in names.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


# ====================================================================== PDF class


def add_unicode_font(pdf: FPDF) -> bool:
    """Embed DejaVu Sans when it can be found; False means: use the core font."""
    fonts = _find_fonts()
    if fonts is None:
        return False
    try:
        for style, path in fonts.items():
            pdf.add_font(_FONT, style, str(path))
    except Exception:  # a broken font file: fall back to the core font
        return False
    return True


class _Pdf(FPDF):
    """FPDF with the running head and footer of this document."""

    def __init__(self, data: DocumentData) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.data = data
        self.unicode_font = add_unicode_font(self)
        self.family = _FONT if self.unicode_font else _CORE_FONT
        self.set_auto_page_break(False)
        self.set_margins(_MARGIN, _TOP, _MARGIN)
        self.alias_nb_pages("{nb}")
        self._char_widths: dict[tuple[str, float], dict[str, float]] = {}
        self._wrap_cache: dict[tuple[str, float, float, str], list[str]] = {}
        self._font_state: tuple[str, float] | None = None
        self._color_state: tuple[int, int, int] | None = None
        self._font_page = self._color_page = -1

    # -- text helpers

    def t(self, text: object) -> str:
        """Text made safe for the current font set."""
        text = "" if text is None else str(text)
        return _clean(text) if self.unicode_font else latin1_text(_clean(text))

    def font(self, size: float, style: str = "", color: tuple[int, int, int] = _BLACK) -> None:
        """Set font style/size and text colour, skipping the calls when nothing changes."""
        state = (style.replace("U", ""), size)
        if state != self._font_state or self.page != self._font_page:
            self.set_font(self.family, state[0], size)
            self._font_state = state
            self._font_page = self.page
        if color != self._color_state or self.page != self._color_page:
            self.set_text_color(*color)
            self._color_state = color
            self._color_page = self.page

    def set_text_color(self, r: object, g: object = -1, b: object = -1) -> None:
        super().set_text_color(r, g, b)
        self._color_state = None  # direct calls invalidate the cached state

    def width(self, text: str) -> float:
        """Width of ``text`` in mm in the current font: a sum of cached glyph widths.

        Same result as :meth:`get_string_width` for plain text (no text shaping,
        stretching or char spacing is used here), at a fraction of its cost.
        """
        state = (self.font_style, self.font_size_pt)
        table = self._char_widths.get(state)
        if table is None:
            table = self._char_widths[state] = {}
        total = 0.0
        for ch in text:
            w = table.get(ch)
            if w is None:
                w = table[ch] = self.get_string_width(ch)
            total += w
        return total

    def wrap(self, text: str, width: float) -> list[str]:
        """Lines of ``text`` within ``width`` mm in the current font.

        Results and word widths are cached: sasaran and formula texts repeat a lot.
        """
        key = (self.font_style, self.font_size_pt, width, text)
        cached = self._wrap_cache.get(key)
        if cached is None:
            cached = self._wrap_cache[key] = self._wrap(text, width)
        return cached

    def _wrap(self, text: str, width: float) -> list[str]:
        lines: list[str] = []
        space = self.width(" ")
        words: dict[str, float] = {}
        for paragraph in self.t(text).split("\n"):
            current: list[str] = []
            current_w = 0.0
            for word in paragraph.split():
                word_w = words.get(word)
                if word_w is None:
                    word_w = words[word] = self.width(word)
                if word_w > width:  # a word longer than the column: break it
                    if current:
                        lines.append(" ".join(current))
                        current, current_w = [], 0.0
                    piece = ""
                    for ch in word:
                        if piece and self.width(piece + ch) > width:
                            lines.append(piece)
                            piece = ""
                        piece += ch
                    current, current_w = [piece], self.width(piece)
                    continue
                if current and current_w + space + word_w > width:
                    lines.append(" ".join(current))
                    current, current_w = [word], word_w
                else:
                    current_w = word_w if not current else current_w + space + word_w
                    current.append(word)
            lines.append(" ".join(current))
        return lines or [""]

    def text_lines(self, items: Sequence[tuple[float, float, str]]) -> None:
        """Draw many ``(x, baseline_y, text)`` in one content-stream write.

        Equivalent to calling :meth:`text` for each item (same operators: ``BT x y Td
        (..) Tj ET``, wrapped in ``q rg .. Q`` when the text colour differs from the
        fill colour, as :meth:`text` does), but without its per-call overhead, which
        dominates a 5,000-row table. Falls back to :meth:`text` for anything unusual
        (underline, text modes, text annotations, font not yet on this page).
        """
        items = [item for item in items if item[2]]
        if not items:
            return
        plain = (not self.underline and not self.strikethrough
                 and self.text_mode == TextMode.FILL
                 and not self._record_text_quad_points)
        if not plain or not self.current_font_is_set_on_page:
            x, y, text = items[0]
            self.text(x, y, text)
            items = items[1:]
            if not plain:
                for x, y, text in items:
                    self.text(x, y, text)
                return
            if not items:
                return
        k, h = self.k, self.h
        encode = self.current_font.encode_text
        normalize = self.normalize_text
        body = " ".join(
            f"BT {x * k:.2f} {(h - y) * k:.2f} Td {encode(normalize(text))} ET"
            for x, y, text in items
        )
        if self.fill_color != self.text_color:
            body = f"q {self.text_color.serialize().lower()} {body} Q"
        self._out(body)

    def stroke_rects(self, rects: Sequence[tuple[float, float, float, float]]) -> None:
        """Outline many ``(x, y, w, h)`` rectangles in one path (same as ``rect()`` each)."""
        if not rects:
            return
        k, h = self.k, self.h
        self._out(" ".join(
            f"{x * k:.2f} {(h - y) * k:.2f} {w * k:.2f} {-hh * k:.2f} re"
            for x, y, w, hh in rects
        ) + " S")

    def line_at(self, x: float, y: float, w: float, text: str, align: str) -> None:
        """One already-wrapped line at baseline ``y`` inside ``[x, x + w]``."""
        if text:
            self.text(*self.placed(x, y, w, text, align))

    def placed(self, x: float, y: float, w: float, text: str,
               align: str) -> tuple[float, float, str]:
        """Where :meth:`line_at` would draw ``text``: ``(x, y, text)``."""
        if align == "R":
            x = x + w - self.width(text)
        elif align == "C":
            x = x + (w - self.width(text)) / 2
        return x, y, text

    def centered(self, y: float, text: str, size: float, style: str = "",
                 color: tuple[int, int, int] = _BLACK, x: float = _MARGIN,
                 w: float = _BODY_W) -> float:
        """Wrapped, centred text from top ``y``; returns the y below it."""
        self.font(size, style, color)
        line_h = size * 0.45
        for line in self.wrap(text, w):
            y += line_h
            self.line_at(x, y - line_h * 0.22, w, line, "C")
        return y + line_h * 0.25

    # -- page furniture

    def header(self) -> None:
        data = self.data
        self.font(7, "", _GREY)
        head = f"{data.title} - {data.office_line} - {data.period_label}"
        self.text(_MARGIN, 8, self.t(head))
        if data.example_data:
            self.font(8, "B", _RED)
            label = self.t("DATA CONTOH")
            self.text(_PAGE_W - _MARGIN - self.width(label), 8, label)
        self.set_draw_color(*_GREY)
        self.set_line_width(0.2)
        self.line(_MARGIN, 10, _PAGE_W - _MARGIN, 10)
        self.set_draw_color(*_BLACK)
        self._forget_font()

    def _forget_font(self) -> None:
        """FPDF restores the body font after header/footer behind our back."""
        self._font_state = None
        self._color_state = None

    def footer(self) -> None:
        data = self.data
        self.font(7, "", _GREY)
        y = _PAGE_H - 6
        left = f"Versi {data.version}"
        if data.verification_code:
            left += f" - Kode verifikasi: {data.verification_code}"
        self.text(_MARGIN, y, self.t(left))
        # cell(), not text(): only cell() substitutes the total page count for {nb}
        self.set_xy(_PAGE_W - _MARGIN - 60, y - 2.5)
        self.cell(60, 3.5, self.t(f"Halaman {self.page_no()} dari {{nb}}"), align="R")
        self.set_text_color(*_BLACK)
        self._forget_font()


# ====================================================================== tables


@dataclass(frozen=True)
class _Column:
    title: str
    width: float
    align: str = "L"  # L, C, R


@dataclass
class _Cell:
    text: str
    align: str | None = None  # None: the column's
    style: str = ""
    fill: tuple[int, int, int] | None = None
    color: tuple[int, int, int] = _BLACK


class _Table:
    """A bordered table with a header (titles and "(1) (2) ...") repeated on each page."""

    def __init__(self, pdf: _Pdf, columns: Sequence[_Column], *, size: float = 7.5,
                 numbered: bool = True, merge_repeats: Collection[int] = ()) -> None:
        """``merge_repeats``: columns whose text is printed only when it changes (and
        at the top of each page), as printed reports merge a sasaran over its rows."""
        self.pdf = pdf
        self.merge_repeats = frozenset(merge_repeats)
        self._last: dict[int, tuple[int, str]] = {}
        self.columns = columns
        self.size = size
        self.line_h = size * 0.42
        self.numbered = numbered
        self.max_row_h = _BOTTOM - _TOP - 25

    def _lines(self, cell: _Cell, column: _Column) -> list[str]:
        self.pdf.font(self.size, cell.style)
        return self.pdf.wrap(cell.text, column.width - 2 * _PAD)

    def header(self) -> None:
        pdf = self.pdf
        y = pdf.get_y()
        pdf.set_fill_color(*_HEAD_FILL)
        pdf.font(self.size, "B")
        wrapped = [pdf.wrap(c.title, c.width - 2 * _PAD) for c in self.columns]
        h = max(len(w) for w in wrapped) * self.line_h + 2 * _PAD
        x = _MARGIN
        for column, lines in zip(self.columns, wrapped):
            pdf.rect(x, y, column.width, h, style="DF")
            top = y + (h - len(lines) * self.line_h) / 2
            for k, line in enumerate(lines):
                pdf.line_at(x + _PAD, top + (k + 0.78) * self.line_h, column.width - 2 * _PAD,
                            line, "C")
            x += column.width
        y += h
        if self.numbered:
            pdf.set_fill_color(*_COLNUM_FILL)
            pdf.font(self.size - 1, "I")
            nh = self.line_h + 1
            x = _MARGIN
            for number, column in enumerate(self.columns, start=1):
                pdf.rect(x, y, column.width, nh, style="DF")
                pdf.line_at(x, y + nh - 1.0, column.width, f"({number})", "C")
                x += column.width
            y += nh
        pdf.set_y(y)

    def start(self, min_space: float = 20) -> None:
        if self.pdf.get_y() + min_space > _BOTTOM:
            self.pdf.add_page()
        self.header()

    def _room(self, h: float) -> None:
        if self.pdf.get_y() + h > _BOTTOM:
            self.pdf.add_page()
            self.header()

    def group(self, text: str) -> None:
        """A full-width bold row (the bidang)."""
        pdf = self.pdf
        pdf.font(self.size + 0.5, "B")
        lines = pdf.wrap(text, _BODY_W - 2 * _PAD)
        h = len(lines) * self.line_h + 2 * _PAD
        self._room(h + self.line_h * 3)  # keep the group row with its first indicator
        self._last.clear()  # a new group prints its sasaran again
        pdf.font(self.size + 0.5, "B")  # again: a page break changed the font
        y = pdf.get_y()
        pdf.set_fill_color(*_GROUP_FILL)
        pdf.rect(_MARGIN, y, _BODY_W, h, style="DF")
        for k, line in enumerate(lines):
            pdf.text(_MARGIN + _PAD, y + _PAD + (k + 0.78) * self.line_h, line)
        pdf.set_y(y + h)

    def row(self, cells: Sequence[_Cell]) -> None:
        pdf = self.pdf
        self._originals = list(cells)
        if self.merge_repeats:
            cells = list(cells)
            for index in self.merge_repeats:
                text = cells[index].text
                if self._last.get(index) == (pdf.page, text):
                    cells[index] = _Cell("", style=cells[index].style)
        wrapped = [self._lines(c, col) for c, col in zip(cells, self.columns)]
        max_lines = int((self.max_row_h - 2 * _PAD) / self.line_h)
        for index, lines in enumerate(wrapped):
            if len(lines) > max_lines:
                wrapped[index] = lines[: max_lines - 1] + [lines[max_lines - 1] + " …"]
        h = max(len(lines) for lines in wrapped) * self.line_h + 2 * _PAD
        page = pdf.page
        self._room(h)
        if pdf.page != page and self.merge_repeats:  # new page: print the text again
            self._last.clear()
            self.row(self._originals)
            return
        for index in self.merge_repeats:
            self._last[index] = (pdf.page, self._originals[index].text)
        y = pdf.get_y()
        x = _MARGIN
        borders = []
        for cell, column, lines in zip(cells, self.columns, wrapped):
            if cell.fill is not None:
                pdf.set_fill_color(*cell.fill)
                pdf.rect(x, y, column.width, h, style="F")
            borders.append((x, y, column.width, h))
            pdf.font(self.size, cell.style, cell.color)
            align = cell.align or column.align
            inner = column.width - 2 * _PAD
            pdf.text_lines([
                pdf.placed(x + _PAD, y + _PAD + (k + 0.78) * self.line_h, inner, line, align)
                for k, line in enumerate(lines) if line
            ])
            x += column.width
        pdf.stroke_rects(borders)
        pdf.set_y(y + h)


# ====================================================================== content


_INDICATOR_COLUMNS = (
    _Column("No", 8, "C"),
    _Column("Sasaran/Program", 34),
    _Column("Indikator Kinerja", 46),
    _Column("Penjelasan/Formulasi Perhitungan", 45),
    _Column("Satuan", 17, "C"),
    _Column("Target", 18, "R"),
    _Column("Realisasi", 18, "R"),
    _Column("Capaian (%)", 19, "R"),
    _Column("Kategori", 21, "C"),
    _Column("Keterangan", 33),
    _Column("Bukti", 18),
)



def _split_columns(q: str) -> tuple[_Column, ...]:
    """The indicator table of a quarterly document (issue 15): the quarter's own target,
    realisation and capaian, then the same "s.d." the quarter; narrower text columns
    keep the table on A4 landscape."""
    return (
        _Column("No", 8, "C"),
        _Column("Sasaran/Program", 27),
        _Column("Indikator Kinerja", 33),
        _Column("Penjelasan/Formulasi Perhitungan", 25),
        _Column("Satuan", 15, "C"),
        _Column(f"Target {q}", 20, "R"),
        _Column(f"Realisasi {q}", 20, "R"),
        _Column(f"Capaian {q} (%)", 15, "R"),
        _Column(f"Target s.d. {q}", 20, "R"),
        _Column(f"Realisasi s.d. {q}", 20, "R"),
        _Column(f"Capaian s.d. {q} (%)", 15, "R"),
        _Column("Kategori", 17, "C"),
        _Column("Keterangan", 24),
        _Column("Bukti", 18),
    )


_STEP_COLUMNS = (
    _Column("No", 8, "C"),
    _Column("Langkah", 70),
    _Column("Pelaksana", 34),
    _Column("Nama", 40),
    _Column("Mulai", 25, "C"),
    _Column("Selesai", 25, "C"),
    _Column("Standar Waktu", 20, "C"),
    _Column("Waktu Aktual (kerja)", 30, "C"),
    _Column("Status", 25, "C"),
)


def _value_text(value: Decimal | str | None, value_type: ValueType) -> str:
    if value is None:
        return "-"
    if isinstance(value, (Decimal, int)) and ValueType(value_type) is not ValueType.TEXT:
        return format_number(value)
    return str(value)


def _capaian_text(result: Capaian) -> str:
    if result.score is not None:
        return format_number(round_half_up(result.score, 2), 2)
    return capaian_label(result)


def _band_fill(data: DocumentData, kategori: str | None) -> tuple[int, int, int] | None:
    if not kategori:
        return None
    ordered = sorted(data.bands, key=lambda b: b.minimum, reverse=True)
    labels = [b.label for b in ordered]
    if kategori not in labels:
        return None
    index = labels.index(kategori)
    if index == len(labels) - 1:
        return _BAND_FILLS[-1]
    return _BAND_FILLS[min(index, len(_BAND_FILLS) - 2)]


def _local(moment: datetime | None, zone: str = "Asia/Jakarta") -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(zone))
    return f"{format_date(moment.date())} {moment:%H.%M}"


class _DocumentWriter:
    def __init__(self, data: DocumentData) -> None:
        self.data = data
        self.pdf = _Pdf(data)
        self.measured = data.measured()
        self.signature_box: tuple[int, float, float, float, float, float] | None = None

    def title_block(self) -> None:
        pdf, data = self.pdf, self.data
        pdf.add_page()
        y = _TOP
        y = pdf.centered(y, data.title.upper(), 14, "B")
        y = pdf.centered(y, data.office_line.upper(), 11.5, "B")
        y = pdf.centered(y, data.period_label.upper(), 11, "B")
        parts = []
        if data.letter_number:
            parts.append(f"Nomor: {data.letter_number}")
        if data.letter_date:
            parts.append(f"Tanggal: {format_date(data.letter_date)}")
        if parts:
            y = pdf.centered(y, "    ".join(parts), 9.5)
        if data.example_data:
            y += 1
            pdf.set_fill_color(*_RED)
            pdf.rect(_MARGIN, y, _BODY_W, 8, style="F")
            pdf.font(11, "B", (255, 255, 255))
            pdf.line_at(_MARGIN, y + 5.6, _BODY_W,
                        pdf.t("DATA CONTOH - BUKAN DATA RESMI"), "C")
            pdf.set_text_color(*_BLACK)
            y += 8
        pdf.set_y(y + 2)

    def summary_box(self) -> None:
        pdf = self.pdf
        results = [c for _, c in self.measured]
        s = summarise(results)
        average = (format_percent(round_half_up(s.average_score, 2))
                   if s.average_score is not None else "-")
        facts = [
            f"Jumlah indikator: {s.total}",
            f"Mencapai target: {s.reached}",
            f"Belum mencapai target: {s.not_reached}",
            f"Belum ada data: {s.no_data}",
        ]
        if s.no_target:
            facts.append(f"Belum ada target: {s.no_target}")
        facts.append(f"Rata-rata capaian: {average}")
        lowest = list(iter_lowest(self.measured, 3))
        x, y, w = _MARGIN, pdf.get_y(), _BODY_W
        pad = 2.5
        pdf.font(10, "B")
        lines: list[tuple[str, str, float]] = [("RINGKASAN", "B", 10)]
        pdf.font(10)
        for line in pdf.wrap("   |   ".join(facts), w - 2 * pad):
            lines.append((line, "", 10))
        if lowest:
            lines.append(("Capaian terendah:", "B", 9.5))
            pdf.font(9.5)
            for number, (row, result) in enumerate(lowest, start=1):
                text = (f"{number}. {row.name} ({row.bidang}): "
                        f"{format_percent(round_half_up(result.score, 2))}"
                        + (f" - {result.kategori}" if result.kategori else ""))
                for line in pdf.wrap(text, w - 2 * pad - 4):
                    lines.append(("  " + line, "", 9.5))
        height = sum(size * 0.46 for _, _, size in lines) + 2 * pad
        pdf.set_fill_color(*_SUMMARY_FILL)
        pdf.set_draw_color(120, 140, 180)
        pdf.rect(x, y, w, height, style="DF", round_corners=True, corner_radius=2)
        pdf.set_draw_color(*_BLACK)
        cy = y + pad
        for text, style, size in lines:
            pdf.font(size, style)
            cy += size * 0.46
            pdf.text(x + pad, cy - size * 0.1, text)
        pdf.set_y(y + height + 4)

    def indicator_table(self) -> None:
        pdf = self.pdf
        split = self.data.split
        columns = _split_columns(self.data.quarter_short) if split else _INDICATOR_COLUMNS
        table = _Table(pdf, columns, merge_repeats=(1,))
        table.start(40)
        by_bidang: dict[str, list[tuple[IndicatorRow, Capaian]]] = {}
        for row, result in self.measured:
            by_bidang.setdefault(row.bidang, []).append((row, result))
        own = {id(row): result for row, result in self.data.measured_period()} if split else {}
        number = 0
        for bidang, items in by_bidang.items():
            table.group(bidang)
            for row, result in items:
                number += 1
                cells = self._indicator_cells(number, row, result)
                if split:
                    cells[5:5] = self._period_cells(row, own.get(id(row)))
                table.row(cells)
        if not self.measured:
            table.group("Belum ada indikator.")
        self.legend()

    def _indicator_cells(self, number: int, row: IndicatorRow, result: Capaian) -> list[_Cell]:
        keterangan = result.keterangan
        if row.note:
            keterangan = f"{keterangan}; {row.note}" if keterangan else row.note
        if row.analysis_text:
            keterangan = f"{keterangan}; {row.analysis_text}" if keterangan else row.analysis_text
        has_percent = result.score is not None
        text_align = "C" if ValueType(row.value_type) is ValueType.TEXT else None
        return [
            _Cell(str(number)),
            _Cell(row.sasaran),
            _Cell(row.name),
            _Cell(row.definition),
            _Cell(row.unit),
            _Cell(_value_text(row.target, row.value_type), align=text_align),
            _Cell(_value_text(row.realisasi, row.value_type), align=text_align),
            _Cell(_capaian_text(result), align=None if has_percent else "C",
                  style="B" if has_percent else "I"),
            _Cell(result.kategori or "-", fill=_band_fill(self.data, result.kategori)),
            _Cell(keterangan),
            _Cell(", ".join(row.evidence) or "-"),
        ]

    @staticmethod
    def _period_cells(row: IndicatorRow, result: Capaian | None) -> list[_Cell]:
        """Target, realisation and capaian of the quarter itself ("-" for a row that
        has only one pair of figures, such as a text indicator)."""
        if result is None:
            return [_Cell("-", align="C"), _Cell("-", align="C"), _Cell("-", align="C")]
        has_percent = result.score is not None
        return [
            _Cell(_value_text(row.period_target, row.value_type)),
            _Cell(_value_text(row.period_realisasi, row.value_type)),
            _Cell(_capaian_text(result), align=None if has_percent else "C",
                  style="B" if has_percent else "I"),
        ]

    def legend(self) -> None:
        pdf, data = self.pdf, self.data
        ordered = sorted(data.bands, key=lambda b: b.minimum, reverse=True)
        bands = [f"{b.label} ≥ {format_percent(b.minimum, None)}" for b in ordered[:-1]]
        if len(ordered) > 1:
            bands.append(f"{ordered[-1].label} < {format_percent(ordered[-2].minimum, None)}")
        texts = [
            "Capaian: semakin tinggi semakin baik = Realisasi / Target × 100%; semakin "
            "rendah semakin baik = (2 × Target − Realisasi) / Target × 100% atau "
            "Target / Realisasi × 100% (sesuai formulasi indikator). Kategori: "
            + "; ".join(bands) + ".",
        ]
        if data.cap is not None:
            texts.append(
                f"Capaian di atas {format_percent(data.cap.above, None)} dinilai "
                f"{format_percent(data.cap.score, None)}; kolom Capaian memuat nilai tersebut."
            )
        pdf.font(7, "I")
        y = _small_lines(pdf, texts, pdf.get_y() + 1.5)
        pdf.set_y(y + 2)

    def steps_table(self) -> None:
        pdf, data = self.pdf, self.data
        if not data.steps:
            return
        pdf.add_page()  # an annex (lampiran) after the signed measurement
        y = pdf.centered(_TOP, "LAMPIRAN: KEPATUHAN SOP PENGUMPULAN DAN PENGUKURAN DATA "
                         "KINERJA", 11, "B")
        y = pdf.centered(y, data.period_label, 9.5)
        comp = data.compliance
        if comp is not None and comp.as_of is not None:
            when = f"Keadaan per {_local(comp.as_of)} WIB"
            y = pdf.centered(y, f"{when}, {comp.as_of_note}." if comp.as_of_note
                             else f"{when}.", 8.5, "I")
        pdf.set_y(y + 1)
        table = _Table(pdf, _STEP_COLUMNS, size=7.5)
        table.start(20)
        for step in data.steps:
            table.row(self._step_cells(step))
        if comp is not None:
            table.row(self._total_cells(comp))
        pdf.font(7, "I")
        texts = []
        if comp is not None:
            texts.append(
                f"Total standar waktu SOP (jumlah batas atas langkah 1–11): "
                f"{comp.standard_text}. Total waktu aktual siklus (dari mulai langkah 1 sampai "
                f"selesai penyampaian langkah 11"
                + ("" if comp.finished else
                   f", sejauh ini s.d. {_local(comp.as_of, self.data.timezone)} "
                   f"{self.data.zone_label}")
                + f"): {format_working_minutes(comp.actual_minutes, self.data.day_minutes)}. "
                f"{comp.verdict}.")
        texts.append(
            f"Waktu aktual dalam jam kerja: 1 hari kerja = {self.data.day_minutes} menit "
            f"(jam kantor, {self.data.zone_label}), "
            "Senin–Jumat di luar hari libur nasional dan cuti bersama; langkah yang "
            "dikembalikan dijumlahkan semua putarannya. Baris merah: melewati standar waktu "
            "SOP. Tanda terima OPD adalah waktu OPD penerima, dicatat tanpa standar dan tidak "
            "dihitung sebagai keterlambatan kantor.")
        y = _small_lines(pdf, texts, pdf.get_y() + 1.5)
        pdf.set_y(y + 1)

    def _step_cells(self, step: StepTiming) -> list[_Cell]:
        late = step.late
        fill = _LATE_FILL if late else (_WAIT_FILL if not step.counted else None)
        color = _LATE_TEXT if late else _BLACK
        texts = [str(step.number), step.label, step.role_title, step.holder,
                 _local(step.started, self.data.timezone),
                 _local(step.completed, self.data.timezone), step.standard_text,
                 format_working_minutes(step.actual_minutes, self.data.day_minutes),
                 step.status]
        return [_Cell(text, fill=fill, color=color, style="B" if late and i == 8 else "")
                for i, text in enumerate(texts)]

    def _total_cells(self, comp: Compliance) -> list[_Cell]:
        """The last row: the SOP's total standard against the cycle's actual total."""
        late = comp.met is False
        fill = _LATE_FILL if late else _HEAD_FILL
        color = _LATE_TEXT if late else _BLACK
        status = {True: "Memenuhi standar", False: "Melewati standar",
                  None: "Masih berjalan"}[comp.met]
        texts = ["", "Total siklus", "", "", "", "", comp.standard_text,
                 format_working_minutes(comp.actual_minutes), status]
        return [_Cell(text, fill=fill, color=color, style="B") for text in texts]

    def signature_and_verification(self) -> None:
        pdf, data = self.pdf, self.data
        sig = data.signatory
        if sig is None and not data.verification_code:
            return
        block_w = 100.0
        x = _PAGE_W - _MARGIN - block_w
        size = 10
        line_h = size * 0.48
        title_lines = []
        if sig is not None:
            pdf.font(size)
            title_lines = pdf.wrap(sig.full_title, block_w)
        needed = (len(title_lines) + 5) * line_h + 22 + 9 * len(data.initials)
        needed = max(needed, 42 if data.verification_code else 0)
        y = pdf.get_y() + 4
        if y + needed > _BOTTOM:
            pdf.add_page()
            y = _TOP + 2
        if data.verification_code:
            self._verification(y)
        if sig is None:
            return
        when = data.signature_date()
        place_date = (f"{sig.place}, {format_date(when)}" if when
                      else f"{sig.place}, ..................... {data.year}")
        pdf.font(size)
        y += line_h
        pdf.line_at(x, y, block_w, pdf.t(place_date), "C")
        for line in title_lines:
            y += line_h
            pdf.line_at(x, y, block_w, line, "C")
        self._signature_space(x, y, block_w)
        y += 22  # room for the signature and stamp
        pdf.font(size, "B")
        name = pdf.t(sig.name)
        pdf.line_at(x, y, block_w, name, "C")
        name_w = pdf.width(name)
        pdf.set_line_width(0.3)
        pdf.line(x + (block_w - name_w) / 2, y + 0.8, x + (block_w + name_w) / 2, y + 0.8)
        pdf.set_line_width(0.2)
        pdf.font(size)
        for text in (sig.rank, f"NIP. {sig.nip}"):
            if text.strip():
                y += line_h
                pdf.line_at(x, y, block_w, pdf.t(text), "C")
        y = self._initials(y)
        pdf.set_y(y + 4)

    def _signature_space(self, x: float, y: float, block_w: float) -> None:
        """The 22 mm between title and name: on the final PDF either the box of the
        electronic signature's appearance (``signature_box``, filled in by the signer)
        or the plain statement that the document carries no electronic signature."""
        pdf, data = self.pdf, self.data
        if data.e_signed is None:  # a draft: room for the signature, nothing said
            return
        w, h = 74.0, 16.0
        left, top = x + (block_w - w) / 2, y + 1.0
        if data.e_signed:
            self.signature_box = (pdf.page_no() - 1, left, top, w, h, pdf.h)
            return
        pdf.font(8, "I", _GREY)
        for i, line in enumerate(pdf.wrap("Dokumen ini TIDAK memuat tanda tangan "
                                          "elektronik.", w)):
            pdf.line_at(left, top + 6 + 3.6 * i, w, line, "C")
        pdf.set_text_color(*_BLACK)

    def _initials(self, y: float) -> float:
        """The paraf koordinasi under the signature block: capacity, name, date."""
        pdf = self.pdf
        width = _PAGE_W - 2 * _MARGIN
        pdf.font(8.5)
        for ini in self.data.initials:
            text = f"Paraf koordinasi: {ini.capacity} - {ini.name}"
            if ini.at is not None:
                text += f", {format_date(ini.at.date())}"
            for line in pdf.wrap(pdf.t(text), width):
                y += 4.2
                pdf.line_at(_MARGIN, y, width, line, "L")
        return y

    def _verification(self, y: float) -> None:
        pdf, data = self.pdf, self.data
        code = data.verification_code or ""
        payload = data.verification_url_or_text or code
        if not payload.lower().startswith(("http://", "https://", "tg://")):
            payload = code
        qr = segno.make(payload, error="m", micro=False)  # a standard QR: any phone reads it
        buffer = io.BytesIO()
        qr.save(buffer, kind="png", scale=8, border=2)
        buffer.seek(0)
        size = 32.0
        pdf.image(buffer, x=_MARGIN, y=y, w=size, h=size)
        tx, tw = _MARGIN + size + 4, 110.0
        pdf.font(10, "B")
        ty = y + 6
        pdf.text(tx, ty, pdf.t(f"Kode verifikasi: {code}"))
        if data.verification_url_or_text:
            pdf.font(8.5)
            for line in pdf.wrap(data.verification_url_or_text, tw):
                ty += 4.2
                pdf.text(tx, ty, line)
        pdf.font(8, "I", _GREY)
        for line in pdf.wrap("Pindai kode QR atau kirim kode verifikasi ke bot untuk "
                             "memeriksa keaslian dokumen ini.", tw):
            ty += 4
            pdf.text(tx, ty, line)
        pdf.set_text_color(*_BLACK)

    def audit_line(self) -> None:
        """The head of the audit trail when this document was made: an old copy proves a
        later rewrite of the trail (``sopbot audit verify --expect-head``)."""
        pdf, data = self.pdf, self.data
        if not data.audit_head:
            return
        pdf.font(7, "", _GREY)
        y = pdf.get_y() + 2
        text = (f"Kepala jejak audit saat dokumen ini dibuat: {data.audit_head}. Periksa "
                f"dengan: sopbot audit verify --expect-head {data.audit_head.split()[0]}")
        y = _small_lines(pdf, [text], y)
        pdf.set_text_color(*_BLACK)
        pdf.set_y(y + 1)

    def metadata(self) -> None:
        pdf, data = self.pdf, self.data
        pdf.set_title(pdf.t(f"{data.title} - {data.period_label}"))
        pdf.set_author(pdf.t(data.office_line))
        pdf.set_subject(pdf.t(f"{data.title} {data.office_line} {data.period_label}"))
        pdf.set_creator("sopbot")
        pdf.set_lang("id-ID")
        moment: datetime
        signed = data.signatory.signed_at if data.signatory else None
        if signed is not None:
            moment = signed if signed.tzinfo else signed.replace(tzinfo=timezone.utc)
        elif data.letter_date is not None:
            moment = datetime.combine(data.letter_date, datetime.min.time(), timezone.utc)
        else:
            moment = datetime(data.year, 1, 1, tzinfo=timezone.utc)
        pdf.set_creation_date(moment)

    def build(self, path: Path) -> Path:
        self.metadata()
        self.title_block()
        self.summary_box()
        self.indicator_table()
        self.signature_and_verification()
        self.steps_table()
        self.audit_line()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pdf.output(str(path))
        return path


def build_pdf(data: DocumentData, path: Path) -> Path:
    """Write the measurement document of ``data`` as an A4-landscape PDF to ``path``."""
    return _DocumentWriter(data).build(path)


def build_pdf_with_signature_box(data: DocumentData, path: Path
                                 ) -> tuple[Path, tuple[int, float, float, float, float, float] | None]:
    """``build_pdf`` and, when ``data.e_signed``, where the electronic signature's
    appearance goes: (page index, x, y, w, h, page height), in mm from the top left."""
    writer = _DocumentWriter(data)
    return writer.build(path), writer.signature_box


def _small_lines(pdf, texts, y: float) -> float:
    """Write paragraphs of small text (3.2 mm lines, current font) across the body width
    from ``y``, onto a new page where the page ends; returns the y below the last line."""
    for text in texts:
        for line in pdf.wrap(text, _BODY_W):
            if y + 3.2 > _BOTTOM:
                pdf.add_page()
                y = _TOP
            y += 3.2
            pdf.text(_MARGIN, y - 0.8, line)
    return y
