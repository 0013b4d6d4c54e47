"""The tanda terima (receipt) of the documents delivered to one agency (step 11), as a
one-page A4 PDF written with fpdf2.

A pure function of :class:`ReceiptData`: the caller fills it from the database. The page
shows the office, the letter number and date, the subject, the receiving agency, who
received it and when (WIB), how the receipt was recorded, and "DATA CONTOH" across the
head when the office runs on example data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from reports.numbers import format_date, zone_label
from reports.pdf import add_unicode_font, latin1_text

_FONT = "DejaVu"
_CORE_FONT = "Helvetica"
_MARGIN = 20.0
_RED = (192, 0, 0)
_GREY = (90, 90, 90)

_NEXT = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}


@dataclass(frozen=True)
class ReceiptData:
    """What one tanda terima shows. ``received_at`` is shown in the zone it is given in,
    with its label (the caller passes an aware datetime in the office's zone); ``method`` says how it was recorded, e.g.
    "Dikonfirmasi oleh penerima melalui bot" or "Foto tanda terima bertanda tangan"."""

    office_name: str
    regency: str
    place: str
    letter_number: str
    letter_date: date | None
    subject: str
    agency: str
    received_by: str
    received_at: datetime
    method: str = ""
    delivered_by: str = ""
    documents: tuple[str, ...] = ()
    example_data: bool = False
    receipt_no: str = ""


def _moment(moment: datetime) -> str:
    """In the zone the caller gave (the office's), with its label (WIB, WITA, WIT)."""
    return f"{format_date(moment.date())} pukul {moment:%H.%M} {zone_label(moment)}"


class _ReceiptPdf(FPDF):
    def __init__(self, data: ReceiptData) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.data = data
        self.unicode_font = add_unicode_font(self)
        self.family = _FONT if self.unicode_font else _CORE_FONT
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(True, _MARGIN)

    def t(self, text: object) -> str:
        text = "" if text is None else str(text)
        return text if self.unicode_font else latin1_text(text)

    def font(self, size: float, style: str = "") -> None:
        self.set_font(self.family, style, size)

    def header(self) -> None:
        if self.data.example_data:
            self.font(9, "B")
            self.set_text_color(*_RED)
            label = self.t("DATA CONTOH")
            self.text(self.w - _MARGIN - self.get_string_width(label), 12, label)
            self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-14)
        self.font(7.5)
        self.set_text_color(*_GREY)
        self.cell(0, 4, self.t("Dicetak oleh Bot SOP Data Kinerja"), align="C")
        self.set_text_color(0, 0, 0)


def build_receipt_pdf(data: ReceiptData, path: Path | None = None) -> bytes:
    """Write the tanda terima; returns the PDF bytes (also saved at ``path`` if given)."""
    pdf = _ReceiptPdf(data)
    pdf.set_title(pdf.t(f"Tanda Terima {data.letter_number} - {data.agency}"))
    pdf.set_author(pdf.t(f"{data.office_name} {data.regency}".strip()))
    pdf.set_creator("sopbot")
    pdf.set_creation_date(data.received_at)
    pdf.add_page()
    width = pdf.w - 2 * _MARGIN

    pdf.font(13, "B")
    pdf.multi_cell(width, 6.5, pdf.t(data.office_name.upper()), align="C", **_NEXT)
    if data.regency:
        pdf.font(11, "B")
        pdf.multi_cell(width, 6, pdf.t(data.regency.upper()), align="C", **_NEXT)
    y = pdf.get_y() + 2
    pdf.set_line_width(0.6)
    pdf.line(_MARGIN, y, pdf.w - _MARGIN, y)
    pdf.set_line_width(0.2)
    pdf.ln(8)

    pdf.font(14, "B")
    pdf.cell(width, 8, pdf.t("TANDA TERIMA DOKUMEN"), align="C")
    pdf.ln(8)
    if data.receipt_no:
        pdf.font(9)
        pdf.cell(width, 5, pdf.t(f"No. {data.receipt_no}"), align="C")
        pdf.ln(5)
    pdf.ln(6)

    pdf.font(10.5)
    pdf.multi_cell(width, 5.5, pdf.t(
        "Telah diterima dokumen berikut dari " + f"{data.office_name} {data.regency}".strip()
        + ":"), align="L", **_NEXT)
    pdf.ln(3)
    rows = [
        ("Nomor surat", data.letter_number or "-"),
        ("Tanggal surat", format_date(data.letter_date) if data.letter_date else "-"),
        ("Perihal", data.subject or "-"),
        ("Diterima oleh", data.received_by or "-"),
        ("Instansi penerima", data.agency),
        ("Waktu diterima", _moment(data.received_at)),
    ]
    if data.delivered_by:
        rows.append(("Disampaikan oleh", data.delivered_by))
    if data.method:
        rows.append(("Cara pencatatan", data.method))
    label_w = 45.0
    for label, value in rows:
        pdf.font(10.5)
        y0 = pdf.get_y()
        pdf.cell(label_w, 6.5, pdf.t(label))
        pdf.cell(4, 6.5, ":")
        pdf.multi_cell(width - label_w - 4, 6.5, pdf.t(value), align="L", **_NEXT)
        if pdf.get_y() < y0 + 6.5:
            pdf.set_y(y0 + 6.5)
    if data.documents:
        pdf.ln(3)
        pdf.font(10.5, "B")
        pdf.cell(width, 6, pdf.t("Dokumen:"))
        pdf.ln(6)
        pdf.font(10)
        for i, name in enumerate(data.documents, start=1):
            pdf.multi_cell(width, 5.5, pdf.t(f"{i}. {name}"), align="L", **_NEXT)

    # signatures: the receiver on the right, the sender on the left
    pdf.ln(12)
    col = width / 2
    y = pdf.get_y()
    place_date = f"{data.place}, {format_date(data.received_at.date())}" if data.place else \
        format_date(data.received_at.date())
    pdf.font(10.5)
    pdf.set_xy(_MARGIN + col, y)
    pdf.cell(col, 5.5, pdf.t(place_date), align="C")
    y += 6
    pdf.set_xy(_MARGIN, y)
    pdf.cell(col, 5.5, pdf.t("Yang menyerahkan,"), align="C")
    pdf.set_xy(_MARGIN + col, y)
    pdf.cell(col, 5.5, pdf.t("Yang menerima,"), align="C")
    y += 26
    pdf.font(10.5, "B")
    pdf.set_xy(_MARGIN, y)
    pdf.cell(col, 5.5, pdf.t(data.delivered_by or "(.............................)"),
             align="C")
    pdf.set_xy(_MARGIN + col, y)
    pdf.cell(col, 5.5, pdf.t(data.received_by or "(.............................)"),
             align="C")
    out = bytes(pdf.output())
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(out)
    return out
