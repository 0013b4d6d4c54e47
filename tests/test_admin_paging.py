"""The people pickers of the office administration are paged, never cut off: in an
office of 45 more people in one bidang, the admin pages ("Berikutnya ›") to the last
person of each picker and appoints them Plh., hands them a step with /alihkan, or
chooses them as the successor of a Kabid who leaves. Each press is a person acting
through the emulator, over real HTTP, by the button's label.

Before the paging the pickers kept the first 30 (Plh.), 20 (/alihkan) and 10
(successors): the last person had no button at all."""
from __future__ import annotations

from sqlalchemy import select

from bot.core.administration import Administration
from models import ActingAppointment, Person, StepRun
from models.enums import Role, StepStatus
from tests.e2e import FIVE_ROLES, People, harness  # noqa: F401  (fixtures)
from tests.test_e2e_admin import add_admin
from tests.test_e2e_data_entry import to_collection
from tests.test_e2e_signoff import has_button

NEXT, PREV = "Berikutnya \u203a", "\u2039 Sebelumnya"
EXTRA = 45
# the last one added: a name with a literal "&amp;" (not an entity), "<", quotes, emoji
LAST_NAME = 'Dra. "Wati" <Nur> &amp; Rekan \U0001F469\u200D\U0001F4BC Sr.'
LAST_LABEL = LAST_NAME + " - Staf"  # the button shows the name exactly as written


def extra_name(n: int) -> str:
    """A 120-character name with HTML-like characters, distinct in its first words."""
    base = f"{n:02d}. Ir. <Pelaksana> & \"Teknis\" O'Brien \U0001F477 Sr., S.T., M.M. "
    return (base + "Wicaksono Hadiningrat " * 6)[:120].rstrip()


async def add_people(harness, unit_code: str = "PPTK") -> Person:
    """``EXTRA`` staf of one bidang, the last named ``LAST_NAME``; returns the last."""
    async with harness.sessionmaker() as s, s.begin():
        adm = Administration(s, harness.services)
        for n in range(1, EXTRA):
            await adm.add_person(None, name=extra_name(n), role=Role.STAF,
                                 unit_code=unit_code, rank="Penata Muda", position="Analis")
        return await adm.add_person(None, name=LAST_NAME, role=Role.STAF,
                                    unit_code=unit_code, rank="Penata Muda",
                                    position="Analis")


def person_buttons(msg) -> list[str]:
    return [b for b in msg.button_texts if b not in (NEXT, PREV, "Batal")]


async def page_to_last(user, msg, page_text: str):
    """Press "Berikutnya ›" until the last page; every page has at most 10 people and
    says which page it is. Returns the last page and every person label seen."""
    seen, number = person_buttons(msg), 1
    assert NEXT in msg.button_texts, "the list is not paged"
    assert "Halaman 1 dari" in msg.text
    while NEXT in msg.button_texts:
        assert len(person_buttons(msg)) <= 10
        q = await user.press(msg, text=NEXT)
        number += 1
        msg = await user.wait_for(after=q, text_contains=f"Halaman {number} dari")
        assert page_text in msg.text and PREV in msg.button_texts
        seen += person_buttons(msg)
    assert f"Halaman {number} dari {number}" in msg.text
    return msg, seen


async def test_the_last_of_45_people_is_appointed_plh_after_paging(harness, sessionmaker):
    await People(harness).load(*FIVE_ROLES)
    last = await add_people(harness)
    admin = await harness.register(await add_admin(harness))

    sent = await admin.send_command("/pegawai")
    # a long roster comes in several messages, the buttons under the last one
    roster = await admin.wait_for(after=sent, predicate=has_button("Tunjuk Plh./Plt."))
    q = await admin.press(roster, text="Tunjuk Plh./Plt.")
    msg = await admin.wait_for(after=q, text_contains="Jabatan mana")
    q = await admin.press(msg, text="Kepala Dinas")
    msg = await admin.wait_for(after=q, text_contains="Siapa yang ditunjuk")
    msg, seen = await page_to_last(admin, msg, "Siapa yang ditunjuk")
    async with sessionmaker() as s:
        holders = (await s.execute(select(Person).where(
            Person.active.is_(True), Person.role.in_(
                (Role.SEKRETARIS, Role.KASUBAG, Role.KABID, Role.STAF))))).scalars().all()
    assert len(seen) == len(set(seen)) == len(holders) > EXTRA  # everyone once, no Kadis
    assert person_buttons(msg)[-1] == LAST_LABEL
    q = await admin.press(msg, text=LAST_LABEL)
    msg = await admin.wait_for(after=q, text_contains="Jenis penunjukan")
    q = await admin.press(msg, text="Plh.")
    await admin.wait_for(after=q, text_contains="rentang tanggal")
    sent = await admin.send_text("7-10-2024 s.d. 9-10-2024")
    await admin.wait_for(after=sent, text_contains="surat perintah")
    sent = await admin.send_text("800/12/SP/II.08/2024")
    confirm = await admin.wait_for(after=sent, text_contains="Periksa penunjukan")
    q = await admin.press(confirm, text="Simpan")
    await admin.wait_for(after=q, text_contains="\u2705")
    async with sessionmaker() as s:
        appt = (await s.execute(select(ActingAppointment))).scalar_one()
    assert appt.acting_person_id == last.id and appt.role == Role.KADIS


async def test_alihkan_reaches_the_last_of_45_eligible_people(harness, sessionmaker):
    people = await People(harness).load(*FIVE_ROLES)
    last = await add_people(harness)
    cycle_id = await to_collection(harness, sessionmaker)
    kasubag = people.user(Role.KASUBAG)

    sent = await kasubag.send_command("/alihkan")
    pick = await kasubag.wait_for(after=sent, text_contains="Pilih tugas terbuka")
    q = await kasubag.press(pick, text="Bidang Pelatihan")
    msg = await kasubag.wait_for(after=q, text_contains="kepada siapa")
    msg, seen = await page_to_last(kasubag, msg, "kepada siapa")
    assert len(seen) == len(set(seen)) and len(seen) >= EXTRA
    assert person_buttons(msg)[-1] == LAST_LABEL
    q = await kasubag.press(msg, text=LAST_LABEL)
    done = await kasubag.wait_for(after=q, text_contains="dialihkan kepada")
    assert LAST_NAME in done.text
    async with sessionmaker() as s:
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 4,
            StepRun.status == StepStatus.OPEN, StepRun.assignee_id == last.id))).scalars()
        assert len(run.all()) == 1


async def test_the_last_of_45_successors_takes_over_a_leaving_kabid(harness, sessionmaker):
    people = await People(harness).load(*FIVE_ROLES)
    last = await add_people(harness)
    admin = await harness.register(await add_admin(harness))
    kabid_p = people.person(Role.KABID, "PPTK")
    cycle_id = await to_collection(harness, sessionmaker)

    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, predicate=has_button("Nonaktifkan pegawai"))
    q = await admin.press(roster, text="Nonaktifkan pegawai")
    pick = await admin.wait_for(after=q, text_contains="Pilih pegawai")
    while not any("Contoh Kabid Pelatihan" in b for b in pick.button_texts):
        q = await admin.press(pick, text=NEXT)  # the roster list is paged too
        pick = await admin.wait_for(after=q, text_contains="Pilih pegawai")
    q = await admin.press(pick, text="Contoh Kabid Pelatihan")
    succ = await admin.wait_for(after=q, text_contains="Siapa yang mengambil alih")
    assert succ.button_texts[0] == "Contoh Staf Pelatihan (bawaan)"  # the default first
    msg, seen = await page_to_last(admin, succ, "Siapa yang mengambil alih")
    assert len(seen) == len(set(seen)) and len(seen) > EXTRA
    assert person_buttons(msg)[-1] == LAST_LABEL
    q = await admin.press(msg, text=LAST_LABEL)
    reason = await admin.wait_for(after=q, text_contains="Pilih alasannya")
    q = await admin.press(reason, text="Mutasi")
    done = await admin.wait_for(after=q, text_contains="dinonaktifkan")
    assert LAST_NAME in done.text
    async with sessionmaker() as s:
        run = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 4,
            StepRun.status == StepStatus.OPEN, StepRun.assignee_id == last.id))).scalars()
        assert len(run.all()) == 1
        assert not (await s.get(Person, kabid_p.id)).active


async def test_a_name_with_a_literal_entity_shows_as_written_on_its_button(
        harness, sessionmaker):
    """Button labels are plain text: "Ani &amp; Budi" is not turned into "Ani & Budi"."""
    await People(harness).load(*FIVE_ROLES)
    name = 'Ani &amp; Budi <Kepala> "Seksi" \U0001F3DB\uFE0F'
    async with harness.sessionmaker() as s, s.begin():
        await Administration(s, harness.services).add_person(
            None, name=name, role=Role.STAF, unit_code="PPTK")
    admin = await harness.register(await add_admin(harness))
    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, predicate=has_button("Nonaktifkan pegawai"))
    q = await admin.press(roster, text="Nonaktifkan pegawai")
    pick = await admin.wait_for(after=q, text_contains="Pilih pegawai")
    while not any(b.startswith("Ani &") for b in pick.button_texts):
        q = await admin.press(pick, text=NEXT)
        pick = await admin.wait_for(after=q, text_contains="Pilih pegawai")
    assert name + " - Staf" in pick.button_texts, pick.button_texts
    assert name in pick.text  # the list in the message reads the same
    q = await admin.press(pick, text=name + " - Staf")
    reason = await admin.wait_for(after=q, text_contains="Pilih alasannya")
    assert name in reason.text
