"""Step 4 (guided data entry) and the Kasubag's side of steps 4-5, end to end through the
emulator over real HTTP. Steps 1-3 are driven through the workflow to save time; their
messages go out through the outbox as in production."""
from __future__ import annotations

import hashlib
from decimal import Decimal

from sqlalchemy import func, select

from bot.core.workflow import Workflow
from models import (
    Cycle, CycleIndicator, Evidence, Indicator, StepRun, StoredFile, Submission,
)
from models.enums import CycleKind, CycleStatus, Role, StepStatus
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from bot.devtools.scenario import png  # a small valid PNG
from tests.helpers import person, snapshot, unit

STALE = "Tombol ini sudah tidak berlaku."


async def to_collection(h, sm, units=("PPTK", "IND")) -> int:
    """Steps 1-3 through the workflow; the data requests go out through the outbox."""
    sv = h.services

    async def call(fn):
        async with sm() as s, s.begin():
            return await fn(Workflow(s, sv), s)

    async def open_run(cycle_id, step_no):
        async with sm() as s:
            return (await s.execute(select(StepRun).where(
                StepRun.cycle_id == cycle_id, StepRun.step_no == step_no,
                StepRun.status == StepStatus.OPEN))).scalar_one()

    async with sm() as s:
        kadis = await person(s, Role.KADIS)
        sek = await person(s, Role.SEKRETARIS)
        kasubag = await person(s, Role.KASUBAG)
        unit_ids = [(await unit(s, c)).id for c in units]
    cycle = await call(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3,
                                                    "Siapkan pengukuran kinerja TW III"))
    run2 = await open_run(cycle.id, 2)
    await call(lambda wf, s: wf.forward_disposition(sek, run2.id, "Mohon dikoordinasikan"))
    run3 = await open_run(cycle.id, 3)

    async def coordinate(wf, s):
        default = await wf.default_selection(await wf.get_cycle(cycle.id))
        return await wf.open_collection(kasubag, run3.id, {u: default[u] for u in unit_ids}, 3)

    await call(coordinate)
    h.sender.wake()
    await h.settle()
    return cycle.id


async def answer_of(user, qid: str) -> str:
    return (await user.wait_for_answer(qid)).text or ""


async def subs(sm, cycle_id: int, code: str) -> list[Submission]:
    async with sm() as s:
        return list((await s.execute(
            select(Submission).join(Indicator, Indicator.id == Submission.indicator_id)
            .where(Submission.cycle_id == cycle_id, Indicator.code == code)
            .order_by(Submission.revision))).scalars())


async def count(sm, model) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def without_bookkeeping(sm) -> dict:
    async with sm() as s:
        snap = await snapshot(s)
    return snap


async def press_and_wait(user, msg, text, contains):
    q = await user.press(msg, text=text)
    return await user.wait_for(after=q, text_contains=contains)


async def answer(user, card, value: str, contains: str = "Tersimpan"):
    sent = await user.send_text(value)
    return await user.wait_for(after=sent, text_contains=contains)


async def test_two_bidang_enter_submit_return_and_processing_opens_step_6(
        harness, people, sessionmaker):
    sm = sessionmaker
    # last quarter's realisation of "Jumlah IKM yang dibina" (shown on the card, and the
    # basis of the ten-times check)
    async with sm() as s, s.begin():
        kadis = await person(s, Role.KADIS)
        kabid_ind = await person(s, Role.KABID, "IND")
        prev = Cycle(office_id=kadis.office_id, kind=CycleKind.QUARTERLY, year=2024, quarter=2,
                     started_by_id=kadis.id, status=CycleStatus.CLOSED)
        s.add(prev)
        await s.flush()
        ikm = (await s.execute(select(Indicator).where(Indicator.code == "IND-01"))).scalar_one()
        s.add(Submission(cycle_id=prev.id, indicator_id=ikm.id, revision=1, raw_text="50",
                         value=Decimal(50), person_id=kabid_ind.id))
    cycle_id = await to_collection(harness, sm)

    # ---- Bidang Pelatihan dan Penempatan Tenaga Kerja
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")
    assert "Tingkat Pengangguran Terbuka" in card.text
    assert "Satuan: %" in card.text and "Target Triwulan III Tahun 2024: 4,15" in card.text
    assert "Realisasi periode lalu: -" in card.text
    assert "Pengangguran / angkatan kerja" in card.text

    # a non-number is refused with a clear message, nothing stored, same question again
    card = await answer(kabid, card, "dua belas", contains="bukan angka")
    assert "Indikator 1 dari 6" in card.text and "Tingkat Pengangguran Terbuka" in card.text
    assert await subs(sm, cycle_id, "PPTK-01") == []

    # a decimal comma
    card = await answer(kabid, card, "12,5")
    assert "12,5%" in card.text and "Kirim foto/dokumen bukti" in card.text
    [tpt] = await subs(sm, cycle_id, "PPTK-01")
    assert tpt.value == Decimal("12.5") and tpt.raw_text == "12,5" and not tpt.skipped

    # a photo as evidence, stored by its sha256
    photo = png()
    sent = await kabid.send_photo(photo)
    card = await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    assert "Bukti dukung: 1 berkas" in card.text
    digest = hashlib.sha256(photo).hexdigest()
    async with sm() as s:
        stored = (await s.execute(select(StoredFile).where(StoredFile.sha256 == digest))
                  ).scalar_one()
        ev = (await s.execute(select(Evidence).where(Evidence.file_id == stored.id))).scalar_one()
        assert ev.submission_id == tpt.id
    assert harness.services.store.path_for(digest).read_bytes() == photo

    # "Lanjut" edits the card in place into the next question
    q = await kabid.press(card, text="Lanjut")
    card = await kabid.wait_for(after=q, text_contains="Indikator 2 dari 6")
    assert card.edits and "Persentase kelulusan" in card.text

    # an implausible percentage asks for confirmation; nothing is stored until "Ya, benar"
    sent = await kabid.send_text("150")
    confirm = await kabid.wait_for(after=sent, text_contains="Periksa kembali")
    assert "persentase lebih dari 100%" in confirm.text
    assert await subs(sm, cycle_id, "PPTK-02") == []
    card = await press_and_wait(kabid, confirm, "Ya, benar", "Tersimpan")
    [kel] = await subs(sm, cycle_id, "PPTK-02")
    assert kel.value == Decimal(150)

    # next, back, keep the saved answer, skip
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 3 dari 6")
    card = await press_and_wait(kabid, card, "Kembali", "Indikator 2 dari 6")
    assert "Jawaban tersimpan: 150%" in card.text
    card = await press_and_wait(kabid, card, "Tetap", "Indikator 3 dari 6")
    assert len(await subs(sm, cycle_id, "PPTK-02")) == 1  # "Tetap" makes no revision
    card = await press_and_wait(kabid, card, "Lewati", "Indikator 4 dari 6")
    [low] = await subs(sm, cycle_id, "PPTK-03")
    assert low.skipped

    # the Kabid hands indicator 4 to the staf of the bidang
    card = await press_and_wait(kabid, card, "Serahkan ke staf", "Pilih indikatornya")
    card = await press_and_wait(kabid, card, "4. Jumlah pencari kerja", "Serahkan")
    staf_person = people.person(Role.STAF, "PPTK")
    card = await press_and_wait(kabid, card, staf_person.name, "diserahkan kepada")

    staf = people.user(Role.STAF, "PPTK")
    note = await staf.wait_for(text_contains="menyerahkan pengisian indikator")
    scard = await press_and_wait(staf, note, "Mulai isi data", "Indikator 1 dari 1")
    assert "Jumlah pencari kerja yang ditempatkan" in scard.text
    # "1.250" can be read two ways: asked, one button per reading, nothing saved before
    scard = await answer(staf, scard, "1.250", contains="dapat dibaca")
    assert "1,25 orang" in scard.button_texts
    assert await subs(sm, cycle_id, "PPTK-04") == []
    scard = await press_and_wait(staf, scard, "1.250 orang (seribu dua ratus lima puluh)",
                                 "Tersimpan")
    assert "1.250 orang" in scard.text and "dibaca sebagai" in scard.text
    scard = await press_and_wait(staf, scard, "Lanjut", "Ringkasan data")
    assert "Kirim ke Kasubag" not in scard.button_texts
    q = await staf.press(scard, text="Selesai")
    await staf.wait_for(after=q, text_contains="Terima kasih")
    await kabid.wait_for(text_contains="selesai mengisi 1 indikator")
    [placed] = await subs(sm, cycle_id, "PPTK-04")
    assert placed.value == Decimal(1250) and placed.person_id == staf_person.id

    # the summary; sending is refused while indicators are missing
    card = await press_and_wait(kabid, card, "Ringkasan", "Ringkasan data")
    assert "12,5% (📎 1)" in card.text and "dilewati" in card.text
    assert "1.250 orang" in card.text and "2 indikator belum diisi" in card.text
    q = await kabid.press(card, text="Kirim ke Kasubag")
    assert "Masih ada 2 indikator" in await answer_of(kabid, q)
    card = await press_and_wait(kabid, card, "Ubah 5", "Indikator 5 dari 6")
    card = await answer(kabid, card, "30")
    card = await press_and_wait(kabid, card, "Lanjut", "Ringkasan data")
    card = await press_and_wait(kabid, card, "Ubah 6", "Indikator 6 dari 6")
    card = await answer(kabid, card, "150")
    card = await press_and_wait(kabid, card, "Lanjut", "Ringkasan data")
    assert "Semua indikator sudah diisi" in card.text
    card = await press_and_wait(kabid, card, "Kirim ke Kasubag", "telah dikirim")

    # the old "Mulai isi data" of a finished step is stale
    q = await kabid.press(request, text="Mulai isi data")
    assert await answer_of(kabid, q) == STALE

    # ---- Bidang Perindustrian
    kabid2 = people.user(Role.KABID, "IND")
    request2 = await kabid2.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid2, request2, "Mulai isi data", "Indikator 1 dari 5")
    assert "Realisasi periode lalu (Triwulan II Tahun 2024): 50 unit" in card.text
    sent = await kabid2.send_text("600")
    confirm = await kabid2.wait_for(after=sent, text_contains="Periksa kembali")
    assert "lebih dari 10 kali realisasi periode lalu (50 unit)" in confirm.text
    card = await press_and_wait(kabid2, confirm, "Ulangi", "Indikator 1 dari 5")
    assert await subs(sm, cycle_id, "IND-01") == []
    for value, nxt in [("60", "Indikator 2 dari 5"), ("2,5", "Indikator 3 dari 5"),
                       ("18", "Indikator 4 dari 5"), ("20", "Indikator 5 dari 5"),
                       ("Rp 9.000.000.000", "Ringkasan data")]:
        card = await answer(kabid2, card, value)
        card = await press_and_wait(kabid2, card, "Lanjut", nxt)
    assert "Rp 9.000.000.000" in card.text
    await press_and_wait(kabid2, card, "Kirim ke Kasubag", "telah dikirim")

    # ---- the Kasubag: step 5 started; sees the data; returns Perindustrian once
    kasubag = people.user(Role.KASUBAG)
    started = await kasubag.wait_for(text_contains="Semua bidang telah mengirim")
    async with sm() as s:
        step5 = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 5))).scalar_one()
        assert step5.status == StepStatus.OPEN
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus Triwulan III")
    assert "Selesai mengolah data" in board.button_texts
    assert not any("Tutup pengumpulan" in b for b in board.button_texts)
    view = await press_and_wait(kasubag, board, "Lihat data Bidang Pelatihan", "Data Bidang")
    assert "12,5% (📎 1)" in view.text and "dilewati" in view.text
    assert f"diisi oleh {staf_person.name}" in view.text
    ask = await press_and_wait(kasubag, board, "Kembalikan data Bidang Perindustrian",
                               "alasan pengembalian")
    sent = await kasubag.reply_to(ask, "Nilai investasi belum sesuai laporan DPMPTSP")
    await kasubag.wait_for(after=sent, text_contains="dikembalikan kepada")
    # a second press of the same return button: stale, nothing changes
    q = await kasubag.press(board, text="Kembalikan data Bidang Perindustrian")
    assert await answer_of(kasubag, q) == STALE

    # step 5 cannot finish while the returned bidang is open
    q = await kasubag.press(started, text="Selesai mengolah data")
    assert "belum mengirim data" in await answer_of(kasubag, q)

    # the Kabid corrects one value (earlier answers are the defaults) and resubmits
    back = await kabid2.wait_for(text_contains="dikembalikan")
    assert "Nilai investasi belum sesuai" in back.text
    card = await press_and_wait(kabid2, back, "Mulai isi data", "Indikator 1 dari 5")
    assert "Jawaban tersimpan: 60 unit" in card.text
    card = await press_and_wait(kabid2, card, "Ringkasan", "Ringkasan data")
    card = await press_and_wait(kabid2, card, "Ubah 5", "Indikator 5 dari 5")
    card = await answer(kabid2, card, "Rp 9.500.000.000")
    card = await press_and_wait(kabid2, card, "Lanjut", "Ringkasan data")
    await press_and_wait(kabid2, card, "Kirim ke Kasubag", "telah dikirim")
    assert [s.value for s in await subs(sm, cycle_id, "IND-05")] == [
        Decimal(9_000_000_000), Decimal(9_500_000_000)]

    # step 5 done: step 6 opens
    q = await kasubag.press(started, text="Selesai mengolah data")
    await kasubag.wait_for(after=q, text_contains="Pengolahan data selesai")
    async with sm() as s:
        runs = (await s.execute(select(StepRun).where(StepRun.cycle_id == cycle_id)
                                .order_by(StepRun.id))).scalars().all()
        assert [r.status for r in runs if r.step_no == 5] == [StepStatus.DONE]
        assert [r.status for r in runs if r.step_no == 6] == [StepStatus.OPEN]
        ind_runs = [r for r in runs if r.step_no == 4 and r.unit_id == (await unit(s, "IND")).id]
        assert [(r.round, r.status) for r in ind_runs] == [(1, StepStatus.RETURNED),
                                                           (2, StepStatus.DONE)]


async def test_entry_resumes_after_a_restart_and_foreign_or_old_buttons_change_nothing(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")
    card = await answer(kabid, card, "4,2")
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")
    sent = await kabid.send_text("150")
    confirm = await kabid.wait_for(after=sent, text_contains="Periksa kembali")

    # the bot stops with a value waiting for confirmation; a new one takes over
    await harness.restart_bot()
    card = await press_and_wait(kabid, confirm, "Ya, benar", "Tersimpan")
    assert [s.value for s in await subs(sm, cycle_id, "PPTK-02")] == [Decimal(150)]
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 3 dari 6")

    await harness.restart_bot()
    # typed text continues at the same indicator, nothing lost
    card = await answer(kabid, card, "70")
    assert "Indikator 3 dari 6" in card.text and "Persentase lowongan kerja" in card.text
    assert [s.value for s in await subs(sm, cycle_id, "PPTK-01")] == [Decimal("4.2")]
    assert [s.value for s in await subs(sm, cycle_id, "PPTK-03")] == [Decimal(70)]
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 4 dari 6")

    # "Mulai isi data" again resumes at the same indicator with a new card at the bottom
    async with sm() as s:
        run = (await s.execute(select(StepRun).where(StepRun.cycle_id == cycle_id,
                                                     StepRun.step_no == 4))).scalar_one()
    old_card = card
    q = await kabid.press(request, text="Mulai isi data")
    card = await kabid.wait_for(after=q, predicate=lambda m: "Indikator 4 dari 6" in m.text
                                and m.message_id != old_card.message_id)
    await kabid.wait_for(after=q, predicate=lambda m: m.message_id == old_card.message_id
                         and not m.buttons)  # the old card lost its buttons
    await harness.settle()
    before = await without_bookkeeping(sm)

    async def forged(user, msg, data):
        msg.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
        return await answer_of(user, await user.press(msg, data=data))

    # a button of the older card (and buttons that do not fit the state) are stale
    assert await forged(kabid, old_card, f"eskip:{run.id}") == STALE
    assert await forged(kabid, card, f"eok:{run.id}") == STALE
    assert await forged(kabid, card, f"esend:{run.id}") == STALE
    # other people pressing the Kabid's buttons: refused, nothing changes
    other = people.user(Role.KABID, "IND")
    staf = people.user(Role.STAF, "PPTK")
    sent = await other.send_command("/tugas")
    mine = await other.wait_for(after=sent)
    for data in [f"ent:{run.id}", f"eskip:{run.id}", f"esend:{run.id}",
                 f"eto:{run.id}:1:1", "ent:999999"]:
        assert await forged(other, mine, data), data
    sent = await staf.send_command("/tugas")
    mine = await staf.wait_for(after=sent)
    assert "Belum ada indikator yang diserahkan" in await forged(staf, mine, f"ent:{run.id}")
    assert await forged(staf, mine, f"eskip:{run.id}")
    assert await forged(staf, mine, f"eassign:{run.id}:1")
    await harness.settle()
    assert await without_bookkeeping(sm) == before

    # the current card still works
    card = await answer(kabid, card, "120")
    assert [s.value for s in await subs(sm, cycle_id, "PPTK-04")] == [Decimal(120)]


async def test_evidence_size_and_type_are_checked(harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")

    # a file before the value is kept and attached when the value comes
    sent = await kabid.send_document(b"%PDF-1.4 bukti", "bukti.pdf", "application/pdf")
    card = await kabid.wait_for(after=sent, text_contains="dilampirkan pada nilai")
    assert "Bukti menunggu nilai: 1 berkas" in card.text
    card = await answer(kabid, card, "4,2")
    assert "Bukti dukung: 1 berkas" in card.text

    harness.services.store.max_bytes = 2048
    files_before = await count(sm, StoredFile)
    sent = await kabid.send_document(b"%PDF-1.4 " + b"x" * 5000, "laporan.pdf", "application/pdf")
    msg = await kabid.wait_for(after=sent, text_contains="terlalu besar")
    assert "5 KB" in msg.text and "2 KB" in msg.text
    sent = await kabid.send_photo(png(400, 300) + b"\x00" * 3000)
    await kabid.wait_for(after=sent, text_contains="terlalu besar")
    sent = await kabid.send_document(b"PK\x03\x04 arsip", "bukti.zip", "application/zip")
    await kabid.wait_for(after=sent, text_contains="tidak diterima")
    sent = await kabid.send_document(b"MZ program", "bukti.pdf", "application/pdf")
    await kabid.wait_for(after=sent, text_contains="tidak diterima")
    assert await count(sm, StoredFile) == files_before
    assert await count(sm, Evidence) == 1  # the one sent before the value

    # a small real PDF is accepted
    sent = await kabid.send_document(b"%PDF-1.4 bukti sah", "bukti.pdf", "application/pdf")
    card = await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    # a note makes a new revision that keeps the evidence
    card = await press_and_wait(kabid, card, "Tambah catatan", "Tulis catatan")
    sent = await kabid.send_text("Sumber: Sakernas Agustus 2024")
    card = await kabid.wait_for(after=sent, text_contains="Catatan tersimpan")
    revs = await subs(sm, cycle_id, "PPTK-01")
    assert [(r.value, r.note) for r in revs] == [(Decimal("4.2"), ""),
                                                  (Decimal("4.2"), "Sumber: Sakernas Agustus 2024")]
    async with sm() as s:
        n = (await s.execute(select(func.count()).select_from(Evidence)
                             .where(Evidence.submission_id == revs[-1].id))).scalar_one()
    assert n == 2 and "Bukti dukung: 2 berkas" in card.text
    async with sm() as s:
        assert (await s.execute(select(func.count()).select_from(CycleIndicator))).scalar_one() == 6


async def test_kasubag_closes_the_collection_with_a_note_then_finishes_processing(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK", "IND"))
    kadis = people.user(Role.KADIS)
    sent = await kadis.send_command("/status")
    board = await kadis.wait_for(after=sent, text_contains="Siklus Triwulan III")
    assert board.button_texts == []  # the board's actions are the coordinator's only

    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus Triwulan III")
    assert "Tutup pengumpulan" in board.button_texts
    assert not any(b.startswith("Kembalikan") for b in board.button_texts)
    assert "Selesai mengolah data" not in board.button_texts
    ask = await press_and_wait(kasubag, board, "Tutup pengumpulan", "Tutup pengumpulan data")
    assert "Bidang Perindustrian" in ask.text
    sent = await kasubag.send_text("Batas waktu lewat, data diolah tanpa kedua bidang")
    await kasubag.wait_for(after=sent, text_contains="Pengumpulan data ditutup")
    q = await kasubag.press(ask, text="Ya, tutup sekarang")
    assert await answer_of(kasubag, q) == STALE
    started = await kasubag.wait_for(text_contains="Pengumpulan data Triwulan III")
    async with sm() as s:
        runs = (await s.execute(select(StepRun).where(StepRun.cycle_id == cycle_id)
                                .order_by(StepRun.id))).scalars().all()
        collect = [r for r in runs if r.step_no == 4]
        assert [r.status for r in collect] == [StepStatus.SKIPPED, StepStatus.SKIPPED]
        assert collect[0].note == "Batas waktu lewat, data diolah tanpa kedua bidang"
    # the Kabid's request no longer applies: its button is taken away
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    request = await kabid.wait_for(
        predicate=lambda m: m.message_id == request.message_id and not m.button_texts)
    assert "Mulai isi data" not in request.button_texts

    q = await kasubag.press(started, text="Selesai mengolah data")
    await kasubag.wait_for(after=q, text_contains="Pengolahan data selesai")
    async with sm() as s:
        step6 = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 6))).scalar_one()
        assert step6.status == StepStatus.OPEN
