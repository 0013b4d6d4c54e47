"""Offices as data (issue 16, item 1): two offices in one database, each with its own
people, settings and cycle of the same period. Nobody of one office sees, enters,
signs or is reminded about the other's cycle; letter numbers are counted per office;
each office's reminders and times are in its own zone."""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.core.administration import Administration
from bot.core.errors import NotAllowed, NotFound, WorkflowError
from bot.core.office_data import apply_office
from bot.core.reminders import daily_digest, sweep
from bot.core.workflow import Workflow
from bot.devtools.example_data import example_office
from models import (
    CycleIndicator, LetterNumber, Office, Outbox, Person, Reminder, StepRun, Unit,
)
from models.enums import CycleKind, Role, StepStatus
from tests.e2e import harness  # noqa: F401  (fixture)
from tests.helpers import snapshot

B_SETTINGS = {
    "calendar": {"timezone": "Asia/Makassar"},  # WITA: one hour ahead of WIB
    "numbering": {"format": "{kode}/{urut}/{unit}/{bulan_romawi}/{tahun}"},
    "office": {"address": "Jalan Merdeka 2, Liwa"},
}


@pytest.fixture
async def two(sessionmaker, office):
    """Office A (the example office, config.toml's settings) and office B (the same
    workbook under another unit code, with settings of its own)."""
    spec = dataclasses.replace(example_office(2024), name="Dinas Kesehatan",
                               unit_code="II.09", settings=B_SETTINGS)
    async with sessionmaker() as s, s.begin():
        b = await apply_office(s, spec)
    assert b.id != office.id
    return office.id, b.id


async def who(sm, office_id: int, role: Role, unit_code: str | None = None) -> Person:
    async with sm() as s:
        stmt = select(Person).where(Person.office_id == office_id, Person.role == role)
        if unit_code:
            stmt = stmt.join(Unit, Unit.id == Person.unit_id).where(Unit.code == unit_code)
        return (await s.execute(stmt.order_by(Person.id))).scalars().first()


async def open_run(sm, cycle_id: int, step_no: int, unit_id: int | None = None) -> StepRun:
    async with sm() as s:
        stmt = select(StepRun).where(StepRun.cycle_id == cycle_id, StepRun.step_no == step_no,
                                     StepRun.status == StepStatus.OPEN)
        if unit_id:
            stmt = stmt.where(StepRun.unit_id == unit_id)
        return (await s.execute(stmt)).scalars().first()


class Offices:
    def __init__(self, sm, services, clock, ids):
        self.sm, self.sv, self.clock = sm, services, clock
        self.a, self.b = ids

    async def __call__(self, fn, office_id: int | None = None):
        """One transaction, as a handler: the workflow acts for ``office_id`` (the
        acting person's office) when given."""
        async with self.sm() as s, s.begin():
            return await fn(await Workflow(s, self.sv, office_id).ready(), s)

    async def refused(self, fn, office_id: int | None = None, exc=WorkflowError):
        async with self.sm() as s:
            before = await snapshot(s)
        with pytest.raises(exc):
            await self(fn, office_id)
        async with self.sm() as s:
            assert await snapshot(s) == before

    async def started(self, office_id: int):
        """The office's Kadis starts a cycle: the cycle and its open step 2."""
        kadis = await who(self.sm, office_id, Role.KADIS)
        cycle = await self(lambda wf, s: wf.start_cycle(
            kadis, CycleKind.QUARTERLY, 2024, 3, "Siapkan pengukuran kinerja"), office_id)
        return cycle, await open_run(self.sm, cycle.id, 2)

    async def to_collection(self, office_id: int):
        cycle, run2 = await self.started(office_id)
        sek = await who(self.sm, office_id, Role.SEKRETARIS)
        await self(lambda wf, s: wf.forward_disposition(sek, run2.id, "Mohon"), office_id)
        kasubag = await who(self.sm, office_id, Role.KASUBAG)
        run3 = await open_run(self.sm, cycle.id, 3)
        await self(lambda wf, s: wf.open_collection(kasubag, run3.id, None, days=3), office_id)
        return cycle.id


@pytest.fixture
def offices(sessionmaker, services, clock, two):
    return Offices(sessionmaker, services, clock, two)


async def test_nobody_sees_enters_or_signs_another_offices_cycle(offices, sessionmaker):
    o = offices
    ca = await o.to_collection(o.a)
    cb = await o.to_collection(o.b)  # the same period: each office has its own cycle
    assert ca != cb

    # lists: each person's tasks, each office's cycles are its own
    kabid_a = await who(sessionmaker, o.a, Role.KABID, "PPTK")
    kabid_b = await who(sessionmaker, o.b, Role.KABID, "PPTK")
    runs_a = await o(lambda wf, s: wf.open_runs_for(kabid_a), o.a)
    assert runs_a and {r.cycle_id for r in runs_a} == {ca}
    runs_b = await o(lambda wf, s: wf.open_runs_for(kabid_b), o.b)
    assert runs_b and {r.cycle_id for r in runs_b} == {cb}
    assert [c.id for c in await o(lambda wf, s: wf.active_cycles(o.a), o.a)] == [ca]
    assert [c.id for c in await o(lambda wf, s: wf.active_cycles(o.b), o.b)] == [cb]

    # entering: A's Kabid on B's data-entry run (a button with B's ids) is refused, by a
    # workflow acting for A (the handlers') and by an unbound one alike; nothing changes
    run_b = runs_b[0]
    async with sessionmaker() as s:
        item_b = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cb, CycleIndicator.unit_id == run_b.unit_id))
        ).scalars().first()

    def enter(actor, run, item):
        return lambda wf, s: wf.record_answer(actor, run.id, item.id, raw_text="87",
                                              value=Decimal("87"))
    await o.refused(enter(kabid_a, run_b, item_b), o.a, NotFound)
    await o.refused(enter(kabid_a, run_b, item_b), None, NotAllowed)
    await o.refused(lambda wf, s: wf.submit_unit(kabid_a, run_b.id), o.a, NotFound)
    # B's own Kabid may
    await o(enter(kabid_b, run_b, item_b), o.b)

    # leaders: A's Kadis, Sekretaris, Kasubag cannot act on B's steps
    kasubag_a = await who(sessionmaker, o.a, Role.KASUBAG)
    await o.refused(lambda wf, s: wf.close_collection(kasubag_a, cb), o.a, WorkflowError)
    kadis_a = await who(sessionmaker, o.a, Role.KADIS)
    await o.refused(lambda wf, s: wf.get_cycle(cb), o.a, NotFound)

    # taking over: B's Kasubag leaves (inactive); a holder who no longer may hold a step
    # is taken over by one who may, but never by A's Kasubag
    kasubag_b = await who(sessionmaker, o.b, Role.KASUBAG)
    async with sessionmaker() as s, s.begin():
        (await s.get(Person, kasubag_b.id)).active = False
    await o.refused(lambda wf, s: wf.close_collection(kasubag_a, cb), None, WorkflowError)
    await o.refused(lambda wf, s: wf.close_collection(kasubag_a, cb), o.a, NotFound)

    # administration of A does not reach B's people or bidang
    async def adm_person(wf, s, pid):
        return await Administration(s, o.sv, o.a).person(pid)
    await o.refused(lambda wf, s: adm_person(wf, s, kabid_b.id), None, NotFound)
    async with sessionmaker() as s:
        adm = Administration(s, o.sv, o.a)
        assert (await adm.person_by_nip(kabid_b.nip)).office_id == o.a  # same NIP, A's
        assert (await adm.unit_by_code("PPTK")).office_id == o.a
        assert {p.office_id for p in await adm.active_people(o.a)} == {o.a}
        assert not [r for r in await adm.reassignable_runs(kadis_a) if r.cycle_id == cb]


async def test_reminders_reach_only_the_offices_own_people_in_its_zone(offices, sessionmaker,
                                                                      clock, services):
    o = offices
    ca = await o.to_collection(o.a)
    cb = await o.to_collection(o.b)
    people_a = {p.id for p in (await _people(sessionmaker, o.a))}
    people_b = {p.id for p in (await _people(sessionmaker, o.b))}
    # past every data-entry deadline (3 working days), inside both offices' hours
    clock.advance(days=7)
    async with sessionmaker() as s, s.begin():
        made = await sweep(s, services)
        digests = await daily_digest(s, services)
    assert made and digests
    async with sessionmaker() as s:
        rows = (await s.execute(select(Reminder, StepRun).join(
            StepRun, StepRun.id == Reminder.step_run_id))).all()
        sent = (await s.execute(select(Outbox))).scalars().all()
        cycle_of = dict((await s.execute(select(StepRun.id, StepRun.cycle_id))).all())
    by_cycle = {ca: set(), cb: set()}
    for reminder, run in rows:
        if reminder.person_id:
            by_cycle[run.cycle_id].add(reminder.person_id)
    assert by_cycle[ca] and by_cycle[ca] <= people_a
    assert by_cycle[cb] and by_cycle[cb] <= people_b
    for msg in sent:  # every message about a run goes to that run's office
        if msg.ref.startswith("run:"):
            run_cycle = cycle_of[int(msg.ref[4:])]
            assert msg.person_id in (people_a if run_cycle == ca else people_b)
    # each office's digest names its own times: WIB for A, WITA for B
    digest_a = [m for m in sent if m.kind.startswith("digest:") and m.person_id in people_a]
    digest_b = [m for m in sent if m.kind.startswith("digest:") and m.person_id in people_b]
    assert digest_a and digest_b
    assert "WIB" in str(digest_a[0].payload) and "WITA" not in str(digest_a[0].payload)
    assert "WITA" in str(digest_b[0].payload) and "WIB" not in str(digest_b[0].payload)


async def _people(sm, office_id):
    async with sm() as s:
        return (await s.execute(select(Person).where(Person.office_id == office_id))).scalars().all()


async def test_letter_numbers_are_counted_per_office_in_its_own_format(offices, sessionmaker):
    o = offices
    on = date(2024, 10, 14)
    first_a = await o(lambda wf, s: wf.allocate_number(o.a, on, subject="A"), o.a)
    first_b = await o(lambda wf, s: wf.allocate_number(o.b, on, subject="B"), o.b)
    second_a = await o(lambda wf, s: wf.allocate_number(o.a, on, subject="A2"), o.a)
    assert (first_a.sequence, first_b.sequence, second_a.sequence) == (1, 1, 2)
    assert first_a.number == "050/1/II.08/2024"  # config.toml's format, A's unit code
    assert first_b.number == "050/1/II.09/X/2024"  # B's own format and unit code
    # a workflow acting for A does not number for B
    await o.refused(lambda wf, s: wf.allocate_number(o.b, on, subject="B2"), o.a, NotFound)
    async with sessionmaker() as s:
        numbers = (await s.execute(select(LetterNumber.office_id, LetterNumber.sequence)
                                   .order_by(LetterNumber.id))).all()
    assert [tuple(n) for n in numbers] == [(o.a, 1), (o.b, 1), (o.a, 2)]


async def test_office_settings_come_from_the_database(offices, sessionmaker, services):
    async with sessionmaker() as s:
        a, b = await s.get(Office, offices.a), await s.get(Office, offices.b)
    va, vb = services.for_office(a), services.for_office(b)
    assert va.calendar.tz.key == services.config.calendar.timezone == "Asia/Jakarta"
    assert vb.calendar.tz.key == "Asia/Makassar"
    assert vb.config.office.address == "Jalan Merdeka 2, Liwa"
    assert vb.config.reminders == services.config.reminders  # not set: the default
    # each office's hours in its own zone: at 07.00 WIB (08.00 WITA) B is open, A not yet
    early = services.clock.now() - timedelta(hours=1)
    assert not va.calendar.is_office_open(early) and vb.calendar.is_office_open(early)
    # the workbook's settings are checked like config.toml
    from bot.config import ConfigError, office_config
    with pytest.raises(ConfigError, match="calendar.office_end"):
        office_config(services.config, {"calendar": {"office_start": "17:00"}})
    with pytest.raises(ConfigError, match="telegram"):
        office_config(services.config, {"telegram": {"token": "x"}})


async def test_the_setup_workbook_sets_the_offices_own_settings(sessionmaker, tmp_path,
                                                                services, clock):
    """A second office's workbook (another unit code) makes a second office, with the
    time zone and number format of its Kantor sheet; a bad value is refused by name."""
    from openpyxl import load_workbook

    from bot.core.office_setup import import_setup
    from reports.setup_workbook import SHEET_OFFICE, write_template

    path = tmp_path / "b.xlsx"
    write_template(path, year=2024, example=example_office(2024))
    wb = load_workbook(path)
    ws = wb[SHEET_OFFICE]
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    ws.cell(rows["Kode Unit"], 2, "II.10")
    ws.cell(rows["Zona Waktu"], 2, "WITA")
    ws.cell(rows["Format Nomor Surat"], 2, "{kode}/{urut}/{unit}/{tahun}")
    wb.save(path)
    async with sessionmaker() as s, s.begin():
        result = await import_setup(s, path, at=clock.now(), config=services.config)
    assert not result.errors
    async with sessionmaker() as s:
        office = (await s.execute(select(Office).where(Office.unit_code == "II.10"))).scalar_one()
    assert office.settings == {"calendar": {"timezone": "Asia/Makassar"},
                               "numbering": {"format": "{kode}/{urut}/{unit}/{tahun}"}}
    assert services.for_office(office).calendar.tz.key == "Asia/Makassar"

    ws.cell(rows["Jam Pulang"], 2, "06:00")  # before the office opens
    wb.save(path)
    async with sessionmaker() as s, s.begin():
        result = await import_setup(s, path, at=clock.now(), config=services.config)
    assert [str(e) for e in result.errors] == [
        f"Kantor baris {rows['Jam Pulang']}, kolom Nilai: Jam Pulang (06:00) harus setelah "
        "Jam Masuk (07:30)."]


async def test_over_the_bot_a_button_of_another_office_is_refused(harness, sessionmaker,
                                                                   services, two):
    """Over the emulator: /tugas lists only the person's own office's steps; A's
    Sekretaris pressing the button of B's step (forged data) is refused and changes
    nothing; B's Sekretaris pressing it is served, and B's cards show WITA times."""
    from bot import callbacks
    from bot.texts import t
    from tests.test_authorization import is_refusal, plain

    a, b = two
    o = Offices(sessionmaker, services, None, two)
    runs = {office_id: (await o.started(office_id))[1].id for office_id in (a, b)}
    sek_a = await who(sessionmaker, a, Role.SEKRETARIS)
    sek_b = await who(sessionmaker, b, Role.SEKRETARIS)
    user_a, user_b = await harness.register(sek_a), await harness.register(sek_b)
    await harness.settle()

    sent = await user_a.send_command("/tugas")
    listing = await user_a.wait_for(after=sent, predicate=lambda m: m.buttons)
    data = {b_.get("callback_data") for b_ in listing.buttons}
    assert callbacks.encode("task", runs[a]) in data
    assert not {d for d in data if d.endswith(f":{runs[b]}")}

    async with sessionmaker() as s:
        before = await snapshot(s)
    pad = user_a.message(listing.message_id)
    forged = callbacks.encode("dsp", runs[b])
    for press in (forged, callbacks.encode("task", runs[b])):
        pad.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": press}]]}
        answer = await user_a.wait_for_answer(await user_a.press(pad, data=press))
        # another office's ids are not found (nothing tells that they exist)
        assert plain(answer.text) == plain(t("err.not_found")), (press, answer.text)
    await harness.settle()
    async with sessionmaker() as s:
        after = await snapshot(s)
        assert (await s.get(StepRun, runs[b])).status == StepStatus.OPEN
    after.pop("outbox", None), before.pop("outbox", None)
    after.pop("conversation", None), before.pop("conversation", None)
    assert after == before

    # B's own Sekretaris: the card of B's step, in B's zone
    card = next(m for m in reversed(user_b.messages)
                if any(b_.get("callback_data") == forged for b_ in m.buttons))
    assert "WITA" in card.text and "WIB" not in card.text
    answer = await user_b.wait_for_answer(await user_b.press(card, data=forged))
    assert not is_refusal(answer.text), answer.text


async def test_one_account_in_two_offices(harness, sessionmaker, services, two):
    """Issue 16 item 2's data model: a Telegram account bound to a person in each of two
    offices (not to two people of one office); its cards name the office, /tugas groups
    by office, and each office's button is served as the person of that office."""
    from bot import callbacks
    from bot.core.onboarding import InvitationError, create_invitation, redeem
    from bot.texts import t
    from tests.test_authorization import is_refusal

    a, b = two
    o = Offices(sessionmaker, services, None, two)
    sek_a = await who(sessionmaker, a, Role.SEKRETARIS)
    sek_b = await who(sessionmaker, b, Role.SEKRETARIS)
    user = await harness.register(sek_a)
    async with sessionmaker() as s, s.begin():
        code = (await create_invitation(s, await s.get(Person, sek_b.id),
                                        now=services.clock.now(), valid_days=14)).code
    sent = await user.send_command("/start", code)
    await user.wait_for(after=sent, text_contains="Selamat datang")
    async with sessionmaker() as s:
        assert (await s.get(Person, sek_b.id)).telegram_user_id == user.user_id
        assert (await s.get(Person, sek_a.id)).telegram_user_id == user.user_id
    # never two people of one office on one account
    kasubag_b = await who(sessionmaker, b, Role.KASUBAG)
    async with sessionmaker() as s, s.begin():  # writes: begun IMMEDIATE on SQLite
        inv = await create_invitation(s, await s.get(Person, kasubag_b.id),
                                      now=services.clock.now(), valid_days=14)
        with pytest.raises(InvitationError, match="taken"):
            await redeem(s, inv.code, user.user_id, now=services.clock.now())

    runs = {office_id: (await o.started(office_id))[1].id for office_id in (a, b)}
    await harness.settle()
    async with sessionmaker() as s:
        names = {i: (await s.get(Office, i)).name for i in (a, b)}
    for office_id in (a, b):  # each card names its office
        data = callbacks.encode("dsp", runs[office_id])
        card = next(m for m in reversed(user.messages)
                    if any(b_.get("callback_data") == data for b_ in m.buttons))
        assert card.text.startswith(f"🏢 {names[office_id]}"), card.text

    sent = await user.send_command("/tugas")
    listing = await user.wait_for(after=sent, predicate=lambda m: m.buttons)
    assert listing.text.index(names[a]) < listing.text.index(names[b])
    assert {b_.get("callback_data") for b_ in listing.buttons} == {
        callbacks.encode("task", runs[a]), callbacks.encode("task", runs[b])}

    # B's button is served as B's Sekretaris (A's would be refused: not found)
    for office_id in (b, a):
        data = callbacks.encode("task", runs[office_id])
        answer = await user.wait_for_answer(await user.press(listing, data=data))
        assert not is_refusal(answer.text) and answer.text != t("err.not_found"), answer.text
        await harness.settle()

    # reminders of both offices' steps reach the one account, each naming its office
    services.clock.advance(days=3)
    async with sessionmaker() as s, s.begin():
        assert await sweep(s, services)
    async with sessionmaker() as s:
        reminders = (await s.execute(select(Outbox).where(
            Outbox.chat_id == user.user_id, Outbox.kind.like("reminder:%")))).scalars().all()
    for office_id in (a, b):
        mine = [r for r in reminders if r.ref == f"run:{runs[office_id]}"]
        assert mine and all(r.payload["text"].startswith(f"🏢 <b>{names[office_id]}</b>")
                            for r in mine), [r.payload for r in reminders]


async def test_the_command_line_names_the_office(tmp_path, db_url, sessionmaker, two, capsys):
    """With two offices, `sopbot people ...` and the agenda book need the office; with
    it, they act on that office's person only (the same NIP is in both)."""
    import asyncio

    from bot.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "f"}"\n')

    async def run(*a):  # the CLI runs its own event loop
        return await asyncio.to_thread(main, ["--config", str(cfg), *a])
    nip = "197002021995031002"
    assert await run("people", "change", "--nip", nip, "--rank", "Pembina Utama") == 2
    assert "--kantor" in capsys.readouterr().err
    assert await run("people", "change", "--nip", nip, "--rank", "Pembina Utama",
                     "--kantor", "II.09") == 0
    async with sessionmaker() as s:
        ranks = dict((await s.execute(select(Person.office_id, Person.rank)
                                      .where(Person.nip == nip))).all())
    a, b = two
    assert ranks[b] == "Pembina Utama" and ranks[a] != "Pembina Utama"
    capsys.readouterr()
    assert await run("people", "list", "--kantor", "II.09") == 0
    listed = capsys.readouterr().out
    in_b = len(await _people(sessionmaker, b))
    assert f"dari {in_b} pegawai" in listed

    # the agenda book is one office's (the CLI's `agenda export --kantor`)
    from bot.core.archive import export_agenda

    async with sessionmaker() as s:
        with pytest.raises(LookupError, match="--kantor"):
            await export_agenda(s, tmp_path / "a.xlsx")
        assert await export_agenda(s, tmp_path / "a.xlsx", office="II.09") == 0
