"""Every command and every button of the SOP against every role (DESIGN principle 6).

One cycle is driven from the first command to the last receipt. At each point where an
action is legitimately possible, every actor presses its real callback data (forged onto
a message in their own chat when they do not have the button): only the actor the SOP
allows succeeds (and the state moves as expected); everyone else gets a short Indonesian
refusal and the database (minus the ``inbox``) is exactly as before.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot import callbacks
from bot.texts import t
from bot.workflow import Workflow
from models import (
    Conversation, CycleIndicator, Delivery, Document, LetterNumber, Outbox, Person, StepRun,
    Submission,
)
from models.enums import (
    CycleKind, DeliveryStatus, DocumentStatus, OutboxStatus, Role, StepStatus,
)
from tests.e2e import People, harness  # noqa: F401  (fixture)
from tests.helpers import person, snapshot, unit

ACTORS = ("kadis", "sekretaris", "kasubag", "kabid", "kabid_lain", "staf", "staf_sek",
          "kontak", "admin", "nonaktif", "asing")
KEYS = {"kadis": (Role.KADIS, None), "sekretaris": (Role.SEKRETARIS, None),
        "kasubag": (Role.KASUBAG, None), "kabid": (Role.KABID, "PPTK"),
        "kabid_lain": (Role.KABID, "IND"), "staf": (Role.STAF, "PPTK"),
        "staf_sek": (Role.STAF, "SEK"), "kontak": (Role.CONTACT, None)}
REGISTERED = set(ACTORS) - {"nonaktif", "asing"}

# every button of the SOP (the office-administration buttons are not SOP steps)
SOP_BUTTONS = {"start", "dsp", "crd", "crdu", "crdd", "crdok", "ent", "eskip", "eback", "ecanc",
               "eok", "eno", "esum", "esend", "eassign", "eto", "enext", "enote", "egoto",
               "ehand", "edone", "eview", "rtn", "cls", "clsok", "clsno", "proc", "cmp", "subm",
               "prf", "sgn", "ret", "num", "arc", "dlv", "rcv", "task"}

# the short Indonesian refusals a button or a command may get
REFUSALS = {t("err.not_allowed"), t("err.not_assignee"), t("err.stale_button"),
            t("err.inactive"), t("o.stranger"), t("e.not_yours")}

# the figures of the matrix, checked at the end of the test and printed
MATRIX: dict[str, int] = {"actions": 0, "tried": 0, "refused": 0, "allowed": 0}
BUTTONS_TRIED: set[str] = set()


async def answer_of(user, query_id: str, timeout: float = 30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        answer = user.callback_answer(query_id)
        if answer is not None:
            return answer
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no answer to callback query {query_id}")


def with_button(data_prefix: str):
    return lambda m: any(str(b.get("callback_data", "")).startswith(data_prefix)
                         for b in m.buttons)


class Matrix:
    """Presses one action as every actor and checks who got through."""

    def __init__(self, harness, sm, users: dict, people: dict, pads: dict) -> None:
        self.h, self.sm, self.users, self.people, self.pads = harness, sm, users, people, pads

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
        return snap

    def _pad(self, key: str, data: str):
        """The actor's own message, carrying a forged button with ``data``."""
        user = self.users[key]
        pad = user.message(self.pads[key])
        pad.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
        return pad

    def _real(self, key: str, data: str):
        for msg in reversed(self.users[key].messages):
            if not msg.deleted and any(b.get("callback_data") == data for b in msg.buttons):
                return msg
        return None

    def _count(self, allowed: set[str]) -> None:
        MATRIX["actions"] += 1
        MATRIX["tried"] += len(ACTORS)
        MATRIX["allowed"] += len(allowed)
        MATRIX["refused"] += len(ACTORS) - len(allowed)

    async def button(self, data: str, allowed: str, check=None, *,
                     read_only: bool = False, reply: str | None = None):
        """Everyone but ``allowed`` is refused and changes nothing; then ``allowed``
        presses (the real button when they have it) and ``check`` sees the new state."""
        await self.quiet()
        before = await self.snap()
        refused = [k for k in ACTORS if k != allowed]
        pressed = {k: await self.users[k].press(self._pad(k, data), data=data) for k in refused}
        for k, qid in pressed.items():
            answer = await answer_of(self.users[k], qid)
            assert answer.text in REFUSALS, (data, k, answer.text)
        await self.quiet()
        assert await self.snap() == before, f"a refused press of {data} changed the database"
        user = self.users[allowed]
        msg = self._real(allowed, data) or self._pad(allowed, data)
        qid = await user.press(msg, data=data)
        answer = await answer_of(user, qid)
        assert answer.text not in REFUSALS, (data, allowed, answer.text)
        result = None
        if reply is not None:
            result = await user.wait_for(after=qid, text_contains=reply)
        await self.quiet()
        if read_only:
            assert await self.snap() == before, f"{data} should only show something"
        else:
            assert await self.snap() != before, f"{data} by {allowed} changed nothing"
        if check is not None:
            await check()
        self._count({allowed})
        BUTTONS_TRIED.add(callbacks.decode(data).action)
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
                    assert msg.text == t("o.stranger"), (text, k, msg.text)
                else:
                    assert msg.text not in REFUSALS, (text, k, msg.text)
            else:
                assert msg.text in REFUSALS, (text, k, msg.text)
        await self.quiet()
        assert await self.snap() == before, f"{text} changed the database"
        self._count(allowed)


async def test_every_action_against_every_role(harness, sessionmaker, services, clock,
                                               office, capsys):
    h, sm = harness, sessionmaker
    for key in MATRIX:
        MATRIX[key] = 0
    BUTTONS_TRIED.clear()

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
        s.add_all([admin, gone])
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

    # ------------------------------------------------------------------ commands
    everyone = set(ACTORS)
    await m.command("/mulai", {"kadis"})
    await m.command("/status", {"kadis", "sekretaris", "kasubag", "admin"})
    await m.command("/tugas", REGISTERED)
    await m.command("/bantuan", REGISTERED)
    await m.command("/batal", REGISTERED)
    await m.command("/cek ABCD-EFGH", everyone)  # anyone may verify a document
    await m.command("/start", REGISTERED | {"asing"})

    # ------------------------------------------------------------------ step 1
    async def mulai_asked():
        c = await conv("kadis")
        assert c.kind == "mulai" and c.data["quarter"] == 3
    await m.button(callbacks.encode("start", 1, 2024, 3), "kadis", mulai_asked)
    await batal("kadis")
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

    async def coordinating():
        assert (await conv("kasubag")).kind == "coord"
    await m.button(callbacks.encode("crd", run3.id), "kasubag", coordinating)

    async def sek_off():
        assert (await conv("kasubag")).data["off"] == [sek_unit]
    await m.button(callbacks.encode("crdu", run3.id, sek_unit), "kasubag", sek_off)

    async def three_days():
        assert (await conv("kasubag")).data["days"] == 3
    await m.button(callbacks.encode("crdd", run3.id, 3), "kasubag", three_days)

    async def requested():
        assert len(await runs(4)) == 3 and not await runs(3)
    await m.button(callbacks.encode("crdok", run3.id), "kasubag", requested)
    await outgoing()

    # ------------------------------------------------------------------ step 4: entry
    run4 = next(r for r in await runs(4) if r.unit_id == pptk.id)
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

    await m.button(callbacks.encode("ent", r), "kabid", entry_state("kabid", "ask", item=i1))
    await m.button(callbacks.encode("ehand", r), "kabid", entry_state("kabid", "assign"))
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
    await m.button(callbacks.encode("enote", r), "kabid", entry_state("kabid", "note"))
    await m.button(callbacks.encode("enext", r), "kabid", entry_state("kabid", "ask", item=i3))
    for item in items[2:]:  # the rest straight through the workflow
        await call(lambda wf, s, item=item: wf.record_answer(
            persons["kabid"], r, item.id, raw_text="10", value=Decimal(10)))
    q = await users["kabid"].press(m._real("kabid", callbacks.encode("esum", r)),
                                   data=callbacks.encode("esum", r))
    await answer_of(users["kabid"], q)

    async def cancelled():
        assert await conv("kabid") is None
    await m.button(callbacks.encode("ecanc", r), "kabid", cancelled)
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

    # ------------------------------------------------------------------ steps 6-8
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

    async def return_asked():
        assert (await conv("sekretaris")).kind == "ret_reason"
    await m.button(callbacks.encode("ret", run7.id, doc.id), "sekretaris", return_asked)
    await batal("sekretaris")

    async def initialled():
        assert (await current_doc()).status == DocumentStatus.INITIALLED
        assert len(await runs(8)) == 1
    await m.button(callbacks.encode("prf", run7.id, doc.id), "sekretaris", initialled)
    await outgoing()
    run8 = (await runs(8))[0]

    async def signed():
        assert (await current_doc()).status == DocumentStatus.SIGNED
        assert len(await runs(9)) == 1
    await m.button(callbacks.encode("sgn", run8.id, doc.id), "kadis", signed)
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

    # ------------------------------------------------------------------ the figures
    tried = MATRIX["tried"]
    line = (f"authorization matrix: {MATRIX['actions']} actions x {len(ACTORS)} actors = "
            f"{tried} tried, {MATRIX['refused']} refused, {MATRIX['allowed']} allowed")
    with capsys.disabled():
        print("\n" + line)
    assert tried == MATRIX["actions"] * len(ACTORS)
    assert MATRIX["refused"] + MATRIX["allowed"] == tried
    assert SOP_BUTTONS <= set(callbacks.ACTIONS) and BUTTONS_TRIED == SOP_BUTTONS
    assert MATRIX["actions"] == 7 + 38
