"""The outbox sender: paced, retried, and never sends a row twice, even with two
senders on one database (rows claimed with FOR UPDATE SKIP LOCKED on PostgreSQL)."""
from __future__ import annotations

import asyncio

from sqlalchemy import select
from telegram.ext import ExtBot

from bot.emulator import BotApiEmulator, FaultPlan
from bot.harness import TEST_TOKEN
from bot.outbox import enqueue
from bot.outbox_sender import OutboxSender
from models import Office, Outbox, Person
from models.enums import OutboxStatus, Role


async def _people_with_messages(sessionmaker, emu, clock, n: int, per_person: int = 1):
    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas", regency="Kab")
        s.add(office)
        await s.flush()
        for i in range(n):
            uid = 800_000 + i
            emu.add_user(user_id=uid, first_name=f"P{i}").started = True
            p = Person(office_id=office.id, name=f"P{i}", role=Role.STAF, telegram_user_id=uid)
            s.add(p)
            await s.flush()
            for k in range(per_person):
                await enqueue(s, p, "t", f"pesan {i}-{k}", at=clock.now())


async def _bot(emu):
    bot = ExtBot(TEST_TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url)
    await bot.initialize()
    return bot


async def test_two_senders_never_send_the_same_row(sessionmaker, services, clock):
    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    async with BotApiEmulator(token=TEST_TOKEN) as emu:
        await _people_with_messages(sessionmaker, emu, clock, 40, per_person=2)
        bot_a, bot_b = await _bot(emu), await _bot(emu)
        a = OutboxSender(bot_a, sessionmaker, services, batch=7)
        b = OutboxSender(bot_b, sessionmaker, services, batch=7)
        for _ in range(30):
            n = await asyncio.gather(a.deliver_once(), b.deliver_once())
            if sum(n) == 0:
                break
        texts = [m.text for u in emu.users for m in u.messages]
        assert len(texts) == 80 and len(set(texts)) == 80
        # per chat the order is kept
        for u in emu.users:
            assert [m.text for m in u.messages] == sorted(m.text for m in u.messages)
        async with sessionmaker() as s:
            rows = (await s.execute(select(Outbox))).scalars().all()
            assert all(r.status == OutboxStatus.SENT and r.telegram_message_id for r in rows)
        assert a.sent > 0 and b.sent > 0 or a.sent + b.sent == 80
        await bot_a.shutdown()
        await bot_b.shutdown()


async def test_faults_are_retried_and_refusals_recorded(sessionmaker, services, clock):
    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    async with BotApiEmulator(token=TEST_TOKEN) as emu:
        await _people_with_messages(sessionmaker, emu, clock, 20)
        emu.users[0].block()
        emu.faults = FaultPlan(rate=0.3, kinds=("500", "502", "429"), seed=7, retry_after=1)
        bot = await _bot(emu)
        sender = OutboxSender(bot, sessionmaker, services)
        for _ in range(40):
            clock.advance(seconds=70)  # backoff and retry_after pass on the injected clock
            await sender.deliver_once()
            async with sessionmaker() as s:
                pending = (await s.execute(select(Outbox).where(
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).scalars().all()
            if not pending:
                break
        async with sessionmaker() as s:
            rows = {r.chat_id: r for r in (await s.execute(select(Outbox))).scalars()}
        blocked = rows.pop(emu.users[0].chat_id)
        assert blocked.status == OutboxStatus.FAILED and "blocked" in blocked.last_error
        assert all(r.status == OutboxStatus.SENT for r in rows.values())
        assert sum(emu.stats.faults_injected.values()) > 0
        for u in emu.users[1:]:
            assert len([m for m in u.messages if m.text.startswith("pesan")]) == 1
        await bot.shutdown()
