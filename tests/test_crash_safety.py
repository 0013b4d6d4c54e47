"""Crash safety: a full cycle survives the bot being killed with SIGKILL 30+ times.

The bot runs as its own process (``python -m bot --config ... run``) against an
:class:`EmulatorThread` in the test process; the simulated people of
:mod:`bot.devtools.scenario` are driven from the test. They never try anything twice: each
message and each press is sent once, and the person waits for its answer however many
times the bot dies meanwhile (the durable intake, ``bot/telegram/intake.py``, must deliver it).
The bot is killed at many points: after the N-th database commit that wrote something
(``SOPBOT_CRASH_AT=commit:N``), after an update was committed to the inbox and before
Telegram was told (``inbox_committed:N``), after the handlers of the N-th update ran
(its replies sent) and before its transaction committed (``processing:N``), after
Telegram accepted an outbox message and before the bot recorded it (``outbox_sent:N``),
when the N-th Bot API request arrives (from the emulator), and at fixed moments after a
button press: during compiling, signing, numbering, delivering. Each time it is
restarted. At the end: every update the emulator created for a person's message or
press was handed to the bot and processed exactly once (its inbox row marked once, no
error) and its effect happened once (one submission per answer typed, each on the
indicator it answers); every answer the bot confirmed ("Tersimpan") is in the database;
the letter numbers are gapless and unique; every notification was delivered (or, where
a crash fell between Telegram accepting it and the bot recording it, with one
duplicate, counted); the cycle is closed and ``sopbot audit verify`` passes.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.clock import SystemClock
from bot.devtools.botprocess import bot_env, ended
from bot.devtools.emulator import EmulatorThread, parse_html
from bot.devtools.example_data import example_office
from bot.core.office_data import apply_office
from bot.core.onboarding import create_invitation
from bot.devtools.scenario import NoAnswer, Player, ScriptedCycle
from bot.texts import period_label
from bot.core.workcal import to_wib
from handlers.disposition import period_choices

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[1]
SEED = 20241007
MIN_KILLS = 30
# a button press whose processing is killed after a delay (seconds): during compiling,
# submitting, initialling, signing, numbering, archiving, delivering, sending the data
KILL_AFTER_PRESS = {"cmp:": 0.6, "subm:": 0.1, "prf:": 0.05, "sgn:": 0.05, "num:": 0.02,
                    "arc:": 0.05, "dlv:": 0.05, "esend:": 0.02, "proc:": 0.02, "rcv:": 0.02}


class BotProcess:
    """``python -m bot run``, restarted whenever it dies; each start may carry a crash
    point (``SOPBOT_CRASH_AT``) from the plan."""

    def __init__(self, config: Path, cwd: Path, plan: list[str],
                 env: dict[str, str] | None = None) -> None:
        self.config, self.cwd, self.plan = config, cwd, list(plan)
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.started_at = 0.0
        self.kills: Counter[str] = Counter()
        self.spec = ""
        self.stopping = False
        self.unexpected: list[int] = []
        self.lock = threading.Lock()
        self.log = open(os.environ.get("SOPBOT_CRASH_TEST_LOG") or cwd / "bot.log", "a")
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _spawn(self) -> None:
        env = bot_env(**self.env)
        self.spec = self.plan.pop(0) if self.plan else ""
        if self.spec and not self.spec.startswith("request:"):
            env["SOPBOT_CRASH_AT"] = self.spec
        self.log.write(f"=== start {self.generation} crash={self.spec or '-'}\n")
        self.log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(self.config), "run", "--no-upgrade"],
            cwd=self.cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()

    def start(self) -> None:
        self._spawn()
        self.thread.start()

    def _watch(self) -> None:
        while True:
            rc = self.proc.wait()
            with self.lock:
                if self.stopping:
                    return
                if rc != -signal.SIGKILL:
                    self.unexpected.append(rc)
                kind = self.killed_by or self.spec.split(":")[0] or "?"
                self.kills[kind] += 1
                self.killed_by = ""
                self.generation += 1
                self._spawn()

    killed_by = ""

    def kill(self, why: str) -> None:
        with self.lock:
            if self.stopping or self.proc is None or self.proc.poll() is not None:
                return
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # it died meanwhile and the watcher reaped it
                return
            self.killed_by = why

    def stop(self) -> int:
        with self.lock:
            self.stopping = True
            self.proc.send_signal(signal.SIGINT)
        return ended(self.proc, self.log)


class CrashAwarePlayer(Player):
    """People who never try again: every message and press is sent once, and the
    person waits for its answer across restarts (the intake owes them one). Only a
    missing notification sends them to /tugas, as a person would look there."""

    answer_wait = 90.0
    notice_wait = 4.0
    slow_wait = 150.0
    max_attempts = 1  # no retries: a goal not reached at the first attempt fails the test
    commit_wait = 90.0  # the answer came; its commit may follow a crash and a restart

    def __init__(self, bot: BotProcess, polls: dict) -> None:
        super().__init__(None)
        self.bot = bot
        self.polls = polls
        self.retries: Counter[str] = Counter()
        self.phases: list[str] = []
        self.t0 = time.monotonic()

    async def wait(self, user, *, after=None, predicate=None, text_contains=None, timeout=None):
        try:
            return await user.wait_for(predicate, text_contains=text_contains, after=after,
                                       timeout=max(timeout or 0, self.answer_wait))
        except TimeoutError as exc:
            raise NoAnswer(f"no answer in time: {exc}") from None

    def phase(self, name: str) -> None:
        self.phases.append(name)
        self._say(f"phase {name}")

    def step(self, n: int, text: str) -> None:
        self._say(f"step {n} done: {text}")

    def superseded(self, goal: str) -> None:
        self._say(f"{goal}: the pressed card was replaced after a crash; going on")

    def retried(self, goal: str, exc: BaseException) -> None:
        self.retries[goal] += 1
        self._say(f"retry {goal}: {exc.__class__.__name__}: {str(exc)[:160]}")

    def _say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s gen {self.bot.generation}] {text}",
              flush=True)


def _seed(db_url: str, year: int) -> dict[int, str]:
    from models import Person
    from models.migrate import upgrade
    from models.session import make_engine, make_sessionmaker

    upgrade(db_url)

    async def go() -> dict[int, str]:
        engine = make_engine(db_url)
        sm = make_sessionmaker(engine)
        async with sm() as s, s.begin():
            await apply_office(s, example_office(year))
            people = (await s.execute(select(Person).where(Person.active.is_(True))
                                      .order_by(Person.id))).scalars().all()
            codes = {}
            for p in people:
                inv = await create_invitation(s, p, now=SystemClock().now(), valid_days=2)
                codes[p.id] = inv.code
        await engine.dispose()
        return codes

    return asyncio.run(go())


def _arm(emu: EmulatorThread, bot: BotProcess, polls: dict, log: list[str],
         created: dict[int, int], handed: set[int], webhook: bool = False) -> None:
    """Wrap the emulator's methods (test-local): record the update id of every message
    and press a person sends (``created``: update id -> user id) and every update id
    ``getUpdates`` handed to the bot (``handed``); note when each bot generation first
    polls, kill at the N-th request of a start planned as ``request:N``, and kill a few
    moments after chosen button presses reach the bot."""
    emulator = emu.emulator
    pending_press = dict(KILL_AFTER_PRESS)
    state = {"requests": 0, "generation": -1}
    enqueue = emulator._enqueue

    async def recording_enqueue(body):
        update_id = emulator._next_update_id  # the id _enqueue gives it, before any await
        sender = (body.get("message") or body.get("callback_query") or {}).get("from", {})
        created[update_id] = sender.get("id")
        await enqueue(body)

    emulator._enqueue = recording_enqueue

    def reached_bot(result) -> None:
        handed.update(u["update_id"] for u in result)
        for update in result:
            data = (update.get("callback_query") or {}).get("data", "")
            for prefix, delay in list(pending_press.items()):
                if data.startswith(prefix):
                    del pending_press[prefix]
                    log.append(f"press {prefix} +{delay}s")
                    threading.Timer(delay, bot.kill, args=(f"press {prefix}",)).start()

    name, get_updates = emulator._methods["getupdates"]

    async def wrapped_get_updates(params):
        polls.setdefault(bot.generation, time.monotonic())
        result = await get_updates(params)
        reached_bot(result)
        return result

    emulator._methods["getupdates"] = (name, wrapped_get_updates)
    if webhook:  # an update reached the bot when its webhook answered 200 (after its commit)
        post = emulator.webhook_post

        async def recording_post(http, update):
            taken = await post(http, update)
            if taken:
                polls.setdefault(bot.generation, time.monotonic())
                reached_bot([update])
            return taken

        emulator.webhook_post = recording_post

    def counting(method_name, handler):
        async def wrapped(params):
            if state["generation"] != bot.generation:
                state["generation"], state["requests"] = bot.generation, 0
            state["requests"] += 1
            spec = bot.spec
            if spec.startswith("request:") and state["requests"] == int(spec.split(":")[1]):
                bot.kill("request")
                await asyncio.sleep(0.2)  # the bot is gone: the answer never arrives
            return await handler(params)
        return wrapped

    for key, (method_name, handler) in list(emulator._methods.items()):
        if key != "getupdates":
            emulator._methods[key] = (method_name, counting(method_name, handler))


KINDS = ("commit", "processing", "outbox_sent", "inbox_committed", "request", "processing")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# with the calls split off (SOPBOT_SPLIT_CALLS=always): also between an update's commit
# and its deferred calls (answering the button, taking the buttons off the old card)
SPLIT_KINDS = KINDS + ("committed_calls_pending",)


def _plan(rng: random.Random, kinds: tuple[str, ...] = KINDS) -> list[str]:
    plan = []
    for i in range(34):
        kind = kinds[i % len(kinds)]
        n = {"commit": rng.randint(2, 10), "processing": rng.randint(1, 5),
             "inbox_committed": rng.randint(1, 3), "outbox_sent": rng.randint(1, 4),
             "request": rng.randint(2, 10), "committed_calls_pending": rng.randint(1, 4)}[kind]
        plan.append(f"{kind}:{n}")
    return plan


@pytest.mark.parametrize("mode", ["polling", "webhook", "split"])
def test_a_cycle_survives_sigkill_at_30_points(tmp_path, mode):
    """Polling: the bot's own getUpdates loop confirms an update (the next offset) only
    after its inbox commit. Webhook: the emulator POSTs every update to the bot's webhook
    (with its secret) until it answers 200, which it does only after the commit; a bot
    killed meanwhile gets the update again from the emulator, as from Telegram. Split:
    polling, with every update's Bot API calls made outside the write lock (as on a real
    network, ``Intake.split_calls``), also killed between a commit and its deferred
    calls."""
    t0 = time.monotonic()
    db_path = tmp_path / "crash.db"
    db_url = f"sqlite:///{db_path}"
    today = to_wib(SystemClock().now()).date()
    kind, year, quarter = period_choices(today)[0]
    codes = _seed(db_url, year)
    rng = random.Random(SEED)
    polls: dict[int, float] = {}
    kill_log: list[str] = []
    created: dict[int, int] = {}
    handed: set[int] = set()

    with EmulatorThread() as emu:
        cfg = tmp_path / "config.toml"
        webhook = ""
        if mode == "webhook":
            port = _free_port()
            webhook = (f'mode = "webhook"\nwebhook_url = "https://bot.example.go.id/tg/hook"\n'
                       f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
                       f'webhook_secret = "rahasia-uji-{SEED}"\n')
            emu.call(emu.emulator.deliver_webhook_to, f"http://127.0.0.1:{port}")
        cfg.write_text(
            f'[telegram]\napi_base_url = "{emu.base_url}"\nfile_base_url = "{emu.base_file_url}"\n'
            f'{webhook}[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "files"}"\n')
        split = mode == "split"
        bot = BotProcess(cfg, tmp_path, _plan(rng, SPLIT_KINDS if split else KINDS),
                         env={"SOPBOT_SPLIT_CALLS": "always"} if split else None)
        _arm(emu, bot, polls, kill_log, created, handed, webhook=mode == "webhook")
        player = CrashAwarePlayer(bot, polls)
        bot.start()
        try:
            result = emu.run(_play(emu, db_url, codes, player,
                                   period_label(kind, year, quarter)), timeout=420)
            outbox = emu.run(_wait_outbox(db_url), timeout=120)
        finally:
            rc = bot.stop()
        check = _check(emu, result, outbox)
        intake = emu.run(_intake(db_url), timeout=60)
    audit = subprocess.run([sys.executable, "-m", "bot", "--config", str(cfg), "audit", "verify"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))

    kills = sum(bot.kills.values())
    seconds = time.monotonic() - t0
    print(f"\ncrash safety ({mode}): {kills} kill points survived ({dict(bot.kills)}), "
          f"{check['duplicates']} duplicate notification(s) of {check['notifications']}, "
          f"{len(created)} updates sent by the people, {result['updates']} processed, "
          f"{result['commits_confirmed']} answers confirmed, "
          f"{sum(player.retries.values())} retries by the people, "
          f"{result['stale']} presses on a card replaced after a crash, "
          f"letter numbers {result['numbers']}, {seconds:.0f} s")
    assert rc == 0 and not bot.unexpected, (rc, bot.unexpected)
    assert kills >= MIN_KILLS, (bot.kills, kill_log)
    # every update a person sent: handed to the bot, processed exactly once, no error
    assert created and all(who is not None for who in created.values())
    assert set(created) <= handed, sorted(set(created) - handed)
    assert intake["rows"] == sorted(created), (set(created) ^ set(intake["rows"]))
    assert intake["unprocessed"] == [] and intake["errors"] == {}, intake
    # ... and its effect happened once: one submission per answer typed, on its indicator
    assert result["submissions_wrong"] == [], result["submissions_wrong"]
    assert sum(player.retries.values()) == 0, player.retries
    # a press refused because a crash made the bot send the card again (a call Telegram
    # carried out while the bot died: the one call the journal cannot vouch for); the
    # person went on from the newer card: never more than the crashes
    assert result["stale"] <= kills, result["stale"]
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # a duplicate needs a crash between Telegram accepting a message and the bot
    # recording it: never more duplicates than crashes
    print(f"duplicated notifications: {check['duplicated']}")
    assert check["duplicates"] <= kills, check
    assert result["closed"]


async def _play(emu: EmulatorThread, db_url: str, codes: dict[int, str], player, period) -> dict:
    from models import Inbox
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    users = {pid: emu.emulator.add_user(user_id=800_000 + pid, first_name=f"P{pid}")
             for pid in codes}
    script = ScriptedCycle(sm, users, player, period=period)
    try:
        for pid, code in codes.items():
            await script.register(pid, code)
        await script.run()
        closed = await script.cycle_closed()
        missing = []
        for code, value in script.confirmed:
            if not await _saved_any(sm, code, value):
                missing.append((code, value))
        numbers = await _numbers(sm)
        wrong = await _submissions_wrong(sm)
        async with sm() as s:
            updates = (await s.execute(select(func.count(Inbox.update_id)).where(
                Inbox.processed_at.is_not(None)))).scalar()
    finally:
        await engine.dispose()
    assert not missing, f"answers confirmed with 'Tersimpan' but not in the database: {missing}"
    return {"closed": closed, "numbers": numbers, "updates": updates,
            "commits_confirmed": len(script.confirmed), "direct": script.direct_cards,
            "submissions_wrong": wrong, "stale": script.restarts_after_stale}


async def _submissions_wrong(sm) -> list:
    """Each answer typed once becomes exactly one submission, on the indicator it
    answers: a second run of an update would add a second one, or put the answer on the
    next question."""
    from bot.devtools.scenario import ANSWERS, CORRECTION
    from models import Indicator, Submission

    allowed: dict[str, set[str]] = {}
    for pairs in ANSWERS.values():
        for code, value in pairs:
            allowed.setdefault(code, set()).add(value)
    allowed[CORRECTION[0]].add(CORRECTION[1])
    async with sm() as s:
        rows = (await s.execute(
            select(Indicator.code, Submission.raw_text, Submission.skipped)
            .join(Indicator, Indicator.id == Submission.indicator_id))).all()
    wrong = [(c, v) for c, v, skipped in rows if skipped or v not in allowed.get(c, ())]
    counts = Counter((c, v) for c, v, _ in rows)
    wrong += [(c, v, n) for (c, v), n in counts.items() if n > 1]
    if len(rows) != sum(len(v) for v in allowed.values()):
        wrong.append(("submissions", len(rows)))
    return wrong


async def _intake(db_url: str) -> dict:
    from models import Inbox
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = (await s.execute(select(Inbox.update_id, Inbox.processed_at, Inbox.error)
                                    .order_by(Inbox.update_id))).all()
    finally:
        await engine.dispose()
    return {"rows": [i for i, _, _ in rows], "unprocessed": [i for i, p, _ in rows if p is None],
            "errors": {i: e for i, _, e in rows if e}}


async def _saved_any(sm, code: str, value: str) -> bool:
    from models import Indicator, Submission

    async with sm() as s:
        return (await s.execute(
            select(func.count(Submission.id)).join(Indicator, Indicator.id == Submission.indicator_id)
            .where(Indicator.code == code, Submission.raw_text == value))).scalar() > 0


async def _numbers(sm) -> list[str]:
    from models import LetterNumber
    from models.documents import LetterCounter

    async with sm() as s:
        rows = (await s.execute(select(LetterNumber.year, LetterNumber.sequence, LetterNumber.number)
                                .order_by(LetterNumber.year, LetterNumber.sequence))).all()
        counters = {y: n for y, n in (await s.execute(
            select(LetterCounter.year, LetterCounter.last_sequence))).all()}
    by_year: dict[int, list[int]] = {}
    for year, seq, _ in rows:
        by_year.setdefault(year, []).append(seq)
    for year, seqs in by_year.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"letter numbers of {year}: {seqs}"
        assert counters[year] == len(seqs), (counters, seqs)
    assert len({n for _, _, n in rows}) == len(rows)
    assert len(rows) == 1  # one cycle, one letter
    return [n for _, _, n in rows]


async def _wait_outbox(db_url: str) -> list:
    """Wait until the outbox has delivered everything; return the rows."""
    from models import Outbox
    from models.enums import OutboxStatus
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    try:
        for _ in range(400):
            async with sm() as s:
                rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
            if rows and all(r.status == OutboxStatus.SENT for r in rows):
                return rows
            assert not [r for r in rows if r.status == OutboxStatus.FAILED]
            await asyncio.sleep(0.25)
        raise AssertionError(f"outbox not delivered: {[(r.id, r.status) for r in rows if r.status != OutboxStatus.SENT]}")
    finally:
        await engine.dispose()


def _original_text(msg) -> str:
    """The text or caption the message was sent with (before any edit)."""
    if msg.edits:
        first = msg.edits[0]
        return first.text if first.text is not None else (first.caption or "")
    return msg.content


def _messages(outbox: list) -> list:
    """The outbox rows that are messages a person got: not the rows that remove
    keyboards or record a direct answer, not a message not sent because what it asked
    for was done or replaced before its turn (``bot.core.outbox.retire``)."""
    from bot.core.outbox import DIRECT, REMOVE_KEYBOARD

    return [row for row in outbox if row.kind not in (REMOVE_KEYBOARD, DIRECT)
            and not (row.telegram_message_id is None
                     and row.last_error.startswith("not sent: no longer applies"))]


def _check(emu: EmulatorThread, result: dict, outbox: list) -> dict:
    """Every outbox row is in its chat; per (chat, text) the emulator shows as many
    messages as there are rows, or one more per row at most (a crash between Telegram
    accepting and the bot recording)."""
    # cards the people opened themselves (answers to /tugas presses, same text as the
    # notification); a message the outbox recorded as its own is never one of them
    outbox = _messages(outbox)
    direct = result["direct"] - {(row.chat_id, row.telegram_message_id) for row in outbox}
    expected: Counter[tuple[int, str]] = Counter()
    for row in outbox:
        text, _ = parse_html(row.payload["text"])
        expected[(row.chat_id, text.strip())] += 1

    def collect():
        seen: Counter[tuple[int, str]] = Counter()
        ids: dict[int, set[int]] = {}
        for user in emu.emulator.users:
            ids[user.chat_id] = {m.message_id for m in user.messages}
            for m in user.messages:
                if (user.chat_id, m.message_id) in direct or not m.content:
                    continue
                key = (user.chat_id, (_original_text(m) or "").strip())
                if key in expected:
                    seen[key] += 1
        return seen, ids

    seen, ids = emu.run(_call(collect))
    for row in outbox:
        assert row.telegram_message_id in ids[row.chat_id], row.id
    lost = {k: (n, seen[k]) for k, n in expected.items() if seen[k] < n}
    assert not lost, f"notifications not delivered: {lost}"
    extra = {k: seen[k] - n for k, n in expected.items() if seen[k] > n}
    return {"duplicates": sum(extra.values()), "notifications": len(outbox),
            "duplicated": {f"{chat}: {text[:50]!r}": n for (chat, text), n in extra.items()}}


async def _call(fn):
    return fn()
