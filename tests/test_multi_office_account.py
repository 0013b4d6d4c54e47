"""People in several offices (issue 16, item 2): one Telegram account bound to a person
in each of two offices. Its command menu is the union of what its roles in both offices
can do (set again when a binding changes and at start-up), /status shows the board of
every office where it holds a board role under the office's name, a command that acts
in one office (/mulai, /pegawai, /alihkan) asks which office, /bantuan names the
offices, /batal leaves the conversations of both; a regency admin's menu has /kantor.
Over the emulator, with names as people write them (<, &, quotes, emoji)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot import callbacks
from bot.core.administration import Administration
from bot.core.onboarding import create_invitation
from bot.texts import role_title, t
from models import ActingAppointment, ActingKind, Conversation, Cycle, Office, Person
from models.enums import Role
from tests.e2e import harness  # noqa: F401  (fixture)
from tests.test_authorization import is_refusal, plain
from tests.test_two_offices import Offices, open_run, two, who  # noqa: F401  (fixture)

OFFICE_NAMES = ('Dinas Tenaga Kerja & "Perindustrian" <Lambar> 🏭',
                "Dinas Kesehatan & Gizi 'Sehat' <II.09> 🏥")


async def named(sm, a: int, b: int) -> dict[int, str]:
    """Both offices renamed as an office might write its name."""
    async with sm() as s, s.begin():
        for office_id, name in zip((a, b), OFFICE_NAMES):
            (await s.get(Office, office_id)).name = name
    return dict(zip((a, b), OFFICE_NAMES))


async def rename(sm, person: Person, name: str) -> Person:
    async with sm() as s, s.begin():
        p = await s.get(Person, person.id)
        p.name = name
    person.name = name
    return person


async def bind(harness, services, user, person: Person) -> None:
    """``user`` redeems an invitation of ``person`` (a person of another office)."""
    async with harness.sessionmaker() as s, s.begin():
        code = (await create_invitation(s, await s.get(Person, person.id),
                                        now=services.clock.now(), valid_days=14)).code
    sent = await user.send_command("/start", code)
    await user.wait_for(after=sent, text_contains="Selamat datang")


def menu(harness, user) -> list[str]:
    """The commands of the user's chat menu, as the emulator recorded setMyCommands."""
    key = harness.emulator.scope_key({"type": "chat", "chat_id": user.user_id})
    return [c["command"] for c in harness.emulator.commands.get(key, [])]


async def pad(user, msg, data: str):
    """Press ``data`` on ``msg`` as if it were one of its buttons (a forged or an old
    button): the callback answer."""
    msg.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
    return await user.wait_for_answer(await user.press(msg, data=data))


async def test_menu_status_and_help_of_a_kasubag_in_one_office_and_kabid_in_another(
        harness, sessionmaker, services, two):
    a, b = two
    names = await named(sessionmaker, a, b)
    o = Offices(sessionmaker, services, None, two)
    kasubag_a = await rename(sessionmaker, await who(sessionmaker, a, Role.KASUBAG),
                             'Hj. Siti "Ani" <Kasubag> & Rekan 🌸')
    kabid_b = await rename(sessionmaker, await who(sessionmaker, b, Role.KABID, "PPTK"),
                           "Ir. Budi & 'Bidang' <B> 🚀")
    user = await harness.register(kasubag_a)
    assert {"status", "alihkan"} <= set(menu(harness, user))
    await bind(harness, services, user, kabid_b)
    await harness.settle()
    # the second registration (a Kabid: no command of its own) keeps the Kasubag's
    assert menu(harness, user) == ["status", "alihkan", "tugas", "bantuan", "batal", "cek"]

    # /start again: welcomed with the role held in each office
    sent = await user.send_command("/start")
    hello = (await user.wait_for(after=sent)).text
    assert (f"({role_title(Role.KASUBAG)} di {names[a]}; "
            f"{role_title(Role.KABID)} di {names[b]})") in hello, hello

    # /bantuan: both offices, the role held in each, each role's help
    sent = await user.send_command("/bantuan")
    help_text = (await user.wait_for(after=sent)).text
    assert f"🏢 {names[a]}: {kasubag_a.name} - {role_title(Role.KASUBAG)}" in help_text
    assert f"🏢 {names[b]}: {kabid_b.name} - {role_title(Role.KABID)}" in help_text
    assert plain(t("h.kasubag")).splitlines()[0] in help_text
    assert plain(t("h.kabid")) in help_text
    assert "/mulai, /pegawai dan /alihkan menanyakan kantornya" in help_text

    # /status: the board of A only (a Kabid holds no board role in B), under A's name
    for office_id in (a, b):
        await o.started(office_id)
    sent = await user.send_command("/status")
    board = await user.wait_for(after=sent)
    await harness.settle()
    await asyncio.sleep(0.5)  # a second board would be sent right after the first
    boards = [m for m in user.messages if m.seq >= board.seq]
    assert len(boards) == 1 and boards[0].text.startswith(f"🏢 {names[a]}\nSiklus"), \
        [m.text for m in boards]

    # appointed Plh. Kepala Dinas of B: /status shows both offices' boards, each named
    now = services.clock.now()
    async with sessionmaker() as s, s.begin():
        await Administration(s, services, b).appoint(
            None, role=Role.KADIS, acting_id=kabid_b.id, kind=ActingKind.PLH,
            starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=2))
    await harness.settle()  # the appointment's notice first
    sent = await user.send_command("/status")
    first = await user.wait_for(after=sent)
    second = await user.wait_for(after=first, predicate=lambda m: m.seq > first.seq)
    await asyncio.sleep(0.5)
    assert [m.message_id for m in user.messages if m.seq > second.seq] == []
    assert first.text.startswith(f"🏢 {names[a]}\nSiklus Triwulan III Tahun 2024")
    assert second.text.startswith(f"🏢 {names[b]}\nSiklus Triwulan III Tahun 2024")
    # the Kasubag's board of A carries A's buttons only
    async with sessionmaker() as s:
        cycles = {c.office_id: c.id for c in (await s.execute(select(Cycle))).scalars()}
    assert all(f":{cycles[b]}" not in (btn.get("callback_data") or "")
               for btn in first.buttons)

    # at start-up the menu is made again: the acting role of B adds the Kadis' commands
    await harness.settle()  # nothing in flight when the bot stops
    harness.emulator.commands.pop(
        harness.emulator.scope_key({"type": "chat", "chat_id": user.user_id}), None)
    await harness.restart_bot()
    assert menu(harness, user) == ["mulai", "status", "pegawai", "alihkan", "tugas",
                                   "bantuan", "batal", "cek"]

    # B's admin deactivates B's Kabid: the account keeps A's Kasubag menu
    async with sessionmaker() as s, s.begin():
        s.add(Person(office_id=b, name="Admin <Kantor> & 'B' 🛠", role=Role.ADMIN))
    admin_b = await harness.register(await who(sessionmaker, b, Role.ADMIN))
    sent = await admin_b.send_command("/pegawai")
    roster = await admin_b.wait_for(after=sent, predicate=lambda m: m.buttons)
    answer = await pad(admin_b, roster, callbacks.encode("pgxr", kabid_b.id, 0, 1))
    assert not is_refusal(answer.text), answer.text
    await admin_b.wait_for(predicate=lambda m: m.message_id == roster.message_id
                           and "dinonaktifkan" in m.text)
    await harness.settle()
    async with sessionmaker() as s:
        assert not (await s.get(Person, kabid_b.id)).active
    assert menu(harness, user) == ["status", "alihkan", "tugas", "bantuan", "batal", "cek"]


async def test_a_kadis_of_two_offices_is_asked_which_office(harness, sessionmaker, services,
                                                            two):
    a, b = two
    names = await named(sessionmaker, a, b)
    kadis_a = await rename(sessionmaker, await who(sessionmaker, a, Role.KADIS),
                           'Dr. H. "Ahmad" <Kadis> & Tim, M.M. 👔')
    kadis_b = await rename(sessionmaker, await who(sessionmaker, b, Role.KADIS),
                           "dr. Rina & 'Kesehatan' <Kadis> 🩺")
    user = await harness.register(kadis_a)
    await bind(harness, services, user, kadis_b)
    await harness.settle()
    assert menu(harness, user)[:4] == ["mulai", "status", "pegawai", "alihkan"]

    # /mulai: which office? one button each, named, acting in its office
    sent = await user.send_command("/mulai")
    ask = await user.wait_for(after=sent, predicate=lambda m: m.buttons)
    assert "Anda berwenang di 2 kantor" in ask.text
    assert [(btn["text"], btn["callback_data"]) for btn in ask.buttons] == [
        (names[a], callbacks.encode("ofc", 1, a)), (names[b], callbacks.encode("ofc", 1, b))]
    assert all(len(btn["callback_data"].encode()) <= 64 for btn in ask.buttons)
    q = await user.press(ask, text=names[b])
    periods = await user.wait_for(after=q, text_contains="Pilih periodenya")
    assert user.message(ask.message_id).text == f"/mulai - 🏢 {names[b]}"
    assert not user.message(ask.message_id).buttons
    assert all(btn["callback_data"].endswith(f":{b}") for btn in periods.buttons)
    q = await user.press(periods, text="Triwulan III Tahun 2024")
    prompt = await user.wait_for(after=q, text_contains="instruksi disposisi")
    sent = await user.reply_to(prompt, "Siapkan pengukuran TW III & <segera> 🙏")
    letter = await user.wait_for(after=sent, predicate=lambda m: m.buttons)
    q = await user.press(letter, text=t("b.no_letter"))
    await user.wait_for(after=q, text_contains="dimulai")
    await harness.settle()
    async with sessionmaker() as s:
        cycles = (await s.execute(select(Cycle))).scalars().all()
    assert [(c.office_id, c.year, c.quarter) for c in cycles] == [(b, 2024, 3)]
    assert cycles[0].started_by_id == kadis_b.id
    assert (await open_run(sessionmaker, cycles[0].id, 2)) is not None

    # a button of an office the account has no person in is refused
    answer = await pad(user, ask, callbacks.encode("ofc", 1, a + b + 1000))
    assert plain(answer.text) == plain(t("err.not_found"))
    # a period pressed without its office (the quarterly prompt's button): asked for
    answer = await pad(user, ask, callbacks.encode("start", 1, 2024, 4))
    which = await user.wait_for(after=ask, text_contains="Pilih kantor yang memulai")
    assert "Triwulan IV Tahun 2024" in which.text
    assert [btn["callback_data"] for btn in which.buttons] == [
        callbacks.encode("startk", 1, 2024, 4, a), callbacks.encode("startk", 1, 2024, 4, b)]
    q = await user.press(which, text=names[a])
    await user.wait_for(after=q, text_contains="instruksi disposisi")
    async with sessionmaker() as s:
        assert (await s.get(Conversation, kadis_a.id)).data["quarter"] == 4
        assert await s.get(Conversation, kadis_b.id) is None

    # /status: both offices' boards, each under its name (A has no cycle yet)
    sent = await user.send_command("/status")
    first = await user.wait_for(after=sent)
    second = await user.wait_for(after=first, predicate=lambda m: m.seq > first.seq)
    await asyncio.sleep(0.5)
    assert [m.message_id for m in user.messages if m.seq > second.seq] == []
    assert first.text == f"🏢 {names[a]}\n{plain(t('s.no_cycle'))}"
    assert second.text.startswith(f"🏢 {names[b]}\nSiklus Triwulan III Tahun 2024")

    # /pegawai in A: A's roster, its buttons in A
    sent = await user.send_command("/pegawai")
    ask = await user.wait_for(after=sent, predicate=lambda m: m.buttons)
    q = await user.press(ask, data=callbacks.encode("ofc", 2, a))
    roster = await user.wait_for(after=q, predicate=lambda m: m.buttons)
    assert f"Daftar pegawai {names[a]}" in roster.text and kadis_a.name in roster.text
    assert kadis_b.name not in roster.text
    assert callbacks.encode("pgw", 2, a) in {btn["callback_data"] for btn in roster.buttons}
    # another office's id on A's menu button finds no person of that office there
    answer = await pad(user, ask, callbacks.encode("pgw", 2, a + b + 1000))
    assert plain(answer.text) == plain(t("err.not_found"))

    # /alihkan in B: B's step 2 (the Sekretaris'), no step of A
    sent = await user.send_command("/alihkan")
    ask = await user.wait_for(after=sent, predicate=lambda m: m.buttons)
    q = await user.press(ask, data=callbacks.encode("ofc", 3, b))
    runs = await user.wait_for(after=q, text_contains="Pilih tugas terbuka")
    run2 = await open_run(sessionmaker, cycles[0].id, 2)
    assert [btn["callback_data"] for btn in runs.buttons] == [callbacks.encode("alh", run2.id)]

    # /batal leaves the conversation of each office (A's start is waiting)
    async with sessionmaker() as s, s.begin():
        s.add(Conversation(person_id=kadis_b.id, kind="mulai", state="instruction",
                           data={"kind": "quarterly", "year": 2024, "quarter": 2}))
    sent = await user.send_command("/batal")
    await user.wait_for(after=sent, text_contains="Isian dibatalkan")
    await harness.settle()
    async with sessionmaker() as s:
        assert await s.get(Conversation, kadis_a.id) is None
        assert await s.get(Conversation, kadis_b.id) is None


async def test_a_regency_admins_menu_has_kantor(harness, sessionmaker, services, two):
    a, _b = two
    outside = harness.emulator.add_user(user_id=990_001, first_name="Admin <Kabupaten> & 🏛")
    kasubag = await rename(sessionmaker, await who(sessionmaker, a, Role.KASUBAG),
                           'Drs. "Kasubag" & <Admin> 🗂')
    services.config.regency.admins = [outside.user_id, 700_000 + kasubag.id]
    await harness.settle()
    await harness.restart_bot()  # set at start-up: an account of no office too
    assert menu(harness, outside) == ["cek", "kantor"]  # of no office: nothing else works
    # a regency admin who registers in an office: the role's commands and /kantor
    user = await harness.register(kasubag)
    assert user.user_id == 700_000 + kasubag.id
    assert menu(harness, user) == ["status", "alihkan", "tugas", "bantuan", "batal", "cek",
                                   "kantor"]
    sent = await outside.send_command("/kantor")
    listing = await outside.wait_for(after=sent)
    assert "(2 kantor)" in listing.text


async def test_a_plh_appointed_in_the_bot_has_the_roles_menu_until_cancelled(
        harness, sessionmaker, services, office):
    """A Plh./Plt. may use the commands of the role acted for: the menu shows them from
    the appointment made in the bot, and no longer once it is cancelled."""
    from tests.test_e2e_admin import add_admin, appoint_via_bot

    admin = await harness.register(await add_admin(harness))
    kabid = await rename(sessionmaker, await who(sessionmaker, office.id, Role.KABID, "HIJS"),
                         'Ir. "Joko" & <Kabid> Widodo 🌾')
    user = await harness.register(kabid)
    assert menu(harness, user) == ["tugas", "bantuan", "batal", "cek"]
    done = await appoint_via_bot(admin, "Kepala Dinas", kabid.name, "Plh.",
                                 "7-10-2024 s.d. 9-10-2024", "-")
    assert "✅ Plh. Kepala Dinas" in done.text and kabid.name in done.text
    await harness.settle()
    assert menu(harness, user) == ["mulai", "status", "pegawai", "alihkan", "tugas",
                                   "bantuan", "batal", "cek"]
    async with sessionmaker() as s:
        appt = (await s.execute(select(ActingAppointment))).scalar_one()
    sent = await admin.send_command("/pegawai")
    roster = await admin.wait_for(after=sent, text_contains="Daftar pegawai")
    q = await admin.press(roster, data=callbacks.encode("plhx", appt.id))
    await admin.wait_for(after=q, text_contains="dibatalkan")
    await harness.settle()
    assert menu(harness, user) == ["tugas", "bantuan", "batal", "cek"]


async def test_a_plh_whose_range_begins_and_ends_by_time_has_the_roles_menu_meanwhile(
        harness, sessionmaker, services, clock, office):
    """An appointment made ahead of its range: the menu gains the role's commands when the
    deadline job starts the range, and loses them when it ends it (no one pressed
    anything in between)."""
    from types import SimpleNamespace

    from bot.telegram.scheduling import deadline_job
    from tests.conftest import wib

    kabid = await rename(sessionmaker, await who(sessionmaker, office.id, Role.KABID, "HIJS"),
                         "Dra. Siti <Aisyah> & 'Putri' 🌸")
    user = await harness.register(kabid)
    assert menu(harness, user) == ["tugas", "bantuan", "batal", "cek"]
    clock.set(wib(2024, 10, 7, 7, 0))
    async with sessionmaker() as s, s.begin():
        await Administration(s, services, office.id).appoint(
            None, role=Role.KADIS, acting_id=kabid.id, kind=ActingKind.PLH,
            starts_at=wib(2024, 10, 8, 0, 0), ends_at=wib(2024, 10, 10, 0, 0))
    job = SimpleNamespace(application=harness.app)

    await deadline_job(job)  # before the range: nothing changes
    assert menu(harness, user) == ["tugas", "bantuan", "batal", "cek"]
    clock.set(wib(2024, 10, 8, 7, 30))
    await deadline_job(job)
    assert menu(harness, user) == ["mulai", "status", "pegawai", "alihkan", "tugas",
                                   "bantuan", "batal", "cek"]
    clock.set(wib(2024, 10, 10, 7, 30))
    await deadline_job(job)
    assert menu(harness, user) == ["tugas", "bantuan", "batal", "cek"]
