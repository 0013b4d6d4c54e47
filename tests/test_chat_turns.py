"""One request at a time in a chat, one interval apart (``bot/telegram/ratelimit.py``,
``RateLimiter`` with ``per_chat_interval``): a chat's second request waits for its turn,
counted from the first one's answer, while the other chats go on; taking an old card's
buttons off waits behind the chat's other requests until the chat is quiet. In the bot,
a data-entry answer's new card and the old card's take-off then draw no 429 from an
emulator that enforces Telegram's one message a second per chat, an update's run never
waits for a turn inside its transaction, and a take-off still waiting when the bot
stops is made at the next start; with several processes, it is left to the process
that waits to make it, and made by another once that one died."""
from __future__ import annotations

import asyncio

import pytest

from bot.devtools.emulator import BotApiEmulator
from bot.devtools.harness import TEST_TOKEN, Harness
from telegram.error import RetryAfter

from bot.telegram import ratelimit
from bot.telegram.ratelimit import LOW, QUIET, RateLimiter
from models.enums import Role
from tests.conftest import POSTGRES_URL
from tests.e2e import FIVE_ROLES, People
from tests.test_e2e_data_entry import press_and_wait, to_collection

INTERVAL = 0.3
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="several processes need PostgreSQL: set SOPBOT_TEST_DATABASE_URL")


def _limiter(interval: float = INTERVAL, retries: int = 0):
    limiter = RateLimiter(max_retries=retries, per_chat_interval=interval)
    loop = asyncio.get_running_loop()
    made: list[tuple[str, int, float, float]] = []  # (what, chat, started, answered)
    refuse: set[str] = set()  # refused once with a 429

    async def request(what: str, chat_id: int, method: str = "sendMessage",
                      takes: float = 0.05, low: bool = False):
        async def call():
            started = loop.time()
            await asyncio.sleep(takes)
            made.append((what, chat_id, started, loop.time()))
            if what in refuse:
                refuse.discard(what)
                raise RetryAfter(1)
            return True
        token = LOW.set(low)  # as the intake's take-offs after the commit
        try:
            return await limiter.process_request(call, (), {}, method,
                                                 {"chat_id": chat_id}, None)
        finally:
            LOW.reset(token)
    request.refuse = refuse
    return limiter, request, made


def _by_name(made):
    return {what: (started, answered) for what, _chat, started, answered in made}


async def test_a_chats_second_request_waits_an_interval_from_the_first_ones_answer_and_other_chats_do_not_wait():
    limiter, request, made = _limiter()
    loop = asyncio.get_running_loop()
    await request("a1", 1)
    asked = loop.time()
    assert limiter.chat_wait(1) > 0 and limiter.chat_wait(2) == 0
    await asyncio.gather(request("a2", 1), request("b1", 2))
    at = _by_name(made)
    # another chat: at once (an upper bound short of the interval: a loaded machine's
    # event loop may take a while to get to it)
    assert at["b1"][0] - asked < INTERVAL - 0.05
    assert at["a2"][0] >= at["a1"][1] + INTERVAL - 0.01  # from the answer, not the start


async def test_requests_to_one_chat_are_made_one_at_a_time_in_order():
    _limiter_, request, made = _limiter(interval=0.05)
    await asyncio.gather(*(request(f"m{i}", 7, takes=0.02) for i in range(4)))
    order = [what for what, *_ in made]
    assert order == ["m0", "m1", "m2", "m3"]
    spans = [(s, e) for _w, _c, s, e in made]
    assert all(spans[i + 1][0] >= spans[i][1] + 0.05 - 0.01 for i in range(3))


async def test_taking_buttons_off_goes_after_the_chats_other_requests_once_the_chat_is_quiet():
    limiter, request, made = _limiter()
    await request("card", 1)
    takeoff = asyncio.create_task(
        request("take-off", 1, method="editMessageReplyMarkup", low=True))
    await asyncio.sleep(0.1)
    assert limiter.chat_wait(1, low=True) > 0
    await request("next card", 1)  # asked after the take-off: goes first
    await takeoff
    at = _by_name(made)
    assert [what for what, *_ in made] == ["card", "next card", "take-off"]
    assert at["take-off"][0] >= at["next card"][1] + QUIET * INTERVAL - 0.01


async def test_a_take_off_that_never_finds_the_chat_quiet_goes_in_turn_after_the_limit(
        monkeypatch):
    monkeypatch.setattr(ratelimit, "LOW_WAIT_LIMIT", 0.5)
    _limiter_, request, made = _limiter(interval=0.1)
    takeoff = None

    async def busy_chat():
        nonlocal takeoff
        for i in range(12):  # a request every ~0.15 s: never quiet for 0.3 s
            await request(f"m{i}", 1, takes=0.01)
            if takeoff is None:
                takeoff = asyncio.create_task(request(
                    "take-off", 1, method="editMessageReplyMarkup", low=True, takes=0.01))
    await busy_chat()
    await takeoff
    order = [what for what, *_ in made]
    assert "take-off" in order and order.index("take-off") < len(order) - 1


async def test_a_take_off_not_marked_low_goes_in_turn_without_waiting_for_quiet():
    """The outbox's own take-offs (``outbox_sender``): they hold one of its turns."""
    _limiter_, request, made = _limiter()
    await request("notice", 1)
    await request("take-off", 1, method="editMessageReplyMarkup")
    at = _by_name(made)
    assert at["take-off"][0] - at["notice"][1] < QUIET * INTERVAL - 0.1  # no quiet wait


async def test_a_retry_after_a_429_keeps_the_chats_order():
    _limiter_, request, made = _limiter(interval=0.05, retries=1)
    request.refuse.add("a")
    first = asyncio.create_task(request("a", 1))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(request("b", 1))
    await asyncio.gather(first, second)
    assert [what for what, *_ in made] == ["a", "a", "b"]


async def test_chat_wait_counts_the_requests_waiting_and_a_429s_pause():
    limiter, request, made = _limiter()
    await request("a1", 1)
    queued = asyncio.create_task(request("a2", 1))
    await asyncio.sleep(INTERVAL + 0.05)  # a2's turn is due, it may not have gone yet
    if not made[-1][0] == "a2":
        assert limiter.chat_wait(1) > 0
    await queued
    limiter.pause(1.0)
    assert limiter.chat_wait(2) > 0.9  # a chat never seen: the pause holds it too


async def test_a_cancelled_request_does_not_hold_up_the_take_off_behind_it():
    limiter, request, made = _limiter()
    await request("card", 1)
    waiting = asyncio.create_task(request("edit", 1))  # waits for its turn
    takeoff = asyncio.create_task(
        request("take-off", 1, method="editMessageReplyMarkup", low=True))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.wait_for(takeoff, 30.0)
    assert [what for what, *_ in made] == ["card", "take-off"]


async def test_without_an_interval_no_request_waits_for_its_chat():
    limiter, request, made = _limiter(interval=0.0)
    await request("a1", 1)
    assert limiter.chat_wait(1) == 0
    # each takes 0.5 s: made one at a time, the second would start after the first's
    # answer; without turns they overlap, whatever the event loop's stalls
    await asyncio.gather(request("a2", 1, takes=0.5),
                         request("a3", 1, method="editMessageReplyMarkup", takes=0.5,
                                 low=True))
    (s2, e2), (s3, e3) = [(s, e) for _w, _c, s, e in made[1:]]
    assert max(s2, s3) < min(e2, e3), made  # at the same time
    assert max(s2, s3) - made[0][3] < 0.25  # no interval waited (of 0.3 s elsewhere)


async def test_no_more_than_the_overall_limit_within_any_period_counted_to_the_answers():
    """The overall limit as Telegram counts it: a request may arrive there as late as
    its answer, so the request ``limit`` places later starts a period after it came back
    (a leaky bucket let ``limit`` go at once and ``limit`` more within the period)."""
    limit, period = 5, 0.2
    limiter = RateLimiter(overall_max_rate=limit, overall_time_period=period, max_retries=0)
    loop = asyncio.get_running_loop()
    spans: list[tuple[float, float]] = []

    async def request(chat_id: int):
        async def call():
            started = loop.time()
            await asyncio.sleep(0.01)
            spans.append((started, loop.time()))
            return True
        return await limiter.process_request(call, (), {}, "sendMessage",
                                             {"chat_id": chat_id}, None)

    await asyncio.gather(*(request(1000 + i) for i in range(4 * limit)))
    starts = sorted(s for s, _e in spans)
    ends = sorted(e for _s, e in spans)
    assert len(starts) == 4 * limit
    assert all(starts[k + limit] >= ends[k] + period - 0.005
               for k in range(len(starts) - limit))
    assert starts[-1] - starts[0] < 6 * period  # and not much slower than the limit


async def test_requests_another_process_made_count_in_the_limits_here():
    """Told of another process's requests (``RateLimiter.foreign``): they fill the
    overall limit here for a second, with a margin, and each of their chats waits an
    interval for its next turn here; other chats do not."""
    loop = asyncio.get_running_loop()
    limiter, request, made = _limiter()
    limiter.foreign([1])
    t0 = loop.time()
    await asyncio.gather(request("to 1", 1, takes=0.01), request("to 2", 2, takes=0.01))
    started = {what: s - t0 for what, (s, _a) in _by_name(made).items()}
    assert started["to 2"] < INTERVAL - 0.05 and started["to 1"] >= INTERVAL - 0.02, started

    limiter, request, made = _limiter(interval=0)
    limiter.foreign(list(range(100, 100 + 30 - ratelimit.SHARED_MARGIN - 1)))
    t0 = loop.time()
    await asyncio.gather(request("fits", 1, takes=0.01), request("waits", 2, takes=0.01))
    started = {what: s - t0 for what, (s, _a) in _by_name(made).items()}
    assert started["fits"] < 0.5 and started["waits"] >= 0.9, started


# ------------------------------------------------------------------ in the bot
@pytest.fixture
async def limited(services, sessionmaker, office):
    """The harness against an emulator that enforces Telegram's limits (one message a
    second per chat, 429 with retry_after), the bot's chat turns one second apart."""
    assert services.config.outbox.per_chat_interval_seconds == 1.0
    emulator = BotApiEmulator(token=TEST_TOKEN, enforce_limits=True)
    await emulator.start()
    h = Harness(services, sessionmaker)
    await h.start(emulator=emulator)
    yield h
    await h.stop()


def _watch_turns(h) -> list[tuple[float, bool]]:
    """Each wait for a chat's turn: (seconds, whether inside an update's transaction:
    from its run, or on SQLite while the write lock was held)."""
    from bot.telegram import intake as intake_module

    limiter = h.app.bot.rate_limiter
    real = limiter._chat_turn
    loop = asyncio.get_running_loop()
    waits: list[tuple[float, bool]] = []

    async def chat_turn(chat_id, low):
        lock = h.intake._write_lock
        inside = intake_module.current() is not None or (lock is not None and lock.locked())
        started = loop.time()
        try:
            return await real(chat_id, low)
        finally:
            waits.append((loop.time() - started, inside))
    limiter._chat_turn = chat_turn
    return waits


async def _entry(h, sessionmaker):
    await to_collection(h, sessionmaker)
    people = await People(h).load(*FIVE_ROLES)
    await h.settle()
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")
    await h.settle()
    return kabid, card


async def _answer_leaving_a_take_off(h, sessionmaker):
    """A typed answer whose new card is shown while the old card's take-off waits for
    the chat to be quiet (in the intake's ``_later``). Returns the Kabid and the old
    card, its buttons still on."""
    kabid, card = await _entry(h, sessionmaker)
    sent = await kabid.send_text("12,5")
    await kabid.wait_for(after=sent, text_contains="Tersimpan")
    for _ in range(200):  # the new card's id kept: the take-off waits for quiet
        if h.intake._later:
            break
        await asyncio.sleep(0.01)
    assert h.intake._later and card.buttons
    return kabid, card


@pytest.mark.parametrize("split", ["never", "always"])
async def test_a_data_entry_answer_draws_no_429_and_the_old_cards_buttons_come_off_once_the_chat_is_quiet(
        limited, sessionmaker, split):
    h = limited
    kabid, card = await _entry(h, sessionmaker)
    h.intake.split_calls = split
    issued = h.emulator.stats.issued_429s
    waits = _watch_turns(h)
    for k, value in enumerate(["12,5", "80"]):
        sent = await kabid.send_text(value)
        new = await kabid.wait_for(after=sent, text_contains="Tersimpan")
        assert card.buttons  # not taken off with the new card: later
        await asyncio.sleep(0.3)  # a quick press, within a second of the card
        q = await kabid.press(new, text="Lanjut")
        card = await kabid.wait_for(after=q, text_contains=f"Indikator {k + 2} dari 6")
    await h.settle()
    assert h.emulator.stats.issued_429s == issued  # no 429 at all
    assert waits and max(w for w, _inside in waits) > 0.2  # turns were waited for ...
    assert not [w for w, inside in waits if inside and w > 0.02]  # ... never in a run
    stale = [m for m in kabid.messages if m.buttons and m.message_id != card.message_id
             and ("Indikator" in (m.text or "") or "Tersimpan" in (m.text or ""))]
    assert not stale, [m.text[:40] for m in stale]  # every old card without buttons
    assert not list(h.intake.journal_dir.glob("*.jsonl"))  # journals removed once made


async def test_a_take_off_still_waiting_when_the_bot_stops_is_made_at_the_next_start(
        limited, sessionmaker):
    h = limited
    kabid, card = await _answer_leaving_a_take_off(h, sessionmaker)
    await h.stop_bot()  # stopped: the take-off not made, left in the journal
    assert card.buttons and list((h.services.store.root / "inbox-journal").glob("*.jsonl"))
    await h.start_bot()  # made at the start
    for _ in range(300):
        if not card.buttons:
            break
        await asyncio.sleep(0.01)
    assert not card.buttons
    await h.settle()
    assert not list(h.intake.journal_dir.glob("*.jsonl"))


@needs_postgres
async def test_a_take_off_is_left_to_its_live_process_and_made_by_another_once_that_one_died(
        limited, sessionmaker, monkeypatch):
    """Several processes share the journals' folder: a take-off waiting for its chat to
    be quiet is made by no clean but its own process's (not another process starting,
    not a sweep, not its own sweep); once the process that wrote it is no longer alive,
    another process's sweep makes it, after seeing it not alive for a while (a live
    process whose database session broke is not alive for a few seconds)."""
    import json

    from bot.telegram import intake as intake_module

    h = limited
    assert h.intake.claims and h.intake.life is not None
    h.intake._sweeper.cancel()  # the sweeps here are called by the test
    kabid, card = await _answer_leaving_a_take_off(h, sessionmaker)
    [path] = list(h.intake.journal_dir.glob("*.jsonl"))
    [(method, _params, by)] = intake_module.CallJournal.left_pending(path)
    assert method == "editMessageReplyMarkup" and by == h.intake.me
    # another process (another name, the same folder and database), at its start and
    # in its sweeps, and this process's own sweep: the live writer's call is left alone
    other = intake_module.Intake(h.app, sessionmaker, journal_dir=h.intake.journal_dir)
    other.me = ":".join(h.intake.me.split(":")[:2] + ["another000"])
    assert other.claims
    assert await other._clean_journals() == 0
    assert await other._clean_journals(sweep=True) == 0
    assert await h.intake._clean_journals(sweep=True) == 0
    assert card.buttons and path.exists()

    # the writer dies before making it: its future is gone, the journal keeps the line
    for future in list(h.intake._later):
        future.cancel()
    await asyncio.sleep(0.05)
    assert not h.intake._later and card.buttons
    ghost = ":".join(h.intake.me.split(":")[:2] + ["0123456789"])  # same host and pid
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(dict(e, by=ghost) if "q" in e else e) + "\n"
                            for e in lines))
    monkeypatch.setattr(intake_module, "JOURNAL_DEAD_SECONDS", 0.5)
    assert await other._clean_journals(sweep=True) == 0  # seen not alive: not yet
    assert card.buttons
    await asyncio.sleep(0.6)
    assert await other._clean_journals(sweep=True) == 1  # not alive since: made
    assert not card.buttons and not path.exists()


def test_a_run_that_finds_its_update_processed_leaves_the_journals_pending_calls(tmp_path):
    """A journal is read by every run of its update, before the run claims the row;
    the pending calls of another run (another process's, whose commit may be the one
    that processed the update) leave the file only when this run writes to it, i.e.
    once it holds the claim. A run that finds the row processed writes nothing."""
    import json

    from bot.telegram.intake import CallJournal

    path = tmp_path / "7.jsonl"
    lines = [{"m": "sendMessage", "k": "a", "r": {"message_id": 3}},
             {"m": "editMessageReplyMarkup", "k": "", "id": "x1",
              "q": {"chat_id": 5, "message_id": 2}, "by": "host:1:other"}]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    before = path.read_text()
    journal = CallJournal(tmp_path, 7, by="host:1:me")  # a run reads it ...
    assert [e["m"] for e in journal.recorded] == ["sendMessage"]
    assert path.read_text() == before  # ... and, writing nothing, leaves it
    assert CallJournal.left_pending(path) == [
        ("editMessageReplyMarkup", {"chat_id": 5, "message_id": 2}, "host:1:other")]
    journal.record("answerCallbackQuery", True, "b")  # a run that holds the claim writes
    after = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["m"], e.get("k")) for e in after] == [
        ("sendMessage", "a"), ("answerCallbackQuery", "b")]
    assert CallJournal.left_pending(path) == []
