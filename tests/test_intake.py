"""The durable intake (``bot/telegram/intake.py``) in polling mode, over the emulator: an update
is confirmed to Telegram only after it is committed to the inbox; what a previous run
left unprocessed is processed at start-up, first; an update is processed once; a handler
that fails does not make its update loop."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import select

from models import Inbox
from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.helpers import held_on_queue, person, spy_claimed_in_store


async def _rows(sm) -> list[tuple[int, bool, str]]:
    async with sm() as s:
        return [(i, p is not None, e) for i, p, e in (await s.execute(
            select(Inbox.update_id, Inbox.processed_at, Inbox.error)
            .order_by(Inbox.update_id))).all()]


async def test_an_update_is_confirmed_only_after_the_inbox_commit(harness):  # noqa: F811
    h = harness
    user = h.emulator.add_user(user_id=744_001, first_name="Tamu <b>&amp;</b>")
    intake = h.intake
    original, failures = intake.store, []

    async def store_fails_twice(updates, raw=None):
        if len(failures) < 2:
            failures.append([u.update_id for u in updates])
            raise RuntimeError("disk I/O error")
        return await original(updates, raw)

    intake.store = store_fails_twice
    try:
        await user.send_command("/bantuan")
        for _ in range(200):
            if len(failures) == 1:
                break
            await asyncio.sleep(0.01)
        # the database refused: Telegram was not told, the update is still waiting there
        assert h.emulator.updates_pending() == 1 and await _rows(h.sessionmaker) == []
        await user.wait_for(text_contains="belum terdaftar", timeout=15)
    finally:
        intake.store = original
    await h.settle()
    assert len(failures) == 2 and h.emulator.updates_pending() == 0
    assert [(r[1], r[2]) for r in await _rows(h.sessionmaker)] == [(True, "")]
    assert len(user.messages) == 1


async def test_a_polled_update_is_stored_as_telegram_sent_it(harness):  # noqa: F811
    """By polling as by webhook the inbox keeps the update's JSON as it came, not PTB's
    rendering of what it parsed (fields PTB does not know included)."""
    h = harness
    user = h.emulator.add_user(user_id=744_002, first_name="Tamu \"O'Neil\" <i>&amp;</i> 🙂")
    await h.stop_bot()  # the update as the emulator holds it, before the bot takes it
    sent = await user.send_text("12,5 <b>&</b> \"kutip\" 🙂")
    [update] = [json.loads(json.dumps(u)) for u in h.emulator._updates
                if (u.get("message") or {}).get("message_id") == sent["message_id"]]
    await h.start_bot()
    await user.wait_for(text_contains="belum terdaftar", timeout=15)
    await h.settle()
    async with h.sessionmaker() as s:
        row = await s.get(Inbox, update["update_id"])
    assert row.processed_at is not None and row.payload == update


async def test_updates_left_in_the_inbox_are_processed_at_start_first(harness):  # noqa: F811
    h = harness
    async with h.sessionmaker() as s:
        kadis = await person(s, Role.KADIS)
    user = await h.register(kadis)
    expected = []
    for command in ("/tugas", "/bantuan", "/status"):  # what each answers, in order
        sent = await user.send_command(command)
        expected.append((await user.wait_for(after=sent)).text)
    await h.settle()
    await h.stop_bot()
    # a previous run stored two updates and died before processing them
    base = max(i for i, _, _ in await _rows(h.sessionmaker)) + 100
    chat = user.chat_api()
    async with h.sessionmaker() as s, s.begin():
        for n, text in enumerate(["/tugas", "/bantuan"]):
            s.add(Inbox(update_id=base + n, chat_key=user.chat_id, error="", payload={
                "update_id": base + n, "message": {
                    "message_id": 900 + n, "from": user.user_api(), "chat": chat,
                    "date": 1728280000, "text": text,
                    "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}]}}))
    seen = len(user.messages)
    await user.send_command("/status")  # a new update, arrives after the restart
    await h.start_bot()
    await h.settle()
    assert [m.text for m in user.messages[seen:]] == expected
    assert all(done for _, done, _ in await _rows(h.sessionmaker))


async def test_a_failing_handler_marks_its_update_with_the_error_once(harness, monkeypatch):  # noqa: F811
    h = harness
    h.intake.split_calls = "never"  # the in-run path (the split one: test_intake_split.py)
    async with h.sessionmaker() as s:
        kadis = await person(s, Role.KADIS)
    user = await h.register(kadis)
    from handlers import onboarding

    calls = []

    def broken(*_a, **_k):
        calls.append(1)
        raise ValueError("help text <missing> & broken")

    monkeypatch.setattr(onboarding, "HELP_BY_ROLE", type("Broken", (), {"__getitem__": broken})())
    sent = await user.send_command("/bantuan")
    await user.wait_for(after=sent, text_contains="terjadi kesalahan")
    await h.settle()
    rows = await _rows(h.sessionmaker)
    assert rows[-1][1] and "ValueError: help text <missing> & broken" in rows[-1][2]
    await h.restart_bot()
    await h.settle()
    assert calls == [1]  # not processed again after a restart


class _Killed(BaseException):
    """Stands for SIGKILL inside the test process: nothing after it runs."""


async def test_an_update_interrupted_after_its_replies_runs_again_without_repeating_them(
        harness, monkeypatch):  # noqa: F811
    from bot.telegram import intake as intake_module
    from models import Conversation

    h = harness
    h.intake.split_calls = "never"  # the in-run path (the split one: test_intake_split.py)
    async with h.sessionmaker() as s:
        kadis = await person(s, Role.KADIS)
    user = await h.register(kadis)
    sent = await user.send_command("/mulai")
    menu = await user.wait_for(after=sent, text_contains="Pilih periodenya")

    real_hit = intake_module.crashpoints.hit

    def die_once(point: str) -> None:
        if point == "processing":
            monkeypatch.setattr(intake_module.crashpoints, "hit", real_hit)
            raise _Killed()  # the handlers ran and answered; nothing committed

    monkeypatch.setattr(intake_module.crashpoints, "hit", die_once)
    q = await user.press(menu, text="Triwulan III Tahun 2024")
    ask = await user.wait_for(after=q, text_contains="instruksi disposisi")
    for _ in range(500):
        if h.intake._processor.done():
            break
        await asyncio.sleep(0.01)
    rows = await _rows(h.sessionmaker)
    assert rows[-1][1] is False  # not processed: the transaction never committed
    journal = h.intake.journal_dir / f"{rows[-1][0]}.jsonl"
    assert journal.exists()
    # the answers as Telegram sent them (read back as their results below)
    assert all(json.loads(line)["w"]["ok"] for line in journal.read_text().splitlines())
    async with h.sessionmaker() as s:
        assert await s.get(Conversation, kadis.id) is None  # the state was rolled back

    seen = len(user.messages)
    await h.stop_bot()
    await h.start_bot()  # runs the update again: same state change, calls not repeated
    await h.settle()
    assert len(user.messages) == seen and h.intake.replayed >= 2
    assert all(done for _, done, _ in await _rows(h.sessionmaker)) and not journal.exists()
    async with h.sessionmaker() as s:
        assert (await s.get(Conversation, kadis.id)) is not None
    # the person goes on from the card they already have
    sent = await user.reply_to(ask, "Siapkan pengukuran kinerja TW III <segera> & \"lengkap\"")
    await user.wait_for(after=sent, text_contains="surat masuk")


def test_a_journal_writes_an_answer_as_telegram_sent_it_and_gives_each_run_its_own_copy(
        tmp_path):
    from bot.telegram.intake import CallJournal

    result = {"message_id": 5, "text": 'Kabid <Bina> & "Pengawasan" 😀', "chat": {"id": 7}}
    body = json.dumps({"ok": True, "result": result}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    journal = CallJournal(tmp_path, 41)
    journal.record("sendMessage", result, "k1", body=body)
    journal.record("answerCallbackQuery", True, "k2")  # no body: the answer encoded
    journal.close()
    first, second = (tmp_path / "41.jsonl").read_text(encoding="utf-8").splitlines()
    assert first == '{"m":"sendMessage","k":"k1","w":' + body.decode() + "}"
    assert json.loads(second) == {"m": "answerCallbackQuery", "k": "k2", "r": True}
    # in this run: a copy each time (PTB changes what it gets)
    mine = CallJournal.answer(journal.replay("sendMessage", "k1"))
    mine["chat"]["id"] = 8
    journal.new_run()
    assert CallJournal.answer(journal.replay("sendMessage", "k1")) == result
    # a run after a crash reads both back
    again = CallJournal(tmp_path, 41)
    assert CallJournal.answer(again.replay("sendMessage", "k1")) == result
    assert CallJournal.answer(again.replay("answerCallbackQuery", "k2")) is True
    # an update this process has just stored has no journal: a file left under its id
    # (by something else) is neither read nor kept
    fresh = CallJournal(tmp_path, 41, fresh=True)
    assert fresh.recorded == [] and fresh.loaded == 0
    fresh.record("sendMessage", result, "k3", body=body)
    fresh.close()
    assert [json.loads(line)["k"] for line in
            (tmp_path / "41.jsonl").read_text(encoding="utf-8").splitlines()] == ["k3"]


async def test_a_transaction_that_fails_to_commit_runs_again_and_is_not_lost(
        harness, monkeypatch):  # noqa: F811
    from bot.telegram import intake as intake_module
    from models import Conversation

    h = harness
    async with h.sessionmaker() as s:
        kadis = await person(s, Role.KADIS)
    user = await h.register(kadis)
    sent = await user.send_command("/mulai")
    menu = await user.wait_for(after=sent, text_contains="Pilih periodenya")
    real_hit, failed = intake_module.crashpoints.hit, []

    def busy_once(point: str) -> None:
        if point == "processing" and not failed:
            failed.append(point)
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        real_hit(point)

    monkeypatch.setattr(intake_module.crashpoints, "hit", busy_once)
    q = await user.press(menu, text="Triwulan III Tahun 2024")
    ask = await user.wait_for(after=q, text_contains="instruksi disposisi")
    seen = len(user.messages)
    await h.settle()
    assert failed and len(user.messages) == seen  # run again; its calls not repeated
    assert [(done, error) for _, done, error in await _rows(h.sessionmaker)][-1] == (True, "")
    async with h.sessionmaker() as s:
        assert (await s.get(Conversation, kadis.id)) is not None
    sent = await user.reply_to(ask, "Laporkan capaian TW III <lengkap> & tepat waktu")
    await user.wait_for(after=sent, text_contains="surat masuk")


@pytest.mark.parametrize("dies_at", ["editMessageReplyMarkup", "sendMessage"])
async def test_a_compile_press_killed_midway_runs_again_in_another_order_and_the_card_arrives(
        harness, people, sessionmaker, services, clock, monkeypatch, dies_at):  # noqa: F811
    """The crash run's failure (6 compile), as the press is now: "Susun dokumen" drops
    the card's buttons, sends the progress message and records a compile job; the
    documents are built in the background (``bot.core.compiler``). The first run dies while
    Telegram carries out one of the press's calls (the bot never heard back). The run at
    the next start is slower, so the button is answered (``ANSWER_WITHIN``) at another
    point of it: its calls come in another order than the journal's; a call already
    carried out is answered from the journal whatever its position. The update commits
    without an error, one job is recorded, one version is built and its card arrives."""
    import handlers.common as common
    import handlers.signoff as signoff
    from bot.telegram import intake as intake_module
    from models import CompileJob, Document
    from bot.devtools.scenario import has_button
    from tests.test_documents_service import drive_to_compile
    from tests.test_workflow import Walk

    _cycle_id, run6 = await drive_to_compile(Walk(sessionmaker, services, clock))
    await harness.sender.drain()
    kasubag = people.user(Role.KASUBAG)
    card = await kasubag.wait_for(has_button(f"cmp:{run6}"), timeout=30)

    # both runs make their calls in the run, not split off (on a loaded machine a slow
    # call would make "auto" split: the take-off deferred past the commit, never made
    # in the run; the split runs' crashes are tests/test_intake_split.py's)
    monkeypatch.setenv(intake_module.SPLIT_ENV, "never")
    harness.intake.split_calls = "never"
    # first run: quick (the button is answered at the end); it dies when Telegram has
    # carried out the call but before its answer reached the journal
    monkeypatch.setattr(common, "ANSWER_WITHIN", 600.0)
    real_record = intake_module.CallJournal.record

    def die_at_the_call(self, method, answer, *key, **more):
        if method == dies_at:
            monkeypatch.setattr(intake_module.CallJournal, "record", real_record)
            raise _Killed()
        real_record(self, method, answer, *key, **more)

    monkeypatch.setattr(intake_module.CallJournal, "record", die_at_the_call)
    q = await kasubag.press(card, data=f"cmp:{run6}")
    for _ in range(3000):
        if harness.intake._processor.done():
            break
        await asyncio.sleep(0.01)
    assert harness.intake._processor.done()
    assert not [m for m in kasubag.messages if has_button("subm:")(m)]  # no card yet
    rows = await _rows(sessionmaker)
    assert rows[-1][1] is False
    async with sessionmaker() as s:  # the press did not commit: no job
        assert (await s.execute(select(CompileJob))).scalars().all() == []

    # the run at the next start is slow (a loaded machine): the button is answered
    # before the buttons are dropped and the progress message is sent, this time
    real_open_job = signoff.open_job

    async def slow_open_job(*args, **kwargs):
        await asyncio.sleep(0.6)
        return await real_open_job(*args, **kwargs)

    monkeypatch.setattr(common, "ANSWER_WITHIN", 0.5)
    monkeypatch.setattr(signoff, "open_job", slow_open_job)
    await harness.stop_bot()
    await harness.start_bot()
    ready = await kasubag.wait_for(has_button("subm:"), after=q, timeout=60)
    await harness.settle()
    assert "Ajukan" in " ".join(ready.button_texts)
    assert [(done, error) for _, done, error in await _rows(sessionmaker)][-1] == (True, "")
    async with sessionmaker() as s:
        versions = (await s.execute(select(Document.version))).scalars().all()
        jobs = (await s.execute(select(CompileJob))).scalars().all()
    assert versions == [1]
    assert len(jobs) == 1 and jobs[0].finished_at is not None and jobs[0].error == ""
    # the progress message was edited once, the documents were not sent twice
    texts = [m.text or "" for m in kasubag.messages]
    assert sum("selesai disusun" in t for t in texts) == 1
    # edited into "selesai"; a progress message whose answer never reached the journal
    # was sent again by the second run (at least once), the first one stays as it is
    assert sum("Menyusun dokumen" in t for t in texts) == (dies_at == "sendMessage")
    assert sum(m.document is not None for m in kasubag.messages) == 2


async def test_a_stored_update_is_processed_without_a_pass_over_the_inbox(harness):  # noqa: F811
    """The row just committed goes on its chat's queue with the payload in hand; no
    pass reads it back from the inbox. On PostgreSQL the store's own transaction claimed
    it (the first row of its chat): no claim transaction either."""
    h = harness
    user = h.emulator.add_user(user_id=744_101, first_name="Tamu \"Rp 1.234.567.890.123\" 🙂")
    await h.settle()

    async def no_pass() -> int:  # a pass over the inbox finds nothing
        return 0

    original, h.intake.dispatch = h.intake.dispatch, no_pass
    try:
        sent = await user.send_command("/bantuan")
        await user.wait_for(after=sent, text_contains="belum terdaftar", timeout=15)
    finally:
        h.intake.dispatch = original
    await h.settle()
    assert [(r[1], r[2]) for r in await _rows(h.sessionmaker)] == [(True, "")]
    if h.intake.claims:
        async with h.sessionmaker() as s:
            assert (await s.execute(select(Inbox.claimed_by))).scalars().all() == [h.intake.me]


async def test_a_row_taken_over_sends_the_chats_later_rows_back_to_wait_for_it(
        harness, monkeypatch):  # noqa: F811
    """PostgreSQL: a chat's second update is claimed in its store behind the first, which
    waits on this process's queue; the first's claim is then taken over (this process
    was taken for dead). The first's run finds it is not this process's; the second is
    taken off the queue and not run while the other process holds the first: once the
    first is processed there, a pass queues the second here again, and it runs."""
    from sqlalchemy import update

    from bot.telegram import processes

    h = harness
    if not h.intake.claims:
        pytest.skip("claims between processes: PostgreSQL")
    intake = h.intake
    user = h.emulator.add_user(user_id=744_301, first_name="Tamu <Dua> & \"Satu\" 🙂")
    await h.settle()
    claimed_in_store = spy_claimed_in_store(monkeypatch)

    def first_text(payload: dict) -> bool:
        return (payload.get("message") or {}).get("text") == "pertama"

    async with held_on_queue(intake, first_text) as held:
        first = await user.send_text("pertama")
        await asyncio.wait_for(held.wait(), timeout=30)
        second = await user.send_text("kedua")
        ids = {u["message"]["message_id"]: u["update_id"] for u in h.emulator._updates
               if (u.get("message") or {}).get("chat", {}).get("id") == 744_301}
        first_id, second_id = ids[first["message_id"]], ids[second["message_id"]]
        for _ in range(300):  # stored and claimed behind the first
            if second_id in claimed_in_store:
                break
            await asyncio.sleep(0.1)
        assert first_id in claimed_in_store and second_id in claimed_in_store
        async with h.sessionmaker() as s, s.begin():  # another process takes the first over
            await s.execute(update(Inbox).where(Inbox.update_id == first_id)
                            .values(claimed_by="h:9:another"))
    await asyncio.sleep(2)  # the first's run, a pass or two (one a second)
    rows = {i: done for i, done, _e in await _rows(h.sessionmaker)}
    assert rows[first_id] is False and rows[second_id] is False
    assert second_id not in intake.in_hand() and not intake._queued & {first_id, second_id}
    async with h.sessionmaker() as s, s.begin():  # the other process processed it
        await s.execute(update(Inbox).where(Inbox.update_id == first_id)
                        .values(processed_at=processes.utcnow()))
    intake.wake()
    for _ in range(300):
        rows = {i: done for i, done, _e in await _rows(h.sessionmaker)}
        if rows[second_id]:
            break
        await asyncio.sleep(0.1)
    assert rows[second_id] is True
    async with h.sessionmaker() as s:
        assert (await s.get(Inbox, second_id)).claimed_by == intake.me


async def test_a_passphrase_is_held_only_for_a_row_the_store_inserted(harness):  # noqa: F811
    """The text of a sender who waits for the TTE passphrase is stored redacted and held
    in memory only once its row is inserted: a store whose commit fails holds nothing,
    and a redelivered update leaves the row and what is held for it as they were."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from bot.core.secret_input import REDACTED

    h = harness
    intake, secrets = h.intake, h.intake.secrets
    await h.stop_bot()  # the rows are stored here, not processed
    secret = "Rahasia <b>&amp;</b> \"kunci\" 🔐 1.234.567.890.123"
    chat = {"id": 744_201, "type": "private", "first_name": "Kadis <Uji> & Co."}

    def text_update(update_id: int, text: str) -> dict:
        return {"update_id": update_id, "message": {
            "message_id": update_id, "date": 1728280000, "chat": chat, "text": text,
            "from": {"id": 744_201, "is_bot": False, "first_name": "Kadis <Uji> & Co."}}}

    secrets.expect(744_201)
    failures = []

    def fail_once(_session) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("disk I/O error")

    event.listen(Session, "before_commit", fail_once)
    try:
        with pytest.raises(RuntimeError):
            await intake.store_json(text_update(90_001, secret))
    finally:
        event.remove(Session, "before_commit", fail_once)
    assert secrets.take(90_001) is None and await _rows(h.sessionmaker) == []

    assert await intake.store_json(text_update(90_001, secret)) == 1
    assert secrets.take(90_001) == secret
    assert await intake.store_json(text_update(90_001, secret)) == 0  # redelivered
    assert secrets.take(90_001) == secret
    async with h.sessionmaker() as s:
        assert (await s.get(Inbox, 90_001)).payload["message"]["text"] == REDACTED

    # stored as sent before the sender was asked; redelivered after: left as it is (the
    # check before processing redacts it), nothing held by the store
    secrets.settle(744_201)
    secrets.drop(90_001)
    assert await intake.store_json(text_update(90_002, "bukan rahasia")) == 1
    secrets.expect(744_201)
    assert await intake.store_json(text_update(90_002, "bukan rahasia")) == 0
    assert secrets.take(90_002) is None
    async with h.sessionmaker() as s:
        assert (await s.get(Inbox, 90_002)).payload["message"]["text"] == "bukan rahasia"
    secrets.settle(744_201)


async def test_with_every_slot_busy_the_poller_waits_and_fetches_what_came_meanwhile_at_once(
        harness, monkeypatch):  # noqa: F811
    """One process: while every slot is taken, the poller does not ask Telegram for
    more (an update fetched then could not start); what arrives meanwhile comes in one
    getUpdates, stored in one transaction, once a slot is free. The wait is bounded
    (``FETCH_WAIT``). On PostgreSQL once the process has found no other alive (its
    life's look every few seconds): another one might have room."""
    from bot.telegram import intake as intake_module

    h = harness
    intake = h.intake
    if intake.claims:
        for _ in range(100):  # the life's first look, WATCH_SECONDS after the start
            if intake.life.others == 0:
                break
            await asyncio.sleep(0.1)
        assert intake.life.others == 0
    intake.max_concurrent, intake._slots = 2, asyncio.Semaphore(2)
    monkeypatch.setattr(intake_module, "FETCH_WAIT", 60.0)
    ids = [744_301 + i for i in range(6)]
    users = [h.emulator.add_user(user_id=uid, first_name=f"Tamu <{i}> & \"Co.\" 🙂")
             for i, uid in enumerate(ids)]
    await h.settle()

    batches: list[list[int]] = []
    real_get = intake_module.Intake._get_updates

    async def get(self, offset):
        updates, raw = await real_get(self, offset)
        if updates:
            batches.append(sorted(u.effective_user.id for u in updates))
        return updates, raw

    held, release = set(ids[:2]), asyncio.Event()
    real_process = intake_module.Intake._process

    async def process(self, update_id, payload, *more):  # holds its slot, no lock
        if intake_module._sender(payload) in held:
            await release.wait()
        return await real_process(self, update_id, payload, *more)

    monkeypatch.setattr(intake_module.Intake, "_get_updates", get)
    monkeypatch.setattr(intake_module.Intake, "_process", process)

    async def stored() -> set[int]:
        async with h.sessionmaker() as s:
            return {r.payload["message"]["from"]["id"] for r in
                    (await s.execute(select(Inbox))).scalars()}

    async def answered(user, sent):
        await user.wait_for(after=sent, text_contains="belum terdaftar", timeout=15)

    async def until(check) -> bool:  # within 5 s
        for _ in range(500):
            if await check():
                return True
            await asyncio.sleep(0.01)
        return False

    async def both_held() -> bool:
        return len(intake._in_hand) == 2

    async def sixth_stored() -> bool:
        return ids[5] in await stored()

    first = [await u.send_command("/bantuan") for u in users[:2]]
    assert await until(both_held)  # both slots taken
    later = [await u.send_command("/bantuan") for u in users[2:5]]
    await asyncio.sleep(0.5)
    assert await stored() == set(ids[:2])  # not fetched while no update could start
    release.set()
    for user, sent in zip(users, first + later):
        await answered(user, sent)
    assert sorted(ids[2:5]) in batches  # fetched together, once a slot was free

    # the wait is bounded: with both slots taken for good, the next update is fetched
    # and stored after FETCH_WAIT (it is processed once a slot is free)
    monkeypatch.setattr(intake_module, "FETCH_WAIT", 0.2)
    release.clear()
    first = [await u.send_command("/bantuan") for u in users[:2]]
    assert await until(both_held)
    sent = await users[5].send_command("/bantuan")
    assert await until(sixth_stored)
    assert await both_held()  # the two still hold their slots
    release.set()
    for user, sent in zip(users[:2] + users[5:], first + [sent]):
        await answered(user, sent)
    await h.settle()
