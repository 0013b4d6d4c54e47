"""Property-based bad input (issue 7, item 4): hypothesis throws odd text, numbers,
callback data, commands and files at every handler, through the emulator over real HTTP.

How hypothesis and asyncio meet here
------------------------------------
pytest-asyncio (0.23+, here 1.x) runs a ``@hypothesis.given`` *async* test natively
(its ``AsyncHypothesisTest`` item): every example is run to completion in the test's
event loop, the loop the fixtures (database engine, emulator, bot) were made in. So each
test function gets ONE harness (the function-scoped fixtures are shared by all of its
examples, hence ``HealthCheck.function_scoped_fixture`` is suppressed on purpose) and
each example puts back the conversation it may have moved. ``derandomize=True`` and
``database=None`` make the inputs the same on every run; the odd formats the issue
names are pinned with ``@example``. Shrinking is off (``phases``): the examples share a
database, so a shrunk replay would not start from the same state, and the falsifying
input is reported as it was generated.

What every example asserts
--------------------------
* no unhandled exception: no log record of level ERROR anywhere (the bot's error
  handler in ``bot.telegram.app`` logs one for every exception a handler lets through);
* the person got a clear Indonesian answer: a message (text, file) or a callback answer
  (button) that is not empty and has no traceback / English error words;
* nothing changed for invalid or unauthorised input: the whole database (minus the
  ``inbox`` bookkeeping and the id of the card message) is as before; valid
  input (a number ``parse_number`` reads, a visible note) is stored as such.

The number of inputs tried per category is counted, printed and asserted at the end of
each test (``tried`` fixture) and collected in ``TRIED``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from telegram import Update
from telegram.ext import TypeHandler

import models
from bot import callbacks
from bot.texts import t
from bot.core.workflow import Workflow
from models import (
    Conversation, Cycle, Delivery, Evidence, Indicator, StepRun, StoredFile, Submission,
)
from models.enums import OutboxStatus, Role, StepStatus
from reports.numbers import NumberParseError, parse_number
from tests.e2e import People, harness, people  # noqa: F401  (fixtures)
from tests.helpers import person, unit
from tests.test_e2e_data_entry import png, to_collection

TRIED: Counter = Counter()  # inputs tried per category, over the whole module
RAN: dict[str, dict[str, int]] = {}  # test -> its categories and counts
MIN_PER_CATEGORY = 5

# ---------------------------------------------------------------------- settings
def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ---------------------------------------------------------------------- strategies
ODD_NUMBERS = [
    "1,2,3", "--5", "1e5", "٣", "１２", "12 %%", "Rp", "½", "∞", "NaN", "-∞", "inf",
    "9" * 40, "1" + "0" * 400, "0," + "0" * 30 + "1", "-0", "+-1", "1.2.3", ",5", "5,",
    "0x10", "1_000", "10²", "Rp 1.250,-", "85 %", "85 persen", "1.250.000,75", "−7",
    "١٢٫٥", "१२", "๑๒", "12\u200b5", "\u202e12", "1 2", "12-", "(5)", "5/2", "Rp -5",
    "-Rp5", "%", "Rp 5 %", "٣٫٥", "⑫", "１，５", "1.5e-3", "𝟏𝟐",
]
EMPTY_LOOKING = st.text(
    alphabet=st.sampled_from(" \t\n\r\u00a0\u2000\u2003\u3000\u200b\u200c\u200d\u2060"
                             "\ufeff\u202e\u202d\u2028\u2029\u180e\x0b\x0c"),
    min_size=1, max_size=12)
CONTROL = st.text(alphabet=st.characters(categories=["Cc", "Cf"]), min_size=1, max_size=20)
HUGE = st.builds(lambda s, n: s * n,
                 st.sampled_from(["a", "9", "😀", "\u202eRTL", "ب", "Ж ", "x\u0301"]),
                 st.integers(1000, 5000))
NUMBERISH = st.from_regex(
    r"[+\-−]{0,2} ?(Rp\.? ?)?[0-9٠-٩０-９]{0,6}([.,][0-9]{0,4}){0,3}( ?%| persen|,-)?",
    fullmatch=True)


def telegram_text(s: str) -> bool:
    """Telegram never delivers an empty message."""
    return len(s) > 0


ANY_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    EMPTY_LOOKING, CONTROL, HUGE, NUMBERISH, st.sampled_from(ODD_NUMBERS),
    st.sampled_from(["😀", "🇮🇩🇮🇩", "مرحبا بالعالم", "שלום", "\u202e85\u202c",
                     "<b>tebal</b>", "&amp;", "<script>", "{text}", "%s", "{0}", "\\",
                     "null", "/", "/tugas", "/usr/share", "Rp 1.250,-"]),
).filter(telegram_text)

BAD_WORDS = ("Traceback", "Exception", "Error", "error:", "Invalid", "invalid",
             "failed", "Failed", "None", "KeyError", "Bad Request", "NoneType", "object at 0x")


def visible(text: str) -> bool:
    return any(unicodedata.category(c)[0] not in "CZ" for c in text)


def is_command(text: str) -> bool:
    """Telegram marks a leading "/word" as a bot command: it is not an answer."""
    return re.match(r"/[A-Za-z0-9_]", text) is not None


def kept(text: str, limit: int) -> str | None:
    """Free text the bot should keep: without control characters (but line breaks and
    tabs), stripped, something visible, at most ``limit`` characters; else None."""
    clean = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc").strip()
    return clean if visible(clean) and len(clean) <= limit else None


# ---------------------------------------------------------------------- watching the bot
class Watch:
    """Counts handled updates (a last-group handler) and ERROR log records."""

    def __init__(self, h) -> None:
        self.h = h
        self.done = 0
        self.errors: list[logging.LogRecord] = []
        watch = self

        class Catch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.levelno >= logging.ERROR:
                    watch.errors.append(record)

        async def count(update, context) -> None:
            watch.done += 1

        self.log_handler = Catch()
        h.app.add_handler(TypeHandler(Update, count), group=1000)
        logging.getLogger().addHandler(self.log_handler)

    def close(self) -> None:
        logging.getLogger().removeHandler(self.log_handler)

    async def act(self, user, send) -> tuple[object, list]:
        """Run ``send()`` (one update) and wait until the bot handled it; returns the
        result and the bot messages sent or edited in that chat meanwhile."""
        before = self.done
        mark = max((m.seq for m in user.messages), default=0)
        result = await send()
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while self.done <= before:
            if loop.time() > end:
                raise TimeoutError("the bot did not handle the update")
            await asyncio.sleep(0.005)
        await self.h.committed()  # the update commits after its handlers (bot/telegram/intake.py)
        self.check_no_error()
        return result, [m for m in user.messages if m.seq > mark]

    def check_no_error(self) -> None:
        if self.errors:
            rec = self.errors[0]
            self.errors.clear()
            raise AssertionError(f"unhandled: {rec.getMessage()} {rec.exc_info!r}")


def clear_text(text: str | None, sent: str = "") -> str:
    """The answer is non-empty and has no English error words (unless echoing input)."""
    assert text and text.strip(), "empty answer"
    for word in BAD_WORDS:
        if word in text and word not in sent:
            raise AssertionError(f"{word!r} in the answer: {text[:300]!r}")
    return text


def one_reply(replies, sent: str = "") -> str:
    assert replies, "no answer at all"
    return "\n".join(clear_text(m.content, sent) for m in replies)


async def answer_text(user, qid: str) -> str | None:
    return (await user.wait_for_answer(qid)).text


async def state(sm, h=None) -> dict:
    """Every row (minus bookkeeping): processed updates, the card's message id and the
    conversation's timestamp are not state; falsy keys of conversation data neither."""
    if h is not None:
        await h.settle()
        # settle() may return while the background sender still holds claimed rows
        for _ in range(500):
            async with sm() as s:
                busy = (await s.execute(select(func.count()).select_from(models.Outbox).where(
                    models.Outbox.status == OutboxStatus.SENDING))).scalar_one()
            if not busy:
                break
            await asyncio.sleep(0.01)
    out = {}
    async with sm() as s:
        for table in models.Base.metadata.sorted_tables:
            if table.name == "inbox":
                continue
            cols = [c for c in table.columns if not (
                table.name == "conversation" and c.name in ("message_id", "updated_at")
                or table.name == "outbox" and c.name not in ("id", "person_id", "kind",
                                                             "payload"))]
            rows = (await s.execute(select(*cols))).all()
            if table.name == "conversation":
                rows = [tuple(json.dumps({k: v for k, v in r.data.items() if v},
                                         sort_keys=True) if c.name == "data" else getattr(r, c.name)
                              for c in cols) for r in rows]
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out


def diff(a: dict, b: dict) -> dict:
    return {k: (sorted(set(a[k]) - set(b[k]))[:3], sorted(set(b[k]) - set(a[k]))[:3])
            for k in a if a[k] != b[k]}


@pytest.fixture
def tried(request):
    counts: Counter = Counter()
    yield counts
    TRIED.update(counts)
    expected = getattr(request.node.function, "categories", ())
    RAN[request.node.name] = {c: counts[c] for c in expected}
    print(f"\n{request.node.name}: inputs tried per category: {dict(counts)}")


def categories(*names: str):
    def deco(fn):
        fn.categories = names
        return fn
    return deco


async def set_conv(sm, person_id: int, kind: str, st_: str, data: dict,
                   message_id: int | None = None) -> None:
    async with sm() as s, s.begin():
        conv = await s.get(Conversation, person_id)
        if conv is None:
            s.add(Conversation(person_id=person_id, kind=kind, state=st_, data=data,
                               message_id=message_id))
        else:
            conv.kind, conv.state, conv.data = kind, st_, dict(data)
            if message_id is not None:
                conv.message_id = message_id


async def clear_conv(sm, person_id: int) -> None:
    async with sm() as s, s.begin():
        conv = await s.get(Conversation, person_id)
        if conv is not None:
            await s.delete(conv)


@pytest.fixture
async def watch(harness):
    w = Watch(harness)
    yield w
    w.close()


# ====================================================================== free text, commands
STRANGER_ID = 990_001

COMMANDS = st.one_of(
    st.tuples(st.sampled_from(["/start", "/cek", "/tugas", "/bantuan", "/status", "/mulai",
                               "/batal", "/Start", "/CEK", "/xyz", "/mulai@lain_bot",
                               "/start@sopbot_demo_bot", "/😀", "/cek@"]),
              st.one_of(st.just(""), ANY_TEXT, st.text(min_size=65, max_size=200),
                        st.sampled_from(["😀", "🇮🇩", "A" * 65, "ABCD-EFGH", "' OR 1=1 --",
                                         "%00", "\x00", "../../etc/passwd", "-1",
                                         "99999999999999999999"]))),
)


@categories("text_stranger", "text_no_conversation", "command_stranger", "command_registered")
@fuzz(16)
@given(text=ANY_TEXT, command=COMMANDS, who=st.sampled_from(["stranger", "staf", "kadis"]))
@example(text="1,2,3", command=("/start", "A" * 70), who="stranger")
@example(text="\u200b", command=("/cek", "😀"), who="staf")
@example(text="x" * 5000, command=("/start", "😀" * 33), who="kadis")
@example(text="\x00", command=("/cek", "AB\x00CD"), who="stranger")
@example(text="a\x00b", command=("/start", "kode\x00" + "A" * 70), who="staf")
async def test_free_text_and_commands_outside_any_conversation(
        harness, people, sessionmaker, watch, tried, text, command, who):
    sm = sessionmaker
    if who == "stranger":
        if STRANGER_ID not in harness.emulator._users:
            harness.emulator.add_user(user_id=STRANGER_ID, first_name="Orang Asing")
        user = harness.emulator.user(STRANGER_ID)
    else:
        user = people.user(Role.STAF, "SEK") if who == "staf" else people.user(Role.KADIS)
    before = await state(sm, harness)

    _, replies = await watch.act(user, lambda: user.send_text(text))
    got = one_reply(replies, text)
    if text.startswith("/"):
        pass  # a command: any clear answer
    elif who == "stranger":
        assert t("o.stranger")[:30] in got
    else:
        assert got == t("o.no_conversation")
    tried["text_stranger" if who == "stranger" else "text_no_conversation"] += 1

    cmd, arg = command
    sent = f"{cmd} {arg}".strip() if arg else cmd
    _, replies = await watch.act(user, lambda: user.send_text(sent))
    if cmd.startswith(("/mulai@", "/start@sopbot_demo_bot")) and who != "stranger" and \
            not replies:
        pass  # addressed to another bot (or the bot's own name): PTB may ignore it
    elif "@" in cmd.split()[0] and not replies:
        pass
    else:
        one_reply(replies, sent)
    tried["command_stranger" if who == "stranger" else "command_registered"] += 1
    if cmd.lower().startswith("/mulai") and who == "kadis" and "@" not in cmd:
        pass  # the Kadis's period menu: no state change either
    after = await state(sm, harness)
    assert after == before, diff(before, after)


# ====================================================================== callback data
ACTION_NAMES = sorted(callbacks.ACTIONS)
ARG = st.one_of(
    st.integers(0, 30).map(str),
    st.integers(900_000, 10**9).map(str),
    st.integers(-10**6, -1).map(str),
    st.sampled_from(["18446744073709551616", str(2**63), str(2**53 + 1), "9" * 30, "007",
                     "+5", " 5", "5 ", "", "0x1", "١", "５", "1e3", "nan", "-0", "٣"]),
)
FORGED = st.one_of(
    st.builds(lambda a, args: ":".join([a, *args]),
              st.sampled_from(ACTION_NAMES + ["xyz", "ENT", "", "start ", "dsp;", "../"]),
              st.lists(ARG, max_size=4)),
    st.text(min_size=1, max_size=64),
    st.sampled_from(["prf:1:999999", "sgn:999999:1", "start:1:2024:3", "start:2:2023:0",
                     "start:1:99999:9", "start:0:0:0", "ent:-1", "task:0",
                     "eto:1:1:-5", "crdd:1:99", "rcv:1", "dlv:1", "num:1", "arc:1", "cmp:1",
                     "ret:1:1", "rtn:1:1", "cls:1", "clsok:1", "proc:1", "eview:1:1",
                     "ent:" + "9" * 60, "a" * 64, "😀" * 16, ":", "::::", "ent:1:", "ent::1"]),
).filter(lambda d: 1 <= len(d.encode()) <= 64)

CB_PRESSERS = ["stranger", "staf_sek", "kabid_ind", "kabid_pptk", "kadis", "kasubag"]


def press_is_legit(data: str, who: str, run4: int, cycle_id: int) -> bool:
    """Valid buttons this presser may really press in this world (a cycle at step 4,
    Bidang PPTK collecting): they may answer or change state."""
    try:
        cb = callbacks.decode(data)
    except callbacks.InvalidCallback:
        return False
    if who == "kabid_pptk":
        return (cb.action, cb.args) in {("ent", (run4,)), ("task", (run4,))}
    if who == "kasubag":
        return cb.action in ("eview", "cls") and cb.args[0] == cycle_id
    if who == "kadis":
        # a period the Kadis may start (another than the running cycle's)
        return cb.action == "start" and (
            (cb.args[0] == 1 and 2000 <= cb.args[1] <= 2100 and cb.args[2] in (1, 2, 3, 4)
             and (cb.args[1], cb.args[2]) != (2024, 3))
            or (cb.args[0] == 2 and 2000 <= cb.args[1] <= 2100))
    return False


@categories("callback_stranger", "callback_registered")
@fuzz(28)
@given(data=FORGED, who=st.sampled_from(CB_PRESSERS))
@example(data="prf:1:999999", who="kadis")
@example(data="ent:-1", who="kabid_pptk")
@example(data="eto:1:1:" + "9" * 50, who="kabid_pptk")
@example(data="start:1:2024:-3", who="kadis")
@example(data="crdd:1:" + str(2**63), who="kasubag")
# a stranger presses at least MIN_PER_CATEGORY buttons whatever the generator draws
# (the draws change whenever an action is added to the codec)
@example(data="sgn:1:1", who="stranger")
@example(data="alhp:1:1", who="stranger")
@example(data="pgxr:1:1:1", who="stranger")
@example(data="start:1:2025:1", who="stranger")
@example(data="<b>x</b>", who="stranger")
async def test_forged_callback_data_is_refused_and_changes_nothing(
        harness, people, sessionmaker, watch, tried, data, who):
    sm = sessionmaker
    if not hasattr(harness, "_cb_world"):
        cycle_id = await to_collection(harness, sm, units=("PPTK",))
        async with sm() as s:
            run4 = (await s.execute(select(StepRun).where(
                StepRun.cycle_id == cycle_id, StepRun.step_no == 4))).scalar_one().id
        harness._cb_world = (cycle_id, run4)
    cycle_id, run4 = harness._cb_world
    if who == "stranger":
        if STRANGER_ID not in harness.emulator._users:
            harness.emulator.add_user(user_id=STRANGER_ID, first_name="Orang Asing")
        user = harness.emulator.user(STRANGER_ID)
    else:
        user = {"staf_sek": lambda: people.user(Role.STAF, "SEK"),
                "kabid_ind": lambda: people.user(Role.KABID, "IND"),
                "kabid_pptk": lambda: people.user(Role.KABID, "PPTK"),
                "kadis": lambda: people.user(Role.KADIS),
                "kasubag": lambda: people.user(Role.KASUBAG)}[who]()
    # a message of the bot in the chat to hang the forged button on
    host = user.last_message
    if host is None:
        _, replies = await watch.act(user, lambda: user.send_text("/bantuan"))
        host = replies[-1]
    host.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
    legit = press_is_legit(data, who, run4, cycle_id)
    before = await state(sm, harness)

    qid, replies = await watch.act(user, lambda: user.press(host, data=data))
    text = await answer_text(user, qid)
    if legit:
        if text:
            clear_text(text, data)
        for m in replies:
            clear_text(m.content, data)
        # put the world back: no conversation for the presser
        async with sm() as s:
            p = (await s.execute(select(models.Person).where(
                models.Person.telegram_user_id == user.user_id))).scalar_one()
        await clear_conv(sm, p.id)
    else:
        clear_text(text, data)
        for m in replies:
            clear_text(m.content, data)
        after = await state(sm, harness)
        assert after == before, (data, who, diff(before, after))
    tried["callback_stranger" if who == "stranger" else "callback_registered"] += 1


# ====================================================================== data entry answers
def classify_number(text: str, percent: bool, target: Decimal | None = None):
    """None for a refused answer, else (value, needs confirmation): an ambiguous
    number, or a value implausible by itself or against the period's target."""
    from bot.core import entry_rules

    try:
        parsed = parse_number(text.strip())
    except NumberParseError:
        return None
    value = parsed.value
    return value, (parsed.ambiguous or bool(entry_rules.implausible(
        value, percent=percent, prev=None, target=target, show=str)))


@categories("entry_answer", "entry_note", "entry_text_in_evidence")
@fuzz(45)
@given(text=ANY_TEXT, item_no=st.sampled_from([1, 4]),
       where=st.sampled_from(["ask", "note", "evidence"]))
@example(text="1,2,3", item_no=1, where="ask")
@example(text="--5", item_no=1, where="ask")
@example(text="1e5", item_no=4, where="ask")
@example(text="٣", item_no=4, where="ask")
@example(text="１２", item_no=4, where="ask")
@example(text="12 %%", item_no=1, where="ask")
@example(text="Rp", item_no=4, where="ask")
@example(text="½", item_no=4, where="ask")
@example(text="∞", item_no=4, where="ask")
@example(text="NaN", item_no=1, where="ask")
@example(text="9" * 400, item_no=4, where="ask")
@example(text="85,5", item_no=1, where="ask")
@example(text="-3", item_no=4, where="ask")
@example(text="\u200b\u200b", item_no=1, where="note")
@example(text="\x00", item_no=1, where="note")
@example(text="n" * 600, item_no=1, where="note")
@example(text="\x00 catatan", item_no=1, where="note")
async def test_data_entry_answers_and_notes(
        harness, people, sessionmaker, watch, tried, text, item_no, where):
    sm = sessionmaker
    kabid = people.user(Role.KABID, "PPTK")
    if not hasattr(harness, "_entry"):
        cycle_id = await to_collection(harness, sm, units=("PPTK",))
        request = await kabid.wait_for(text_contains="Permintaan data kinerja")
        q = await kabid.press(request, text="Mulai isi data")
        card = await kabid.wait_for(after=q, text_contains="Indikator 1 dari 6")
        async with sm() as s:
            conv = await s.get(Conversation, people.person(Role.KABID, "PPTK").id)
            items = (await s.execute(select(models.CycleIndicator, Indicator).join(
                Indicator, Indicator.id == models.CycleIndicator.indicator_id).where(
                models.CycleIndicator.cycle_id == cycle_id)
                .order_by(models.CycleIndicator.position))).all()
        harness._entry = (cycle_id, dict(conv.data), items, card)
    cycle_id, base, items, _card = harness._entry
    item, ind = items[item_no - 1]
    percent = ind.value_type.value == "percent"
    kabid_id = people.person(Role.KABID, "PPTK").id

    async def latest() -> Submission | None:
        async with sm() as s:
            return (await s.execute(select(Submission).where(
                Submission.cycle_id == cycle_id, Submission.indicator_id == ind.id)
                .order_by(Submission.revision.desc()).limit(1))).scalars().first()

    if where in ("note", "evidence") and await latest() is None:
        async with sm() as s, s.begin():
            await Workflow(s, harness.services).record_answer(
                people.person(Role.KABID, "PPTK"), base["run"], item.id, raw_text="7",
                value=Decimal(7))
    await set_conv(sm, kabid_id, "entry", where, {"run": base["run"], "item": item.id})
    before = await state(sm, harness)
    prev = await latest()

    _, replies = await watch.act(kabid, lambda: kabid.send_text(text))
    got = one_reply(replies, text)
    after = await state(sm, harness)
    async with sm() as s:
        conv = await s.get(Conversation, kabid_id)
    if is_command(text):  # a command, not an answer: nothing changes (but /batal)
        tried["as_command"] += 1
        assert text.split()[0].startswith("/batal") or after == before, diff(before, after)
        return
    if where == "ask":
        tried["entry_answer"] += 1
        verdict = classify_number(text, percent, item.target)
        if verdict is None:
            assert "\u274c" in got, got
            assert after == before, (text, diff(before, after))
        elif verdict[1]:
            assert ("Periksa kembali" in got or "dapat dibaca" in got) \
                and conv.state == "confirm", got
            assert after["submission"] == before["submission"]
        else:
            sub = await latest()
            assert sub is not None and (prev is None or sub.id != prev.id), text
            assert sub.value == verdict[0], (text, sub.value, verdict)
            assert conv.state == "evidence" and "Tersimpan" in got, got
    elif where == "note":
        tried["entry_note"] += 1
        note = kept(text, 500)
        if note is not None:
            sub = await latest()
            assert sub.id != prev.id and sub.note == note, (text, sub.note)
            assert conv.state == "evidence"
        else:
            assert "\u274c" in got, got
            assert after == before, (text, diff(before, after))
    else:  # typed on the saved card: an answer to the next indicator
        tried["entry_text_in_evidence"] += 1
        nxt, _nind = items[item_no]
        assert conv.data["item"] == nxt.id and conv.state in ("ask", "confirm", "evidence"), \
            (text, conv.state, conv.data)
        now = await latest()
        assert now.id == prev.id, text  # the saved indicator is untouched


# ====================================================================== /mulai instructions
@categories("instruction")
@fuzz(16)
@given(text=ANY_TEXT)
@example(text="\u200b")
@example(text="i" * 1001)
@example(text="\x00")
@example(text="Siapkan data 😀 \u202eTW")
async def test_mulai_instruction(harness, people, sessionmaker, watch, tried, text):
    sm = sessionmaker
    kadis = people.user(Role.KADIS)
    kadis_id = people.person(Role.KADIS).id
    if not hasattr(harness, "_mulai"):
        _, replies = await watch.act(kadis, lambda: kadis.send_text("/mulai"))
        menu = replies[-1]
        q, _ = await watch.act(kadis, lambda: kadis.press(menu, text="Triwulan III"))
        async with sm() as s:
            conv = await s.get(Conversation, kadis_id)
        assert conv.kind == "mulai" and conv.state == "instruction"
        harness._mulai = dict(conv.data)
    await set_conv(sm, kadis_id, "mulai", "instruction", harness._mulai)
    before = await state(sm, harness)
    _, replies = await watch.act(kadis, lambda: kadis.send_text(text))
    got = one_reply(replies, text)
    after = await state(sm, harness)
    tried["instruction"] += 1
    if is_command(text):  # a command, not an answer: nothing changes (but /batal)
        tried["as_command"] += 1
        assert text.split()[0].startswith("/batal") or after == before, diff(before, after)
        return
    clean = kept(text, 1000)
    async with sm() as s:
        conv = await s.get(Conversation, kadis_id)
        assert (await s.execute(select(func.count()).select_from(Cycle))).scalar_one() == 0
    if clean is not None:
        assert conv.state == "letter" and conv.data["instruction"] == clean, got
    else:
        assert conv.state == "instruction", (text, got)
        assert after == before, (text, diff(before, after))


# ====================================================================== return reasons
@categories("return_reason_bidang")
@fuzz(10)
@given(text=ANY_TEXT)
@example(text="\u200b\u200c")
@example(text="r" * 1001)
@example(text="\x00")
@example(text="Data belum sesuai \U0001F600")
async def test_return_reason_of_a_bidang(harness, people, sessionmaker, watch, tried, text):
    sm = sessionmaker
    sv = harness.services
    kasubag = people.user(Role.KASUBAG)
    ks = people.person(Role.KASUBAG)
    kabid = people.person(Role.KABID, "PPTK")
    if not hasattr(harness, "_rtn"):
        cycle_id = await to_collection(harness, sm, units=("PPTK",))
        async with sm() as s:
            u = (await unit(s, "PPTK")).id
        harness._rtn = (cycle_id, u)
    cycle_id, unit_id = harness._rtn

    async def run4():
        async with sm() as s:
            return (await s.execute(select(StepRun).where(
                StepRun.cycle_id == cycle_id, StepRun.step_no == 4)
                .order_by(StepRun.id.desc()))).scalars().first()

    r = await run4()
    if r.status == StepStatus.OPEN:  # (re)submit the bidang: answers are kept
        async with sm() as s:
            items = (await s.execute(select(models.CycleIndicator).where(
                models.CycleIndicator.cycle_id == cycle_id))).scalars().all()
        for it in items:
            async with sm() as s, s.begin():
                wf = Workflow(s, sv)
                if await wf.latest_submission(cycle_id, it.indicator_id) is None:
                    await wf.record_answer(kabid, r.id, it.id, raw_text="10", value=Decimal(10))
        async with sm() as s, s.begin():
            await Workflow(s, sv).submit_unit(kabid, r.id)
    await set_conv(sm, ks.id, "rtn_reason", "reason", {"cycle": cycle_id, "unit": unit_id})
    before = await state(sm, harness)
    _, replies = await watch.act(kasubag, lambda: kasubag.send_text(text))
    got = one_reply(replies, text)
    after = await state(sm, harness)
    tried["return_reason_bidang"] += 1
    if is_command(text):  # a command, not an answer: nothing changes (but /batal)
        tried["as_command"] += 1
        assert text.split()[0].startswith("/batal") or after == before, diff(before, after)
        return
    if kept(text, 1000) is not None:
        assert (await run4()).status == StepStatus.OPEN, got  # returned: round 2 is open
        assert "dikembalikan" in got
    else:
        assert after == before, (text, diff(before, after))


# ====================================================================== files
MB = 1024 * 1024
FILE_KINDS = ["pdf_ok", "exe", "zip", "fake_pdf", "empty", "not_xlsx", "corrupt_zip", "random",
              "big_pdf", "big_photo", "photo_garbage", "rar", "noext"]


def make_file(kind: str, blob: bytes, name: str):
    """(kind 'document'|'photo', data, file name, MIME) of a bad file."""
    stem = (name or "berkas")[:40]
    if kind == "pdf_ok":  # a real (small) PDF: good evidence
        return "document", b"%PDF-1.4\n" + blob, (name or "bukti")[:300] + ".pdf", "application/pdf"
    if kind == "exe":
        return "document", b"MZ\x90\x00" + blob, stem + ".exe", "application/x-msdownload"
    if kind == "zip":
        return "document", b"PK\x03\x04" + blob, stem + ".zip", "application/zip"
    if kind == "fake_pdf":
        return "document", b"GIF89a" + blob, stem + ".pdf", "application/pdf"
    if kind == "empty":
        return "document", b"", stem + ".pdf", "application/pdf"
    if kind == "not_xlsx":
        return "document", b"hello " + blob, stem + ".xlsx", None
    if kind == "corrupt_zip":
        return "document", b"PK\x03\x04\x14\x00\x00\x00" + blob, stem + ".xlsx", None
    if kind == "random":
        return "document", b"\x00" + blob, stem + ".docx", None
    if kind == "big_pdf":
        return "document", b"%PDF-1.4 " + b"x" * 5000 + blob, stem + ".pdf", "application/pdf"
    if kind == "big_photo":
        return "photo", png(60, 40) + b"\x00" * 5000 + blob, None, None
    if kind == "photo_garbage":
        return "photo", b"\x00garbage" + blob, None, None
    if kind == "rar":
        return "document", b"Rar!\x1a\x07\x00" + blob, stem + ".rar", "application/vnd.rar"
    return "document", b"\x7fELF" + blob, stem, None


FILES = st.tuples(st.sampled_from(FILE_KINDS), st.binary(max_size=300),
                  st.one_of(st.text(max_size=30), st.just("n" * 300))
                  .filter(lambda s: "/" not in s and "\x00" not in s))


async def send_file(user, spec, caption=None):
    kind, data, name, mime = spec
    if kind == "photo":
        return await user.send_photo(data, caption=caption)
    return await user.send_document(data, name, mime, caption=caption)


def refused_as(kind: str, where: str) -> bool:
    """Which generated files are invalid where (a garbage *photo* is a photo to the bot:
    Telegram re-encodes photos, so their bytes are not checked)."""
    if kind in ("photo_garbage", "pdf_ok"):  # taken as evidence also on the question
        return where in ("workbook", "nowhere")
    return True


@categories("file_evidence", "file_letter", "file_nowhere", "file_entry_ask")
@fuzz(25)
@given(spec=FILES, where=st.sampled_from(["evidence", "evidence", "letter", "nowhere", "ask"]),
       caption=st.one_of(st.none(), ANY_TEXT.map(lambda s: s[:1024])))
@example(spec=("exe", b"", "bukti"), where="evidence", caption=None)
@example(spec=("empty", b"", "surat"), where="letter", caption=None)
@example(spec=("exe", b"", "surat"), where="letter", caption=None)
@example(spec=("big_pdf", b"", "surat"), where="letter", caption=None)
@example(spec=("big_photo", b"", ""), where="letter", caption=None)
@example(spec=("fake_pdf", b"", "surat"), where="letter", caption=None)
@example(spec=("pdf_ok", b"", "n" * 300), where="evidence", caption="\x00")
async def test_wrong_and_oversized_files_in_data_entry_and_the_letter(
        harness, people, sessionmaker, watch, tried, spec, where, caption):
    sm = sessionmaker
    harness.services.store.max_bytes = 4096
    kind, blob, name = spec
    if where == "letter":  # a good letter would start the cycle: that is not bad input
        kind = {"pdf_ok": "fake_pdf", "photo_garbage": "big_photo"}.get(kind, kind)
    file = make_file(kind, blob, name)
    if not hasattr(harness, "_files"):
        cycle_id = await to_collection(harness, sm, units=("PPTK",))
        async with sm() as s:
            run = (await s.execute(select(StepRun).where(StepRun.step_no == 4))).scalar_one()
            item = (await s.execute(select(models.CycleIndicator).where(
                models.CycleIndicator.cycle_id == cycle_id)
                .order_by(models.CycleIndicator.position))).scalars().first()
        async with sm() as s, s.begin():
            await Workflow(s, harness.services).record_answer(
                people.person(Role.KABID, "PPTK"), run.id, item.id, raw_text="7",
                value=Decimal(7))
        harness._files = (run.id, item.id)
    run_id, item_id = harness._files
    kabid_id = people.person(Role.KABID, "PPTK").id
    kadis_id = people.person(Role.KADIS).id
    if where in ("evidence", "ask"):
        user = people.user(Role.KABID, "PPTK")
        await set_conv(sm, kabid_id, "entry", where, {"run": run_id, "item": item_id})
    elif where == "letter":
        user = people.user(Role.KADIS)
        await set_conv(sm, kadis_id, "mulai", "letter",
                       {"kind": "quarterly", "year": 2025, "quarter": 1,
                        "instruction": "Siapkan data"})
    else:
        user = people.user(Role.STAF, "SEK")
    before = await state(sm, harness)
    _, replies = await watch.act(user, lambda: send_file(user, file, caption))
    got = one_reply(replies, (caption or "") + (file[2] or ""))
    after = await state(sm, harness)
    tried[f"file_{'entry_ask' if where == 'ask' else where}"] += 1
    if refused_as(kind, where):
        assert after == before, (kind, where, diff(before, after))
    else:  # a photo or a real PDF as evidence: taken (or already there)
        assert after != before or "sudah" in got, got
        if after != before:
            async with sm() as s:
                stored = (await s.execute(select(StoredFile).order_by(StoredFile.id.desc())
                                          .limit(1))).scalar_one()
            assert len(stored.filename) <= 255


@categories("file_workbook", "file_receipt", "return_reason_document")
@fuzz(30)
@given(spec=FILES, text=ANY_TEXT)
@example(spec=("not_xlsx", b"", "kiriman"), text="\u200b")
@example(spec=("corrupt_zip", b"", "kiriman"), text="r" * 1001)
@example(spec=("zip", b"", "kiriman"), text="\x00")
@example(spec=("exe", b"", "tanda-terima"), text="x")
@example(spec=("empty", b"", "tanda-terima"), text="x")
async def test_wrong_files_as_workbook_and_receipt_and_document_return_reasons(
        harness, sessionmaker, services, clock, watch, tried, spec, text):
    """Steps 6-11: an edited workbook that is not one, a receipt that is not a photo or
    PDF, and return reasons that are empty-looking or too long (a valid reason is the
    e2e sign-off test's business: it would need new documents)."""
    from tests.test_documents_service import drive_to_compile, sign_off
    from tests.test_workflow import Walk, open_run
    from bot.core.documents import compile_documents, stamp_numbered

    sm = sessionmaker
    # the cycle only moves forward: the first examples are workbooks (step 6), then
    # return reasons (step 7), then receipts (step 11)
    where = ("workbook" if tried["file_workbook"] < 12 else
             "reason" if tried["return_reason_document"] < 12 else "receipt")
    if where == "reason":
        if kept(text, 1000) is not None:
            text = "\u200b" if len(text) < 500 else "r" * 1001  # only invalid reasons here
    if not hasattr(harness, "_tail"):
        people = await People(harness).load((Role.KASUBAG, None), (Role.SEKRETARIS, None),
                                            (Role.STAF, "SEK"))
        walk = Walk(sm, services, clock)
        cycle_id, run6 = await drive_to_compile(walk)
        kasubag = await walk.who(Role.KASUBAG)

        async def compile_(wf, s):
            return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))
        doc = await walk(compile_)
        harness._tail = {"people": people, "walk": walk, "cycle": cycle_id, "run6": run6,
                         "doc": doc.id, "phase": "compile"}
    tail = harness._tail
    people, walk = tail["people"], tail["walk"]
    kasubag = people.user(Role.KASUBAG)
    ks_id = people.person(Role.KASUBAG).id
    sek = people.user(Role.SEKRETARIS)
    sek_id = people.person(Role.SEKRETARIS).id
    staf = people.user(Role.STAF, "SEK")
    staf_id = people.person(Role.STAF, "SEK").id
    if where == "workbook" and tail["phase"] != "compile":
        where = "receipt"
    if where == "reason" and tail["phase"] == "delivery":
        where = "receipt"
    if where == "receipt" and tail["phase"] != "delivery":
        # on to step 11: submit, paraf, sign, number, archive
        kasubag_p = await walk.who(Role.KASUBAG)
        staf_p = await walk.who(Role.STAF, "SEK")
        if tail["phase"] == "compile":
            run9 = await sign_off(walk, tail["cycle"], tail["run6"], tail["doc"])
        else:  # step 7 is open: paraf and signature
            sek_p, kadis_p = await walk.who(Role.SEKRETARIS), await walk.who(Role.KADIS)
            run8 = await walk(lambda wf, s: wf.approve(sek_p, tail["run7"], tail["doc"]))
            run9 = (await walk(lambda wf, s: wf.approve(kadis_p, run8.id, tail["doc"]))).id

        async def number(wf, s):
            letter = await wf.assign_number(staf_p, run9)
            await stamp_numbered(wf, staf_p, await wf.get_cycle(tail["cycle"]), letter)

        await walk(number)
        run10 = await open_run(walk, tail["cycle"], 10)
        await walk(lambda wf, s: wf.archive(kasubag_p, run10.id))
        async with sm() as s:
            d = (await s.execute(select(Delivery).where(
                Delivery.contact_person_id.is_(None)).order_by(Delivery.id))).scalars().first()
            run11 = await open_run(walk, tail["cycle"], 11)
        await clear_conv(sm, ks_id)
        await clear_conv(sm, sek_id)
        tail.update(phase="delivery", delivery=d.id, run11=run11.id)
        await harness.settle()
    if where == "reason" and tail["phase"] == "compile":
        kasubag_p = await walk.who(Role.KASUBAG)
        run7 = await walk(lambda wf, s: wf.submit_documents(kasubag_p, tail["run6"],
                                                            tail["doc"]))
        await clear_conv(sm, ks_id)
        tail.update(phase="review", run7=run7.id)
        await harness.settle()

    if where == "receipt" and spec[0] in ("photo_garbage", "pdf_ok"):
        spec = ("big_photo", *spec[1:])  # a photo is a valid receipt: an oversized one
    if where == "workbook":
        harness.services.store.max_bytes = 4096
        user = kasubag
        await set_conv(sm, ks_id, "compile", "review", {"run": tail["run6"], "doc": tail["doc"]})
        file = make_file(spec[0], spec[1], spec[2])
        sent_desc = file[2] or ""
    elif where == "receipt":
        harness.services.store.max_bytes = 4096
        user = staf
        await set_conv(sm, staf_id, "receipt", "photo",
                       {"delivery": tail["delivery"], "run": tail["run11"]})
        file = make_file(spec[0], spec[1], spec[2])
        sent_desc = file[2] or ""
    else:
        user = sek
        await set_conv(sm, sek_id, "ret_reason", "reason",
                       {"run": tail["run7"], "doc": tail["doc"], "version": 1})
        sent_desc = text
    before = await state(sm, harness)
    if where == "reason":
        _, replies = await watch.act(user, lambda: user.send_text(text))
    else:
        _, replies = await watch.act(user, lambda: send_file(user, file))
    one_reply(replies, sent_desc)
    after = await state(sm, harness)
    tried[{"workbook": "file_workbook", "receipt": "file_receipt",
           "reason": "return_reason_document"}[where]] += 1
    assert after == before, (spec[0], where, diff(before, after))


def test_zz_inputs_tried_per_category():
    """The figure: how many inputs each category got (of the tests that ran)."""
    print("\ninputs tried per category:", json.dumps(dict(sorted(TRIED.items())), indent=1))
    print("total:", sum(TRIED.values()))
    short = {f"{test}/{c}": n for test, counts in RAN.items() for c, n in counts.items()
             if n < MIN_PER_CATEGORY}
    assert short == {}, short
