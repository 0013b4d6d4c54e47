"""An update's Bot API calls made outside its transaction (``Intake.split_calls``,
``bot/telegram/intake.py``; on SQLite outside the write lock): a call whose answer the
handlers use stops the run, is made with the transaction rolled back and answered from
the journal in the next run; a call whose
answer nobody uses (answering a button, taking the buttons off an old card) is made
once the update committed, and so is the data-entry card (``Intake.defer_card``: edited
in place, or sent anew and its message id stored after the send), so a typed answer or
a press runs once. The effects still commit exactly once, each call is made
once, and a call or card deferred past a commit that the process did not outlive is
made at the next start."""
from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import select

from models import Inbox
from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.test_e2e_data_entry import press_and_wait, subs, to_collection


class _Killed(BaseException):
    """Stands for SIGKILL inside the test process: nothing after it runs."""


def _watch_calls(h, sm):
    """Each Bot API call the bot really makes while an update is processed: (method,
    whether it was made inside an update's transaction: from a run, or on SQLite while
    the write lock was held)."""
    from bot.telegram import intake as intake_module

    request = h.intake.request
    real_post = request.inner.post
    seen: list[tuple[str, bool]] = []

    async def post(url, request_data=None, *args, **kwargs):
        if intake_module.current() is not None or h.intake.busy:
            lock = h.intake._write_lock
            inside = intake_module.current() is not None or (lock is not None and lock.locked())
            seen.append((url.rsplit("/", 1)[-1], inside))
        return await real_post(url, request_data, *args, **kwargs)

    request.inner.post = post
    return seen


def _die_once_after_a_commit(monkeypatch) -> None:
    """The next update that committed with calls deferred dies before making them."""
    from bot.telegram import intake as intake_module

    real_hit = intake_module.crashpoints.hit

    def die_once(point: str) -> None:
        if point == "committed_calls_pending":
            monkeypatch.setattr(intake_module.crashpoints, "hit", real_hit)
            raise _Killed()
        real_hit(point)

    monkeypatch.setattr(intake_module.crashpoints, "hit", die_once)


async def _until_dead(h) -> None:
    for _ in range(3000):  # 30 s
        if h.intake._processor.done() or h.intake._fatal is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the processor did not die at the crash point")


async def _card_id(sessionmaker) -> int | None:
    from models.workflow import Conversation

    async with sessionmaker() as s:
        return (await s.execute(select(Conversation.message_id))).scalar_one()


async def _to_second_card(h, people, sessionmaker):
    cycle_id = await to_collection(h, sessionmaker)
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")
    await h.settle()
    return cycle_id, kabid


async def test_a_typed_answer_and_a_press_make_their_calls_outside_the_write_lock(
        harness, people, sessionmaker):  # noqa: F811
    h = harness
    cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    h.intake.split_calls = "always"
    seen = _watch_calls(h, sessionmaker)
    runs = []
    real_process_update = h.app.process_update

    async def counted(update):
        runs.append(update.update_id)
        return await real_process_update(update)

    h.app.process_update = counted
    before = len(kabid.messages)
    sent = await kabid.send_text("12,5")
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
    await h.settle()
    [kel] = await subs(sessionmaker, cycle_id, "PPTK-01")
    assert kel.value == Decimal("12.5") and "12,5" in card.text  # committed once
    new = kabid.messages[before:]
    assert sum("Tersimpan" in (m.text or "") for m in new) == 1  # the card sent once
    assert seen and not any(locked for _m, locked in seen), seen
    assert len(runs) == 1  # the card after the commit: the update ran once
    assert await _card_id(sessionmaker) == card.message_id  # stored after the send

    runs.clear()
    q = await kabid.press(card, text="Lanjut")
    await kabid.wait_for(after=q, text_contains="Indikator 2 dari 6")
    await h.settle()
    assert runs == [runs[0]] and runs  # the card edited after the commit: one run
    assert kabid.callback_answer(q) is not None  # answered (after the commit)
    methods = [m for m, _locked in seen]
    assert methods.count("answerCallbackQuery") == 1, methods
    assert not any(locked for _m, locked in seen), seen
    async with sessionmaker() as s:
        rows = (await s.execute(select(Inbox.processed_at, Inbox.error))).all()
    assert all(p is not None and e == "" for p, e in rows)
    assert not list(h.intake.journal_dir.glob("*.jsonl"))  # journals removed


async def test_auto_splits_the_calls_off_once_they_take_a_network_round_trip(
        harness, people, sessionmaker):  # noqa: F811
    """Production's ``auto``: once Bot API calls take longer than the runs' database
    work (a 1 s round trip here, as to Telegram from a slow office line), the runs make
    them outside the transaction, as with ``always`` above. (``auto`` splits when a call
    takes 1.5 times a run. The averages move a fifth of the way at each call or run, and
    a run's wall-clock time on a machine loaded by the other tests can reach a few
    hundred milliseconds: with 200 ms and then 500 ms round trips and two presses to
    teach them, the runs rightly kept their calls now and then.)"""
    h = harness
    cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    h.intake.split_calls = "auto"
    h.emulator.latency = 1.0
    stats = h.intake.request.stats
    seen = _watch_calls(h, sessionmaker)
    # presses teach the averages: two, and a third only if the runs were slow enough
    # to keep the calls in; the answer and the press after it are watched
    card, n = await kabid.wait_for(text_contains="Indikator 1"), 1
    while n < 3 or (n < 4 and not stats.split_pays()):
        card = await press_and_wait(kabid, card, "Lewati", f"Indikator {n + 1} dari 6")
        await h.settle()  # the run observed (a run that kept its calls ends after them)
        n += 1
    assert stats.split_pays(), (stats.call, stats.run)
    seen.clear()
    sent = await kabid.send_text("72,5")
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan", timeout=60)
    assert "72,5" in card.text
    await press_and_wait(kabid, card, "Lanjut", f"Indikator {n + 1} dari 6")
    await h.settle()
    [kel] = await subs(sessionmaker, cycle_id, f"PPTK-0{n}")
    assert kel.value == Decimal("72.5")
    methods = [m for m, _locked in seen]
    assert "sendMessage" in methods and "answerCallbackQuery" in methods, methods
    assert seen and not any(locked for _m, locked in seen), seen


async def test_the_write_lock_is_free_for_another_person_while_a_card_is_sent(
        harness, people, sessionmaker):  # noqa: F811
    """While one person's card is on its way (a slow network), another person's update
    commits: their transactions no longer take turns across the round trip (on SQLite
    the write lock, on PostgreSQL the audit chain's head)."""
    h = harness
    await to_collection(h, sessionmaker)
    a = people.user(Role.KABID, "PPTK")
    b = people.user(Role.KABID, "IND")
    for user in (a, b):
        request = await user.wait_for(text_contains="Permintaan data kinerja")
        await press_and_wait(user, request, "Mulai isi data", "Indikator 1 dari")
    await h.settle()
    h.intake.split_calls = "always"
    request = h.intake.request
    real_post = request.inner.post
    slow_chat = a.chat_id
    release = asyncio.Event()

    async def post(url, request_data=None, *args, **kwargs):
        params = request_data.parameters if request_data is not None else {}
        if url.endswith("/sendMessage") and params.get("chat_id") == slow_chat:
            await release.wait()  # A's card is slow to arrive
        return await real_post(url, request_data, *args, **kwargs)

    request.inner.post = post
    sent_a = await a.send_text("12,5")
    await asyncio.sleep(0.3)
    sent_b = await b.send_text("60")
    card_b = await b.wait_for(lambda m: True, after=sent_b, timeout=20)
    assert card_b is not None and not [m for m in a.messages
                                       if m.message_id > sent_a["message_id"]]
    release.set()
    await a.wait_for(after=sent_a, text_contains="Tersimpan", timeout=20)
    await h.settle()


async def test_calls_deferred_past_a_commit_the_process_did_not_outlive_are_made_at_start(
        harness, people, sessionmaker, monkeypatch):  # noqa: F811
    h = harness
    _cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    sent = await kabid.send_text("12,5")
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
    await h.settle()
    h.intake.split_calls = "always"
    _die_once_after_a_commit(monkeypatch)  # the button not answered yet
    q = await kabid.press(card, text="Lanjut")
    await _until_dead(h)
    async with sessionmaker() as s:
        rows = (await s.execute(select(Inbox.update_id, Inbox.processed_at)
                                .order_by(Inbox.update_id))).all()
    assert rows[-1][1] is not None  # committed
    journal = h.intake.journal_dir / f"{rows[-1][0]}.jsonl"
    assert journal.exists() and kabid.callback_answer(q) is None  # not answered yet
    assert "Indikator 2 dari 6" not in (kabid.message(card.message_id).text or "")

    await h.stop_bot()
    await h.start_bot()  # the deferred answer and card are made at the start
    await h.settle()
    assert kabid.callback_answer(q) is not None
    assert "Indikator 2 dari 6" in kabid.message(card.message_id).text  # edited in place
    assert not journal.exists()
    assert h.emulator.stats.requests_by_method["answerCallbackQuery"] >= 1


async def test_a_new_card_deferred_past_a_commit_is_sent_at_start_and_its_id_kept(
        harness, people, sessionmaker, monkeypatch):  # noqa: F811
    """A typed answer committed, the process dead before its new card was sent: the
    card is sent at the next start and the conversation keeps its id, so the card's
    buttons work."""
    h = harness
    cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    old_card = await _card_id(sessionmaker)
    h.intake.split_calls = "always"
    _die_once_after_a_commit(monkeypatch)  # the card not sent yet
    sent = await kabid.send_text("12,5")
    await _until_dead(h)
    [kel] = await subs(sessionmaker, cycle_id, "PPTK-01")
    assert kel.value == Decimal("12.5")  # committed
    assert not [m for m in kabid.messages if m.message_id > sent["message_id"]]
    assert await _card_id(sessionmaker) == old_card

    await h.stop_bot()
    await h.start_bot()  # the card is sent at the start
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
    await h.settle()
    assert await _card_id(sessionmaker) == card.message_id
    assert not kabid.message(old_card).buttons  # the old card's buttons taken off
    h.intake.split_calls = "never"
    await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")


async def test_a_card_sent_after_a_newer_one_is_not_kept_and_loses_its_buttons(
        harness, people, sessionmaker):  # noqa: F811
    """Message ids grow in a chat: a deferred card whose store comes after a newer
    card's (several processes, the chat's next update processed elsewhere first) does
    not replace it in the conversation, and its buttons are taken off."""
    from models.workflow import Conversation

    h = harness
    _cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    async with sessionmaker() as s, s.begin():
        conv = (await s.execute(select(Conversation))).scalar_one()
        person_id, kind = conv.person_id, conv.kind
        conv.message_id = 10**9  # "a newer card"
    markup = {"inline_keyboard": [[{"text": "Lanjut", "callback_data": "x"}]]}
    sent_id = await h.intake.show_card(dict(
        chat_id=kabid.chat_id, person_id=person_id, kind=kind, text="kartu lama",
        markup=markup, old=None, new=True))
    assert await _card_id(sessionmaker) == 10**9
    assert kabid.message(sent_id).text == "kartu lama" and not kabid.message(sent_id).buttons

    async with sessionmaker() as s, s.begin():
        (await s.execute(select(Conversation))).scalar_one().message_id = 5
    sent_id = await h.intake.show_card(dict(
        chat_id=kabid.chat_id, person_id=person_id, kind=kind, text="kartu baru",
        markup=markup, old=None, new=True))
    assert await _card_id(sessionmaker) == sent_id
    assert kabid.message(sent_id).buttons


async def test_a_card_refused_with_429s_past_the_limiters_retries_is_shown_later_not_dropped(
        harness, people, sessionmaker):  # noqa: F811
    """Telegram refuses the new card of a typed answer with a 429 more often than the
    rate limiter retries (4 sends, each after the retry_after): the card is sent again
    after each further retry_after until it goes, and its id is kept, so the person
    gets the answer to what they typed and its buttons work."""
    from bot.devtools.emulator import FaultPlan

    h = harness
    cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    h.intake.split_calls = "always"
    emu = h.emulator
    emu.faults = FaultPlan(rate=1.0, kinds=("429",), retry_after=1,
                           methods=frozenset({"sendMessage"}))
    sent = await kabid.send_text("12,5")
    for _ in range(1000):  # the limiter's 4 sends refused
        if emu.stats.faults_injected["429"] >= 4:
            break
        await asyncio.sleep(0.01)
    assert emu.stats.faults_injected["429"] >= 4, emu.stats
    emu.faults = None
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan", timeout=30)
    await h.settle()
    [kel] = await subs(sessionmaker, cycle_id, "PPTK-01")
    assert kel.value == Decimal("12.5")
    assert sum("Tersimpan" in (m.text or "") for m in kabid.messages) == 1
    assert await _card_id(sessionmaker) == card.message_id
    await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")


async def test_a_new_cards_id_is_kept_before_the_old_cards_buttons_are_taken_off(
        harness, people, sessionmaker):  # noqa: F811
    """The card after the commit: its id is in the conversation as soon as it is sent,
    while taking the old card's buttons off still waits for Telegram (slowed here by 2
    s, as by a 429). With several processes the person's press on the new card may be
    processed by another process in that moment; it must find the new id, not the old
    one (a refused "Tombol ini sudah tidak berlaku")."""
    from bot.devtools.emulator import FaultPlan

    h = harness
    cycle_id, kabid = await _to_second_card(h, people, sessionmaker)
    old_card = await _card_id(sessionmaker)
    h.intake.split_calls = "always"
    emu = h.emulator
    emu.faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=2.0,
                           methods=frozenset({"editMessageReplyMarkup"}))
    settle, emu.settle_hook = emu.settle_hook, None  # the card as soon as it is visible
    try:
        sent = await kabid.send_text("12,5")
        card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
        for _ in range(100):  # the new id stored: a statement after the send
            if await _card_id(sessionmaker) == card.message_id:
                break
            await asyncio.sleep(0.01)
        assert await _card_id(sessionmaker) == card.message_id
        assert kabid.message(old_card).buttons  # the take-off not through yet
    finally:
        emu.faults, emu.settle_hook = None, settle
    for _ in range(500):  # the slowed take-off goes through
        if not kabid.message(old_card).buttons:
            break
        await asyncio.sleep(0.01)
    assert not kabid.message(old_card).buttons
    await h.settle()
    await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")
