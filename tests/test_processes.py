"""Several bot processes on one PostgreSQL database (``bot/telegram/processes.py``).

The quick tests check the parts: a process's name is unique even where host name and
pid are the same (containers), a process is alive while its life lock is held and its
claims are freed when it is not, and a chat's rows are claimed by one process at a
time, in order.

The slow test runs three ``python -m bot run`` processes against one emulator and one
database while people write continuously and messages are queued in the outbox; the
process that receives the updates is SIGKILLed in the middle of an update (after its
handlers ran, before its commit). Then: another process receives, the killed process's
claims are taken over, every update is processed exactly once and each person's in
order, every person got one answer per message, every outbox row is sent (and none
twice, except where the kill fell between Telegram accepting a message and its
recording), and ``sopbot audit verify`` passes.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from bot.devtools.botprocess import BotProcess
from bot.telegram import processes
from bot.telegram.intake import MAX_CONCURRENT
from models import Inbox, Office, Outbox, Person
from models.enums import OutboxStatus, Role
from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[1]

needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="several processes need PostgreSQL: set SOPBOT_TEST_DATABASE_URL")


def test_a_process_name_is_unique_with_the_same_host_and_pid(monkeypatch):
    monkeypatch.setattr(processes.socket, "gethostname", lambda: "bot")
    monkeypatch.setattr(processes.os, "getpid", lambda: 1)
    names = set()
    for _ in range(50):
        monkeypatch.setattr(processes, "_IDENTITY", None)
        names.add(processes.identity())
    assert len(names) == 50
    assert all(n.startswith("bot:1:") and len(n) <= 40 for n in names)
    assert processes.process_of(next(iter(names)) + ":3:17") == next(iter(names))


def _row(update_id: int, chat: int, claimed_by: str | None = None) -> Inbox:
    return Inbox(update_id=update_id, chat_key=chat, payload={"update_id": update_id},
                 error="", claimed_by=claimed_by)


@needs_postgres
async def test_claims_of_a_dead_process_are_freed_and_a_live_ones_kept(
        sessionmaker, monkeypatch):
    """Two names with the same host and pid: only the one whose life lock is held is
    alive; the other's inbox claim and its outbox row left sending are taken over."""
    me = processes.identity()
    ghost = ":".join(me.split(":")[:2] + ["0123456789"])  # same host and pid, not alive
    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas", regency="Kab")
        s.add(office)
        await s.flush()
        p = Person(office_id=office.id, name="P", role=Role.STAF, telegram_user_id=7)
        s.add(p)
        await s.flush()
        s.add_all([_row(1, 7, me), _row(2, 8, ghost), _row(3, 9)])
        for n, who in enumerate([me, ghost]):
            s.add(Outbox(person_id=p.id, chat_id=7, kind="t", payload={"text": f"m{n}"},
                         status=OutboxStatus.SENDING, claimed_by=f"{who}:1:{n}"))
    life = await processes.Life.join(sessionmaker)
    try:
        assert await processes.release_dead(sessionmaker) == (1, 1)
        async with sessionmaker() as s:
            inbox = dict((await s.execute(select(Inbox.update_id, Inbox.claimed_by))).all())
            outbox = dict((await s.execute(select(Outbox.claimed_by, Outbox.status))).all())
        assert inbox == {1: me, 2: None, 3: None}
        assert outbox == {f"{me}:1:0": OutboxStatus.SENDING, f"{ghost}:1:1": OutboxStatus.PENDING}
    finally:
        await life.leave()
    # this process gone (its lock released): its own claim is free too
    assert await processes.release_dead(sessionmaker) == (1, 1)


@needs_postgres
async def test_a_user_that_joins_while_the_life_lock_is_taken_waits_for_it(sessionmaker):
    """The intake and the outbox sender join the process's life at start: the second to
    join finds the lock held, not missing (it took a missing one for a lock held by
    another process: "another process receives the updates", and no receiving for 2 s)."""
    async def second() -> tuple:
        life = await processes.Life.join(sessionmaker)
        return life, life.alive, await life.try_lead("receive")

    first, (life, alive, leads) = await asyncio.gather(processes.Life.join(sessionmaker),
                                                        second())
    try:
        assert life is first and alive and leads
    finally:
        await life.leave()
        await first.leave()
    assert not first.alive


@needs_postgres
async def test_a_chat_is_claimed_by_one_process_at_a_time_in_order(sessionmaker):
    a, b = "h:1:aaaaaaaaaa", "h:1:bbbbbbbbbb"
    async with sessionmaker() as s, s.begin():
        s.add_all([_row(10, 1), _row(11, 1), _row(12, 2), _row(13, 1), _row(14, 3)])
    # a takes one row: the first of chat 1
    assert await processes.claim_inbox(sessionmaker, a, 1) == 1
    # b may take nothing of chat 1 (its first row is a's): chats 2 and 3
    assert await processes.claim_inbox(sessionmaker, b, 10) == 2
    # a takes the rest of chat 1, in rounds, behind its own row
    assert await processes.claim_inbox(sessionmaker, a, 10) == 2
    async with sessionmaker() as s:
        owners = dict((await s.execute(select(Inbox.update_id, Inbox.claimed_by))).all())
    assert owners == {10: a, 11: a, 12: b, 13: a, 14: b}
    assert [r[0] for r in await processes.my_rows(sessionmaker, a, [], 10)] == [10, 11, 13]
    # chat 1's first row processed by a, the rest given back: a keeps the chat for
    # CHAT_AFFINITY seconds (its rate limiter knows the chat's last request) ...
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Inbox).where(Inbox.update_id == 10)
                        .values(processed_at=processes.utcnow()))
    assert await processes.release_mine(sessionmaker, a) == 2
    assert await processes.claim_inbox(sessionmaker, b, 10) == 0
    # ... then b may take chat 1
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Inbox).where(Inbox.update_id == 10).values(
            processed_at=processes.utcnow()
            - timedelta(seconds=processes.CHAT_AFFINITY + 1)))
    assert await processes.claim_inbox(sessionmaker, b, 10) == 2
    assert [r[0] for r in await processes.my_rows(sessionmaker, b, [], 10)] == [11, 12, 13, 14]


@needs_postgres
async def test_a_chat_goes_on_with_the_process_that_processed_it_moments_ago(sessionmaker):
    a, b = "h:1:aaaaaaaaaa", "h:1:bbbbbbbbbb"
    async with sessionmaker() as s, s.begin():
        s.add_all([_row(20, 5, a), _row(21, 6, b), _row(22, 5), _row(23, 6), _row(24, 7)])
        await s.flush()
        await s.execute(update(Inbox).where(Inbox.update_id.in_([20, 21]))
                        .values(processed_at=processes.utcnow()))
    assert await processes.claim_inbox(sessionmaker, b, 10) == 2  # its chat 6, and chat 7
    assert await processes.claim_inbox(sessionmaker, a, 10) == 1  # its chat 5
    async with sessionmaker() as s:
        owners = dict((await s.execute(select(Inbox.update_id, Inbox.claimed_by)
                                       .where(Inbox.update_id >= 22))).all())
    assert owners == {22: a, 23: b, 24: b}



@needs_postgres
async def test_a_stored_row_is_claimed_in_its_store_only_when_nothing_comes_before_it(
        sessionmaker):
    """:func:`processes.claim_stored`, in the transaction that inserts the rows: it
    claims the first row of a chat nobody works on, and a row whose chat's earlier
    unprocessed rows are this process's, on its queues (the row joins them there); it
    leaves to the usual claims a row with an earlier unprocessed row of its chat
    (another process's, nobody's, or this process's own not queued yet, which must go
    first; also one inserted in the same transaction), a chat another process processed
    moments ago, and a sender who waits for the TTE passphrase."""
    from bot.core.secret_input import PASSPHRASE
    from models import Conversation

    me, other = "h:1:aaaaaaaaaa", "h:1:bbbbbbbbbb"
    async with sessionmaker() as s, s.begin():
        office = Office(name='Dinas "Tenaga Kerja" & <Perindustrian>', regency="Kab")
        s.add(office)
        await s.flush()
        signer = Person(office_id=office.id, name="Kadis 🔐 A. B.", role=Role.KADIS,
                        telegram_user_id=35)
        s.add(signer)
        await s.flush()
        s.add(Conversation(person_id=signer.id, kind=PASSPHRASE, state="asked", data={}))
        s.add_all([_row(1, 31, other), _row(2, 32), _row(3, 33, me), _row(4, 34, other),
                   _row(5, 37, me), _row(6, 37, me), _row(7, 38, other), _row(8, 39)])
        await s.flush()
        await s.execute(update(Inbox).where(Inbox.update_id == 4)
                        .values(processed_at=processes.utcnow()))
    async with sessionmaker() as s, s.begin():
        s.add_all([_row(10, 30), _row(11, 30), _row(12, 31), _row(13, 32), _row(14, 33),
                   _row(15, 34), _row(16, 35), _row(17, 36), _row(18, 37), _row(19, 38),
                   _row(20, 39)])
        await s.flush()
        # on this process's queues: its rows 5 and 6 (chat 37), row 7 of chat 38, which
        # another process has taken over since, and row 8 of chat 39, whose claim was
        # freed since (this process taken for dead)
        claimed = await processes.claim_stored(s, me, list(range(10, 21)), {5, 6, 7, 8})
    assert claimed == {10, 17, 18}
    async with sessionmaker() as s:
        owners = dict((await s.execute(select(Inbox.update_id, Inbox.claimed_by)
                                       .where(Inbox.update_id >= 10))).all())
    assert owners == {10: me, 11: None, 12: None, 13: None, 14: None, 15: None, 16: None,
                      17: me, 18: me, 19: None, 20: None}
    # the rows left are claimed as before (chat 31 stays the other's, chat 34 with the
    # one that processed it moments ago, chat 38 the other's, chat 39 free)
    assert await processes.claim_inbox(sessionmaker, me, 10) == 7
    assert [r[0] for r in await processes.my_rows(sessionmaker, me, [], 20)] == [
        2, 3, 5, 6, 8, 10, 11, 13, 14, 16, 17, 18, 20]

# ------------------------------------------------------------------ three processes
PEOPLE = 24          # people writing to the bot (not registered: one answer per message)
MESSAGES = 8         # messages each
RECIPIENTS = 20      # people receiving queued messages (the outbox)
QUEUED = 6           # outbox messages each, queued while the people write
# the receiver dies after its 10th update's handlers ran (it processes a share of the
# updates: a chat stays with the process that processed it moments ago, and the
# receiver, also the outbox sender, is slower to claim; 24 of 192 in one run)
KILL_AT = "processing:10"


class Proc(BotProcess):
    """A bot process of these tests: debug logging (the claims are logged)."""

    def __init__(self, n: int, config: Path, cwd: Path, crash: str = "") -> None:
        super().__init__(n, config, cwd, crash=crash, verbose=True)


def _prepare(db_url: str) -> None:
    from models.migrate import upgrade
    from models.session import make_engine

    async def reset() -> None:
        engine = make_engine(db_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())
    upgrade(db_url)


async def _recipients(db_url: str, emu) -> list[int]:
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    ids = []
    async with make_sessionmaker(engine)() as s, s.begin():
        office = Office(name="Dinas Uji", regency="Kab Uji")
        s.add(office)
        await s.flush()
        for i in range(RECIPIENTS):
            uid = 910_000 + i
            emu.add_user(user_id=uid, first_name=f"R{i}").started = True
            person = Person(office_id=office.id, name=f"R{i}", role=Role.STAF,
                            telegram_user_id=uid)
            s.add(person)
            await s.flush()
            ids.append(person.id)
    await engine.dispose()
    return ids


async def _traffic(emu, db_url: str, recipients: list[int], rng: random.Random) -> dict:
    """People write continuously (each message a moment after the previous one, not
    waiting for answers) while messages are queued in the outbox in small batches."""
    from bot.core.outbox import enqueue
    from models.base import utcnow
    from models.session import make_engine, make_sessionmaker

    users = [emu.add_user(user_id=920_000 + i, first_name=f"W{i}") for i in range(PEOPLE)]
    sent: dict[int, list[str]] = {u.user_id: [] for u in users}

    async def person(user) -> None:
        for k in range(MESSAGES):
            await asyncio.sleep(rng.uniform(0.2, 1.6))
            body = f"pesan {user.user_id}-{k}"
            await user.send_text(body)
            sent[user.user_id].append(body)

    async def queue() -> None:
        engine = make_engine(db_url)
        sm = make_sessionmaker(engine)
        try:
            for k in range(QUEUED):
                async with sm() as s, s.begin():
                    people = (await s.execute(select(Person).where(
                        Person.id.in_(recipients)))).scalars().all()
                    for p in people:
                        await enqueue(s, p, "uji", f"kabar {p.id}-{k}", at=utcnow())
                await asyncio.sleep(1.0)
        finally:
            await engine.dispose()

    await asyncio.gather(queue(), *(person(u) for u in users))
    return sent


async def _answered(emu, sent: dict[int, list[str]], timeout: float) -> dict[int, int]:
    end = time.monotonic() + timeout
    while True:
        answers = {uid: len([m for m in emu.user(uid).messages if "terdaftar" in m.text])
                   for uid in sent}
        if all(answers[u] >= len(b) for u, b in sent.items()) or time.monotonic() > end:
            return answers
        await asyncio.sleep(0.5)


async def _outcome(db_url: str, timeout: float) -> dict:
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    end = time.monotonic() + timeout
    try:
        while True:
            async with sm() as s:
                inbox = (await s.execute(select(
                    Inbox.update_id, Inbox.chat_key, Inbox.processed_at, Inbox.error,
                    Inbox.claimed_by).order_by(Inbox.update_id))).all()
                outbox = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
            busy = [r for r in inbox if r.processed_at is None] + [
                r for r in outbox if r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)]
            if not busy or time.monotonic() > end:
                return {"inbox": inbox, "outbox": outbox}
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


@pytest.mark.slow
@needs_postgres
def test_three_processes_one_killed_nothing_lost_nothing_twice(tmp_path):
    from bot.devtools.emulator import EmulatorThread

    t0 = time.monotonic()
    db_url = POSTGRES_URL
    _prepare(db_url)
    rng = random.Random(16)
    procs: list[Proc] = []
    with EmulatorThread() as emu:
        emulator = emu.emulator
        recipients = emu.run(_recipients(db_url, emulator))
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[telegram]\napi_base_url = "{emu.base_url}"\n'
            f'file_base_url = "{emu.base_file_url}"\n'
            f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "files"}"\n')
        try:
            # the first process becomes the receiver; it dies in the middle of an update
            procs.append(Proc(0, cfg, tmp_path, crash=KILL_AT))
            procs[0].wait_for(r"process \S+ receives the updates", 60)
            procs += [Proc(n, cfg, tmp_path) for n in (1, 2)]
            for p in procs[1:]:
                p.wait_for(r"another process receives the updates", 60)
            sent = emu.run(_traffic(emulator, db_url, recipients, rng), timeout=120)
            emu.run(_answered(emulator, sent, 90), timeout=120)
            outcome = emu.run(_outcome(db_url, 60), timeout=90)
            names = [p.name() for p in procs]
            killed_rc = procs[0].proc.wait(timeout=5)
            logs = [p.text() for p in procs]
        finally:
            rcs = [p.stop() for p in procs]
        messages = {u.user_id: [m.text for m in u.messages] for u in emulator.users}
    audit = subprocess.run([sys.executable, "-m", "bot", "--config", str(cfg), "audit", "verify"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))

    inbox, outbox = outcome["inbox"], outcome["outbox"]
    answers = {u: len([t for t in messages[u] if "terdaftar" in t]) for u in sent}
    by_process = Counter(r.claimed_by for r in inbox)
    # the outbox: each row's text as often as the emulator got it
    copies = Counter(t for texts in messages.values() for t in texts if t.startswith("kabar"))
    twice = {r.payload["text"]: r.attempts for r in outbox if copies[r.payload["text"]] > 1}
    takeover = [line for log in logs[1:] for line in log.splitlines()
                if "claims of stopped processes taken over" in line]
    print(f"\nthree processes: {len(inbox)} updates ({dict(by_process)}), answers sent "
          f"twice: {sum(answers.values()) - len(inbox)}, {len(outbox)} outbox rows, sent "
          f"twice: {twice or 'none'}; take-over: {takeover}; "
          f"{time.monotonic() - t0:.0f} s")

    # the receiver was SIGKILLed mid-update, the others stopped cleanly
    assert killed_rc == -signal.SIGKILL, logs[0][-3000:]
    assert rcs[1:] == [0, 0], [log[-2000:] for log in logs[1:]]
    # another process took over receiving, and the dead one's claims
    assert any("receives the updates" in log for log in logs[1:])
    assert takeover and names[0] in " ".join(takeover)
    # every update: stored, processed exactly once, no error, each person's in order
    assert len(inbox) == PEOPLE * MESSAGES
    assert [r.update_id for r in inbox if r.processed_at is None] == []
    assert {r.update_id: r.error for r in inbox if r.error} == {}
    for chat in sent:
        times = [r.processed_at for r in inbox if r.chat_key == chat]
        assert times == sorted(times), chat
    # the work was shared: every process processed updates; the update the killed one
    # had in hand was processed by another
    assert set(by_process) == set(names), (by_process, names)
    # every person: one answer per message. An answer is sent twice only where the
    # kill fell inside the call (Telegram carried it out, the answer never reached the
    # call journal): an update the killed process had in hand, at most one each (the
    # update at the crash point itself had its answer journaled: not sent again)
    assert all(answers[u] >= MESSAGES for u in sent), answers
    freed = sum(int(n) for n in re.findall(r"taken over: (\d+) update", " ".join(takeover)))
    extra = sum(answers[u] - MESSAGES for u in sent)
    assert extra <= min(freed, MAX_CONCURRENT) - 1, (answers, freed)
    # every outbox row sent; a row sent twice only where the process holding it died
    # between Telegram's acceptance and the record (it was then claimed a second time)
    assert len(outbox) == RECIPIENTS * QUEUED
    assert all(r.status == OutboxStatus.SENT for r in outbox), [
        (r.id, r.status, r.last_error) for r in outbox if r.status != OutboxStatus.SENT]
    assert all(copies[r.payload["text"]] >= 1 for r in outbox)
    assert all(attempts >= 2 for attempts in twice.values()), twice
    assert audit.returncode == 0, audit.stdout + audit.stderr
