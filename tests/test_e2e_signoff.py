"""Steps 6-11 through the emulator, over real HTTP: compile (and an edited workbook
sent back), paraf and signature with one return each, numbering, archive, delivery
with receipts, the cycle closing, and /cek."""
from __future__ import annotations

import hashlib
import io
import re
import zipfile

from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import func, select

from bot.core.archive import build_archive, receipt_document
from models import Approval, Cycle, Delivery, Document, LetterNumber, Outbox, StoredFile
from models.enums import (
    ApprovalAction, CycleStatus, DeliveryStatus, DocumentStatus, Role,
)
from tests.e2e import FIVE_ROLES, People, harness  # noqa: F401  (fixtures)
from tests.test_documents_service import drive_to_compile
from tests.test_workflow import Walk

STALE = "Tombol ini sudah tidak berlaku."


def has_button(label: str):
    return lambda m: any(label in text for text in m.button_texts)


def png(color=(200, 200, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="PNG")
    return buf.getvalue()


def edited_workbook(data: bytes, code: str, realisasi) -> bytes:
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Pengukuran Kinerja"]
    header = next(r for r in ws.iter_rows() if any(c.value == "Kode" for c in r))
    cols: dict[str, int] = {}
    for c in header:  # the first "Realisasi ..." column is the one read back ("s.d.")
        if c.value:
            cols.setdefault(str(c.value).split()[0], c.column)
    for row in ws.iter_rows(min_row=header[0].row + 1):
        if row[cols["Kode"] - 1].value == code:
            row[cols["Realisasi"] - 1].value = realisasi
            out = io.BytesIO()
            wb.save(out)
            return out.getvalue()
    raise AssertionError(f"{code} not in the workbook")


async def compile_and_submit(kasubag, card, expect_version: int):
    """Press "Susun dokumen" on ``card``; returns the summary message of the new version."""
    q = await kasubag.press(card, text="Susun dokumen")
    summary = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"),
                                     timeout=30)
    assert f"versi {expect_version}" in summary.text.lower() or \
        f"Versi {expect_version}" in summary.text
    return summary


async def test_signoff_numbering_archive_delivery_and_verification(
        harness, sessionmaker, services, clock, tmp_path):
    people = await People(harness).load(*FIVE_ROLES, (Role.CONTACT, None))
    kasubag, sek, kadis = (people.user(Role.KASUBAG), people.user(Role.SEKRETARIS),
                           people.user(Role.KADIS))
    staf, contact = people.user(Role.STAF, "SEK"), people.user(Role.CONTACT)

    # steps 1-5 straight through the workflow, then the outbox reaches the emulator
    walk = Walk(sessionmaker, services, clock)
    cycle_id, _run6 = await drive_to_compile(walk)
    await harness.sender.drain()

    # step 6: compile; the workbook, the PDF and the chart come with a summary
    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))
    q = await kasubag.press(card, text="Susun dokumen")
    v1 = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"), timeout=30)
    assert "Susun ulang" in v1.button_texts
    # the progress message, edited when the documents were done
    progress = await kasubag.wait_for(after=q, text_contains="selesai disusun")
    assert any("Menyusun dokumen" in (old.text or "") for old in progress.edits)
    assert "indikator" in v1.text and "Triwulan III Tahun 2024" in v1.text
    files = harness.emulator.sent_files(kasubag.chat_id)
    xlsx = [f for f in files if (f.filename or "").endswith(".xlsx")]
    assert xlsx and any((f.filename or "").endswith(".pdf") for f in files)
    assert any(f.kind == "photo" for f in files)

    # an edited workbook with a bad cell: row-level error, nothing stored
    bad = edited_workbook(xlsx[-1].data, "PPTK-03", "abc")
    sent = await kasubag.send_document(bad, "pengukuran-edit.xlsx")
    err = await kasubag.wait_for(after=sent, text_contains="belum dapat dipakai")
    assert re.search(r"Baris \d+, kolom Realisasi: 'abc' bukan", err.text), err.text
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Document))).scalar_one() == 1
    # a good one becomes version 2, "uploaded", with its own submit button
    good = edited_workbook(xlsx[-1].data, "PPTK-03", 68)
    sent = await kasubag.send_document(good, "pengukuran-edit.xlsx")
    v2 = await kasubag.wait_for(after=sent, predicate=has_button("Ajukan untuk paraf"),
                                timeout=30)
    assert "versi 2" in v2.text
    async with sessionmaker() as s:
        doc2 = (await s.execute(select(Document).where(Document.version == 2))).scalar_one()
        assert doc2.source == "uploaded"
    # version 1's submit button is refused now
    q = await kasubag.press(v1, text="Ajukan untuk paraf")
    assert (await kasubag.wait_for_answer(q)).text == STALE
    q = await kasubag.press(v2, text="Ajukan untuk paraf")
    await kasubag.wait_for(after=q, text_contains="diajukan kepada")

    # step 7: the Sekretaris returns version 2 with a reason
    card7 = await sek.wait_for(predicate=has_button("Paraf"))
    assert "versi 2" in card7.text
    old_markup = card7.reply_markup
    q = await sek.press(card7, text="Kembalikan")
    ask = await sek.wait_for(after=q, text_contains="alasan pengembalian")
    assert ask.force_reply
    sent = await sek.reply_to(ask, "Tabel capaian belum lengkap")
    await sek.wait_for(after=sent, text_contains="dikembalikan kepada")
    returned = await kasubag.wait_for(text_contains="Tabel capaian belum lengkap")
    assert "Susun dokumen" in returned.button_texts
    # the old Paraf button (pressed again from a stale copy) is refused, nothing changes
    card7 = sek.message(card7.message_id)
    card7.reply_markup = old_markup
    q = await sek.press(card7, text="Paraf")
    assert (await sek.wait_for_answer(q)).text == STALE

    v3 = await compile_and_submit(kasubag, returned, 3)
    q = await kasubag.press(v3, text="Ajukan untuk paraf")
    await kasubag.wait_for(after=q, text_contains="diajukan kepada")
    card7 = await sek.wait_for(predicate=lambda m: has_button("Paraf")(m) and "versi 3" in m.text)
    q = await sek.press(card7, text="Paraf")
    done = await sek.wait_for(after=q, text_contains="Diparaf oleh")
    assert done.message_id == card7.message_id and not done.buttons

    # step 8: the Kadis returns version 3, then signs version 4
    card8 = await kadis.wait_for(predicate=has_button("Tandatangani"))
    q = await kadis.press(card8, text="Kembalikan")
    ask = await kadis.wait_for(after=q, text_contains="alasan pengembalian")
    sent = await kadis.reply_to(ask, "Perbaiki judul tabel")
    await kadis.wait_for(after=sent, text_contains="dikembalikan kepada")
    returned = await kasubag.wait_for(text_contains="Perbaiki judul tabel")
    v4 = await compile_and_submit(kasubag, returned, 4)
    q = await kasubag.press(v4, text="Ajukan untuk paraf")
    await kasubag.wait_for(after=q, text_contains="diajukan kepada")
    card7 = await sek.wait_for(predicate=lambda m: has_button("Paraf")(m) and "versi 4" in m.text)
    q = await sek.press(card7, text="Paraf")
    await sek.wait_for(after=q, text_contains="Diparaf oleh")
    card8 = await kadis.wait_for(
        predicate=lambda m: has_button("Tandatangani")(m) and "versi 4" in m.text)
    markup = card8.reply_markup
    q = await kadis.press(card8, text="Tandatangani")
    await kadis.wait_for(after=q, text_contains="Ditandatangani oleh")
    # a double press is harmless: a polite answer, no second signature
    card8 = kadis.message(card8.message_id)
    card8.reply_markup = markup
    q = await kadis.press(card8, text="Tandatangani")
    assert "sudah Anda tandatangani" in (await kadis.wait_for_answer(q)).text
    await harness.settle()
    async with sessionmaker() as s:
        approvals = (await s.execute(select(Approval).order_by(Approval.id))).scalars().all()
        docs = {d.id: d for d in (await s.execute(select(Document))).scalars()}
        files = {f.id: f.sha256 for f in (await s.execute(select(StoredFile))).scalars()}
    assert [(a.action, docs[a.document_id].version) for a in approvals] == [
        (ApprovalAction.RETURN, 2), (ApprovalAction.PARAF, 3), (ApprovalAction.RETURN, 3),
        (ApprovalAction.PARAF, 4), (ApprovalAction.SIGN, 4)]
    assert all(a.document_sha256 == docs[a.document_id].sha256 for a in approvals)
    # what each approves or returns: the exact PDF shown and, recorded apart, the workbook
    for a in approvals:
        assert a.document_sha256 == files[docs[a.document_id].pdf_file_id]
        assert a.workbook_sha256 == files[docs[a.document_id].workbook_file_id]

    # step 9: the staf numbers the documents and gets the final PDF
    card9 = await staf.wait_for(predicate=has_button("Beri nomor"))
    q = await staf.press(card9, text="Beri nomor")
    numbered = await staf.wait_for(after=q, text_contains="diberi nomor")
    assert "050/1/II.08/2024" in numbered.content
    code = re.search(r"Kode verifikasi: (\S+)", numbered.content).group(1)
    await staf.wait_for(after=q, predicate=lambda m: m.document is not None)
    final_pdf = harness.emulator.sent_files(staf.chat_id)[-1]
    assert final_pdf.filename.endswith("-final.pdf")

    # step 10: the Kasubag archives; the staf gets the delivery task
    card10 = await kasubag.wait_for(predicate=has_button("Periksa & arsipkan"))
    q = await kasubag.press(card10, text="Periksa & arsipkan")
    await kasubag.wait_for(after=q, text_contains="diarsipkan")

    # step 11: one agency by its contact in the bot, two by receipt photo
    task = await staf.wait_for(predicate=has_button("Catat penyampaian"))
    q = await staf.press(task, text="Catat penyampaian")
    board = await staf.wait_for(after=q, predicate=has_button("Sampaikan ke Bappeda Kabupaten Lampung Barat"))
    q = await staf.press(board, text="Bappeda")
    await staf.wait_for(after=q, text_contains="Dokumen dikirim kepada Contoh Petugas Bappeda")
    board = await staf.wait_for(after=q, predicate=has_button("Inspektorat"))
    request = await contact.wait_for(predicate=has_button("Konfirmasi terima"))
    assert "050/1/II.08/2024" in request.text
    assert any(f.data == final_pdf.data for f in harness.emulator.sent_files(contact.chat_id))
    q = await contact.press(request, text="Konfirmasi terima")
    await contact.wait_for(after=q, text_contains="Penerimaan dikonfirmasi")

    q = await staf.press(board, text="Inspektorat")
    ask = await staf.wait_for(after=q, text_contains="kirim foto tanda terima")
    sent = await staf.send_photo(png(), caption="Budi Santoso")
    await staf.wait_for(after=sent, text_contains="diterima oleh Budi Santoso")
    board = await staf.wait_for(after=sent, predicate=has_button("Organisasi"))
    q = await staf.press(board, text="Organisasi")
    await staf.wait_for(after=q, text_contains="kirim foto tanda terima")
    sent = await staf.send_photo(png((10, 10, 10)))
    await staf.wait_for(after=sent, text_contains="Petugas penerima Bagian Organisasi")

    # the cycle closes and everyone involved is told
    for user in (kadis, sek, kasubag, staf, people.user(Role.KABID, "PPTK")):
        await user.wait_for(text_contains="Siklus Triwulan III Tahun 2024 selesai")
    await harness.settle()
    async with sessionmaker() as s:
        cycle = await s.get(Cycle, cycle_id)
        assert cycle.status == CycleStatus.CLOSED
        deliveries = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
        assert all(d.status == DeliveryStatus.RECEIVED for d in deliveries)
        assert [d.received_by for d in deliveries] == [
            "Contoh Petugas Bappeda", "Budi Santoso",
            "Petugas penerima Bagian Organisasi Setdakab Lampung Barat"]
        assert deliveries[0].receipt_file_id is None
        assert all(d.receipt_file_id for d in deliveries[1:])
        for d in deliveries:
            assert await receipt_document(s, d.id) is not None
        letter = (await s.execute(select(LetterNumber))).scalar_one()
        assert letter.number == "050/1/II.08/2024" and letter.sequence == 1
        final = (await s.execute(select(Document).order_by(Document.version.desc()))
                 ).scalars().first()
        assert final.verification_code == code and final.status == DocumentStatus.ARCHIVED
        closed = (await s.execute(select(Outbox).where(Outbox.kind == "cycle_closed"))
                  ).scalars().all()
        assert len(closed) >= 6
        result = await build_archive(s, services.store, cycle_id, tmp_path / "arsip.zip")
    # the staf got a tanda terima PDF for each agency (its caption says which)
    for agency in ("Bappeda", "Inspektorat", "Bagian Organisasi"):
        await staf.wait_for(text_contains=f"Tanda terima dari {agency}")
    receipts = [f for f in harness.emulator.sent_files(staf.chat_id)
                if (f.filename or "").startswith("Tanda-Terima")]
    assert len(receipts) == 3
    with zipfile.ZipFile(result.path) as z:
        names = set(z.namelist())
        assert {f"dokumen/v{v}/" for v in range(1, 6)} <= {n[:n.index("/", 8) + 1] for n in names
                                                          if n.startswith("dokumen/v")}
        manifest = z.read("MANIFEST.txt").decode()
        for line in manifest.splitlines():
            if not line.startswith("#"):
                sha, size, name = line.split("  ", 2)
                assert hashlib.sha256(z.read(name)).hexdigest() == sha
        assert sum(n.startswith("tanda-terima/") for n in names) == 5
        assert b"050/1/II.08/2024" in z.read("agenda.csv")

    # /cek: anyone may verify, a wrong code is not found
    sent = await kadis.send_command("/cek", code)
    ok = await kadis.wait_for(after=sent, text_contains="Dokumen asli")
    assert "050/1/II.08/2024" in ok.text and "Drs. Contoh Kepala Dinas" in ok.text
    assert hashlib.sha256(final_pdf.data).hexdigest() in ok.text
    stranger = harness.emulator.add_user(user_id=4242, first_name="Warga")
    sent = await stranger.send_command("/cek", code.lower())
    assert "Dokumen asli" in (await stranger.wait_for(after=sent)).text
    sent = await stranger.send_command("/cek", "ABCD-EFGH")
    assert "tidak ditemukan" in (await stranger.wait_for(after=sent)).text
