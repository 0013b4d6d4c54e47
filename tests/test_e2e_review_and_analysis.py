"""Issue 13, items 5 and 6, end to end over the emulator as people act on their phones:
the Kasubag sends single answers back (a note for each) and only those are asked again;
after a value under or over the target the bidang writes the analysis of the capaian
(faktor penghambat, upaya / rencana tindak lanjut, faktor pendukung), which reaches the
workbook and the PDF."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from bot.core.documents import document_data
from bot.core.workflow import Workflow, WrongState
from models import AuditLog, CycleIndicator, Indicator, StepRun, Submission, Target
from models.enums import IndicatorLevel, Role, StepStatus
from reports.pdf import build_pdf
from reports.workbook import OFFICE_SHEET, build_workbook
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.helpers import person
from tests.test_e2e_data_entry import answer_of, press_and_wait, subs, to_collection

WHY = 'Anggaran pelatihan "BLK" < rencana & 2 instruktur mutasi 😟'
PLAN = "Usulkan tambahan instruktur ke Disnaker Provinsi; kelas ulang TW IV 💪"


async def answer(user, value: str, contains: str = "Tersimpan"):
    """Type; the newest card that has ``contains`` (and buttons) is returned."""
    sent = await user.send_text(value)
    return await user.wait_for(after=sent, predicate=lambda m: contains in m.text
                               and bool(m.buttons))


async def start(kabid, total: int = 6):
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    return await press_and_wait(kabid, request, "Mulai isi data", f"Indikator 1 dari {total}")


async def latest(sm, cycle_id: int, code: str) -> Submission:
    return (await subs(sm, cycle_id, code))[-1]


async def test_under_the_target_the_hindering_factor_and_the_plan_are_asked_and_printed(
        harness, people, sessionmaker, tmp_path):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    card = await start(kabid)

    # TPT 4,5 % against 4,15 % (lower is better): capaian 91,57 %, under the target
    card = await answer(kabid, "4,5", contains="faktor penghambat")
    assert "Tersimpan" in card.text and "4,5%" in card.text
    assert "Capaian 91,57%: di bawah target" in card.text
    assert "Lewati pertanyaan" in card.button_texts and "Lanjut ▶" in card.button_texts
    [tpt] = await subs(sm, cycle_id, "PPTK-01")
    assert tpt.value == Decimal("4.5") and tpt.penghambat == ""

    card = await answer(kabid, WHY, contains="upaya / rencana tindak lanjut")
    assert "Faktor penghambat tersimpan" in card.text
    assert f"Faktor penghambat: {WHY}" in card.text and "Indikator 1 dari 6" in card.text
    card = await answer(kabid, PLAN, contains="Upaya / rencana tindak lanjut tersimpan")
    assert f"Upaya / rencana tindak lanjut: {PLAN}" in card.text
    assert "Apa " not in card.text and "Lewati pertanyaan" not in card.button_texts
    assert "Kirim foto/dokumen bukti" in card.text
    revisions = await subs(sm, cycle_id, "PPTK-01")
    assert [(s.value, s.penghambat, s.upaya) for s in revisions] == [
        (Decimal("4.5"), "", ""), (Decimal("4.5"), WHY, ""), (Decimal("4.5"), WHY, PLAN)]

    # a note afterwards keeps the analysis
    card = await press_and_wait(kabid, card, "Tambah catatan", "Tulis catatan")
    sent = await kabid.send_text("Sumber: BPS <Sakernas> Agustus")
    card = await kabid.wait_for(after=sent, text_contains="Catatan tersimpan")
    assert f"Faktor penghambat: {WHY}" in card.text
    assert (await latest(sm, cycle_id, "PPTK-01")).upaya == PLAN

    # 90 % against 85 %: over the target, the supporting factor, skipped by its button
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")
    card = await answer(kabid, "90", contains="faktor pendukung")
    assert "Capaian 105,88%: melampaui target" in card.text
    card = await press_and_wait(kabid, card, "Lewati pertanyaan", "Kirim foto/dokumen bukti")
    assert "Apa faktor pendukungnya" not in card.text and "Indikator 2 dari 6" in card.text
    assert [s.pendukung for s in await subs(sm, cycle_id, "PPTK-02")] == [""]

    # exactly on the target (70 % against 70 %): nothing is asked
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 3 dari 6")
    card = await answer(kabid, "70")
    assert "Apa faktor" not in card.text and "Lewati pertanyaan" not in card.button_texts

    # the document: the row carries the analysis; the workbook has it in its column and
    # the PDF in the Keterangan cell
    async with sm() as s:
        wf = Workflow(s, harness.services)
        data = await document_data(wf, await wf.get_cycle(cycle_id), version=1)
    row = next(r for r in data.rows if r.code == "PPTK-01")
    assert (row.penghambat, row.upaya, row.pendukung) == (WHY, PLAN, "")
    assert next(r for r in data.rows if r.code == "PPTK-02").pendukung == ""
    ws = load_workbook(build_workbook(data, tmp_path / "ukur.xlsx"))[OFFICE_SHEET]
    cells = {c.value: c for r in ws.iter_rows() for c in r if isinstance(c.value, str)}
    column = cells["Analisis Capaian"].column
    code_row = cells["PPTK-01"].row
    assert ws.cell(row=code_row, column=column).value == (
        f"Faktor penghambat: {WHY}\nUpaya tindak lanjut: {PLAN}")
    assert ws.cell(row=cells["PPTK-02"].row, column=column).value is None
    reader = PdfReader(str(build_pdf(data, tmp_path / "ukur.pdf")))
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    assert "penghambat: Anggaran pelatihan" in text and "lanjut: Usulkan tambahan" in text


async def test_a_number_typed_while_an_analysis_question_is_open_answers_the_next_indicator(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    card = await start(kabid)
    card = await answer(kabid, "4,5", contains="faktor penghambat")

    # "88" is no hindering factor: it is indicator 2's value, the question is left empty
    card = await answer(kabid, "88", contains="Indikator 2 dari 6")
    assert "Tersimpan: Persentase kelulusan" in card.text and "88%" in card.text
    assert "Faktor penghambat untuk Tingkat Pengangguran Terbuka tidak diisi" in card.text
    assert [(s.value, s.penghambat) for s in await subs(sm, cycle_id, "PPTK-01")] == [
        (Decimal("4.5"), "")]
    [kel] = await subs(sm, cycle_id, "PPTK-02")
    assert kel.value == Decimal(88)

    # 88 % is over the target: a sentence with numbers in it is the answer, not a value
    assert "Apa faktor pendukungnya" in card.text
    support = "Ada 3 LPK baru & 120 peserta \"magang\" <Jepang> 🇯🇵"
    card = await answer(kabid, support, contains="Faktor pendukung tersimpan")
    assert "Indikator 2 dari 6" in card.text and f"Faktor pendukung: {support}" in card.text
    assert (await latest(sm, cycle_id, "PPTK-02")).pendukung == support
    assert await subs(sm, cycle_id, "PPTK-03") == []

    # an ambiguous number typed on an open question is still asked about first
    card = await answer(kabid, "65", contains="Indikator 3 dari 6")  # 65 % against 70 %
    assert "Capaian 92,86%: di bawah target" in card.text
    card = await answer(kabid, "1,250", contains="dapat dibaca")
    assert "Indikator 4 dari 6" in card.text
    assert "Faktor penghambat untuk Persentase lowongan kerja yang terpenuhi tidak diisi" \
        in card.text


async def test_mandatory_analysis_cannot_be_skipped_nor_sent_without(
        harness, people, sessionmaker):
    sm = sessionmaker
    harness.services.config.measurement.analysis_mandatory = True
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    card = await start(kabid)
    card = await answer(kabid, "4,5", contains="faktor penghambat")
    assert "Wajib diisi sebelum lanjut" in card.text
    assert "Lewati pertanyaan" not in card.button_texts
    assert not any(b.startswith("Lanjut") for b in card.button_texts)

    # a number is refused with a hint; nothing saved for indicator 2
    card = await answer(kabid, "88", contains="bukan jawaban")
    assert "Indikator 1 dari 6" in card.text and "faktor penghambat" in card.text
    assert await subs(sm, cycle_id, "PPTK-02") == []

    # stopped half-way; the rest filled in; sending is refused while it lacks the analysis
    card = await answer(kabid, WHY, contains="upaya / rencana tindak lanjut")
    q = await kabid.press(card, text="Batal")
    stopped = await kabid.wait_for(after=q, text_contains="Pengisian dihentikan")
    async with sm() as s, s.begin():
        wf = Workflow(s, harness.services)
        kabid_p = await person(s, Role.KABID, "PPTK")
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 4))).scalar_one()
        items = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cycle_id).order_by(CycleIndicator.position))).scalars()
        for item in list(items)[1:]:
            ind = await s.get(Indicator, item.indicator_id)
            value = {"PPTK-04": 200, "PPTK-06": 160}.get(ind.code, item.target)
            await wf.record_answer(kabid_p, run.id, item.id, raw_text=str(value),
                                   value=Decimal(value))
    card = await press_and_wait(kabid, stopped, "Lanjutkan", "Ringkasan data")
    q = await kabid.press(card, text="Kirim ke Kasubag")
    assert "belum diisi faktor penghambat dan upayanya" in await answer_of(kabid, q)

    # "Ubah 1", "Tetap": the missing question is asked; then it can be sent
    card = await press_and_wait(kabid, card, "Ubah 1", "Indikator 1 dari 6")
    card = await press_and_wait(kabid, card, "Tetap", "upaya / rencana tindak lanjut")
    card = await answer(kabid, PLAN, contains="Upaya / rencana tindak lanjut tersimpan")
    card = await press_and_wait(kabid, card, "Lanjut", "Ringkasan data")
    await press_and_wait(kabid, card, "Kirim ke Kasubag", "telah dikirim")
    last = await latest(sm, cycle_id, "PPTK-01")
    assert (last.value, last.penghambat, last.upaya) == (Decimal("4.5"), WHY, PLAN)


async def test_the_kasubag_returns_single_answers_and_only_those_are_asked_again(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    staf = people.user(Role.STAF, "PPTK")
    staf_person = people.person(Role.STAF, "PPTK")
    kabid_person = people.person(Role.KABID, "PPTK")

    # indicator 4 handed to the staf, who answers it; the Kabid the rest, and sends
    card = await start(kabid)
    card = await press_and_wait(kabid, card, "Serahkan ke staf", "Pilih indikatornya")
    card = await press_and_wait(kabid, card, "4. Jumlah pencari kerja", "Serahkan")
    card = await press_and_wait(kabid, card, staf_person.name, "diserahkan kepada")
    told = await staf.wait_for(text_contains="menyerahkan pengisian indikator")
    scard = await press_and_wait(staf, told, "Mulai isi data", "Indikator 1 dari 1")
    scard = await answer(staf, "150")
    scard = await press_and_wait(staf, scard, "Lanjut", "Ringkasan data")
    q = await staf.press(scard, text="Selesai")
    await staf.wait_for(after=q, text_contains="Terima kasih")
    card = await answer(kabid, "4,1", contains="faktor pendukung")  # 101,2 %
    support = "Job fair <Liwa> & 12 perusahaan \"padat karya\" 🏭"
    card = await answer(kabid, support, contains="Faktor pendukung tersimpan")
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")
    for value, nxt in [("85", "Indikator 3 dari 6"), ("70", "Indikator 4 dari 6")]:
        card = await answer(kabid, value)
        card = await press_and_wait(kabid, card, "Lanjut", nxt)
    card = await press_and_wait(kabid, card, "Ringkasan", "Ringkasan data")
    card = await press_and_wait(kabid, card, "Ubah 5", "Indikator 5 dari 6")
    card = await answer(kabid, "30")
    card = await press_and_wait(kabid, card, "Lanjut", "Ringkasan data")
    card = await press_and_wait(kabid, card, "Ubah 6", "Indikator 6 dari 6")
    card = await answer(kabid, "160")
    card = await press_and_wait(kabid, card, "Lanjut", "Ringkasan data")
    await press_and_wait(kabid, card, "Kirim ke Kasubag", "telah dikirim")

    # the Kasubag: "Lihat data", then "Kembalikan jawaban tertentu"; a note for each
    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus Triwulan III")
    view = await press_and_wait(kasubag, board, "Lihat data Bidang Pelatihan", "Data Bidang")
    assert f"Faktor pendukung: {support}" in view.text  # the analysis is reviewed too
    picker = await press_and_wait(kasubag, view, "Kembalikan jawaban tertentu",
                                  "Pilih indikator yang perlu diperbaiki")
    assert "Dipilih: 0 indikator" in picker.text
    assert not any(b.startswith("Kembalikan ") for b in picker.button_texts)
    ask = await press_and_wait(kasubag, picker, "1. Tingkat Pengangguran", "Tulis catatan")
    assert "Tingkat Pengangguran Terbuka" in ask.text and "4,1%" in ask.text
    note1 = 'Cek ulang data BPS <Sakernas> & "Agustus" 📊'
    sent = await kasubag.reply_to(ask, note1)
    picker = await kasubag.wait_for(after=sent, text_contains="Dipilih: 1 indikator")
    assert f"catatan: {note1}" in picker.text
    # picked by mistake, then unpicked: nothing of it is kept
    ask = await press_and_wait(kasubag, picker, "3. Persentase lowongan", "Tulis catatan")
    sent = await kasubag.reply_to(ask, "salah pilih")
    picker = await kasubag.wait_for(after=sent, text_contains="Dipilih: 2 indikator")
    picker = await press_and_wait(kasubag, picker, "3. Persentase lowongan",
                                  "Dipilih: 1 indikator")
    assert "salah pilih" not in picker.text
    ask = await press_and_wait(kasubag, picker, "4. Jumlah pencari kerja", "Tulis catatan")
    note4 = "Lampirkan daftar penempatan per perusahaan (AKL & AKAD)"
    sent = await kasubag.reply_to(ask, note4)
    picker = await kasubag.wait_for(after=sent, text_contains="Dipilih: 2 indikator")
    done = await press_and_wait(kasubag, picker, "Kembalikan 2 jawaban", "dikembalikan kepada")
    assert kabid_person.name in done.text and "Jawaban lain tetap terkirim" in done.text

    # the Kabid is told of both (indicator 4 is the staf's to correct), the staf of theirs
    back = await kabid.wait_for(text_contains="2 jawaban Bidang Pelatihan")
    assert note1 in back.text and note4 in back.text
    assert f"(diperbaiki oleh {staf_person.name})" in back.text
    assert "Persentase kelulusan" not in back.text
    sback = await staf.wait_for(text_contains="1 jawaban Bidang Pelatihan")
    assert note4 in sback.text and note1 not in sback.text

    # the Kabid sees only the returned answers: the first is theirs
    card = await press_and_wait(kabid, back, "Mulai isi data", "Indikator 1 dari 2")
    assert "Tingkat Pengangguran Terbuka" in card.text
    assert f"Dikembalikan Kasubag: {note1}" in card.text
    card = await answer(kabid, "4,0")
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 2")
    assert f"Diserahkan kepada: {staf_person.name}" in card.text
    card = await press_and_wait(kabid, card, "Ringkasan", "Ringkasan data")
    assert "Jumlah pencari kerja" in card.text and "Persentase kelulusan" not in card.text
    assert "Ubah 3" not in card.button_texts

    # a non-returned answer cannot be changed, not even through the engine
    async with sm() as s:
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 4,
            StepRun.status == StepStatus.OPEN))).scalar_one()
        kel = (await s.execute(select(CycleIndicator).join(
            Indicator, Indicator.id == CycleIndicator.indicator_id).where(
            CycleIndicator.cycle_id == cycle_id, Indicator.code == "PPTK-02"))).scalar_one()
    with pytest.raises(WrongState):
        async with sm() as s, s.begin():
            await Workflow(s, harness.services).record_answer(
                await s.get(type(kabid_person), kabid_person.id), run.id, kel.id,
                raw_text="99", value=Decimal(99))
    assert len(await subs(sm, cycle_id, "PPTK-02")) == 1

    # the staf corrects theirs (only that one), then the Kabid sends again
    scard = await press_and_wait(staf, sback, "Mulai isi data", "Indikator 1 dari 1")
    assert f"Dikembalikan Kasubag: {note4}" in scard.text
    # the value stays; "Tetap" on a returned answer asks its analysis again (75 %)
    scard = await press_and_wait(staf, scard, "Tetap", "faktor penghambat")
    assert "Indikator 1 dari 1" in scard.text
    reason = "Dua perusahaan <PT Maju & PT \"Jaya\"> menunda rekrutmen 😔"
    scard = await answer(staf, reason, contains="upaya / rencana tindak lanjut")
    scard = await press_and_wait(staf, scard, "Lewati pertanyaan", "Kirim foto/dokumen")
    scard = await press_and_wait(staf, scard, "Lanjut", "Ringkasan data")
    q = await staf.press(scard, text="Selesai")
    await staf.wait_for(after=q, text_contains="Terima kasih")
    await press_and_wait(kabid, card, "Kirim ke Kasubag", "telah dikirim")
    # 4,1 with its supporting factor, then the corrected 4,0 (asked its analysis anew)
    assert [(s.value, s.pendukung) for s in await subs(sm, cycle_id, "PPTK-01")] == [
        (Decimal("4.1"), ""), (Decimal("4.1"), support), (Decimal("4.0"), "")]
    assert [(s.value, s.penghambat) for s in await subs(sm, cycle_id, "PPTK-04")] == [
        (150, ""), (150, reason)]
    assert (await latest(sm, cycle_id, "PPTK-04")).person_id == staf_person.id
    assert len(await subs(sm, cycle_id, "PPTK-02")) == 1  # the rest stayed as sent

    # audited: who returned what, with which note, to whom
    async with sm() as s:
        row = (await s.execute(select(AuditLog).where(
            AuditLog.action == "data.return_answers"))).scalar_one()
    payload = json.loads(row.payload)
    assert [a["note"] for a in payload["answers"]] == [note1, note4]
    assert [a["to"] for a in payload["answers"]] == [kabid_person.id, staf_person.id]


async def test_the_picker_pages_a_long_bidang_and_returns_an_answer_from_page_two(
        harness, people, sessionmaker):
    sm = sessionmaker
    # twelve more indicators for the bidang, with long names a phone has to shorten
    async with sm() as s, s.begin():
        kabid_p = await person(s, Role.KABID, "PPTK")
        for n in range(1, 13):
            ind = Indicator(
                office_id=kabid_p.office_id, unit_id=kabid_p.unit_id, code=f"PPTK-L{n:02d}",
                level=IndicatorLevel.KEGIATAN, sort_order=100 + n, unit_of_measure="orang",
                name=(f"Jumlah peserta pelatihan \"{n}\" <LPK Swasta> & BLK Liwa yang "
                      f"ditempatkan di perusahaan mitra 🏭 angkatan {n}"))
            s.add(ind)
            await s.flush()
            s.add_all([Target(indicator_id=ind.id, year=2024, period=p, value=Decimal(40))
                       for p in (0, 3)])
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    async with sm() as s, s.begin():
        wf = Workflow(s, harness.services)
        kabid_p = await person(s, Role.KABID, "PPTK")
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 4))).scalar_one()
        for item in await wf.cycle_items(cycle_id):
            await wf.record_answer(kabid_p, run.id, item.id, raw_text="40", value=Decimal(40))
        await wf.submit_unit(kabid_p, run.id)
    harness.sender.wake()
    await harness.settle()

    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus Triwulan III")
    view = await press_and_wait(kasubag, board, "Lihat data Bidang Pelatihan", "Data Bidang")
    picker = await press_and_wait(kasubag, view, "Kembalikan jawaban tertentu",
                                  "Pilih indikator yang perlu diperbaiki")
    assert "Halaman 1 dari 2" in picker.text and "Berikutnya ›" in picker.button_texts
    assert all(len(b) <= 64 for b in picker.button_texts)
    assert all(len(d.encode()) <= 64 for d in (b.get("callback_data", "")
                                               for b in picker.buttons))
    picker = await press_and_wait(kasubag, picker, "Berikutnya ›", "Halaman 2 dari 2")
    assert picker.edits  # paged in place
    label = next(b for b in picker.button_texts if b.startswith("☐ 18."))
    assert label.endswith("…")  # shortened at a word boundary
    ask = await press_and_wait(kasubag, picker, label, "Tulis catatan")
    assert 'peserta pelatihan "12" <LPK Swasta> & BLK' in ask.text
    note = "Jumlahnya sama dengan angkatan 11 — salin-tempel? 🤔"
    sent = await kasubag.reply_to(ask, note)
    picker = await kasubag.wait_for(after=sent, text_contains="Dipilih: 1 indikator")
    assert "Halaman 2 dari 2" in picker.text and note in picker.text
    await press_and_wait(kasubag, picker, "Kembalikan 1 jawaban", "dikembalikan kepada")

    kabid = people.user(Role.KABID, "PPTK")
    back = await kabid.wait_for(text_contains="1 jawaban Bidang Pelatihan")
    assert "angkatan 12" in back.text and note in back.text
    card = await press_and_wait(kabid, back, "Mulai isi data", "Indikator 1 dari 1")
    assert "angkatan 12" in card.text and f"Dikembalikan Kasubag: {note}" in card.text
