"""The time standard in full: the SOP's total standard from the definition file, and the
"Kepatuhan SOP" appendix of the final PDF (made through the bot's real document path)
listing every step with its state, each Kabid of step 4, steps 10 and 11, and the
totals; the archive then records steps 10-11 and the agencies' receipts."""
from __future__ import annotations

import csv
import io
import re
import tomllib
import zipfile

from openpyxl import load_workbook
from sqlalchemy import select

from bot.core import archive as archive_service
from bot.core.sop import PACKAGED_DEFINITION, TimeStandard, load_definition
from models import Cycle, Delivery, StepRun, Unit
from models.enums import Role
from reports.document_data import WORKING_DAY_MINUTES, format_working_minutes
from reports.workbook import STEPS_SHEET
from tests.test_documents_service import (
    UNITS, flat, numbered_final, pdf_text, stored_bytes, walk,  # noqa: F401
)
from tests.test_workflow import open_run

STATES = re.compile(r"Selesai, tepat waktu|Selesai, terlambat|Sedang berjalan, melewati "
                    r"standar|Sedang berjalan|Belum dimulai|Ditutup tanpa data|Masih berjalan|"
                    r"Memenuhi standar|Melewati standar")


def test_total_standard_of_the_definition_file():
    sop = load_definition()
    assert sop.total_text == "15 hari 1 jam 25 menit"
    # the same sum made independently from the file: 3 steps of "1-5 hari" and
    # 5 + 5 + 30 + 10 + 10 + 5 + 10 + 10 minutes
    raw = tomllib.loads(PACKAGED_DEFINITION.read_text(encoding="utf-8"))
    standards = [TimeStandard.parse(step["time"]) for step in raw["step"]]
    days = sum(s.maximum for s in standards if s.unit == "days")
    minutes = sum(s.maximum * (60 if s.unit == "hours" else 1)
                  for s in standards if s.unit != "days")
    assert (days, minutes) == (15, 85)
    assert len(standards) == 11


def appendix(text: str) -> str:
    start = text.index("LAMPIRAN: KEPATUHAN SOP")
    return text[start:]


async def test_final_pdf_appendix_lists_every_step_with_its_state_and_the_totals(
        walk, clock, tmp_path, services):
    cycle_id, _doc, _letter, final, kasubag, staf = await numbered_final(walk, clock)
    numbered_at = clock.now()
    text = flat(appendix(pdf_text(await stored_bytes(walk, final.pdf_file_id))))

    # the moment of the record, said plainly: the final PDF is made at numbering
    assert "Keadaan per" in text and "saat dokumen ini diberi nomor (langkah 9)" in text
    assert "kepatuhan-sop.csv" in text
    sop = load_definition()
    for step in sop.steps:
        assert step.activity[:40] in text, step.number
    async with walk.sm() as s:
        units = {u.code: u.name for u in (await s.execute(select(Unit))).scalars()}
        started = min(r.started_at for r in (await s.execute(
            select(StepRun).where(StepRun.cycle_id == cycle_id))).scalars())
    for code in UNITS:  # every Kabid of step 4, not one
        assert f"— {units[code]}" in text, code
    # states in the order of the rows: steps 1-3, four bidang, 5-9 done; step 10 just
    # opened by the numbering; step 11 not started; the cycle still under way
    assert STATES.findall(text) == (
        ["Selesai, tepat waktu"] * 12 + ["Sedang berjalan", "Belum dimulai", "Masih berjalan"])
    # the totals: the SOP's standard and the cycle's working time up to the numbering
    actual = walk.sv.calendar.working_minutes_between(started, numbered_at)
    assert "Total siklus" in text and "15 hari 1 jam 25 menit" in text
    assert f"Total waktu aktual siklus" in text
    assert format_working_minutes(actual) in text
    assert 0 < actual < 15 * WORKING_DAY_MINUTES + 85

    # the workbook of the final version has the same record
    wb = load_workbook(io.BytesIO(await stored_bytes(walk, final.workbook_file_id)))
    cells = [c.value for row in wb[STEPS_SHEET].iter_rows() for c in row
             if isinstance(c.value, str)]
    assert "Total siklus" in cells and "15 hari 1 jam 25 menit" in cells
    assert cells.count("Selesai, tepat waktu") == 12
    assert "Sedang berjalan" in cells and "Belum dimulai" in cells
    assert format_working_minutes(actual) in cells

    # steps 10 and 11 after the final PDF: the archive's own record
    run10 = await open_run(walk, cycle_id, 10)
    clock.advance(minutes=5)
    await walk(lambda wf, s: wf.archive(kasubag, run10.id))
    async with walk.sm() as s:
        deliveries = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    contact = await walk.who(Role.CONTACT)
    clock.advance(minutes=2)
    await walk(lambda wf, s: wf.send_delivery(staf, deliveries[0].id))
    for d in deliveries[1:]:
        async def by_photo(wf, s, d=d):
            photo = await wf.sv.store.put(s, b"\xff\xd8 tanda terima " + d.agency_key.encode(),
                                          "tanda-terima.jpg", "image/jpeg")
            return await archive_service.record_receipt(
                wf, staf, d.id, received_by="Petugas Loket", receipt_file_id=photo.id)
        await walk(by_photo)
    clock.advance(days=1)  # Bappeda confirms the next day: its own time
    await walk(lambda wf, s: archive_service.record_receipt(wf, contact, deliveries[0].id))
    out = tmp_path / "arsip.zip"
    async with walk.sm() as s:
        assert (await s.get(Cycle, cycle_id)).closed_at is not None
        await archive_service.build_archive(s, services.store, cycle_id, out, services=services)
    with zipfile.ZipFile(out) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("kepatuhan-sop.csv").decode())))
        assert "kepatuhan-sop.csv" in z.read("MANIFEST.txt").decode()
    steps = [r for r in rows if r["langkah"]]
    assert [int(r["langkah"]) for r in steps if r["dihitung"] == "ya"] == [
        1, 2, 3, 4, 4, 4, 4, 5, 6, 7, 8, 9, 10, 11]
    assert all(r["status"] == "Selesai, tepat waktu" for r in steps if r["dihitung"] == "ya")
    receipts = [r for r in steps if r["dihitung"] != "ya"]
    assert [r["status"] for r in receipts] == ["Diterima"] * 3
    assert receipts[0]["aktual_menit_kerja"] == str(WORKING_DAY_MINUTES)  # a working day
    total = rows[-1]
    assert total["kegiatan"] == "Total siklus" and total["standar"] == "15 hari 1 jam 25 menit"
    assert total["standar_menit_kerja"] == str(15 * WORKING_DAY_MINUTES + 85)
    assert total["status"] == "Memenuhi standar waktu SOP"
    # the total ends with the sending (step 11), not with Bappeda's receipt a day later
    assert int(total["aktual_menit_kerja"]) < actual + 30


def test_states_in_words_and_a_receipt_is_never_late():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from reports.document_data import (
        RECEIPT_WAITING, STEP_DONE, STEP_NOT_STARTED, STEP_OPEN, STEP_RETURNED, STEP_SKIPPED,
        Compliance, StepTiming,
    )

    at = datetime(2024, 10, 7, 8, 0, tzinfo=ZoneInfo("Asia/Jakarta"))

    def step(state, actual, *, counted=True, rounds=1, unit=""):
        return StepTiming(4, "Menyiapkan bahan", "Kepala Bidang", "Sri <Rahayu> & \"Putri\" 🌾",
                          "1-5 hari", 5 * 510, actual, at, None, unit=unit, state=state,
                          rounds=rounds, counted=counted)

    assert step(STEP_DONE, 510).status == "Selesai, tepat waktu"
    assert step(STEP_DONE, 5 * 510 + 1).status == "Selesai, terlambat"
    assert step(STEP_DONE, 900, rounds=2).status == "Selesai, tepat waktu (2 putaran)"
    assert step(STEP_OPEN, 30).status == "Sedang berjalan"
    assert step(STEP_OPEN, 6 * 510).status == "Sedang berjalan, melewati standar"
    assert step(STEP_OPEN, 6 * 510).late
    assert step(STEP_NOT_STARTED, None).status == "Belum dimulai"
    assert step(STEP_SKIPPED, 12).status == "Ditutup tanpa data"
    assert step(STEP_RETURNED, 40).status == "Dikembalikan, menunggu perbaikan"
    assert step(STEP_DONE, 1, unit="Bidang Perindustrian").label == (
        "Menyiapkan bahan — Bidang Perindustrian")
    waiting = step(RECEIPT_WAITING, 50 * 510, counted=False)
    assert waiting.status == "Menunggu tanda terima" and not waiting.late
    total = Compliance("15 hari 1 jam 25 menit", 7735, 7736, True, at)
    assert total.met is False and total.verdict == "Melewati standar waktu SOP"
    assert Compliance("15 hari 1 jam 25 menit", 7735, 100, False, at).met is None
    assert Compliance("15 hari 1 jam 25 menit", 7735, 7735, True, at).met is True
