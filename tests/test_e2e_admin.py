"""Office administration through the emulator, over real HTTP: the admin's /pegawai
roster, a Plh. Kepala Dinas appointed in a short guided conversation who signs in the
Kadis' place, an overlapping appointment refused, a Kabid deactivated with their open
data entry handed to the person chosen (who finishes it), and /alihkan."""
from __future__ import annotations

import json

from sqlalchemy import select

from bot.core.administration import Administration
from bot.core.documents import compile_documents
from models import Approval, AuditLog, Person, StepRun
from models.enums import ApprovalAction, Role, StepStatus
from tests.e2e import FIVE_ROLES, People, harness  # noqa: F401  (fixtures)
from tests.test_e2e_data_entry import to_collection
from tests.test_e2e_signoff import has_button
from tests.test_documents_service import drive_to_compile
from tests.test_workflow import Walk

STALE = "Tombol ini sudah tidak berlaku."


async def add_admin(harness) -> Person:
    async with harness.sessionmaker() as s, s.begin():
        return await Administration(s, harness.services).add_person(
            None, name="Admin Dinas", role=Role.ADMIN)


async def appoint_via_bot(admin, slot: str, acting: str, kind: str, dates: str, decree: str):
    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, text_contains="Daftar pegawai")
    q = await admin.press(roster, text="Tunjuk Plh./Plt.")
    msg = await admin.wait_for(after=q, text_contains="Jabatan mana")
    q = await admin.press(msg, text=slot)
    msg = await admin.wait_for(after=q, text_contains="Siapa yang ditunjuk")
    q = await admin.press(msg, text=acting)
    msg = await admin.wait_for(after=q, text_contains="Jenis penunjukan")
    q = await admin.press(msg, text=kind)
    await admin.wait_for(after=q, text_contains="rentang tanggal")
    sent = await admin.send_text(dates)
    await admin.wait_for(after=sent, text_contains="surat perintah")
    sent = await admin.send_text(decree)
    confirm = await admin.wait_for(after=sent, text_contains="Periksa penunjukan")
    q = await admin.press(confirm, text="Simpan")
    return await admin.wait_for(after=q, predicate=lambda m: "✅" in (m.text or "")
                                or "ditolak" in (m.text or ""))


async def test_a_plh_appointed_in_the_bot_signs_for_the_kadis(
        harness, sessionmaker, services, clock):
    people = await People(harness).load(*FIVE_ROLES)
    admin_person = await add_admin(harness)
    admin = await harness.register(admin_person)
    kadis, sek = people.user(Role.KADIS), people.user(Role.SEKRETARIS)

    # steps 1-7 through the workflow; the signature card reaches the Kadis
    walk = Walk(sessionmaker, services, clock)
    cycle_id, run6_id = await drive_to_compile(walk)
    kasubag_p, sek_p = people.person(Role.KASUBAG), people.person(Role.SEKRETARIS)

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag_p, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag_p, run6_id, doc.id))
    await walk(lambda wf, s: wf.approve(sek_p, run7.id, doc.id))
    await harness.settle()
    card8 = await kadis.wait_for(predicate=has_button("Tandatangani"))

    # the roster: by bidang, with registration state
    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, text_contains="Daftar pegawai")
    assert "Sekretariat" in roster.text and "Bidang Perindustrian" in roster.text
    assert "belum terdaftar" in roster.text and "terdaftar" in roster.text
    assert "Nonaktifkan pegawai" in roster.button_texts

    # the admin appoints the Sekretaris Plh. Kepala Dinas from today for three days
    done = await appoint_via_bot(admin, "Kepala Dinas", "Contoh Sekretaris", "Plh.",
                                 "7-10-2024 s.d. 9-10-2024", "800/12/SP/II.08/2024")
    assert "✅ Plh. Kepala Dinas" in done.text and "Contoh Sekretaris" in done.text
    await harness.settle()
    await sek.wait_for(text_contains="Penunjukan Plh. Kepala Dinas")
    await kadis.wait_for(text_contains="ditunjuk sebagai Plh. Kepala Dinas")

    # an overlapping appointment is refused with a clear message
    refused = await appoint_via_bot(admin, "Kepala Dinas", "Contoh Kasubag Perencanaan",
                                    "Plh.", "9-10-2024", "-")
    assert "Penunjukan ditolak" in refused.text and "tumpang tindih" in refused.text

    # the open signature moved to the Plh. at once; the Kadis' button is refused
    moved = await sek.wait_for(text_contains="Tugas dialihkan kepada Anda",
                               predicate=has_button("Tandatangani"))
    q = await kadis.press(card8, text="Tandatangani")
    assert "bukan untuk Anda" in (await kadis.wait_for_answer(q)).text
    q = await sek.press(moved, text="Tandatangani")
    await sek.wait_for(after=q, text_contains="Ditandatangani")
    await harness.settle()
    await kadis.wait_for(text_contains="atas nama Anda")
    async with sessionmaker() as s:
        sign = (await s.execute(select(Approval).where(
            Approval.action == ApprovalAction.SIGN))).scalar_one()
    assert sign.person_id == sek_p.id and sign.acting_as == "Plh."

    # the roster shows the appointment; the Kadis (absent) still reads the board
    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, text_contains="Daftar pegawai")
    assert "sedang menjadi Plh. Kepala Dinas" in roster.text
    assert any("Batalkan Plh." in b for b in roster.button_texts)
    sent = await kadis.send_command("/status")
    await kadis.wait_for(after=sent, text_contains="Triwulan III Tahun 2024")


async def test_deactivating_a_kabid_hands_the_data_entry_to_the_chosen_person(
        harness, sessionmaker):
    people = await People(harness).load(*FIVE_ROLES)
    admin_person = await add_admin(harness)
    admin = await harness.register(admin_person)
    kabid, staf = people.user(Role.KABID, "PPTK"), people.user(Role.STAF, "PPTK")
    kabid_p, staf_p = people.person(Role.KABID, "PPTK"), people.person(Role.STAF, "PPTK")
    cycle_id = await to_collection(harness, sessionmaker)
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")

    # only the admin sees the deactivation button
    sek = people.user(Role.SEKRETARIS)
    sent = await sek.send_command("/pegawai")
    roster = await sek.wait_for(after=sent, text_contains="Daftar pegawai")
    assert "Nonaktifkan pegawai" not in roster.button_texts

    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, text_contains="Daftar pegawai")
    q = await admin.press(roster, text="Nonaktifkan pegawai")
    pick = await admin.wait_for(after=q, text_contains="Pilih pegawai")
    q = await admin.press(pick, text="Contoh Kabid Pelatihan")
    succ = await admin.wait_for(after=q, text_contains="Siapa yang mengambil alih")
    assert "1 tugas" in succ.text
    # only people who may hold the bidang's data entry are offered: its staf (the default)
    assert succ.button_texts[0] == "Contoh Staf Pelatihan (bawaan)"
    assert not any("Kasubag" in b or "Sekretaris" in b for b in succ.button_texts)
    q = await admin.press(succ, text="Contoh Staf Pelatihan")
    reason = await admin.wait_for(after=q, text_contains="Pilih alasannya")
    q = await admin.press(reason, text="Pensiun")
    done = await admin.wait_for(after=q, text_contains="dinonaktifkan")
    assert "Contoh Staf Pelatihan" in done.text and "1 tugas" in done.text
    await harness.settle()

    # the old Kabid's button no longer works (the Telegram binding is gone)
    q = await kabid.press(request, text="Mulai isi data")
    assert "kode undangan" in (await kabid.wait_for_answer(q)).text.lower()
    await kabid.wait_for(text_contains="dinonaktifkan (pensiun)")

    # the chosen person finishes the data entry through the bot and sends it
    moved = await staf.wait_for(text_contains="Tugas dialihkan kepada Anda",
                                predicate=has_button("Mulai isi data"))
    q = await staf.press(moved, text="Mulai isi data")
    card = await staf.wait_for(after=q, text_contains="Indikator 1 dari")
    for _ in range(12):
        sent = await staf.send_text("10")
        card = await staf.wait_for(after=sent, predicate=lambda m: "Tersimpan" in (m.text or "")
                                   or "Periksa kembali" in (m.text or ""))
        if "Periksa kembali" in card.text:
            q = await staf.press(card, text="Ya, benar")
            card = await staf.wait_for(after=q, text_contains="Tersimpan")
        if any("Kirim ke Kasubag" in b for b in card.button_texts):
            break
        q = await staf.press(card, text="Lanjut")
        card = await staf.wait_for(after=q, predicate=lambda m: "Indikator" in (m.text or "")
                                   or "Kirim ke Kasubag" in " ".join(m.button_texts))
        if any("Kirim ke Kasubag" in b for b in card.button_texts):
            break
    q = await staf.press(card, text="Kirim ke Kasubag")
    await staf.wait_for(after=q, text_contains="Kasubag")
    async with sessionmaker() as s:
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 4,
            StepRun.assignee_id == staf_p.id))).scalar_one()
        assert run.status == StepStatus.DONE and run.completed_by_id == staf_p.id
        rows = (await s.execute(select(AuditLog).where(
            AuditLog.action == "step.reassign"))).scalars().all()
        payload = json.loads(rows[0].payload)
        assert rows[0].actor_id == admin_person.id
        assert payload["from"] == kabid_p.id and payload["to"] == staf_p.id

    # /alihkan: the Kasubag hands Perindustrian's data entry to its staf
    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/alihkan")
    pick = await kasubag.wait_for(after=sent, text_contains="Pilih tugas terbuka")
    q = await kasubag.press(pick, text="Bidang Perindustrian")
    to = await kasubag.wait_for(after=q, text_contains="kepada siapa")
    q = await kasubag.press(to, text="Contoh Staf Perindustrian")
    await kasubag.wait_for(after=q, text_contains="dialihkan kepada Contoh Staf Perindustrian")
