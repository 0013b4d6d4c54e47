"""Wording a person reads (issue 13, item 9), over the emulator: a unit whose name starts
with "Bidang" is never written "Bidang Bidang ...", a name ending in "." never gets a
second one, office and unit names keep the case they were typed in, button labels are
shortened at a word boundary, the /batal notice reaches only the person who cancelled."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from bot.core.documents import document_data
from bot.render import clip, label
from bot.texts import kabid_title, t, unit_name
from bot.core.workflow import Workflow
from models import Office, StepRun, Submission, Unit
from models.enums import Role, StepStatus
from reports.summary import summary_text
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.helpers import person, unit
from tests.test_e2e_data_entry import to_collection

OFFICE = "Dinas Tenaga Kerja dan Perindustrian"
KASUBAG = "Drs. A. Rahman, M.M."
LONG_UNIT = "Bidang Pelatihan, Produktivitas dan Penempatan Tenaga Kerja"


async def _rename(sm) -> None:
    async with sm() as s, s.begin():
        kasubag = await person(s, Role.KASUBAG)
        kasubag.name = KASUBAG
        (await s.get(Office, kasubag.office_id)).name = OFFICE
        (await unit(s, "PPTK")).name = LONG_UNIT


def _everything(h) -> list[str]:
    return [m.content for u in h.emulator.users for m in u.messages]


async def _submit_ind(h, sm, cycle_id: int) -> None:
    """The Bidang Perindustrian answers everything and sends (through the workflow)."""
    async with sm() as s, s.begin():
        wf = Workflow(s, h.services)
        kabid = await person(s, Role.KABID, "IND")
        ind = await unit(s, "IND")
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.unit_id == ind.id,
            StepRun.status == StepStatus.OPEN))).scalar_one()
        for item in await wf.cycle_items(cycle_id, ind.id):
            s.add(Submission(cycle_id=cycle_id, indicator_id=item.indicator_id, revision=1,
                             raw_text="7", value=Decimal(7), person_id=kabid.id))
        await s.flush()
        await wf.submit_unit(kabid, run.id)
    h.sender.wake()
    await h.settle()


async def test_unit_and_person_names_are_written_once_as_typed(harness, people, sessionmaker):  # noqa: F811
    h, sm = harness, sessionmaker
    await _rename(sm)
    cycle_id = await to_collection(h, sm)
    kasubag = people.user(Role.KASUBAG)
    kabid_ind = people.user(Role.KABID, "IND")

    # the Kasubag is told the Bidang Perindustrian sent its data: "Bidang" once
    await _submit_ind(h, sm, cycle_id)
    told = await kasubag.wait_for(text_contains="telah mengirim data kinerja")
    assert told.text.startswith("Bidang Perindustrian telah mengirim"), told.text

    # the Kasubag (a name ending in ".") returns it: the Kabid reads "M.M." once
    async with sm() as s, s.begin():
        wf = Workflow(s, h.services)
        await wf.return_unit(await person(s, Role.KASUBAG), cycle_id,
                             (await unit(s, "IND")).id, "Angka investasi <keliru> & cek lagi")
    h.sender.wake()
    await h.settle()
    back = await kabid_ind.wait_for(text_contains="dikembalikan")
    assert "Data Bidang Perindustrian dikembalikan oleh Drs. A. Rahman, M.M. untuk" in back.text

    # the Kasubag closes the collection: "ditutup oleh Drs. A. Rahman, M.M. Bidang ..."
    async with sm() as s, s.begin():
        await Workflow(s, h.services).close_collection(await person(s, Role.KASUBAG), cycle_id,
                                                       "Batas waktu lewat")
    h.sender.wake()
    await h.settle()
    seen = _everything(h)
    assert any("oleh Drs. A. Rahman, M.M. " in text for text in seen), seen
    for text in seen:
        assert "bidang bidang" not in text.casefold(), text
        assert "M.M.." not in text, text
        assert "Dan Perindustrian" not in text and "Tenaga Kerja Dan" not in text, text


async def test_status_buttons_are_shortened_at_a_word_boundary(harness, people, sessionmaker):  # noqa: F811
    h, sm = harness, sessionmaker
    await _rename(sm)
    await to_collection(h, sm)
    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus")
    views = [b for b in board.button_texts if b.startswith("Lihat data")]
    assert "Lihat data Bidang Pelatihan, Produktivitas dan…" in views, views
    assert "Lihat data Bidang Perindustrian" in views, views
    for text in board.button_texts:
        if text.endswith("…"):
            words = text[:-1].split()
            assert words[-1] in ("Lihat data " + LONG_UNIT).split(), text


async def test_the_summary_and_the_document_title_keep_the_office_name_as_typed(
        harness, people, sessionmaker):  # noqa: F811
    h, sm = harness, sessionmaker
    await _rename(sm)
    cycle_id = await to_collection(h, sm)
    async with sm() as s:
        wf = Workflow(s, h.services)
        data = await document_data(wf, await wf.get_cycle(cycle_id), version=1)
    assert data.title == f"Pengukuran Kinerja {OFFICE}"
    text = summary_text(data)
    assert f"<b>Pengukuran Kinerja {OFFICE}</b>" in text, text
    assert "Dan" not in text


async def test_the_cancel_notice_reaches_only_the_person_who_cancelled(
        harness, people, sessionmaker):  # noqa: F811
    h, sm = harness, sessionmaker
    await to_collection(h, sm)
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    q = await kabid.press(request, text="Mulai isi data")
    await kabid.wait_for(after=q, text_contains="Indikator 1 dari")
    before = {u.user_id: len(u.messages) for u in h.emulator.users}
    sent = await kabid.send_command("/batal")
    notice = await kabid.wait_for(after=sent, text_contains="dibatalkan")
    assert notice.text == t("o.cancelled")
    await h.settle()
    for u in h.emulator.users:
        new = [m.content for m in u.messages[before.get(u.user_id, 0):]]
        if u is kabid:
            assert new == [t("o.cancelled")], new
        else:
            assert not any("dibatalkan" in text for text in new), (u, new)


# ----------------------------------------------------------------- the helpers
def test_unit_name_prefixes_bidang_only_when_missing():
    assert unit_name("Bidang Pelatihan dan Penempatan") == "Bidang Pelatihan dan Penempatan"
    assert unit_name("bidang Perindustrian") == "bidang Perindustrian"
    assert unit_name("Perindustrian") == "Bidang Perindustrian"
    assert unit_name("Sekretariat") == "Sekretariat"
    assert kabid_title("Bidang Pelatihan dan Penempatan") == "Kepala Bidang Pelatihan dan Penempatan"
    assert kabid_title("Perindustrian") == "Kepala Bidang Perindustrian"


def test_a_name_ending_in_a_full_stop_replaces_the_sentence_full_stop():
    assert t("a.err_nip_taken", nip="19700101", name=KASUBAG) == \
        "NIP 19700101 sudah dipakai oleh Drs. A. Rahman, M.M."
    assert t("a.reassigned", step=4, name=KASUBAG) == \
        "✅ Langkah 4 dialihkan kepada Drs. A. Rahman, M.M. Keduanya telah diberi tahu."
    # a name without a full stop, and "<" / "&" in it, are untouched (escaped)
    assert t("a.err_nip_taken", nip="1", name="A & <B>") == "NIP 1 sudah dipakai oleh A &amp; &lt;B&gt;."
    # inside bold: "<b>M.M.</b>." becomes "<b>M.M.</b>"
    assert t("c.returned", unit=KASUBAG, name="x", reason="y").startswith(
        "↩️ Data <b>Drs. A. Rahman, M.M.</b> dikembalikan")


def test_clip_cuts_at_a_word_boundary():
    assert clip("Bidang Pelatihan, Produktivitas dan Penempatan Tenaga Kerja", 40) == \
        "Bidang Pelatihan, Produktivitas dan…"
    assert label("Bidang Pelatihan dan Penempatan Tenaga Kerja", 30) == "Bidang Pelatihan dan…"
    # a single word longer than the limit is still cut (nothing else is possible)
    assert clip("Supercalifragilisticexpialidocious", 10) == "Supercali…"
    # emoji count two UTF-16 units; the cut never splits a word either
    assert clip("📊 Rata-rata capaian bidang kerja", 20) == "📊 Rata-rata…"
    assert clip("pendek", 20) == "pendek"
