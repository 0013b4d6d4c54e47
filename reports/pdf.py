"""The measurement document as PDF (fpdf2), made to be read in Telegram's viewer on a phone.

Content, top to bottom: page 1 in portrait, read at phone width (no text under 10 pt):
the kop (optional logo, Pemda, Dinas, address), the title and period, letter number and
date, a red "DATA CONTOH" banner for example data, five figures (indicators, reached,
not reached, no data, average), the count per kategori, the capaian per bidang and the
indicators not achieved with their hindering factor. Then, in landscape, the indicator
table grouped by bidang (the period in the figures' headers, Keterangan and Analisis
Capaian columns), the legend and the signature block at the bottom right (kept on the
page of the last table row) with, when a verification code is set, a QR code and the
code at its left; then the "Kepatuhan SOP" appendix. Every page after the first
repeats a running head, every table page its header; every page ends with "Halaman x
dari y", the version and the verification code.

No number and no word of a table cell is split across lines: the Satuan and figure
columns are sized to their longest figure, a cell whose longest word does not fit is
set in a smaller font, a long word breaks only after "/", "_" or a hyphen between
letters, and evidence file names are shortened with "…" at a boundary.

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
import re
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
    analysis_text,
    capaian_label,
    format_working_minutes,
)
from reports.measure import Capaian, CapaianStatus, summarise
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
# the first page: a portrait summary read on a phone (every text >= 10 pt)
_P_W, _P_H = 210.0, 297.0
_P_MARGIN = 15.0
_P_BODY_W = _P_W - 2 * _P_MARGIN
_P_BOTTOM = _P_H - 14.0
_P_SIZE = 10.0
#: The smallest font a table cell shrinks to so that no number or word is split.
_MIN_SIZE = 5.0
_NAME_MIN_SIZE = 6.0  # file names are shortened rather than set smaller than this
#: Characters after which an over-long word (a file name, a URL) may be broken; "-"
#: only after a letter ("Permenpan-RB", never "-5.000").
_BREAK_AFTER = "/_-\\"
_PARTS = re.compile(r"[^/_\\]*?(?:[/_\\]|(?<=[^\W\d_])-)|[^/_\\]+$")

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
        self._text_widths: dict[tuple[str, float, str], float] = {}
        self._wrap_cache: dict[tuple[str, float, float, str], list[str]] = {}
        self._fits_cache: dict[tuple[str, float, float, str], bool] = {}
        # a text's "(..) Tj" per font: a font maps the same text the same way each time
        self._encoded: dict[tuple[int, str], str] = {}
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
        key = (self.font_style, self.font_size_pt, text)
        total = self._text_widths.get(key)
        if total is not None:  # figures, units and kategori repeat in every row
            return total
        state = key[:2]
        table = self._char_widths.get(state)
        if table is None:
            table = self._char_widths[state] = {}
        total = 0.0
        for ch in text:
            w = table.get(ch)
            if w is None:
                w = table[ch] = self.get_string_width(ch)
            total += w
        if len(text) <= 64:  # short texts only: the long ones rarely repeat
            self._text_widths[key] = total
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
                    pieces = self._break_word(word, width)
                    lines.extend(pieces[:-1])
                    current, current_w = [pieces[-1]], self.width(pieces[-1])
                    continue
                if current and current_w + space + word_w > width:
                    lines.append(" ".join(current))
                    current, current_w = [word], word_w
                else:
                    current_w = word_w if not current else current_w + space + word_w
                    current.append(word)
            lines.append(" ".join(current))
        return lines or [""]

    def _break_word(self, word: str, width: float) -> list[str]:
        """Pieces of a word wider than ``width``: broken after "/", "_", "-" or "\\"
        (a hyphen only between letters) where it can be ("Permenpan-RB", a path, a
        file name). A word without such a place makes the table cell shrink its font
        instead (see :meth:`_Table.fit`); only a word too long even then, at the
        smallest size, is cut between characters."""
        pieces: list[str] = []
        piece = ""
        boundary = -1  # index in ``piece`` just after the last break character
        for ch in word:
            if piece and self.width(piece + ch) > width:
                if 0 < boundary <= len(piece):
                    pieces.append(piece[:boundary])
                    piece = piece[boundary:]
                else:
                    pieces.append(piece)
                    piece = ""
                boundary = -1
                for i, c in enumerate(piece):
                    if c in _BREAK_AFTER and (c != "-" or (i and piece[i - 1].isalpha())):
                        boundary = i + 1
            if ch in _BREAK_AFTER and (ch != "-" or (piece and piece[-1].isalpha())):
                boundary = len(piece) + 1
            piece += ch
        pieces.append(piece)
        return pieces

    def fits(self, text: str, width: float) -> bool:
        """True when every word of ``text`` fits ``width`` mm in the current font, or
        its parts do where it may break: after "/", "_" or a hyphen between letters
        ("Permenpan-|RB", "dokumen/|wajib"); a number has no such place."""
        key = (self.font_style, self.font_size_pt, width, text)
        known = self._fits_cache.get(key)
        if known is None:
            known = self._fits_cache[key] = self._fits(text, width)
        return known

    def _fits(self, text: str, width: float) -> bool:
        text = self.t(text)
        if self.width(text) <= width:
            return True
        for word in text.split():
            if self.width(word) <= width:
                continue
            if not all(self.width(part) <= width for part in _PARTS.findall(word) if part):
                return False
        return True

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
        font = self.current_font
        encode, normalize, font_id = font.encode_text, self.normalize_text, id(font)
        encoded = self._encoded
        parts = []
        for x, y, text in items:
            shown = encoded.get((font_id, text))
            if shown is None:
                shown = encoded[font_id, text] = encode(normalize(text))
            parts.append(f"BT {x * k:.2f} {(h - y) * k:.2f} Td {shown} ET")
        body = " ".join(parts)
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

    @property
    def portrait(self) -> bool:
        return self.w < self.h

    @property
    def margin(self) -> float:
        return _P_MARGIN if self.portrait else _MARGIN

    def header(self) -> None:
        if self.page == 1:  # the kop heads the first page
            self._forget_font()
            return
        data = self.data
        margin, right = self.margin, self.w - self.margin
        label = self.t("DATA CONTOH") if data.example_data else ""
        if label:
            self.font(8, "B", _RED)
            label_w = self.width(label)
        else:
            label_w = 0.0
        self.font(7, "", _GREY)
        head = self.t(f"{data.short_title} - {data.office_line} - {data.period_label}")
        room = right - margin - label_w - 4
        if self.width(head) > room:  # one line: shortened, never over the red label
            while head and self.width(head + "…") > room:
                head = head[:-1]
            head = head.rstrip() + "…"
        self.text(margin, 8, head)
        if label:
            self.font(8, "B", _RED)
            self.text(right - label_w, 8, label)
        self.set_draw_color(*_GREY)
        self.set_line_width(0.2)
        self.line(margin, 10, right, 10)
        self.set_draw_color(*_BLACK)
        self._forget_font()

    def _forget_font(self) -> None:
        """FPDF restores the body font after header/footer behind our back."""
        self._font_state = None
        self._color_state = None

    def footer(self) -> None:
        data = self.data
        first = self.page == 1  # read on a phone: no text under 10 pt
        self.font(_P_SIZE if first else 7, "", _GREY)
        y = self.h - 6
        left = f"Versi {data.version}"
        if data.verification_code:
            left += f" - Kode verifikasi: {data.verification_code}"
        self.text(self.margin, y, self.t(left))
        # cell(), not text(): only cell() substitutes the total page count for {nb}
        self.set_xy(self.w - self.margin - 60, y - (3.5 if first else 2.5))
        self.cell(60, 5 if first else 3.5, self.t(f"Halaman {self.page_no()} dari {{nb}}"),
                  align="R")
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
    names: tuple[str, ...] = ()  # file names: one a line, shortened with "…" to fit


def shorten_name(pdf: _Pdf, name: str, width: float) -> str:
    """A file name that fits ``width`` mm in the current font: cut at a boundary
    ("-", "_", ".", space) with "…" and the extension kept ("laporan-rekap….pdf")."""
    name = pdf.t(" ".join(name.split()))
    if pdf.width(name) <= width:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 5:
        stem, ext = name, ""
    ellipsis = "…" if pdf.unicode_font else "..."
    # the kept part ends where a part of the name ends (before " ", "-", "_", "."),
    # with the extension if it fits, else without; a name with no such boundary close
    # enough to the start is cut between characters
    for tail in ((ellipsis + f".{ext}") if ext else ellipsis, ellipsis):
        ends = [i for i, ch in enumerate(stem) if ch in " -_." and i >= 3]
        fitting = [i for i in ends if pdf.width(stem[:i] + tail) <= width]
        if fitting:
            return stem[: fitting[-1]] + tail
    while name and pdf.width(name + ellipsis) > width:
        name = name[:-1]
    return name + ellipsis


class _Table:
    """A bordered table with a header (titles and "(1) (2) ...") repeated on each page.

    No number and no word is split across lines: a cell whose longest word does not
    fit its column is set in a smaller font (down to :data:`_MIN_SIZE`) instead."""

    def __init__(self, pdf: _Pdf, columns: Sequence[_Column], *, size: float = 7.5,
                 numbered: bool = True, merge_repeats: Collection[int] = (),
                 left: float = _MARGIN, top: float = _TOP, bottom: float = _BOTTOM,
                 orientation: str = "L") -> None:
        """``merge_repeats``: columns whose text is printed only when it changes (and
        at the top of each page), as printed reports merge a sasaran over its rows."""
        self.pdf = pdf
        self.merge_repeats = frozenset(merge_repeats)
        self._last: dict[int, tuple[int, str]] = {}
        self.columns = columns
        self.size = size
        self.line_h = size * 0.42
        self.numbered = numbered
        self.left, self.top, self.bottom = left, top, bottom
        self.orientation = orientation
        self.width = sum(c.width for c in columns)
        self.max_row_h = bottom - top - 25
        self._fitted: dict[tuple, tuple[float, list[str]]] = {}
        self.header_h = 0.0  # the height of the header, once drawn

    def fit(self, cell: _Cell, column: _Column, style: str | None = None
            ) -> tuple[float, list[str]]:
        """The font size of ``cell`` and its lines: the table's size, or a smaller one
        when a word or number is wider than the column (never split mid-word)."""
        style = cell.style if style is None else style
        key = (cell.text, cell.names, style, column.width)
        known = self._fitted.get(key)
        if known is None:
            known = self._fitted[key] = self._fit(cell, column, style)
        return known

    def _fit(self, cell: _Cell, column: _Column, style: str) -> tuple[float, list[str]]:
        pdf = self.pdf
        inner = column.width - 2 * _PAD
        size = self.size
        pdf.font(size, style)
        if cell.names:  # a smaller font first, then shortened with "…"
            while size > _NAME_MIN_SIZE and not all(pdf.width(pdf.t(n)) <= inner
                                                   for n in cell.names):
                size = max(_NAME_MIN_SIZE, size - 0.5)
                pdf.font(size, style)
            return size, [shorten_name(pdf, name, inner) for name in cell.names]
        while size > _MIN_SIZE and not pdf.fits(cell.text, inner):
            size = max(_MIN_SIZE, size - 0.5)
            pdf.font(size, style)
        return size, pdf.wrap(cell.text, inner)

    def height(self, cells: Sequence[_Cell]) -> float:
        """The height :meth:`row` gives ``cells`` (before any cut of a very long cell)."""
        return (max(len(self.fit(c, col)[1]) for c, col in zip(cells, self.columns))
                * self.line_h + 2 * _PAD)

    def header(self) -> None:
        pdf = self.pdf
        y = start = pdf.get_y()
        pdf.set_fill_color(*_HEAD_FILL)
        fitted = [self.fit(_Cell(c.title), c, "B") for c in self.columns]
        h = max(len(lines) for _, lines in fitted) * self.line_h + 2 * _PAD
        x = self.left
        for column, (size, lines) in zip(self.columns, fitted):
            pdf.rect(x, y, column.width, h, style="DF")
            pdf.font(size, "B")
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
            x = self.left
            for number, column in enumerate(self.columns, start=1):
                pdf.rect(x, y, column.width, nh, style="DF")
                pdf.line_at(x, y + nh - 1.0, column.width, f"({number})", "C")
                x += column.width
            y += nh
        self.header_h = y - start
        pdf.set_y(y)

    def new_page(self) -> None:
        self.pdf.add_page(orientation=self.orientation)
        self.pdf.set_y(self.top)

    def start(self, min_space: float = 20) -> None:
        if self.pdf.get_y() + min_space > self.bottom:
            self.new_page()
        self.header()

    def _room(self, h: float) -> None:
        if self.pdf.get_y() + h > self.bottom:
            self.new_page()
            self.header()

    def group(self, text: str) -> None:
        """A full-width bold row (the bidang)."""
        pdf = self.pdf
        pdf.font(self.size + 0.5, "B")
        lines = pdf.wrap(text, self.width - 2 * _PAD)
        h = len(lines) * self.line_h + 2 * _PAD
        self._room(h + self.line_h * 3)  # keep the group row with its first indicator
        self._last.clear()  # a new group prints its sasaran again
        pdf.font(self.size + 0.5, "B")  # again: a page break changed the font
        y = pdf.get_y()
        pdf.set_fill_color(*_GROUP_FILL)
        pdf.rect(self.left, y, self.width, h, style="DF")
        for k, line in enumerate(lines):
            pdf.text(self.left + _PAD, y + _PAD + (k + 0.78) * self.line_h, line)
        pdf.set_y(y + h)

    def row(self, cells: Sequence[_Cell], keep_after: float = 0.0, *,
            fresh: bool = False) -> None:
        """One row; ``keep_after`` mm more must fit on its page (what follows the last
        row, such as the legend and the signature block, stays with it) unless the two
        together are taller than a page. ``fresh``: the row was just moved to a new
        page (no second page break)."""
        pdf = self.pdf
        self._originals = list(cells)
        if self.merge_repeats:
            cells = list(cells)
            for index in self.merge_repeats:
                text = cells[index].text
                if self._last.get(index) == (pdf.page, text):
                    cells[index] = _Cell("", style=cells[index].style)
        fitted = [self.fit(c, col) for c, col in zip(cells, self.columns)]
        max_lines = int((self.max_row_h - 2 * _PAD) / self.line_h)
        for index, (size, lines) in enumerate(fitted):
            if len(lines) > max_lines:
                fitted[index] = (size, lines[: max_lines - 1] + [lines[max_lines - 1] + " …"])
        h = max(len(lines) for _, lines in fitted) * self.line_h + 2 * _PAD
        page = pdf.page
        if not fresh:
            page_room = self.bottom - self.top - self.header_h
            self._room(h + (keep_after if h + keep_after <= page_room else 0.0))
        if pdf.page != page and self.merge_repeats:  # new page: print the text again
            self._last.clear()
            self.row(self._originals, keep_after, fresh=True)
            return
        for index in self.merge_repeats:
            self._last[index] = (pdf.page, self._originals[index].text)
        y = pdf.get_y()
        x = self.left
        borders = []
        for cell, column, (size, lines) in zip(cells, self.columns, fitted):
            if cell.fill is not None:
                pdf.set_fill_color(*cell.fill)
                pdf.rect(x, y, column.width, h, style="F")
            borders.append((x, y, column.width, h))
            pdf.font(size, cell.style, cell.color)
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


def _indicator_columns(data: DocumentData) -> tuple[_Column, ...]:
    """The columns of the indicator table, the period in the figure headers ("Target TW
    III 2024", "Realisasi s.d. TW III 2024"); a quarterly document whose rows carry the
    quarter's own figures (issue 15) shows those and the "s.d." ones, with narrower
    text columns to stay on A4 landscape (277 mm)."""
    target, realisasi = data.column_period()
    if not data.split:
        return (
            _Column("No", 8, "C"),
            _Column("Sasaran/ Program", 30),
            _Column("Indikator Kinerja", 40),
            _Column("Penjelasan/ Formulasi Perhitungan", 34),
            _Column("Satuan", 15, "C"),
            _Column(target, 22, "R"),
            _Column(realisasi, 22, "R"),
            _Column("Capaian (%)", 16, "R"),
            _Column("Kategori", 18, "C"),
            _Column("Keterangan", 26),
            _Column("Analisis Capaian", 26),
            _Column("Bukti", 20),
        )
    q = data.quarter_short
    target_sd, realisasi_sd = data.column_period(cumulative=True)
    return (
        _Column("No", 7, "C"),
        _Column("Sasaran/ Program", 22),
        _Column("Indikator Kinerja", 30),
        _Column("Penjelasan/ Formulasi Perhitungan", 28),
        _Column("Satuan", 13, "C"),
        _Column(target, 19, "R"),
        _Column(realisasi, 19, "R"),
        _Column(f"Capaian {q} (%)", 14, "R"),
        _Column(target_sd, 19, "R"),
        _Column(realisasi_sd, 19, "R"),
        _Column(f"Capaian s.d. {q} (%)", 14, "R"),
        _Column("Kategori", 16, "C"),
        _Column("Keterangan", 18),
        _Column("Analisis Capaian", 25),
        _Column("Bukti", 14),
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


def _keterangan(row: IndicatorRow, result: Capaian) -> str:
    """The Keterangan column: the note typed with the figures (the same text as the
    workbook's Keterangan column, which is read back); a value that is no number says
    so, as the capaian cell cannot."""
    note = " ".join(row.note.split()) if row.note.strip() else ""
    if result.status is CapaianStatus.NO_DATA and result.keterangan.startswith("Nilai "):
        return f"{result.keterangan}; {note}" if note else result.keterangan
    return note


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

    # -- page 1: the portrait summary (read on a phone: no text under 10 pt)

    def first_page(self) -> None:
        pdf, data = self.pdf, self.data
        pdf.add_page(orientation="P")
        y = self.kop(10.0)
        x, w = _P_MARGIN, _P_BODY_W
        y = pdf.centered(y + 2, data.short_title.upper(), 14, "B", x=x, w=w)
        y = pdf.centered(y, data.period_label.upper(), 12, "B", x=x, w=w)
        parts = []
        if data.letter_number:
            parts.append(f"Nomor: {data.letter_number}")
        if data.letter_date:
            parts.append(f"Tanggal: {format_date(data.letter_date)}")
        if parts:
            y = pdf.centered(y, "    ".join(parts), _P_SIZE, x=x, w=w)
        if data.example_data:
            y += 1
            pdf.set_fill_color(*_RED)
            pdf.rect(x, y, w, 8, style="F")
            pdf.font(12, "B", (255, 255, 255))
            pdf.line_at(x, y + 5.6, w, pdf.t("DATA CONTOH - BUKAN DATA RESMI"), "C")
            pdf.set_text_color(*_BLACK)
            y += 8
        pdf.set_y(y + 3)
        self.figures()
        self.per_category()
        self.per_bidang()
        self.not_achieved()

    def kop(self, y: float) -> float:
        """The letterhead: optional logo at the left, Pemda, Dinas, address, double rule."""
        pdf, data = self.pdf, self.data
        x, w = _P_MARGIN, _P_BODY_W
        logo_h = 24.0
        text_x, text_w = x, w
        has_logo = False
        if data.logo_path and Path(data.logo_path).is_file():
            try:
                pdf.image(data.logo_path, x=x, y=y, h=logo_h)
                has_logo = True
            except Exception:  # an unreadable image: the kop without it
                has_logo = False
        if has_logo:  # the text stays centred on the page, clear of the logo
            text_x, text_w = x + logo_h + 2, w - 2 * (logo_h + 2)
        top = y
        office = data.office_name if data.government_line else data.office_line
        if data.government_line:
            y = pdf.centered(y, data.government_line, 13, "B", x=text_x, w=text_w)
        size = 15.0  # the office on one line where a slightly smaller size allows
        pdf.font(size, "B")
        while size > 12 and pdf.width(pdf.t(office.upper())) > text_w:
            size -= 0.5
            pdf.font(size, "B")
        y = pdf.centered(y, office.upper(), size, "B", x=text_x, w=text_w)
        if data.address.strip():
            y = pdf.centered(y, " ".join(data.address.split()), _P_SIZE, x=text_x, w=text_w)
        if has_logo:
            y = max(y, top + logo_h)
        y += 1.5
        pdf.set_line_width(0.9)
        pdf.line(x, y, x + w, y)
        pdf.set_line_width(0.3)
        pdf.line(x, y + 1.3, x + w, y + 1.3)
        pdf.set_line_width(0.2)
        return y + 3

    def _heading(self, text: str, need: float = 20.0) -> None:
        """A section title on the portrait pages, kept with the ``need`` mm that follow
        (the table's header and its first row)."""
        pdf = self.pdf
        if pdf.get_y() + 8 + need > _P_BOTTOM:
            pdf.add_page(orientation="P")
            pdf.set_y(_TOP)
        y = pdf.centered(pdf.get_y() + 2, text, 11, "B", x=_P_MARGIN, w=_P_BODY_W)
        pdf.set_y(y)

    def figures(self) -> None:
        """Five tiles: indicators, reached, not reached, no data, average capaian."""
        pdf = self.pdf
        s = summarise([c for _, c in self.measured])
        average = (format_percent(round_half_up(s.average_score, 2))
                   if s.average_score is not None else "-")
        tiles = [(str(s.total), "Jumlah indikator"), (str(s.reached), "Mencapai target"),
                 (str(s.not_reached), "Belum mencapai target"),
                 (str(s.no_data + s.no_target), "Belum ada data/ target"),
                 (average, "Rata-rata capaian")]
        gap = 2.0
        tile_w = (_P_BODY_W - gap * (len(tiles) - 1)) / len(tiles)
        pdf.font(_P_SIZE)
        label_lines = [pdf.wrap(label, tile_w - 3) for _, label in tiles]
        h = 10 + max(len(lines) for lines in label_lines) * 4.4 + 3
        y = pdf.get_y()
        for i, ((value, _), lines) in enumerate(zip(tiles, label_lines)):
            x = _P_MARGIN + i * (tile_w + gap)
            pdf.set_fill_color(*_SUMMARY_FILL)
            pdf.set_draw_color(120, 140, 180)
            pdf.rect(x, y, tile_w, h, style="DF", round_corners=True, corner_radius=2)
            pdf.font(16 if len(value) < 8 else 13, "B")
            pdf.line_at(x, y + 8, tile_w, pdf.t(value), "C")
            pdf.font(_P_SIZE)
            for k, line in enumerate(lines):
                pdf.line_at(x, y + 13 + k * 4.4, tile_w, line, "C")
        pdf.set_draw_color(*_BLACK)
        pdf.set_y(y + h + 2)

    def _portrait_table(self, columns: Sequence[_Column]) -> _Table:
        return _Table(self.pdf, columns, size=_P_SIZE, numbered=False, left=_P_MARGIN,
                      top=_TOP, bottom=_P_BOTTOM, orientation="P")

    def per_category(self) -> None:
        """How many indicators fall in each kategori (band), and how many have none."""
        data = self.data
        ordered = sorted(data.bands, key=lambda b: b.minimum, reverse=True)
        counts = {band.label: 0 for band in ordered}
        without = 0
        for _, result in self.measured:
            if result.kategori in counts:
                counts[result.kategori] += 1
            else:
                without += 1
        self._heading("Jumlah Indikator per Kategori")
        # one column per kategori (its range under its name), the counts below
        labels = [band.label for band in ordered] + (["Tanpa kategori"] if without else [])
        spans = []
        for index, band in enumerate(ordered):
            if index + 1 < len(ordered):
                spans.append(f"≥ {format_percent(band.minimum, None)}")
            else:
                spans.append(f"< {format_percent(ordered[index - 1].minimum, None)}"
                             if index else "")
        if without:
            spans.append("tanpa persentase")
        width = _P_BODY_W / len(labels)
        table = self._portrait_table([_Column(label, width, "C") for label in labels])
        table.start(20)
        table.row([_Cell(span, fill=_band_fill(data, label) if label in counts else None)
                   for label, span in zip(labels, spans)])
        table.row([_Cell(str(counts.get(label, without)), style="B") for label in labels])
        self.pdf.set_y(self.pdf.get_y() + 2)

    def per_bidang(self) -> None:
        """Per bidang: indicators, reached, and the average capaian of those with one."""
        by_bidang: dict[str, list[Capaian]] = {}
        for row, result in self.measured:
            by_bidang.setdefault(row.bidang, []).append(result)
        if not by_bidang:
            return
        self._heading("Capaian per Bidang")
        table = self._portrait_table((_Column("Bidang", 98), _Column("Indikator", 24, "R"),
                                      _Column("Tercapai", 24, "R"),
                                      _Column("Rata-rata capaian", 34, "R")))
        table.start(12)
        for bidang, results in by_bidang.items():
            s = summarise(results)
            average = (format_percent(round_half_up(s.average_score, 2))
                       if s.average_score is not None else "-")
            table.row([_Cell(bidang), _Cell(str(s.total)), _Cell(str(s.reached)),
                       _Cell(average, style="B")])
        self.pdf.set_y(self.pdf.get_y() + 2)

    #: How many indicators not achieved page 1 lists (the lowest first).
    NOT_ACHIEVED_SHOWN = 10

    def not_achieved(self) -> None:
        """The indicators that missed their target, lowest capaian first, each with its
        hindering factor (faktor penghambat)."""
        missed = [(row, result) for row, result in self.measured if result.reached is False]
        if not missed:
            return
        missed.sort(key=lambda item: (item[1].score is None,
                                      item[1].score if item[1].score is not None else 0))
        table = self._portrait_table((_Column("No", 10, "C"), _Column("Indikator", 80),
                                      _Column("Capaian", 24, "R"),
                                      _Column("Faktor penghambat", 66)))
        rows = []
        for number, (row, result) in enumerate(missed[: self.NOT_ACHIEVED_SHOWN], start=1):
            capaian = _capaian_text(result)
            if result.score is not None:
                capaian = f"{capaian}%"
            penghambat = " ".join(row.penghambat.split())
            rows.append([_Cell(str(number)), _Cell(row.name),
                         _Cell(capaian, style="B"),
                         _Cell(penghambat or "belum diisi", style="" if penghambat else "I")])
        first = table.height(rows[0]) + table.line_h + 2 * _PAD
        self._heading(f"Indikator Belum Mencapai Target ({len(missed)})", first)
        table.start(first)
        pdf = self.pdf
        shown = 0
        for cells in rows:  # as many as the page holds: the summary stays one page
            if shown and pdf.get_y() + table.height(cells) + 9 > _P_BOTTOM:
                break
            table.row(cells)
            shown += 1
        rest = len(missed) - shown
        if rest > 0:
            pdf = self.pdf
            pdf.font(_P_SIZE, "I")
            y = pdf.get_y() + 1
            for line in pdf.wrap(f"... dan {rest} indikator lain belum mencapai target: "
                                 "lihat tabel rincian.", _P_BODY_W):
                y += 4.6
                pdf.text(_P_MARGIN, y - 1, line)
            pdf.set_y(y)

    # -- the full landscape table

    def indicator_table(self) -> None:
        pdf, data = self.pdf, self.data
        pdf.add_page(orientation="L")
        pdf.set_y(_TOP)
        y = pdf.centered(_TOP - 1, "RINCIAN PENGUKURAN KINERJA PER INDIKATOR", 10, "B")
        pdf.set_y(y)
        split = data.split
        table = _Table(pdf, self._widened(_indicator_columns(data)), merge_repeats=(1,))
        table.start(40)
        by_bidang: dict[str, list[tuple[IndicatorRow, Capaian]]] = {}
        for row, result in self.measured:
            by_bidang.setdefault(row.bidang, []).append((row, result))
        own = {id(row): result for row, result in data.measured_period()} if split else {}
        tail = self.legend_height() + 4 + self.signature_height()
        number = 0
        for bidang, items in by_bidang.items():
            table.group(bidang)
            for row, result in items:
                number += 1
                cells = self._indicator_cells(number, row, result)
                if split:
                    cells[5:5] = self._period_cells(row, own.get(id(row)))
                # the last row keeps the legend and the signature block on its page
                table.row(cells, keep_after=tail if number == len(self.measured) else 0.0)
        if not self.measured:
            table.group("Belum ada indikator.")
        self.legend()

    #: The text columns that wrap, with their narrowest width: they give width to the
    #: Satuan and figure columns when a figure is long, and take what those (and empty
    #: text columns) don't need.
    _DONORS = {"Penjelasan/ Formulasi Perhitungan": 20.0, "Analisis Capaian": 16.0,
               "Sasaran/ Program": 20.0, "Indikator Kinerja": 26.0, "Keterangan": 14.0}
    _FIGURE_W = (12.0, 34.0)  # the narrowest and widest Satuan or figure column

    def _widened(self, columns: tuple[_Column, ...]) -> tuple[_Column, ...]:
        """The columns sized to the document: the Satuan and figure columns to their
        longest word or figure at the table's font size (a 13-digit rupiah figure
        stays readable, small figures give their room away), a text column that is
        empty in every row (Keterangan, Analisis) to its header; the wrapping text
        columns share the rest in proportion to their default widths, none below its
        narrowest, and the table keeps its width."""
        pdf, data = self.pdf, self.data
        size = 7.5
        rows = data.rows
        texts: dict[int, list[str]] = {4: [row.unit for row in rows]}
        figures = [(5, "target"), (6, "realisasi")]
        if data.split:
            figures = [(5, "period_target"), (6, "period_realisasi"),
                       (8, "target"), (9, "realisasi")]
        for index, attribute in figures:
            texts[index] = [_value_text(getattr(row, attribute), row.value_type)
                            for row in rows]
        titles = [c.title for c in columns]
        orig = [c.width for c in columns]
        want = list(orig)

        def title_w(index: int) -> float:
            pdf.font(size, "B")
            return max((pdf.width(w) for w in pdf.t(columns[index].title).split()),
                       default=0.0) + 2 * _PAD + 0.5

        low, high = self._FIGURE_W
        for index, values in texts.items():
            pdf.font(size - 0.5)  # a long figure may be set half a point smaller
            longest = max((pdf.width(pdf.t(word)) for text in values
                           for word in text.split()), default=0.0)
            want[index] = min(high, max(low, longest + 2 * _PAD + 0.5, title_w(index)))
        measured = self.measured
        empty = {"Keterangan": all(not _keterangan(r, c) for r, c in measured),
                 "Analisis Capaian": all(not analysis_text(r, c) for r, c in measured)}
        for title, is_empty in empty.items():
            if is_empty and title in titles:
                index = titles.index(title)
                want[index] = max(low, title_w(index))
        donors = {titles.index(t): floor for t, floor in self._DONORS.items()
                  if t in titles and not empty.get(t, False)}
        if not donors:
            return columns
        total = sum(orig)
        floors = sum(donors.values())
        room = total - sum(w for i, w in enumerate(want) if i not in donors)
        if room < floors:  # long figures: they grow only as far as the floors allow
            growth = sum(max(0.0, want[i] - orig[i]) for i in texts)
            keep = max(0.0, 1 - (floors - room) / growth) if growth else 0.0
            for i in texts:
                if want[i] > orig[i]:
                    want[i] = orig[i] + (want[i] - orig[i]) * keep
            room = total - sum(w for i, w in enumerate(want) if i not in donors)
        free = dict(donors)
        while free:  # share ``room`` in proportion to the defaults, floors respected
            share = sum(orig[d] for d in free)
            given = {d: room * orig[d] / share for d in free}
            low_ones = {d for d, w in given.items() if w < free[d]}
            if not low_ones or room <= sum(free.values()):
                for d, w in given.items():
                    want[d] = w
                break
            for d in low_ones:
                want[d] = free.pop(d)
                room -= want[d]
        return tuple(_Column(c.title, w, c.align) for c, w in zip(columns, want))

    def _indicator_cells(self, number: int, row: IndicatorRow, result: Capaian) -> list[_Cell]:
        has_percent = result.score is not None
        text_align = "C" if ValueType(row.value_type) is ValueType.TEXT else None
        evidence = tuple(name for name in row.evidence if name.strip())
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
            _Cell(_keterangan(row, result)),
            _Cell(analysis_text(row, result)),
            _Cell("-" if not evidence else "", names=evidence),
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
        pdf = self.pdf
        pdf.font(7, "I")
        y = _small_lines(pdf, self._legend_texts(), pdf.get_y() + 1.5)
        pdf.set_y(y + 2)

    def legend_height(self) -> float:
        """The height :meth:`legend` takes (to keep it with the last table row)."""
        pdf = self.pdf
        pdf.font(7, "I")
        lines = sum(len(pdf.wrap(text, _BODY_W)) for text in self._legend_texts())
        return 1.5 + 3.2 * lines + 2

    def _legend_texts(self) -> list[str]:
        data = self.data
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
        return texts

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
            when = f"Keadaan per {_local(comp.as_of, self.data.timezone)} {self.data.zone_label}"
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
                 format_working_minutes(comp.actual_minutes, self.data.day_minutes), status]
        return [_Cell(text, fill=fill, color=color, style="B") for text in texts]
    _SIG_W, _SIG_SIZE = 100.0, 10

    def signature_height(self) -> float:
        """The height of the signature block with the QR code and the initials (0 when
        the document has neither signatory nor verification code)."""
        pdf, data = self.pdf, self.data
        sig = data.signatory
        if sig is None and not data.verification_code:
            return 0.0
        line_h = self._SIG_SIZE * 0.48
        title_lines = []
        if sig is not None:
            pdf.font(self._SIG_SIZE)
            title_lines = pdf.wrap(sig.full_title, self._SIG_W)
        needed = (len(title_lines) + 5) * line_h + 22 + 9 * len(data.initials)
        return max(needed, 42 if data.verification_code else 0)

    def signature_and_verification(self) -> None:
        pdf, data = self.pdf, self.data
        sig = data.signatory
        if sig is None and not data.verification_code:
            return
        block_w = self._SIG_W
        x = _PAGE_W - _MARGIN - block_w
        size = self._SIG_SIZE
        line_h = size * 0.48
        title_lines = []
        if sig is not None:
            pdf.font(size)
            title_lines = pdf.wrap(sig.full_title, block_w)
        needed = self.signature_height()
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
        self.first_page()
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
