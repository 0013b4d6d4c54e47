"""Every command and every button against every role (DESIGN principle 6).

The matrix enumerates what the bot offers: every command registered on the built
Application and every action of the one callback codec (``bot.callbacks.ACTIONS``); the
test fails when one of them has no row. One cycle is driven from the first command to the
last receipt, with the office administration (/pegawai: deactivating a person, appointing
and cancelling a Plh./Plt.; /alihkan) on the way. At each point where an action is
legitimately possible, every actor presses its real callback data (forged onto a message
in their own chat when they do not have the button): the actors the rules allow succeed
(and the state moves as expected); everyone else gets a short Indonesian refusal and the
database (minus the ``inbox``) is exactly as before. Some actions are tried in
several states (the step open or not yet / no longer open, own bidang or another's, the
Plh. before, during and after the appointment); after the cycle every button is pressed
once more and refused for everyone.

The actors: Kadis, Sekretaris, Kasubag, two Kabid of different bidang, two staf (one of
the Sekretariat), a contact of an agency, the admin, the Kabid Hubungan Industrial who
becomes Plh. Kepala Dinas (appointed through the bot's own buttons), an inactive person
and a stranger.
"""
from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from telegram.ext import CommandHandler

from bot.core import archive
from bot import callbacks
from bot.core.administration import Administration, day_range
from bot.core.outbox import DIRECT, REMOVE_KEYBOARD
from bot.devtools.scenario import png
from bot.texts import TEXTS, t
from bot.core.workflow import Workflow
from models import (
    ActingAppointment, ActingKind, Conversation, Cycle, CycleIndicator, Delivery, Document,
    LetterNumber, Outbox, Person, StepRun, Submission,
)
from models.enums import (
    CycleKind, CycleStatus, DeliveryStatus, DocumentStatus, OutboxStatus, Role, StepStatus,
)
from tests.conftest import wib
from tests.e2e import People, harness  # noqa: F401  (fixture)
from tests.helpers import person, snapshot, unit

ACTORS = ("kadis", "sekretaris", "kasubag", "kabid", "kabid_lain", "staf", "staf_sek",
          "kontak", "admin", "plh", "nonaktif", "asing")
KEYS = {"kadis": (Role.KADIS, None), "sekretaris": (Role.SEKRETARIS, None),
        "kasubag": (Role.KASUBAG, None), "kabid": (Role.KABID, "PPTK"),
        "kabid_lain": (Role.KABID, "IND"), "staf": (Role.STAF, "PPTK"),
        "staf_sek": (Role.STAF, "SEK"), "kontak": (Role.CONTACT, None),
        "plh": (Role.KABID, "HIJS")}
REGISTERED = set(ACTORS) - {"nonaktif", "asing"}
EVERYONE = set(ACTORS)

# the short Indonesian refusals a button or a command may get
REFUSALS = ("err.not_allowed", "err.not_assignee", "err.stale_button", "err.inactive",
            "o.stranger", "e.not_yours")
# refusals naming the person (their Telegram id): the text before the first field
REFUSALS_WITH_FIELDS = ("k.refused",)
_TAG = re.compile(r"<[^<>]*>")


def plain(text: str | None) -> str:
    """What a person reads (tags removed, entities decoded), without outer space."""
    return html.unescape(_TAG.sub("", text or "")).strip()


# what the person who did a step is told when they press its button again (the step is
# not done twice; nobody else is told)
ALREADY_DONE = ("g.already_initialled", "g.already_signed", "g.already_numbered",
                "g.already_received")


def already_done(text: str | None) -> bool:
    seen = plain(text)
    return bool(seen) and any(seen.startswith(plain(TEXTS[k].split("{")[0]))
                              for k in ALREADY_DONE)


def is_refusal(text: str | None) -> bool:
    seen = plain(text)
    # an alert is at most 200 characters: compare what is left of a long refusal
    return bool(seen) and (any(plain(t(k)).startswith(seen.rstrip("…")[:150])
                               for k in REFUSALS)
                           or any(seen.startswith(plain(TEXTS[k].split("{")[0]))
                                  for k in REFUSALS_WITH_FIELDS))


# the figures of the matrix, checked at the end of the test and printed
MATRIX: dict[str, int] = {"rows": 0, "tried": 0, "refused": 0, "allowed": 0}
BUTTONS_TRIED: set[str] = set()
COMMANDS_TRIED: set[str] = set()


def with_button(data_prefix: str):
    return lambda m: any(str(b.get("callback_data", "")).startswith(data_prefix)
                         for b in m.buttons)


def registered_commands(app) -> set[str]:
    """Every command a handler of the built Application answers."""
    return {c for group in app.handlers.values() for h in group
            if isinstance(h, CommandHandler) for c in h.commands}


class Matrix:
    """Presses one action as every actor and checks who got through."""

    def __init__(self, harness, sm, users: dict, people: dict, pads: dict) -> None:
        self.h, self.sm, self.users, self.people, self.pads = harness, sm, users, people, pads
        self.used: dict[str, str] = {}  # action -> the last data pressed for it

    async def quiet(self) -> None:
        """Settled, and no outbox row still in the background sender's hands."""
        await self.h.settle()
        for _ in range(1000):
            async with self.sm() as s:
                busy = (await s.execute(select(func.count()).select_from(Outbox).where(
                    Outbox.chat_id.is_not(None),
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))
                ).scalar_one()
            if not busy:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("the outbox did not empty")

    async def snap(self) -> dict:
        async with self.sm() as s:
            snap = await snapshot(s)
        snap.pop("processed_update", None)  # update bookkeeping (before bot/telegram/intake.py)
        # a card shown is recorded, and the cards it replaces lose their buttons: what
        # is on screen, not a change of state
        screen = {repr(DIRECT), repr(REMOVE_KEYBOARD)}
        snap["outbox"] = [r for r in snap.get("outbox", []) if not screen & set(r)]
        return snap

    def _pad(self, key: str, data: str):
        """The actor's own message, carrying a forged button with ``data``."""
        user = self.users[key]
        pad = user.message(self.pads[key])
        pad.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
        return pad

    def _on_card(self, key: str, card: str, data: str):
        """The actor's card (the newest message with a button starting with ``card``),
        with one more button carrying ``data`` (a page button the card shows only when
        the list is long)."""
        msg = next(m for m in reversed(self.users[key].messages)
                   if not m.deleted and any(str(b.get("callback_data", "")).startswith(card)
                                            for b in m.buttons))
        rows = list((msg.reply_markup or {}).get("inline_keyboard", []))
        msg.reply_markup = {"inline_keyboard": rows + [[{"text": "›", "callback_data": data}]]}
        return msg

    def _real(self, key: str, data: str):
        for msg in reversed(self.users[key].messages):
            if not msg.deleted and any(b.get("callback_data") == data for b in msg.buttons):
                return msg
        return None

    def _count(self, allowed: set[str]) -> None:
        MATRIX["rows"] += 1
        MATRIX["tried"] += len(ACTORS)
        MATRIX["allowed"] += len(allowed)
        MATRIX["refused"] += len(ACTORS) - len(allowed)

    async def refused(self, key: str, data: str, *, any_alert: bool = False,
                      done_by: str | None = None) -> None:
        qid = await self.users[key].press(self._pad(key, data), data=data)
        answer = await self.users[key].wait_for_answer(qid)
        if key == done_by and already_done(answer.text):
            return
        if any_alert:  # or a reason the rule gives in its own words, shown as an alert
            assert is_refusal(answer.text) or (
                answer.show_alert and plain(answer.text) != plain(t("err.generic"))), \
                (data, key, answer)
        else:
            assert is_refusal(answer.text), (data, key, answer.text)

    async def button(self, data: str, allowed: str | tuple[str, ...] = (), check=None, *,
                     read_only: bool = False, changes: set[str] | None = None,
                     reply: str | None = None, fresh=None, undo=None,
                     any_alert: bool = False, card: str | None = None,
                     done_by: str | None = None):
        """Everyone not in ``allowed`` is refused and changes nothing; then each actor of
        ``allowed`` presses in turn (the real button when they have it): no refusal, the
        database changes for those in ``changes`` (default: all of them unless
        ``read_only``) and only for them, and ``check`` sees the new state. ``fresh()``
        makes a new object of the action for the next allowed actor (and returns its
        data), ``undo(key)`` cleans up after one. ``card``: the allowed actor presses on
        their card (see ``_on_card``) when it has no such button. ``done_by``: the actor
        who did the step already and may be told so instead of a refusal."""
        allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
        if changes is None:
            changes = set() if read_only else set(allowed)
        await self.quiet()
        before = await self.snap()
        for k in ACTORS:
            if k not in allowed:
                await self.refused(k, data, any_alert=any_alert, done_by=done_by)
        await self.quiet()
        assert await self.snap() == before, f"a refused press of {data} changed the database"
        result = None
        for n, key in enumerate(allowed):
            if n and fresh is not None:
                data = await fresh()
                await self.quiet()
                before = await self.snap()
            user = self.users[key]
            msg = self._real(key, data) or (
                self._on_card(key, card, data) if card else self._pad(key, data))
            qid = await user.press(msg, data=data)
            answer = await user.wait_for_answer(qid)
            assert not is_refusal(answer.text) and not answer.show_alert, \
                (data, key, answer.text)
            if reply is not None:
                result = await user.wait_for(after=qid, text_contains=reply)
            await self.quiet()
            after = await self.snap()
            if key in changes:
                assert after != before, f"{data} by {key} changed nothing"
            else:
                assert after == before, f"{data} by {key} should only show something"
            if check is not None:
                await check()
            if undo is not None:
                await undo(key)
            await self.quiet()
            before = await self.snap()
        self._count(set(allowed))
        action = callbacks.decode(data).action
        BUTTONS_TRIED.add(action)
        self.used[action] = data
        return result

    async def command(self, text: str, allowed: set[str]) -> None:
        """Every actor sends the command; the refused get a refusal, nobody changes the
        database (no conversation is open)."""
        await self.quiet()
        before = await self.snap()
        sent = {k: await self.users[k].send_text(text) for k in ACTORS}
        for k in ACTORS:
            msg = await self.users[k].wait_for(after=sent[k])
            if k in allowed:
                if k == "asing" and text.startswith("/start"):
                    # a stranger's /start is answered with the way to register
                    assert plain(msg.text) == plain(t("o.stranger")), (text, k, msg.text)
                else:
                    assert not is_refusal(msg.text), (text, k, msg.text)
            else:
                assert is_refusal(msg.text), (text, k, msg.text)
        await self.quiet()
        assert await self.snap() == before, f"{text} changed the database"
        self._count(allowed)
        COMMANDS_TRIED.add(text.split()[0].lstrip("/"))


async def test_every_action_against_every_role(harness, sessionmaker, services, clock,
                                               office, capsys):
    h, sm = harness, sessionmaker
    for key in MATRIX:
        MATRIX[key] = 0
    BUTTONS_TRIED.clear()
    COMMANDS_TRIED.clear()

    # ------------------------------------------------------------------ the actors
    people = await People(h).load(*KEYS.values())
    persons = {k: people.person(*KEYS[k]) for k in KEYS}
    users = {k: people.user(*KEYS[k]) for k in KEYS}
    async with sm() as s, s.begin():
        pptk = await unit(s, "PPTK")
        kadis = await person(s, Role.KADIS)
        admin = Person(office_id=kadis.office_id, name="Contoh Admin Kantor", role=Role.ADMIN)
        gone = Person(office_id=kadis.office_id, unit_id=pptk.id, name="Contoh Staf Pindahan",
                      role=Role.STAF)
        # moves to another office during the test (not registered, no tasks)
        leaving = Person(office_id=kadis.office_id, unit_id=pptk.id, role=Role.STAF,
                         name="Contoh Staf \"Mutasi\" <Dinas Lain> & Co. 🚚")
        s.add_all([admin, gone, leaving])
    for key, p in (("admin", admin), ("nonaktif", gone)):
        users[key] = await h.register(p)
        persons[key] = p
    async with sm() as s, s.begin():
        (await s.get(Person, gone.id)).active = False
    users["asing"] = h.emulator.add_user(user_id=990_001, first_name="Orang Asing")
    pads = {}
    for key in ACTORS:  # each actor's own message to forge buttons onto
        sent = await users[key].send_command("/cek")
        pads[key] = (await users[key].wait_for(after=sent, text_contains="/cek")).message_id
    m = Matrix(h, sm, users, persons, pads)

    async def call(fn):
        async with sm() as s, s.begin():
            return await fn(Workflow(s, services), s)

    async def admin_call(fn):
        async with sm() as s, s.begin():
            return await fn(Administration(s, services), s)

    async def conv(key: str) -> Conversation | None:
        async with sm() as s:
            return await s.get(Conversation, persons[key].id)

    async def runs(step_no: int, status: StepStatus | None = StepStatus.OPEN) -> list[StepRun]:
        async with sm() as s:
            stmt = select(StepRun).where(StepRun.step_no == step_no)
            if status is not None:
                stmt = stmt.where(StepRun.status == status)
            return list((await s.execute(stmt.order_by(StepRun.id))).scalars())

    async def current_doc() -> Document:
        async with sm() as s:
            return (await s.execute(select(Document).order_by(Document.version.desc())
                                    )).scalars().first()

    async def outgoing():
        h.sender.wake()
        await h.sender.drain()
        await h.settle()

    async def batal(key: str) -> None:
        sent = await users[key].send_command("/batal")
        await users[key].wait_for(after=sent, text_contains="dibatalkan")

    async def no_conversation(key: str) -> None:
        if await conv(key) is not None:
            await batal(key)

    async def no_kasubag_flow() -> None:
        assert await conv("kasubag") is None

    async def type_text(key: str, text: str, expect: str) -> None:
        sent = await users[key].send_text(text)
        await users[key].wait_for(after=sent, text_contains=expect)

    async def commands(state: str, *, plh_acting: bool) -> None:
        """Every registered command. While acting, ``plh`` may use the Kadis' SOP commands;
        the office administration stays the Kadis' own (/pegawai refuses the Plh.,
        /alihkan answers them that there is nothing they may reassign)."""
        leaders = {"kadis"} | ({"plh"} if plh_acting else set())
        await m.command("/mulai", leaders)
        await m.command("/status", leaders | {"sekretaris", "kasubag", "admin"})
        await m.command("/pegawai", {"kadis", "sekretaris", "admin"})
        await m.command("/alihkan", leaders | {"sekretaris", "kasubag"})
        await m.command("/tugas", REGISTERED)
        await m.command("/bantuan", REGISTERED)
        await m.command("/batal", REGISTERED)
        await m.command("/cek ABCD-EFGH", EVERYONE)  # anyone may verify a document
        # the regency admin's list of offices: nobody of an office ([regency] admins)
        await m.command("/kantor", set())
        await m.command("/start", REGISTERED | {"asing"})

    # ------------------------------------------------------------------ commands
    await commands("no cycle, no Plh.", plh_acting=False)

    # ------------------------------------------------------------------ /pegawai: people
    await m.button(callbacks.encode("pgw", 1, office.id), "admin", read_only=True,
                   reply="Pilih pegawai")
    if "pgxl" in callbacks.ACTIONS:  # the second page of that list
        await m.button(callbacks.encode("pgxl", office.id, 1), "admin", read_only=True,
                       reply="Pilih pegawai")
    await m.button(callbacks.encode("pgx", leaving.id), "admin", read_only=True,
                   reply="alasan")
    await m.button(callbacks.encode("pgxs", leaving.id, persons["staf"].id), "admin",
                   read_only=True, reply="alasan")
    # a page of the successors (this one holds nothing open: the reason is asked)
    await m.button(callbacks.encode("pgxp", leaving.id, 1), "admin", read_only=True,
                   reply="alasan")

    async def left():
        async with sm() as s:
            assert not (await s.get(Person, leaving.id)).active
    await m.button(callbacks.encode("pgxr", leaving.id, 0, 1), "admin", left)
    await m.button(callbacks.encode("pgw", 9, office.id), ("admin", "kadis", "sekretaris"),
                   read_only=True)

    # ------------------------------------------------------------------ /pegawai: Plh.
    async def slot_asked():
        assert (await conv("admin")).state == "slot"

    async def drop_kadis_flow(key: str) -> None:
        if key == "kadis":  # the Kadis may appoint too; the admin carries on
            await batal("kadis")
    await m.button(callbacks.encode("pgw", 2, office.id), ("kadis", "admin"), undo=drop_kadis_flow)
    await slot_asked()

    async def person_asked():
        c = await conv("admin")
        assert c.state == "person" and c.data["role"] == Role.KADIS.value
    await m.button(callbacks.encode("plhr", 1, 0), "admin", person_asked)
    # another page of the people who may be appointed: the conversation stays
    await m.button(callbacks.encode("plhl", 1), "admin", person_asked, read_only=True,
                   reply="Siapa yang ditunjuk")

    async def kind_asked():
        c = await conv("admin")
        assert c.state == "kind" and c.data["acting"] == persons["plh"].id
    await m.button(callbacks.encode("plhp", persons["plh"].id), "admin", kind_asked)

    async def range_asked():
        assert (await conv("admin")).state == "range"
    await m.button(callbacks.encode("plhk", 1), "admin", range_asked)
    await type_text("admin", "7-10-2024 s.d. 31-10-2024", "surat perintah")
    await type_text("admin", "800/12/SP/II.08/2024", "Periksa penunjukan")

    async def appointed():
        async with sm() as s:
            appt = (await s.execute(select(ActingAppointment))).scalar_one()
        assert appt.acting_person_id == persons["plh"].id and appt.role == Role.KADIS
        assert await conv("admin") is None
    await m.button(callbacks.encode("plhok", 1), "admin", appointed)
    await outgoing()

    # the cancel button of the flow: harmless for anyone who may appoint
    q = await users["admin"].press(m._pad("admin", callbacks.encode("pgw", 2, office.id)),
                                   data=callbacks.encode("pgw", 2, office.id))
    await users["admin"].wait_for(after=q, text_contains="Jabatan mana")

    async def flow_closed():
        assert await conv("admin") is None
    await m.button(callbacks.encode("plhok", 0), ("admin", "kadis", "plh"), flow_closed,
                   changes={"admin"})

    # two appointments planned for December, cancelled by the admin and by the Kadis
    async def plan(days: int) -> int:
        starts, ends = day_range(clock.now().date() + timedelta(days=days),
                                 clock.now().date() + timedelta(days=days + 1))
        return (await admin_call(lambda adm, s: adm.appoint(
            None, role=Role.KASUBAG, acting_id=persons["staf_sek"].id, kind=ActingKind.PLT,
            starts_at=starts, ends_at=ends))).id
    planned = [await plan(60), await plan(67)]
    await outgoing()

    async def second_plan():  # the Kadis cancels the second one
        return callbacks.encode("plhx", planned[1])

    async def cancelled():
        async with sm() as s:
            assert (await s.get(ActingAppointment, planned[0])).cancelled
    await m.button(callbacks.encode("plhx", planned[0]), ("admin", "kadis"), cancelled,
                   fresh=second_plan)
    async with sm() as s:
        assert all([(await s.get(ActingAppointment, a)).cancelled for a in planned])
    await m.button(callbacks.encode("pgw", 9, office.id), ("admin", "kadis", "sekretaris", "plh"),
                   read_only=True)

    # ------------------------------------------------------------------ commands again
    await commands("Plh. Kepala Dinas appointed, no cycle", plh_acting=True)

    # ------------------------------------------------------------------ step 1
    async def mulai_asked():
        for key in ("kadis", "plh"):
            c = await conv(key)
            assert c is None or (c.kind == "mulai" and c.data["quarter"] == 3)
    # the office of /mulai chosen (an account bound in several offices is asked): the
    # periods of that office; the period pressed with its office
    await m.button(callbacks.encode("ofc", 1, office.id), ("kadis", "plh"), read_only=True,
                   reply="Pilih periodenya")
    await m.button(callbacks.encode("startk", 1, 2024, 3, office.id), ("kadis", "plh"),
                   mulai_asked, undo=batal)
    await m.button(callbacks.encode("start", 1, 2024, 3), ("kadis", "plh"), mulai_asked,
                   undo=batal)
    cycle = await call(lambda wf, s: wf.start_cycle(persons["kadis"], CycleKind.QUARTERLY,
                                                    2024, 3, "Siapkan pengukuran TW III"))
    await outgoing()

    # ------------------------------------------------------------------ step 2
    run2 = (await runs(2))[0]

    async def note_asked():
        assert (await conv("sekretaris")).kind == "dsp_note"
    await m.button(callbacks.encode("dsp", run2.id), "sekretaris", note_asked)

    async def forwarded():
        assert (await runs(2, StepStatus.DONE))[0].id == run2.id and len(await runs(3)) == 1
        assert await conv("sekretaris") is None
    await m.button(callbacks.encode("crdok", run2.id), "sekretaris", forwarded)
    await outgoing()

    # ------------------------------------------------------------------ step 3
    run3 = (await runs(3))[0]
    async with sm() as s:
        sek_unit = (await unit(s, "SEK")).id
        ind_unit = (await unit(s, "IND")).id

    async def coordinating():
        assert (await conv("kasubag")).kind == "coord"
    await m.button(callbacks.encode("crd", run3.id), "kasubag", coordinating)

    async def sek_off():
        assert (await conv("kasubag")).data["off"] == [sek_unit]
    await m.button(callbacks.encode("crdu", run3.id, sek_unit), "kasubag", sek_off)

    async def three_days():
        assert (await conv("kasubag")).data["days"] == 3
    await m.button(callbacks.encode("crdd", run3.id, 3), "kasubag", three_days)
    if "crdp" in callbacks.ACTIONS:  # the card's second page
        async def second_page():
            assert (await conv("kasubag")).data.get("page") == 1
        await m.button(callbacks.encode("crdp", run3.id, 1), "kasubag", second_page,
                       card="crdok:")

    async def requested():
        assert len(await runs(4)) == 3 and not await runs(3)
    await m.button(callbacks.encode("crdok", run3.id), "kasubag", requested)
    await outgoing()

    # ------------------------------------------------------------------ step 4: entry
    run4 = next(r for r in await runs(4) if r.unit_id == pptk.id)
    run4_ind = next(r for r in await runs(4) if r.unit_id == ind_unit)
    async with sm() as s:
        items = list((await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cycle.id, CycleIndicator.unit_id == pptk.id)
            .order_by(CycleIndicator.position))).scalars())
    i1, i2, i3 = items[0].id, items[1].id, items[2].id
    r = run4.id

    def entry_state(key, state, **data):
        async def check():
            c = await conv(key)
            assert c is not None and c.kind == "entry" and c.state == state, c and c.state
            for name, value in data.items():
                assert c.data.get(name) == value, (name, c.data)
        return check

    async def latest(item_id):
        async with sm() as s:
            item = await s.get(CycleIndicator, item_id)
            return (await s.execute(select(Submission).where(
                Submission.cycle_id == cycle.id, Submission.indicator_id == item.indicator_id)
                .order_by(Submission.revision.desc()))).scalars().first()

    # another bidang's data entry is its own Kabid's (the Kabid Pelatihan is refused)
    await m.button(callbacks.encode("ent", run4_ind.id), "kabid_lain",
                   entry_state("kabid_lain", "ask"), undo=batal)
    await m.button(callbacks.encode("ent", r), "kabid", entry_state("kabid", "ask", item=i1))
    await m.button(callbacks.encode("ehand", r), "kabid", entry_state("kabid", "assign"))
    if "epage" in callbacks.ACTIONS:
        await m.button(callbacks.encode("epage", r, 0), "kabid",
                       entry_state("kabid", "assign", page=0), card="eassign:")
    await m.button(callbacks.encode("eassign", r, i1), "kabid",
                   entry_state("kabid", "assign", pick=i1))

    async def handed():
        async with sm() as s:
            assert (await s.get(CycleIndicator, i1)).assigned_to_id == persons["staf"].id
    await m.button(callbacks.encode("eto", r, i1, persons["staf"].id), "kabid", handed)
    await m.button(callbacks.encode("esum", r), "kabid", entry_state("kabid", "summary"))
    await m.button(callbacks.encode("egoto", r, i2), "kabid",
                   entry_state("kabid", "ask", item=i2, review=True))
    await m.button(callbacks.encode("eback", r), "kabid", entry_state("kabid", "ask", item=i1))

    async def skipped():
        assert (await latest(i1)).skipped
        await entry_state("kabid", "ask", item=i2)()
    await m.button(callbacks.encode("eskip", r), "kabid", skipped)

    async def implausible_answer():
        sent = await users["kabid"].send_text("-5")
        await users["kabid"].wait_for(after=sent, predicate=with_button("eok:"))
    await implausible_answer()
    await m.button(callbacks.encode("eno", r), "kabid", entry_state("kabid", "ask", item=i2))
    await implausible_answer()

    async def confirmed():
        assert (await latest(i2)).value == Decimal(-5)
        await entry_state("kabid", "evidence", item=i2)()
    await m.button(callbacks.encode("eok", r), "kabid", confirmed)
    if "ewhy" in callbacks.ACTIONS:  # -5 % is under the target: the analysis is asked

        async def why_skipped():
            await entry_state("kabid", "evidence", item=i2, why=["upaya"])()
        await m.button(callbacks.encode("ewhy", r), "kabid", why_skipped)
    await m.button(callbacks.encode("enote", r), "kabid", entry_state("kabid", "note"))
    await m.button(callbacks.encode("enext", r), "kabid", entry_state("kabid", "ask", item=i3))
    if "epick" in callbacks.ACTIONS:  # an ambiguous number: the reading is chosen
        sent = await users["kabid"].send_text("1,250")
        await users["kabid"].wait_for(after=sent, predicate=with_button("epick:"))

        async def picked():
            assert (await latest(i3)).value == Decimal(1250)
            await entry_state("kabid", "evidence", item=i3)()
        await m.button(callbacks.encode("epick", r, 1), "kabid", picked)
        await m.button(callbacks.encode("enext", r), "kabid",
                       entry_state("kabid", "ask", item=items[3].id))
    for item in items[2:]:  # the rest straight through the workflow
        await call(lambda wf, s, item=item: wf.record_answer(
            persons["kabid"], r, item.id, raw_text="10", value=Decimal(10)))
    q = await users["kabid"].press(m._real("kabid", callbacks.encode("esum", r)),
                                   data=callbacks.encode("esum", r))
    await users["kabid"].wait_for_answer(q)

    async def cancelled_entry():
        assert await conv("kabid") is None
    await m.button(callbacks.encode("ecanc", r), "kabid", cancelled_entry)
    # the staf opens the indicator handed to them (answered, so straight to the summary)
    await outgoing()
    q = await users["staf"].press(m._real("staf", callbacks.encode("ent", r)),
                                  data=callbacks.encode("ent", r))
    await users["staf"].wait_for(after=q, predicate=with_button("edone:"))

    async def staff_done():
        assert await conv("staf") is None
        async with sm() as s:
            assert (await s.execute(select(func.count()).select_from(Outbox).where(
                Outbox.kind == "staff_done"))).scalar_one() == 1
    await m.button(callbacks.encode("edone", r), "staf", staff_done)

    # ------------------------------------------------------------------ /alihkan, step 4
    # who may reassign sees the open step; the Kasubag only data-entry steps; the
    # office administration (appointing, reassigning) is the Kadis' own, not the Plh.'s
    await m.button(callbacks.encode("alh", r), ("kasubag", "sekretaris", "kadis"),
                   read_only=True, reply="kepada siapa")
    await m.button(callbacks.encode("alhl", r, 1), ("kasubag", "sekretaris", "kadis"),
                   read_only=True, reply="kepada siapa")
    # a data-entry step cannot go to someone who cannot press its buttons (the Kadis)
    await m.button(callbacks.encode("alhp", r, persons["kadis"].id), (), any_alert=True)

    q = await users["kabid"].press(m._real("kabid", callbacks.encode("ent", r)),
                                   data=callbacks.encode("ent", r))
    await users["kabid"].wait_for(after=q, predicate=with_button("esend:"))

    async def sent_in():
        async with sm() as s:
            assert (await s.get(StepRun, r)).status == StepStatus.DONE
    await m.button(callbacks.encode("esend", r), "kabid", sent_in)
    await outgoing()

    # ------------------------------------------------------------------ steps 4-5: Kasubag
    await m.button(callbacks.encode("eview", cycle.id, pptk.id), "kasubag", read_only=True,
                   reply=pptk.name)
    if "evpg" in callbacks.ACTIONS:
        await m.button(callbacks.encode("evpg", cycle.id, pptk.id, 0), "kasubag",
                       read_only=True, card="rtn:")

    if "rti" in callbacks.ACTIONS:  # single answers sent back, a note for each
        async def picking(**data):
            async def check():
                c = await conv("kasubag")
                assert c is not None and c.kind == "rti", c and c.kind
                for name, value in data.items():
                    assert c.data.get(name) == value, (name, c.data)
            return check
        await m.button(callbacks.encode("rti", cycle.id, pptk.id), "kasubag",
                       await picking(notes={}))
        await m.button(callbacks.encode("rtip", cycle.id, pptk.id, 1), "kasubag",
                       await picking(page=1), card="rtis:")
        await m.button(callbacks.encode("rtis", cycle.id, pptk.id, i1), "kasubag",
                       await picking(item=i1))
        await type_text("kasubag", "Cek ulang <BPS> & \"Sakernas\" 📊", "Dipilih: 1")
        await m.button(callbacks.encode("rtix", cycle.id, pptk.id), "kasubag",
                       no_kasubag_flow)
        q = await users["kasubag"].press(m._real("kasubag", callbacks.encode(
            "rti", cycle.id, pptk.id)), data=callbacks.encode("rti", cycle.id, pptk.id))
        await users["kasubag"].wait_for(after=q, predicate=with_button("rtis:"))
        q = await users["kasubag"].press(m._real("kasubag", callbacks.encode(
            "rtis", cycle.id, pptk.id, i2)), data=callbacks.encode("rtis", cycle.id, pptk.id, i2))
        await users["kasubag"].wait_for(after=q, text_contains="Tulis catatan")
        await type_text("kasubag", "Nilai -5 tidak mungkin", "Dipilih: 1")

        async def answers_returned():
            assert await conv("kasubag") is None
            back = [x for x in await runs(4) if x.unit_id == pptk.id]
            assert len(back) == 1 and back[0].round == 2
        await m.button(callbacks.encode("rtiok", cycle.id, pptk.id), "kasubag",
                       answers_returned)
        await outgoing()
        again = next(x for x in await runs(4) if x.unit_id == pptk.id)
        await call(lambda wf, s: wf.submit_unit(persons["kabid"], again.id))
        await outgoing()

    async def reason_asked():
        assert (await conv("kasubag")).kind == "rtn_reason"
    await m.button(callbacks.encode("rtn", cycle.id, pptk.id), "kasubag", reason_asked)
    await batal("kasubag")

    async def close_asked():
        assert (await conv("kasubag")).kind == "cls_note"
    await m.button(callbacks.encode("cls", cycle.id), "kasubag", close_asked)

    async def close_cancelled():
        assert await conv("kasubag") is None
    await m.button(callbacks.encode("clsno", cycle.id), "kasubag", close_cancelled)
    q = await users["kasubag"].press(m._pad("kasubag", callbacks.encode("cls", cycle.id)),
                                     data=callbacks.encode("cls", cycle.id))
    await users["kasubag"].wait_for(after=q, predicate=with_button("clsok:"))

    async def closed():
        assert len(await runs(4, StepStatus.SKIPPED)) == 2 and len(await runs(5)) == 1
    await m.button(callbacks.encode("clsok", cycle.id), "kasubag", closed)
    await outgoing()
    run5 = (await runs(5))[0]

    async def processed():
        assert not await runs(5) and len(await runs(6)) == 1
    await m.button(callbacks.encode("proc", run5.id), "kasubag", processed)
    await outgoing()

    # ------------------------------------------------------------------ steps 6-7
    run6 = (await runs(6))[0]

    async def compiled():
        doc = await current_doc()
        assert doc.version == 1 and doc.status == DocumentStatus.DRAFT
    await m.button(callbacks.encode("cmp", run6.id), "kasubag", compiled)
    doc = await current_doc()

    async def submitted():
        assert (await current_doc()).status == DocumentStatus.SUBMITTED
        assert len(await runs(7)) == 1
    await m.button(callbacks.encode("subm", run6.id, doc.id), "kasubag", submitted)
    await outgoing()
    run7 = (await runs(7))[0]

    # the signature before the step is open: nobody, not even the Sekretaris who holds
    # the step before it
    await m.button(callbacks.encode("sgn", run7.id, doc.id), ())

    async def return_asked():
        assert (await conv("sekretaris")).kind == "ret_reason"
    await m.button(callbacks.encode("ret", run7.id, doc.id), "sekretaris", return_asked)
    await batal("sekretaris")

    async def initialled():
        assert (await current_doc()).status == DocumentStatus.INITIALLED
        assert len(await runs(8)) == 1
    await m.button(callbacks.encode("prf", run7.id, doc.id), "sekretaris", initialled)
    await outgoing()

    # ------------------------------------------------------------------ step 8
    run8 = (await runs(8))[0]
    assert run8.assignee_id == persons["plh"].id  # the Plh. holds the Kadis' new steps
    # initialling again, at the signature step: nobody
    await m.button(callbacks.encode("prf", run8.id, doc.id), ())
    await m.button(callbacks.encode("alh", run8.id), ("sekretaris", "kadis"),
                   read_only=True, reply="kepada siapa")
    # the signature cannot go to the Sekretaris, whoever asks
    await m.button(callbacks.encode("alhp", run8.id, persons["sekretaris"].id), (),
                   any_alert=True)

    async def holder_of_8(key: str):
        async with sm() as s:
            assert (await s.get(StepRun, run8.id)).assignee_id == persons[key].id

    async def back_to_plh(key: str | None = None):
        await admin_call(lambda adm, s: adm.reassign_run(None, run8.id, persons["plh"].id))
        await outgoing()
    # the Kadis and the Plh. may hold it: the Sekretaris or the Kadis moves it
    await m.button(callbacks.encode("alhp", run8.id, persons["kadis"].id),
                   ("sekretaris", "kadis"), lambda: holder_of_8("kadis"),
                   undo=back_to_plh)

    async def signed():
        assert (await current_doc()).status == DocumentStatus.SIGNED
        assert len(await runs(9)) == 1
    await m.button(callbacks.encode("sgn", run8.id, doc.id), "plh", signed)
    await outgoing()

    # ------------------------------------------------------------------ steps 9-11
    run9 = (await runs(9))[0]

    async def numbered():
        async with sm() as s:
            assert (await s.execute(select(func.count()).select_from(LetterNumber))
                    ).scalar_one() == 1
        assert (await current_doc()).status == DocumentStatus.NUMBERED
    await m.button(callbacks.encode("num", run9.id), "staf_sek", numbered)
    await outgoing()
    run10 = (await runs(10))[0]

    async def archived():
        assert len(await runs(11)) == 1
        async with sm() as s:
            assert (await s.execute(select(func.count()).select_from(Delivery))
                    ).scalar_one() == 3
    await m.button(callbacks.encode("arc", run10.id), "kasubag", archived)
    await outgoing()
    run11 = (await runs(11))[0]
    await m.button(callbacks.encode("task", run11.id), "staf_sek", read_only=True,
                   reply="Bappeda")
    async with sm() as s:
        bappeda = (await s.execute(select(Delivery).where(
            Delivery.agency_key == "bappeda"))).scalar_one()

    async def delivery_is(status):
        async def check():
            async with sm() as s:
                assert (await s.get(Delivery, bappeda.id)).status == status
        return check
    await m.button(callbacks.encode("dlv", bappeda.id), "staf_sek",
                   await delivery_is(DeliveryStatus.SENT))
    await outgoing()
    await m.button(callbacks.encode("rcv", bappeda.id), "kontak",
                   await delivery_is(DeliveryStatus.RECEIVED))
    await outgoing()
    async with sm() as s:  # the other agencies' receipts, recorded by the staf
        others = [d.id for d in (await s.execute(select(Delivery).where(
            Delivery.status == DeliveryStatus.PENDING))).scalars()]

    async def receipt(wf, s, delivery_id):
        photo = await services.store.put(s, png(40, 30), "tanda-terima.png", "image/png")
        await archive.record_receipt(wf, persons["staf_sek"], delivery_id,
                                     received_by="Petugas Agenda \"TU\" <Umum> & Arsip",
                                     receipt_file_id=photo.id)
    for delivery_id in others:
        await call(lambda wf, s, d=delivery_id: receipt(wf, s, d))
    await outgoing()
    async with sm() as s:
        assert (await s.get(Cycle, cycle.id)).status == CycleStatus.CLOSED

    # ------------------------------------------------------------------ every button again
    # Each step is done, the person deactivated, each appointment made or cancelled, the
    # period started: the same data pressed again is refused for everyone (a refusal or
    # the rule's own reason as an alert). The menu of /pegawai and its pages are not a
    # state (they open again for the admin); "plhok" is pressed as "save" with no flow
    # open. The one who did a step may be told so instead.
    for key in REGISTERED:
        await no_conversation(key)
    m.used["plhok"] = callbacks.encode("plhok", 1)
    done_by = {"prf": "sekretaris", "sgn": "plh", "num": "staf_sek", "rcv": "kontak"}
    for action, data in sorted(m.used.items()):
        if action not in ("pgw", "pgxl", "ofc"):
            await m.button(data, (), any_alert=True, done_by=done_by.get(action))

    # ------------------------------------------------------------------ the Plh.'s range over
    # The appointment ran from 7 to 31 October: on 1 November the Kabid is no Plh. any
    # more, for every command and button, whether or not the minute job ran yet.
    clock.set(wib(2024, 11, 1, 9, 0))
    await m.button(callbacks.encode("start", 1, 2024, 4), "kadis", undo=batal)
    await admin_call(lambda adm, s: adm.sync())
    await outgoing()
    await commands("the Plh.'s range is over", plh_acting=False)

    # ------------------------------------------------------------------ the figures
    tried = MATRIX["tried"]
    line = (f"authorization matrix: {MATRIX['rows']} actions x {len(ACTORS)} actors = "
            f"{tried} tried, {MATRIX['refused']} refused, {MATRIX['allowed']} allowed "
            f"({len(COMMANDS_TRIED)} commands and {len(BUTTONS_TRIED)} buttons, "
            f"in several states)")
    with capsys.disabled():
        print("\n" + line)
    assert tried == MATRIX["rows"] * len(ACTORS)
    assert MATRIX["refused"] + MATRIX["allowed"] == tried
    # the matrix has a row for every command and every action of the codec
    assert COMMANDS_TRIED == registered_commands(h.app), \
        registered_commands(h.app) ^ COMMANDS_TRIED
    assert BUTTONS_TRIED == set(callbacks.ACTIONS), set(callbacks.ACTIONS) ^ BUTTONS_TRIED
