"""Step 4 as a person on a phone fills it in (issue 13, data entry 1-4), end to end over
the emulator: typing the next value straight after "Tersimpan", an ambiguous or
implausible number asked about with one button per reading, evidence sent before its
value, and the card moving past indicators handed to a staf."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from bot.devtools.scenario import png
from models import Evidence, StoredFile
from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.test_e2e_data_entry import press_and_wait, subs, to_collection


async def answer(user, card, value: str, contains: str = "Tersimpan"):
    """Type a value; the new card that has ``contains`` (and buttons) is returned."""
    sent = await user.send_text(value)
    return await user.wait_for(after=sent, predicate=lambda m: contains in m.text
                               and bool(m.buttons))


async def start(kabid):
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    return await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")


async def evidence_of(sm, sub_id: int) -> list[tuple[str, int | None]]:
    async with sm() as s:
        rows = await s.execute(
            select(StoredFile.filename, Evidence.added_by_id)
            .join(StoredFile, StoredFile.id == Evidence.file_id)
            .where(Evidence.submission_id == sub_id).order_by(Evidence.id))
        return [tuple(r) for r in rows]


async def test_a_value_typed_on_the_saved_card_answers_the_next_indicator(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    card = await start(kabid)
    card = await answer(kabid, card, "4,2")
    assert "Indikator 1 dari 6" in card.text and "4,2%" in card.text

    # no "Lanjut": the next value typed right away is indicator 2's
    card = await answer(kabid, card, "88,5", contains="Indikator 2 dari 6")
    assert "Tersimpan" in card.text
    assert "Tersimpan: Persentase kelulusan peserta pelatihan berbasis kompetensi" in card.text
    assert "88,5%" in card.text
    [tpt] = await subs(sm, cycle_id, "PPTK-01")
    [kel] = await subs(sm, cycle_id, "PPTK-02")
    assert tpt.value == Decimal("4.2") and kel.value == Decimal("88.5")

    # a note still goes through its button, and is not taken as a value
    card = await press_and_wait(kabid, card, "Tambah catatan", "Tulis catatan")
    note = 'Sumber: LPK "Maju & Jaya" <Liwa> 🎓'
    sent = await kabid.send_text(note)
    card = await kabid.wait_for(after=sent, text_contains="Catatan tersimpan")
    assert "Indikator 2 dari 6" in card.text and note in card.text
    assert [s.note for s in await subs(sm, cycle_id, "PPTK-02")] == ["", note]
    assert await subs(sm, cycle_id, "PPTK-03") == []

    # after the note, typing goes on with indicator 3, then 4
    card = await answer(kabid, card, "70", contains="Indikator 3 dari 6")
    assert "Tersimpan" in card.text and "70%" in card.text
    card = await answer(kabid, card, "195", contains="Indikator 4 dari 6")
    assert "Tersimpan" in card.text and "195 orang" in card.text
    assert [s.value for s in await subs(sm, cycle_id, "PPTK-04")] == [Decimal(195)]


async def test_an_ambiguous_or_implausible_number_is_asked_before_it_is_saved(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    card = await start(kabid)

    # "1,250": 1,25 or 1.250? one button per reading, nothing saved yet
    card = await answer(kabid, card, "1,250", contains="dapat dibaca")
    assert "1,25%" in card.button_texts
    assert "1.250% (seribu dua ratus lima puluh)" in card.button_texts
    assert "Ulangi" in card.button_texts and "Ya, benar" not in card.button_texts
    assert await subs(sm, cycle_id, "PPTK-01") == []
    card = await press_and_wait(kabid, card, "1,25%", "Tersimpan")
    [tpt] = await subs(sm, cycle_id, "PPTK-01")
    assert tpt.value == Decimal("1.25") and tpt.raw_text == "1,250"

    # "64.0" (an English decimal point) has one reading: it is still asked
    card = await answer(kabid, card, "64.0", contains="dapat dibaca")
    assert "Tersimpan" not in card.text
    assert "Indikator 2 dari 6" in card.text
    readings = [b for b in card.button_texts if b != "Ulangi"]
    assert readings == ["64% (enam puluh empat)"]
    assert await subs(sm, cycle_id, "PPTK-02") == []
    card = await press_and_wait(kabid, card, "Ulangi", "Ketik nilai realisasinya")
    assert await subs(sm, cycle_id, "PPTK-02") == []
    card = await answer(kabid, card, "85")  # unambiguous, plausible: saved at once
    assert [s.value for s in await subs(sm, cycle_id, "PPTK-02")] == [Decimal(85)]
    card = await answer(kabid, card, "70", contains="Indikator 3 dari 6")

    # 1250 people against a target of 200 for the quarter: asked, though no last period
    card = await answer(kabid, card, "1250", contains="Periksa kembali")
    assert "Indikator 4 dari 6" in card.text
    assert "lebih dari 4 kali target periode ini (200 orang)" in card.text
    assert await subs(sm, cycle_id, "PPTK-04") == []
    card = await press_and_wait(kabid, card, "Ulangi", "Ketik nilai realisasinya")

    # "1.250" is both ambiguous and implausible: the readings, the reason, no save
    card = await answer(kabid, card, "1.250", contains="dapat dibaca")
    assert card.button_texts[:2] == ["1.250 orang (seribu dua ratus lima puluh)",
                                     "1,25 orang"]
    assert "lebih dari 4 kali target" in card.text
    assert await subs(sm, cycle_id, "PPTK-04") == []
    card = await press_and_wait(kabid, card, "1.250 orang (seribu dua ratus lima puluh)",
                                "Tersimpan")
    [placed] = await subs(sm, cycle_id, "PPTK-04")
    assert placed.value == Decimal(1250)
    assert "1.250 orang" in card.text


async def test_evidence_sent_before_the_value_is_attached_when_the_value_comes(
        harness, people, sessionmaker):
    sm = sessionmaker
    cycle_id = await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    card = await start(kabid)

    sent = await kabid.send_photo(png(120, 90))
    card = await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    assert "Indikator 1 dari 6" in card.text and "Bukti menunggu nilai: 1 berkas" in card.text
    async with sm() as s:
        assert (await s.execute(select(Evidence))).first() is None
    card = await answer(kabid, card, "4,2")
    assert "Bukti dukung: 1 berkas" in card.text and "dilampirkan" in card.text
    [tpt] = await subs(sm, cycle_id, "PPTK-01")
    [(_, by)] = await evidence_of(sm, tpt.id)
    assert by == people.person(Role.KABID, "PPTK").id

    # on to indicator 2 by "Lanjut"; a PDF first, then an ambiguous value chosen
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")
    sent = await kabid.send_document(b"%PDF-1.4 daftar lulusan", "Daftar lulusan <LPK> & uji.pdf",
                                     "application/pdf")
    card = await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    assert "Daftar lulusan &lt;LPK&gt; &amp; uji.pdf" in card.content or \
        "Daftar lulusan <LPK> & uji.pdf" in card.text
    card = await answer(kabid, card, "85.5", contains="dapat dibaca")
    assert await subs(sm, cycle_id, "PPTK-02") == []
    card = await press_and_wait(kabid, card, "85,5%", "Tersimpan")
    [kel] = await subs(sm, cycle_id, "PPTK-02")
    assert [name for name, _ in await evidence_of(sm, kel.id)] == \
        ["Daftar lulusan <LPK> & uji.pdf"]
    assert "Bukti dukung: 1 berkas" in card.text
    # indicator 1 keeps its own photo only
    assert len(await evidence_of(sm, tpt.id)) == 1


async def test_after_a_handover_the_card_moves_to_the_kabids_next_indicator_and_resumes_there(
        harness, people, sessionmaker):
    sm = sessionmaker
    await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    staf_person = people.person(Role.STAF, "PPTK")
    card = await start(kabid)

    # indicator 1 handed to the staf from its own card: the card asks indicator 2
    card = await press_and_wait(kabid, card, "Serahkan ke staf", "Pilih indikatornya")
    card = await press_and_wait(kabid, card, "1. Tingkat Pengangguran Terbuka", "Serahkan")
    card = await press_and_wait(kabid, card, staf_person.name, "diserahkan kepada")
    assert "Indikator 2 dari 6" in card.text and "Persentase kelulusan" in card.text
    assert "Ketik nilai realisasinya" in card.text

    card = await answer(kabid, card, "85")
    card = await answer(kabid, card, "70", contains="Indikator 3 dari 6")

    # stop ("Batal"), then "Lanjutkan": the first unanswered one not handed over (4)
    q = await kabid.press(card, text="Batal")
    stopped = await kabid.wait_for(after=q, text_contains="Pengisian dihentikan")
    card = await press_and_wait(kabid, stopped, "Lanjutkan", "Indikator 4 dari 6")
    assert "Jumlah pencari kerja yang ditempatkan" in card.text

    # /batal, then the request's button: the same place
    sent = await kabid.send_command("/batal")
    await kabid.wait_for(after=sent)
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 4 dari 6")

    # indicator 4 handed over too: the card moves on to 5
    card = await press_and_wait(kabid, card, "Serahkan ke staf", "Pilih indikatornya")
    card = await press_and_wait(kabid, card, "4. Jumlah pencari kerja", "Serahkan")
    card = await press_and_wait(kabid, card, staf_person.name, "diserahkan kepada")
    assert "Indikator 5 dari 6" in card.text
