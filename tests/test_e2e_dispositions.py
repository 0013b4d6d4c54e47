"""Registration and steps 1-3 through the emulator, over real HTTP."""
from __future__ import annotations

from sqlalchemy import func, select

from bot.core.onboarding import create_invitation
from models import Cycle, CycleIndicator, Person, StepRun
from models.enums import Role, StepStatus
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.helpers import snapshot


async def test_strangers_and_bad_codes_are_refused(harness, sessionmaker, clock):
    stranger = harness.emulator.add_user(user_id=42, first_name="Orang Asing")
    async with sessionmaker() as s:
        before = await snapshot(s)
    sent = await stranger.send_command("/start")
    msg = await stranger.wait_for(after=sent)
    assert "belum terdaftar" in msg.text and "kode undangan" in msg.text
    sent = await stranger.send_command("/start", "kodepalsu")
    msg = await stranger.wait_for(after=sent)
    assert "tidak dikenal" in msg.text
    sent = await stranger.send_command("/tugas")
    assert "belum terdaftar" in (await stranger.wait_for(after=sent)).text
    sent = await stranger.send_text("halo")
    assert "belum terdaftar" in (await stranger.wait_for(after=sent)).text
    await harness.settle()
    async with sessionmaker() as s:
        after = await snapshot(s)
    # nothing changed (the inbox, intake bookkeeping, is not in the snapshot)
    assert after == before


async def test_a_used_code_cannot_register_a_second_account(harness, sessionmaker, clock):
    async with sessionmaker() as s, s.begin():
        kabid = (await s.execute(select(Person).where(Person.role == Role.KABID))).scalars().first()
        inv = await create_invitation(s, kabid, now=clock.now(), valid_days=14)
    first = harness.emulator.add_user(user_id=501, first_name="Kabid")
    second = harness.emulator.add_user(user_id=502, first_name="Penyusup")
    sent = await first.send_command("/start", inv.code)
    assert "Selamat datang" in (await first.wait_for(after=sent)).text
    sent = await second.send_command("/start", inv.code)
    assert "sudah dipakai" in (await second.wait_for(after=sent)).text
    async with sessionmaker() as s:
        assert (await s.get(Person, kabid.id)).telegram_user_id == 501


async def test_kadis_starts_sekretaris_forwards_kasubag_requests_data(harness, people, sessionmaker):
    kadis = people.user(Role.KADIS)
    sent = await kadis.send_command("/bantuan")
    assert "/mulai" in (await kadis.wait_for(after=sent)).text
    sent = await kadis.send_command("/mulai")
    menu = await kadis.wait_for(after=sent, text_contains="Pilih periodenya")
    q = await kadis.press(menu, text="Triwulan III Tahun 2024")
    ask = await kadis.wait_for(after=q, text_contains="instruksi disposisi")
    sent = await kadis.reply_to(ask, "Siapkan pengukuran kinerja TW III <segera>")
    ask_letter = await kadis.wait_for(after=sent, text_contains="surat masuk")
    sent = await kadis.send_document(b"%PDF-1.4 surat masuk", "surat-masuk.pdf", "application/pdf")
    await kadis.wait_for(after=sent, text_contains="dimulai")
    assert ask_letter

    # step 2: the Sekretaris gets the disposition card with the letter, and forwards it
    sek = people.user(Role.SEKRETARIS)
    card = await sek.wait_for(text_contains="Disposisi dari")
    # one message: the letter with the disposition as its caption, the button under it
    assert card.document is not None and "Terima & teruskan" in "".join(card.button_texts)
    assert "Siapkan pengukuran kinerja TW III &lt;segera&gt;" in card.source_caption or \
        "<segera>" in card.caption
    docs = harness.emulator.sent_files(sek.chat_id)
    assert any(f.data == b"%PDF-1.4 surat masuk" for f in docs)
    # the Kasubag pressing the Sekretaris' button changes nothing
    kasubag = people.user(Role.KASUBAG)
    q = await sek.press(card, text="Terima")
    ask = await sek.wait_for(after=q, text_contains="catatan disposisi")
    sent = await sek.reply_to(ask, "Mohon dikoordinasikan dengan semua bidang")
    await sek.wait_for(after=sent, text_contains="diteruskan")

    # step 3: the Kasubag chooses bidang and a deadline of 3 working days
    card = await kasubag.wait_for(text_contains="Catatan Sekretaris: Mohon dikoordinasikan")
    q = await kasubag.press(card, text="Koordinasikan bidang")
    coord = await kasubag.wait_for(after=q, text_contains="Koordinasi bidang")
    assert "Tingkat Pengangguran Terbuka" in coord.text
    q = await kasubag.press(coord, text="Sekretariat")  # untick the Sekretariat
    coord = await kasubag.wait_for(after=q, predicate=lambda m: "⬜ Sekretariat" in m.text)
    q = await kasubag.press(coord, text="3 hari")
    coord = await kasubag.wait_for(after=q, predicate=lambda m: "3 hari kerja" in m.text)
    q = await kasubag.press(coord, text="Kirim permintaan data")
    await kasubag.wait_for(after=q, text_contains="Permintaan data dikirim kepada 3 bidang")

    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    assert "Tingkat Pengangguran Terbuka (%): target 4,15" in request.text
    assert "Mulai isi data" in request.button_texts

    async with sessionmaker() as s:
        cycle = (await s.execute(select(Cycle))).scalar_one()
        assert cycle.letter_file_id is not None
        runs = (await s.execute(select(StepRun).where(StepRun.step_no == 4))).scalars().all()
        assert len(runs) == 3 and all(r.status == StepStatus.OPEN for r in runs)
        n = (await s.execute(select(func.count()).select_from(CycleIndicator))).scalar_one()
        assert n == 16  # PPTK 6 + HIJS 5 + IND 5


async def test_someone_elses_button_and_forged_data_change_nothing(harness, people, sessionmaker):
    kadis = people.user(Role.KADIS)
    sent = await kadis.send_command("/mulai")
    menu = await kadis.wait_for(after=sent, text_contains="Pilih periodenya")
    q = await kadis.press(menu, text="Triwulan III Tahun 2024")
    ask = await kadis.wait_for(after=q, text_contains="instruksi")
    sent = await kadis.reply_to(ask, "Mulai")
    prompt = await kadis.wait_for(after=sent, text_contains="surat masuk")
    q = await kadis.press(prompt, text="Mulai tanpa lampiran")
    await kadis.wait_for(after=q, text_contains="dimulai")
    sek = people.user(Role.SEKRETARIS)
    card = await sek.wait_for(text_contains="Disposisi dari")
    data = card.buttons[0]["callback_data"]
    await harness.settle()
    async with sessionmaker() as s:
        before = await snapshot(s)
    # a Kabid forges the Sekretaris' callback data, and some junk
    kabid = people.user(Role.KABID, "PPTK")
    sent = await kabid.send_command("/tugas")
    tasks = await kabid.wait_for(after=sent)
    for forged in [data, "dsp:999999", "prf:1:1", "xx", "dsp:1:2", "dsp:-1", "start:9:2024:3"]:
        tasks.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": forged}]]}
        qid = await kabid.press(tasks, data=forged)
        answer = await kabid.wait_for_answer(qid, timeout=4.0)
        assert answer is not None and answer.text, forged
    await harness.settle()
    async with sessionmaker() as s:
        after = await snapshot(s)
    assert after == before
