"""An office in Makassar works in WITA: its messages, its documents (PDF and workbook) and
its receipts show WITA times with the WITA label, never WIB."""
from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from bot.core.services import build_services
from bot.core.workcal import format_wib, office_zone, set_office_zone
from models import Cycle, Outbox
from tests.conftest import wib
from tests.test_workflow import Walk, start


@pytest.fixture
def wita(config, clock):
    config.calendar.timezone = "Asia/Makassar"
    services = build_services(config, clock)
    yield services
    set_office_zone("Asia/Jakarta")  # the next test's services set it again anyway


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_a_wita_office_shows_wita_in_messages_documents_and_receipts(
        wita, sessionmaker, clock, office, tmp_path):
    from bot.core.archive import wib_text
    from bot.core.documents import document_data
    from bot.core.signing import appearance_text
    from reports.pdf import build_pdf_with_signature_box
    from reports.receipt import ReceiptData, build_receipt_pdf
    from reports.workbook import build_workbook

    assert office_zone().key == "Asia/Makassar"
    # 08.00 WIB is 09.00 WITA
    assert format_wib(wib(2024, 10, 7, 8, 0)) == "Senin, 7 Oktober 2024 pukul 09.00 WITA"
    assert wib_text(wib(2024, 10, 7, 8, 0)) == "2024-10-07 09:00:00 WITA"

    # a message: the disposition's deadline, in WITA
    walk = Walk(sessionmaker, wita, clock)
    cycle_id = await start(walk)
    async with sessionmaker() as s:
        texts = [o.payload["text"] for o in (await s.execute(select(Outbox))).scalars()]
    assert texts and any("WITA" in text for text in texts)
    assert not any("WIB" in text for text in texts)

    # the documents: step times in WITA, the office-hours note with the WITA label
    clock.advance(minutes=30)
    async with sessionmaker() as s:
        from bot.core.workflow import Workflow

        cycle = await s.get(Cycle, cycle_id)
        data = await document_data(Workflow(s, wita), cycle, version=1)
    assert data.timezone == "Asia/Makassar" and data.zone_label == "WITA"
    started = data.steps[0].started
    pdf_path, _box = build_pdf_with_signature_box(data, tmp_path / "dok.pdf")
    text = pdf_text(pdf_path.read_bytes())
    assert "WITA" in text and "WIB" not in text
    assert f"{started.astimezone(office_zone()):%H.%M}" in text  # 09.00, not 08.00
    wb = load_workbook(build_workbook(data, tmp_path / "dok.xlsx"))
    cells = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert any(isinstance(v, str) and "WITA" in v for v in cells)
    assert not any(isinstance(v, str) and "WIB" in v for v in cells)
    first_start = next(v for v in cells if hasattr(v, "hour") and v.date() == date(2024, 10, 7))
    assert first_start.hour == 9

    # the receipt and the signature's appearance
    local = wib(2024, 10, 21, 10, 5).astimezone(office_zone())
    receipt = build_receipt_pdf(ReceiptData(
        office_name="Dinas Tenaga Kerja Kota Makassar", regency="Kota Makassar",
        place="Makassar", letter_number="050/1/II.08/2024", letter_date=date(2024, 10, 21),
        subject="Pengukuran Kinerja Triwulan III", agency="Bappeda & <Litbang> \"Kota\"",
        received_by="Andi Nur 'Ica' Rahmawati", received_at=local))
    text = pdf_text(receipt)
    assert "11.05 WITA" in text and "WIB" not in text
    assert appearance_text("Kadis", "Kepala Dinas", local).endswith("11.05 WITA")
