"""Secrets and privacy: NIPs and evidence files never reach a chat; the documents reach
only the people of the sign-off and the agencies; the token never reaches a log."""
from __future__ import annotations

import logging
import re

from sqlalchemy import select

from bot.core.administration import Administration
from bot.devtools.scenario import Player, ScriptedCycle, png
from models import Approval, Delivery, Document, Evidence, Person, StepRun, StoredFile
from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.test_documents_service import flat, pdf_text
from tests.test_e2e_data_entry import answer, press_and_wait, to_collection

NIP = re.compile(r"(?<!\d)\d{18}(?!\d)")  # in a PDF's text, its spaces taken out
# in a chat: 18 digits standing alone, not a run of digits inside a longer word such as
# a SHA-256 digest in hex, which /cek shows (64 characters, with a run of exactly 18
# digits in about one in 700 digests: a "NIP" the check saw in one CI run of 28 November)
NIP_IN_CHAT = re.compile(r"(?<![0-9A-Za-z])\d{18}(?![0-9A-Za-z])")


async def test_no_nip_and_no_evidence_file_in_any_chat_and_no_token_in_logs(
        harness, people, sessionmaker, caplog):
    caplog.set_level(logging.DEBUG)
    await to_collection(harness, sessionmaker, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari")
    card = await answer(kabid, card, "4,2")
    photo = png(50, 40)
    sent = await kabid.send_photo(photo)
    await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus")
    await press_and_wait(kasubag, board, "Lihat data Bidang Pelatihan", "Data Bidang")
    for user in people.h.users.values():
        for command in ("/tugas", "/bantuan"):
            sent = await user.send_command(command)
            await user.wait_for(after=sent)
    await harness.settle()
    texts = [m.text or m.caption or "" for u in harness.emulator.users for m in u.messages]
    assert texts and not [t for t in texts if NIP_IN_CHAT.search(t)]
    sent_files = [f.data for u in harness.emulator.users for f in harness.emulator.sent_files(u.chat_id)]
    assert photo not in sent_files
    token = harness.app.bot.token
    assert not [r for r in caplog.records if token in r.getMessage()]


# ---------------------------------------------------------------------------------------
# /pegawai, the sign-off and every file: a whole cycle, then every chat is read


def nips_in(text: str, pattern: re.Pattern = NIP) -> set[str]:
    return set(pattern.findall(text or ""))


async def test_pegawai_signoff_and_files_reach_only_who_may_have_them(
        harness, sessionmaker, services, clock):
    """A whole cycle of the example office (evidence as a photo and a PDF, one bidang
    returned, documents compiled, initialled, signed, numbered and delivered), the
    roster and the admin's lists of people, /cek, /status and /tugas; then:

    * no NIP of anyone appears in any chat: no text, caption, button or file name (the
      roster lists names, roles and registration, never a NIP);
    * no evidence file (of any bidang) is sent to any chat: it stays in the storage and
      the archive;
    * the documents (workbook, PDF, chart of every version, the numbered PDF, the receipts)
      reach only the people who hold a sign-off step (6-11) and the agencies' contacts:
      no Kabid, no staf of a bidang, not the admin, not a stranger;
    * a PDF that reaches a chat carries no NIP but those of the people who initialled or
      signed it.
    """
    async with sessionmaker() as s, s.begin():
        admin = await Administration(s, services).add_person(
            None, name="Admin <Kantor> & \"Kepegawaian\" 🗂", role=Role.ADMIN)
        await Administration(s, services).add_person(  # a NIP nobody in a chat may see
            None, name="Contoh Calon Pegawai", role=Role.STAF, unit_code="IND",
            nip="199912312024121001")
    await harness.register_all()
    stranger = harness.emulator.add_user(user_id=990_002, first_name="Orang Asing")
    script = ScriptedCycle(sessionmaker, harness.users, Player(clock),
                           period="Triwulan III Tahun 2024")
    cycle_id = await script.run()
    assert await script.cycle_closed()
    await harness.settle()

    # the roster, and the admin's lists of people (deactivate, appoint a Plh.)
    users = harness.users
    async with sessionmaker() as s:
        by_role = {}
        for p in (await s.execute(select(Person).where(Person.active.is_(True))
                                  .order_by(Person.id))).scalars():
            by_role.setdefault(p.role, p)
    for role in (Role.ADMIN, Role.KADIS, Role.SEKRETARIS):
        user = users[by_role[role].id]
        sent = await user.send_command("/pegawai")
        await user.wait_for(after=sent, text_contains="Daftar pegawai")
    admin_user = users[admin.id]
    sent = await admin_user.send_command("/pegawai")
    roster = await admin_user.wait_for(after=sent, text_contains="Daftar pegawai")
    q = await admin_user.press(roster, text="Nonaktifkan pegawai")
    pick = await admin_user.wait_for(after=q, text_contains="Pilih pegawai")
    q = await admin_user.press(pick, text="Contoh Kabid Pelatihan")
    await admin_user.wait_for(after=q, text_contains="alasan")
    sent = await admin_user.send_command("/pegawai")
    roster = await admin_user.wait_for(after=sent, text_contains="Daftar pegawai")
    q = await admin_user.press(roster, text="Tunjuk Plh./Plt.")
    slots = await admin_user.wait_for(after=q, text_contains="Jabatan mana")
    q = await admin_user.press(slots, text="Kepala Dinas")
    await admin_user.wait_for(after=q, text_contains="Siapa yang ditunjuk")
    sent = await admin_user.send_command("/batal")
    await admin_user.wait_for(after=sent, text_contains="dibatalkan")
    # the verification of the numbered document, by a stranger and by a Kabid
    async with sessionmaker() as s:
        final = (await s.execute(select(Document).where(Document.cycle_id == cycle_id)
                                 .order_by(Document.version.desc()))).scalars().first()
    kabid = users[by_role[Role.KABID].id]
    for user in (stranger, kabid):
        sent = await user.send_command("/cek", final.verification_code)
        await user.wait_for(after=sent, text_contains=final.verification_code)
    for user in list(users.values()):
        for command in ("/tugas", "/status"):
            sent = await user.send_command(command)
            await user.wait_for(after=sent)
    await harness.settle()

    async with sessionmaker() as s:
        people = (await s.execute(select(Person))).scalars().all()
        nips = {p.nip for p in people if p.nip}
        by_chat = {p.telegram_user_id: p for p in people if p.telegram_user_id}
        evidence = [services.store.read(f) for f in (await s.execute(
            select(StoredFile).join(Evidence, Evidence.file_id == StoredFile.id))).scalars()]
        documents = set()
        for d in (await s.execute(select(Document).where(Document.cycle_id == cycle_id))
                  ).scalars():
            for fid in (d.workbook_file_id, d.pdf_file_id, d.chart_file_id):
                if fid:
                    documents.add(services.store.read(await s.get(StoredFile, fid)))
        holders = set((await s.execute(select(StepRun.assignee_id).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no >= 6))).scalars())
        contacts = set((await s.execute(select(Delivery.contact_person_id))).scalars())
        approvers = set((await s.execute(select(Approval.person_id))).scalars())
        signed_nips = {p.nip for p in people if p.id in approvers and p.nip}
    assert len(evidence) >= 2 and len(documents) >= 3 and len(nips) >= 10

    # 1. no NIP in any chat: texts, captions, buttons, file names
    seen = []
    for user in harness.emulator.users:
        for msg in user.messages:
            seen += [msg.text or "", msg.caption or "", *msg.button_texts]
        seen += [f.filename or "" for f in harness.emulator.sent_files(user.chat_id)]
    assert len(seen) > 200
    leaked = [text for text in seen
              if nips_in(text, NIP_IN_CHAT) or any(n in text for n in nips)]
    assert not leaked, leaked[:3]

    # 2. and 3. files: evidence to nobody, documents only to sign-off holders and contacts
    may_have_documents = holders | contacts
    received, evidence_sent = {}, []
    for user in harness.emulator.users:
        for f in harness.emulator.sent_files(user.chat_id):
            if f.data in evidence:
                evidence_sent.append((user.chat_id, f.filename))
            if f.data in documents or f.filename and f.filename.lower().endswith(
                    (".pdf", ".xlsx")):
                person_ = by_chat.get(user.chat_id)
                received.setdefault(person_.id if person_ else user.chat_id, []).append(
                    f.filename)
    assert not evidence_sent, evidence_sent
    assert received, "no document reached any chat"
    strays = {who: names for who, names in received.items() if who not in may_have_documents}
    assert not strays, strays
    assert {p.id for p in people if p.role == Role.KABID}.isdisjoint(received)

    # 4. a PDF in a chat names only who initialled or signed it (the signed one does)
    shown = set()
    for user in harness.emulator.users:
        for f in harness.emulator.sent_files(user.chat_id):
            if (f.filename or "").lower().endswith(".pdf"):
                found = nips_in(flat(pdf_text(f.data)).replace(" ", ""))
                assert found <= signed_nips, (f.filename, found - signed_nips)
                shown |= found
    assert shown and shown <= signed_nips
