"""Run the bot against the local Bot API emulator, with simulated people.

Used by the demo, the end-to-end tests and the benchmarks: everything goes over real
HTTP on 127.0.0.1, exactly as with Telegram.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from bot.telegram.app import build_application
from bot.devtools.emulator import BotApiEmulator, SimUser
from bot.core.onboarding import create_invitation
from bot.core.services import Services
from models import Person

log = logging.getLogger(__name__)

TEST_TOKEN = "123456:EMULATOR-LOCAL-TOKEN"
USER_ID_BASE = 700_000
STOP_LIMIT = 90.0  # stopping the bot takes a second or two; beyond this it is stuck


def _task_stacks() -> str:
    """Where each asyncio task of the loop waits (the report of a stuck stop)."""
    import io

    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=12, file=out)
    return out.getvalue()


@dataclass
class Harness:
    services: Services
    sessionmaker: object
    emulator: BotApiEmulator | None = None
    app: object = None
    users: dict[int, SimUser] = field(default_factory=dict)  # person id -> user
    run_jobs: bool = False
    rate_limit: bool = True

    async def start(self, *, emulator: BotApiEmulator | None = None) -> "Harness":
        if emulator is None:
            emulator = BotApiEmulator(token=TEST_TOKEN)
            await emulator.start()
        self.emulator = emulator
        emulator.settle_hook = self.committed
        await self.start_bot()
        return self

    async def committed(self, chat_id: int | None = None) -> None:
        """The bot answers before the update's transaction commits (``bot/telegram/intake.py``):
        a simulated person who saw the answer looks at the database after that commit,
        i.e. once the updates of their chat being processed now have committed (of
        every chat without ``chat_id``)."""
        intake = self.app.bot_data.get("intake") if self.app is not None else None
        if intake is None:
            return
        waiting = intake.in_hand(chat_id)
        for _ in range(2000):  # at most 10 s
            if not waiting & intake.in_hand():
                return
            await asyncio.sleep(0.005)

    async def start_bot(self) -> None:
        self.app = build_application(
            self.services, self.sessionmaker, token=TEST_TOKEN,
            base_url=self.emulator.base_url, base_file_url=self.emulator.base_file_url,
            run_jobs=self.run_jobs, rate_limit=self.rate_limit)
        limiter = self.app.bot.rate_limiter
        if limiter is not None and not self.emulator.enforce_limits:
            # an emulator without Telegram's limits: no request waits for its chat's
            # turn (the tests of the turns enforce the limits)
            limiter.per_chat = 0.0
        await self.app.initialize()
        await self.app.post_init(self.app)  # run_polling() would call it; we drive by hand
        await self.app.start()
        self.intake.poll_timeout = 1
        await self.intake.start()

    async def stop_bot(self) -> None:
        if self.app is None:
            return
        stage = "intake"
        try:
            async with asyncio.timeout(STOP_LIMIT):
                await self.intake.stop()
                if self.app.running:
                    stage = "application"
                    await self.app.stop()
                    stage = "post_stop"
                    await self.app.post_stop(self.app)
                stage = "shutdown"
                await self.app.shutdown()
        except TimeoutError:
            raise RuntimeError(f"the bot did not stop within {STOP_LIMIT:.0f} s (at "
                               f"{stage}); its tasks:\n{_task_stacks()}") from None
        self.app = None

    async def restart_bot(self) -> None:
        await self.stop_bot()
        await self.start_bot()

    async def stop(self) -> None:
        await self.stop_bot()
        if self.emulator is not None:
            await self.emulator.stop()

    @property
    def sender(self):
        return self.app.bot_data["sender"]

    @property
    def intake(self):
        return self.app.bot_data["intake"]

    def user_for(self, person: Person) -> SimUser:
        if person.id not in self.users:
            first = person.name.split(",")[0][:60]
            self.users[person.id] = self.emulator.add_user(
                user_id=USER_ID_BASE + person.id, first_name=first)
        return self.users[person.id]

    async def register(self, person: Person, timeout: float = 30.0) -> SimUser:
        """Invite ``person`` and have them send /start <code>."""
        async with self.sessionmaker() as session, session.begin():
            p = await session.get(Person, person.id)
            inv = await create_invitation(session, p, now=self.services.clock.now(),
                                          valid_days=14)
        user = self.user_for(person)
        sent = await user.send_command("/start", inv.code)
        await user.wait_for(text_contains="Selamat datang", after=sent, timeout=timeout)
        return user

    async def register_all(self) -> dict[int, SimUser]:
        async with self.sessionmaker() as session:
            people = (await session.execute(
                select(Person).where(Person.active.is_(True)).order_by(Person.id))).scalars().all()
        for p in people:
            await self.register(p)
        return self.users

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until the bot has taken every update (and taken off the old cards'
        buttons it left for a quiet moment) and no due message is unsent (the background
        sender may be in the middle of one: wait for it too)."""
        from models import Outbox
        from models.enums import OutboxStatus

        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            await asyncio.sleep(0.02)
            if self.emulator.updates_pending() or await self.intake.pending():
                continue
            await asyncio.wait_for(self.intake.later_done(), max(0.1, end - loop.time()))
            compiler = self.app.bot_data.get("compiler")
            if compiler is not None and await compiler.busy():
                continue  # a compile in the background: its message is yet to come
            await self.sender.drain(timeout=max(0.1, end - loop.time()))
            async with self.sessionmaker() as session:
                unsent = (await session.execute(
                    select(Outbox.id).where(
                        Outbox.chat_id.is_not(None),
                        Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
                        Outbox.next_attempt_at <= self.services.clock.now()).limit(1))
                ).first()
            if unsent is None and self.emulator.updates_pending() == 0:
                return
        async with self.sessionmaker() as session:
            rows = (await session.execute(
                select(Outbox.id, Outbox.kind, Outbox.status, Outbox.attempts,
                       Outbox.next_attempt_at).where(
                    Outbox.chat_id.is_not(None),
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).all()
        raise TimeoutError(
            f"the bot did not settle in {timeout:g} s: {self.emulator.updates_pending()} "
            f"updates not taken, {await self.intake.pending()} in the inbox, unsent outbox "
            f"rows {[tuple(r) for r in rows][:10]} (clock {self.services.clock.now()})")
