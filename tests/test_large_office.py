"""A real office: 10 bidang x 40 indicators with hostile names runs a whole cycle.

Every name a person or a set-up workbook supplies is 120 characters long with ``<``,
``>``, ``&``, quotes, dots and emoji (``bot.devtools.example_data.large_office``), targets are 13
digits of rupiah. Over the Bot API emulator (which refuses, like Telegram, a text over
4,096 characters after entity parsing, a caption over 1,024, callback data over 64 bytes
and HTML it cannot parse, and counts every error it answers), the cycle of
``bot.devtools.scenario.ScriptedCycle`` is played: all eleven steps, every Kabid entering all 40
indicators, one handed to a staf, one bidang returned and corrected, the documents
compiled, initialled, signed, numbered, archived and delivered, with 0 Bot API errors.
The fast tests below check each listing message of that office on its own.
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.devtools.example_data import large_office, large_script
from models import CycleIndicator, Outbox, Submission
from models.enums import OutboxStatus

UNITS, PER_UNIT = 10, 40


class Tee(io.StringIO):
    """The progress lines, kept for the assertions and shown as they come (``-s``)."""

    def write(self, text: str) -> int:
        sys.stdout.write(text)
        return super().write(text)


async def play_large_cycle(out: Path, units: int, per_unit: int) -> dict:
    """The whole cycle of a ``units`` x ``per_unit`` office; returns the run's figures."""
    from bot.devtools.demo import Demo, Progress

    t0 = time.perf_counter()
    demo = Demo(out, office=lambda year: large_office(year, units, per_unit),
                script=large_script(units, per_unit))
    demo.prepare()
    await demo.setup()
    log = Tee()
    try:
        cycle_id = await demo.run_cycle(Progress(11, log))
        await demo.h.settle(timeout=60)
        files = await demo.export(cycle_id)
        emu = demo.h.emulator
        async with demo.sm() as s:
            answered = (await s.execute(
                select(func.count(func.distinct(Submission.indicator_id)))
                .where(Submission.cycle_id == cycle_id, Submission.skipped.is_(False)))
            ).scalar_one()
            requested = (await s.execute(select(func.count(CycleIndicator.id)).where(
                CycleIndicator.cycle_id == cycle_id))).scalar_one()
            outbox = dict((await s.execute(
                select(Outbox.status, func.count(Outbox.id)).group_by(Outbox.status))).all())
            refused = [(r.kind, r.last_error) for r in (await s.execute(
                select(Outbox).where(Outbox.status != OutboxStatus.SENT))).scalars()]
        return {
            "closed": await demo.script.cycle_closed(),
            "steps": log.getvalue().count("/11 "),
            "answered": answered,
            "requested": requested,
            "outbox": outbox,
            "refused": refused,
            "errors": dict(emu.stats.errors_by_code),
            "error_log": list(emu.error_log),
            "sent": emu.stats.sent_messages,
            "edited": emu.stats.edited_messages,
            "requests": emu.stats.total_requests,
            "retries": demo.script.retries,
            "files": files,
            "seconds": time.perf_counter() - t0,
            "progress": log.getvalue(),
        }
    finally:
        await demo.close()


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_office_of_10_bidang_x_40_hostile_indicators_runs_a_whole_cycle(tmp_path):
    run = await play_large_cycle(tmp_path / "kantor-besar", UNITS, PER_UNIT)
    print(f"\n10 x 40 office, hostile names: {run['steps']} steps, {run['answered']} "
          f"indicators answered, {run['sent']} messages sent, {run['edited']} edited, "
          f"{run['requests']} Bot API requests, {sum(run['errors'].values())} Bot API "
          f"errors, {run['retries']} retries by the people, {run['seconds']:.0f} s")
    assert run["error_log"] == [] and run["errors"] == {}, run["error_log"][:5]
    assert run["refused"] == []
    assert run["closed"], run["progress"]
    assert run["steps"] == 11
    assert run["requested"] == UNITS * PER_UNIT
    assert run["answered"] == UNITS * PER_UNIT
    for kind in ("workbook", "pdf", "grafik", "arsip", "agenda"):
        assert run["files"][kind].stat().st_size > 0


# ----------------------------------------------------------------------------------------
# Each listing message of the 10 x 40 office, on its own (no Telegram: the cards as the
# handlers build them, the notifications as queued). "Fits" is what Telegram checks: the
# text after entity parsing at most 4,096 (counted in UTF-16 units, so never less than
# Telegram counts), HTML that parses, at most 100 buttons, callback data of 1-64 bytes.
# ----------------------------------------------------------------------------------------
from decimal import Decimal  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from bot import render  # noqa: E402
from bot.devtools.emulator import MAX_TEXT_LENGTH, parse_html  # noqa: E402
from bot.core.office_data import apply_office  # noqa: E402
from bot.core.workflow import Workflow  # noqa: E402
from models import Indicator, Person, StepRun  # noqa: E402
from models.enums import CycleKind, Role, StepStatus, ValueType  # noqa: E402
from tests.helpers import person as person_of  # noqa: E402


def assert_fits(text: str, buttons=None) -> str:
    """The text as Telegram parses it (the emulator's parser), within every limit."""
    plain, _ = parse_html(text)  # raises like Telegram on bad HTML
    assert 0 < len(plain.strip()) <= MAX_TEXT_LENGTH
    assert render.utf16_len(plain.strip()) <= MAX_TEXT_LENGTH
    assert render.keyboard_ok(buttons), buttons  # <= 100 buttons, data 1-64 bytes, labels
    return plain


class Office:
    """The large office in a database and a cycle walked into data entry."""

    def __init__(self, sm, services, clock):
        self.sm, self.sv, self.clock = sm, services, clock

    async def __call__(self, fn):
        async with self.sm() as session, session.begin():
            return await fn(Workflow(session, self.sv), session)

    async def who(self, role, unit_code=None) -> Person:
        async with self.sm() as session:
            return await person_of(session, role, unit_code)

    async def run(self, step_no, unit_code=None) -> StepRun:
        from models import Unit

        async with self.sm() as s:
            stmt = select(StepRun).where(StepRun.step_no == step_no)
            if unit_code:
                stmt = stmt.join(Unit, Unit.id == StepRun.unit_id).where(Unit.code == unit_code)
            return (await s.execute(stmt.order_by(StepRun.id.desc()))).scalars().first()

    async def names(self, unit_code=None) -> list[str]:
        from models import Unit

        async with self.sm() as s:
            stmt = select(Indicator.name).join(Unit, Unit.id == Indicator.unit_id)
            if unit_code:
                stmt = stmt.where(Unit.code == unit_code)
            return list((await s.execute(stmt.order_by(Indicator.id))).scalars())


OPEN_UNIT = "U05"  # still entering (its summary and handover list); the others sent


async def build_large(o: Office) -> None:
    """Steps 1-3 done; every bidang answered all 40 (text answers with long notes), one
    indicator of U05 handed to its staf; every bidang but U05 sent its data."""
    from bot.devtools.example_data import large_answer

    async with o.sm() as s, s.begin():
        await apply_office(s, large_office(2024, UNITS, PER_UNIT))
    kadis, sek = await o.who(Role.KADIS), await o.who(Role.SEKRETARIS)
    await o(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3,
                                         'Siapkan <segera> & "lengkap" 📋'))
    run2 = await o.run(2)
    await o(lambda wf, s: wf.forward_disposition(sek, run2.id, 'Catatan <Sekretaris> & "ok"'))
    run3 = await o.run(3)
    kasubag = await o.who(Role.KASUBAG)
    await o(lambda wf, s: wf.open_collection(kasubag, run3.id, None, 3))
    for k in range(1, UNITS + 1):
        code = f"U{k:02d}"
        run = await o.run(4, code)
        kabid = await o.who(Role.KABID, code)

        async def fill(wf, s, run=run, kabid=kabid):
            items = await wf.cycle_items(run.cycle_id, run.unit_id)
            for pos, item in enumerate(items, start=1):
                ind = await s.get(Indicator, item.indicator_id)
                typed = large_answer(pos)
                if ind.value_type == ValueType.TEXT:
                    await wf.record_answer(kabid, run.id, item.id, raw_text=typed,
                                           value_text=typed,
                                           note='catatan <penting> & "teliti" ✍️ ' * 12)
                else:
                    value = Decimal("1234567890123") if "Rp" in typed else Decimal("88.5")
                    await wf.record_answer(kabid, run.id, item.id, raw_text=typed, value=value)
            if code == OPEN_UNIT:
                staf = await person_of(s, Role.STAF, code)
                await wf.assign_item(kabid, run.id, items[0].id, staf.id)
            else:
                await wf.submit_unit(kabid, run.id)
        await o(fill)


@pytest.fixture(scope="module")
def large_template(tmp_path_factory) -> Path:
    """The large office's database, built once for the listing tests (SQLite file)."""
    import asyncio

    from bot.core.clock import ManualClock
    from bot.config import Config
    from bot.core.services import build_services
    from models.session import make_engine, make_sessionmaker
    from tests.conftest import reset_schema, wib

    folder = tmp_path_factory.mktemp("kantor-besar")

    async def build() -> None:
        cfg = Config()
        cfg.base_dir = folder
        cfg.database.url = f"sqlite:///{folder / 'template.db'}"
        cfg.storage.path = str(folder / "files")
        engine = make_engine(cfg.database.url)
        await reset_schema(engine, cfg.database.url)
        try:
            await build_large(Office(make_sessionmaker(engine),
                                     build_services(cfg, ManualClock(wib(2024, 10, 7, 8))),
                                     None))
        finally:
            await engine.dispose()

    asyncio.run(build())
    return folder / "template.db"


@pytest.fixture
async def large(large_template, tmp_path, clock):
    import shutil

    from bot.config import Config
    from bot.core.services import build_services
    from models.session import make_engine, make_sessionmaker

    shutil.copy(large_template, tmp_path / "large.db")
    cfg = Config()
    cfg.base_dir = tmp_path
    cfg.database.url = f"sqlite:///{tmp_path / 'large.db'}"
    cfg.storage.path = str(tmp_path / "files")
    engine = make_engine(cfg.database.url)
    yield Office(make_sessionmaker(engine), build_services(cfg, clock), clock)
    await engine.dispose()


async def every_page(build) -> list[tuple[str, list]]:
    """Build page 0, 1, ... until the pager has no "Berikutnya" (at most 100 pages)."""
    pages = []
    for number in range(100):
        text, buttons = await build(number)
        pages.append((text, buttons))
        if not any(label.startswith("Berikutnya") for row in buttons for label, _ in row):
            return pages
    raise AssertionError("no last page")


async def test_coordination_card_of_400_indicators_is_paged_and_every_page_fits(large):
    from handlers.disposition import coordination_card

    run3 = await large.run(3)

    async def build(number):
        async def card(wf, s):
            units = await wf.default_selection(await wf.get_cycle(run3.cycle_id))
            data = {"run": run3.id, "units": {str(k): v for k, v in units.items()}, "off": [],
                    "days": 3, "page": number}
            return await coordination_card(wf, await wf.get_run(run3.id), data)
        return await large(card)

    pages = await every_page(build)
    seen = ""
    for text, buttons in pages:
        seen += assert_fits(text, buttons)
        assert "Kirim permintaan data" in [label for row in buttons for label, _ in row]
    assert len(pages) >= 40  # 10 bidang lines + 400 indicators, 10 a page
    for name in await large.names():
        assert name in seen  # every indicator, with its < > & " and emoji, is shown


async def test_data_request_of_40_indicators_arrives_in_several_messages_that_fit(large):
    kabid = await large.who(Role.KABID, "U04")
    async with large.sm() as s:
        rows = list((await s.execute(select(Outbox).where(
            Outbox.kind == "data_request", Outbox.person_id == kabid.id)
            .order_by(Outbox.id))).scalars())
    assert len(rows) >= 2
    seen = ""
    for i, row in enumerate(rows):
        seen += assert_fits(row.payload["text"], row.payload.get("buttons"))
        assert bool(row.payload.get("buttons")) == (i == len(rows) - 1)  # buttons on the last
    for name in await large.names("U04"):
        assert name in seen
    assert "1.250.000.000.000" in seen  # the 13-digit target, Indonesian form


async def test_data_entry_summary_and_handover_list_of_40_are_paged_and_fit(large):
    from handlers.data_entry import assign_card, load_entry, summary_card

    run = await large.run(4, OPEN_UNIT)
    kabid = await large.who(Role.KABID, OPEN_UNIT)
    staf = await large.who(Role.STAF, OPEN_UNIT)
    item_id = await large(lambda wf, s: wf.cycle_items(run.cycle_id, run.unit_id))
    item_id = item_id[0].id

    for card in (summary_card, assign_card):
        async def build(number, card=card):
            async def make(wf, s):
                entry = await load_entry(wf, kabid, run.id)
                return await card(wf, entry, {"run": run.id, "item": item_id, "page": number},
                                  "✅ Tersimpan: <b>x</b>")
            return await large(make)

        pages = await every_page(build)
        assert len(pages) >= 4
        seen = ""
        for text, buttons in pages:
            seen += assert_fits(text, buttons)
        for name in await large.names(OPEN_UNIT):
            assert name in seen
        if card is summary_card:  # "Kirim ke Kasubag" on every page, "Ubah" for each item
            for _, buttons in pages:
                assert any(data.startswith("esend:") for row in buttons for _, data in row)
            edits = [d for _, b in pages for row in b for _, d in row if d.startswith("egoto:")]
            assert len(edits) == PER_UNIT
            assert staf.name in seen  # the handed indicator shows who fills it


async def test_kasubag_view_of_a_bidang_with_long_notes_is_paged_and_fits(large):
    from handlers.collection import unit_view
    from models import Cycle, Unit


    async def build(number):
        async def make(wf, s):
            cycle = (await s.execute(select(Cycle))).scalar_one()
            unit = (await s.execute(select(Unit).where(Unit.code == "U06"))).scalar_one()
            return await unit_view(wf, cycle, unit, number)
        return await large(make)

    pages = await every_page(build)
    seen = "".join(assert_fits(text, buttons) for text, buttons in pages)
    for name in await large.names("U06"):
        assert name in seen
    assert 'catatan <penting> & "teliti"' in seen


async def test_status_board_and_kasubag_buttons_of_10_bidang_fit(large):
    from handlers.collection import kasubag_buttons
    from handlers.tasks import board_text
    from models import Cycle

    kasubag = await large.who(Role.KASUBAG)
    context = SimpleNamespace(application=SimpleNamespace(bot_data={"services": large.sv}))

    async def make(wf, s):
        cycle = (await s.execute(select(Cycle))).scalar_one()
        return (await board_text(context, wf, cycle),
                await kasubag_buttons(wf, cycle, await s.get(Person, kasubag.id)))
    text, buttons = await large(make)
    plain = assert_fits(text, buttons)
    assert plain.count("Bidang <Hubungan> Industrial") == UNITS - 1
    assert any(data.startswith("rtn:") for row in buttons for _, data in row)


async def test_roster_of_the_large_office_is_split_into_messages_that_fit(large):
    from bot.core.administration import Administration

    admin = await large.who(Role.KADIS)

    async def make(wf, s):
        return await Administration(s, large.sv).roster_text(admin)
    text = await large(make)
    parts = render.split(text)
    seen = "".join(assert_fits(part) for part in parts)
    async with large.sm() as s:
        names = list((await s.execute(select(Person.name))).scalars())
    for name in names:
        assert name in seen


# ----------------------------------------------------------------------------------------
# The reported case: a "<" in an indicator name (and in the Kabid's name) over Telegram.
# ----------------------------------------------------------------------------------------
from tests.e2e import harness, people  # noqa: E402,F401  (fixtures)

HOSTILE_INDICATOR = 'Jumlah pencari kerja <ditempatkan> & "aktif" O\'Neil 👷 No. 4.'
HOSTILE_KABID = 'Contoh <Kabid> & "Pelatihan" O\'Brien 👷, S.Pd.'


async def test_a_lt_in_an_indicator_name_no_longer_breaks_step_3_and_the_staf_gets_the_notice(
        harness, people, sessionmaker, services):
    from bot.devtools.scenario import has_button

    async with sessionmaker() as s, s.begin():
        ind = (await s.execute(select(Indicator).where(Indicator.code == "PPTK-04"))).scalar_one()
        ind.name = HOSTILE_INDICATOR
        (await s.get(Person, people.person(Role.KABID, "PPTK").id)).name = HOSTILE_KABID
    kadis, sek = people.person(Role.KADIS), people.person(Role.SEKRETARIS)
    async with sessionmaker() as s, s.begin():
        wf = Workflow(s, services)
        cycle = await wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3, "Siapkan <segera>")
    async with sessionmaker() as s, s.begin():
        run2 = (await s.execute(select(StepRun).where(StepRun.step_no == 2))).scalar_one()
        await Workflow(s, services).forward_disposition(sek, run2.id, "Mohon <dikoordinasikan>")
    harness.sender.wake()

    # step 3 over Telegram: the card with every indicator, then the request
    kasubag = people.user(Role.KASUBAG)
    card = await kasubag.wait_for(predicate=has_button("crd:"))
    q = await kasubag.press(card, text="Koordinasikan bidang")
    coord = await kasubag.wait_for(after=q, text_contains="Koordinasi bidang")
    while HOSTILE_INDICATOR not in coord.text:  # the card is paged: the next page
        before = coord.text
        q = await kasubag.press(coord, text="Berikutnya")
        coord = await kasubag.wait_for(after=q, predicate=lambda m: m.text != before
                                       and "Koordinasi bidang" in m.text)
    assert "Halaman 2 dari 3" in coord.text
    q = await kasubag.press(coord, text="Kirim permintaan data")
    await kasubag.wait_for(after=q, text_contains="Permintaan data dikirim")

    # step 4: the Kabid hands the indicator to the staf, who is told
    kabid, staf = people.user(Role.KABID, "PPTK"), people.user(Role.STAF, "PPTK")
    request = await kabid.wait_for(predicate=has_button("ent:"))
    q = await kabid.press(request, text="Mulai isi data")
    entry = await kabid.wait_for(after=q, predicate=has_button("ehand:"))
    q = await kabid.press(entry, text="Serahkan ke staf")
    hand = await kabid.wait_for(after=q, text_contains="Pilih indikatornya")
    assert HOSTILE_INDICATOR in hand.text
    q = await kabid.press(hand, text="4. Jumlah pencari kerja <ditempatkan>")
    pick = await kabid.wait_for(after=q, predicate=has_button("eto:"))
    q = await kabid.press(pick, text=people.person(Role.STAF, "PPTK").name)
    await kabid.wait_for(after=q, text_contains="diserahkan kepada")
    notice = await staf.wait_for(text_contains="menyerahkan pengisian indikator")
    assert HOSTILE_INDICATOR in notice.text and HOSTILE_KABID in notice.text
    assert "Mulai isi data" in notice.button_texts
    await harness.settle()
    async with sessionmaker() as s:
        refused = list((await s.execute(select(Outbox.kind, Outbox.last_error).where(
            Outbox.chat_id.is_not(None), Outbox.status != OutboxStatus.SENT))).all())
    assert refused == []  # (people not registered here have chat_id None: not due)
    assert harness.emulator.error_log == []
    assert cycle.id


async def test_the_list_of_people_to_deactivate_is_paged_in_a_large_office(
        harness, people, sessionmaker):
    """An office of 130 people: the admin's "Nonaktifkan pegawai" list comes in pages
    of 10 buttons (Telegram refuses a keyboard of more than 100), every person reachable."""
    from bot.core.office_data import PersonSpec
    from models import Office

    async with sessionmaker() as s, s.begin():
        office = (await s.execute(select(Office))).scalars().first()
        for n in range(120):
            spec = PersonSpec(f'Staf <{n}> & "Honorer" O\'Neil 👷 No. {n}.', Role.STAF)
            s.add(Person(office_id=office.id, name=spec.name, role=spec.role))
        admin = Person(office_id=office.id, name='Admin <Dinas> & "TI"', role=Role.ADMIN)
        s.add(admin)
        await s.flush()
        total = (await s.execute(select(func.count(Person.id)).where(
            Person.active.is_(True)))).scalar_one()
    kadis = await harness.register(admin)  # the admin deactivates people
    sent = await kadis.send_command("/pegawai")
    roster = await kadis.wait_for(after=sent, predicate=lambda m: "Nonaktifkan pegawai"
                                  in m.button_texts)
    q = await kadis.press(roster, text="Nonaktifkan pegawai")
    page = await kadis.wait_for(after=q, text_contains="Halaman 1 dari")
    seen: set[str] = set()
    while True:
        picks = [b for b in page.buttons if b["callback_data"].startswith("pgx:")]
        assert 0 < len(picks) <= 10 and len(page.buttons) <= 13
        seen |= {b["callback_data"] for b in picks}
        if "Berikutnya \u203a" not in page.button_texts:
            break
        before = page.text
        q = await kadis.press(page, text="Berikutnya \u203a")
        page = await kadis.wait_for(after=q, predicate=lambda m: m.text != before
                                    and "Halaman" in m.text)
    assert len(seen) == total - 1  # everybody but the admin himself
    assert harness.emulator.error_log == []


@pytest.mark.parametrize("split", ["never", "always"])
async def test_a_button_whose_work_outlasts_telegrams_window_is_answered_in_time(
        services, sessionmaker, office, monkeypatch, split):
    """Compiling or numbering the documents of a large office can take longer than the
    ~15 s in which Telegram takes a button's answer ("query is too old"). Here the
    window is 4 s and the work 6 s: the button is answered at ANSWER_WITHIN (0.3 s),
    the card still arrives, and the emulator gave no error answer. Also when the run's
    calls are split off its transaction (a real network): the early answer is not
    deferred to the commit (``handlers.common.EARLY_ANSWER``)."""
    import asyncio

    import handlers.common
    from bot.core.workflow import Workflow
    from bot.devtools.emulator import BotApiEmulator
    from bot.devtools.harness import TEST_TOKEN, Harness

    slow_buttons = Workflow.task_buttons

    async def slow(wf, run):
        await asyncio.sleep(6.0)  # past the window: only the early answer is in time
        return await slow_buttons(wf, run)

    monkeypatch.setattr(Workflow, "task_buttons", slow)
    monkeypatch.setattr(handlers.common, "ANSWER_WITHIN", 0.3)
    # 3.7 s from the early answer's start to the window's end: a loaded machine's
    # getUpdates, store, dispatch and round trip (with 1 s, a 0.7 s margin)
    emulator = BotApiEmulator(token=TEST_TOKEN, callback_query_ttl=4.0)
    await emulator.start()
    h = Harness(services, sessionmaker)
    await h.start(emulator=emulator)
    h.intake.split_calls = split
    try:
        async with sessionmaker() as s:
            kadis = await person_of(s, Role.KADIS)
            sek = await person_of(s, Role.SEKRETARIS)
        async with sessionmaker() as s, s.begin():
            await Workflow(s, services).start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3,
                                                    "Siapkan <segera>")
        user = await h.register(sek)
        sent = await user.send_command("/tugas")
        tasks = await user.wait_for(after=sent, text_contains="Tugas Anda")
        q = await user.press(tasks, text="Buka langkah 2")
        card = await user.wait_for(after=q, text_contains="Tugas baru: langkah 2")
        assert card.buttons
        await h.settle()
        # answered, and within the window: a late answer is refused by the emulator
        # ("query is too old") and logged (the card may arrive first on a loaded machine)
        assert user.callback_answer(q) is not None
        assert emulator.error_log == []
    finally:
        await h.stop()
