"""Delivers the outbox to Telegram within its limits.

Rows are claimed in their own short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so two bot processes never take the same row), sent, and marked sent with
the Telegram message id. A 429 is honoured (``retry_after``), network errors and 5xx
are retried with backoff, a permanent refusal (blocked bot, chat not found) is marked
failed. A row left ``sending`` by a crash is retried: at most one duplicate, where the
crash fell between Telegram accepting the message and the bot recording it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import aliased
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ForceReply
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot import crashpoints
from models import Outbox, StoredFile
from models.enums import OutboxStatus

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)


def keyboard(buttons) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
         for row in buttons]
    )


def _retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _process_alive(claimed_by: str, host: str) -> bool:
    """Whether the process named in ``claimed_by`` ("host:pid:...") still runs here."""
    try:
        pid = int(claimed_by[len(host) + 1:].split(":", 1)[0])
    except ValueError:
        return True  # not ours to judge: wait for STALE_CLAIM
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Pacer:
    """Spaces sends below Telegram's limits (overall rate, one message per chat per
    interval), so 429s are the exception rather than the way the limit is found."""

    def __init__(self, rate: float, per_chat_interval: float) -> None:
        self.gap = 1.0 / rate
        self.per_chat = per_chat_interval
        self._next = 0.0
        self._next_chat: dict[int, float] = {}

    async def wait(self, chat_id: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(now, self._next, self._next_chat.get(chat_id, 0.0))
        self._next = at + self.gap
        self._next_chat[chat_id] = at + self.per_chat
        if len(self._next_chat) > 10_000:
            self._next_chat = {c: t for c, t in self._next_chat.items() if t > now}
        if at > now:
            await asyncio.sleep(at - now)


class OutboxSender:
    def __init__(self, bot, sessionmaker, services, *, batch: int = 60) -> None:
        self.bot = bot
        self.sm = sessionmaker
        self.sv = services
        self.batch = batch
        cfg = services.config.outbox
        self.pacer = Pacer(cfg.rate_per_second, cfg.per_chat_interval_seconds)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._claims = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def _claim(self) -> list[Outbox]:
        """Take up to ``batch`` due rows for this sender.

        The candidates are read with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL: another
        sender skips them), then taken with one conditional UPDATE that only matches
        rows still free, so on SQLite too two senders never take the same row."""
        now = self.sv.clock.now()
        self._claims += 1
        token = f"{self.worker}:{self._claims}"
        free = or_(Outbox.status == OutboxStatus.PENDING,
                   (Outbox.status == OutboxStatus.SENDING)
                   & (Outbox.next_attempt_at <= now - STALE_CLAIM))
        earlier = aliased(Outbox)
        # a chat's messages go out in order: a row waits while an earlier one is unsent
        waits = exists().where(earlier.chat_id == Outbox.chat_id, earlier.id < Outbox.id,
                               earlier.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        async with self.sm() as session, session.begin():
            ids = list((await session.execute(
                select(Outbox.id)
                .where(Outbox.chat_id.is_not(None), free, Outbox.next_attempt_at <= now, ~waits)
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )).scalars())
            if not ids:
                return []
            await session.execute(
                update(Outbox).where(Outbox.id.in_(ids), free)
                .values(status=OutboxStatus.SENDING, claimed_by=token,
                        attempts=Outbox.attempts + 1, next_attempt_at=now)
                .execution_options(synchronize_session=False))
            rows = list((await session.execute(
                select(Outbox).where(Outbox.id.in_(ids), Outbox.claimed_by == token)
                .order_by(Outbox.id))).scalars())
        return rows

    async def _send(self, row: Outbox) -> int:
        payload = row.payload
        markup = keyboard(payload.get("buttons"))
        if payload.get("force_reply"):
            markup = ForceReply(selective=True)
        message_id = None
        files = payload.get("files") or []
        for f in files:
            async with self.sm() as session:
                stored = await session.get(StoredFile, f["file_id"])
            if stored is None:
                continue
            data = self.sv.store.read(stored)
            doc = InputFile(data, filename=stored.filename or "berkas")
            await self.pacer.wait(row.chat_id)
            if f.get("kind") == "photo":
                await self.bot.send_photo(row.chat_id, doc)
            else:
                await self.bot.send_document(row.chat_id, doc)
        await self.pacer.wait(row.chat_id)
        msg = await self.bot.send_message(row.chat_id, payload["text"], reply_markup=markup)
        message_id = msg.message_id
        return message_id

    async def _finish(self, row_id: int, **values) -> None:
        async with self.sm() as session, session.begin():
            row = await session.get(Outbox, row_id)
            for k, v in values.items():
                setattr(row, k, v)

    async def deliver_once(self) -> int:
        """Send what is due now; returns how many rows were handled.

        Sends are paced (``Pacer``) and overlap, so network latency does not eat into
        the rate; each row is finished in its own short transaction."""
        rows = await self._claim()
        by_chat: dict[int, list[Outbox]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)

        async def chat_in_order(chat_rows: list[Outbox]) -> None:
            for row in chat_rows:
                await self._deliver(row)

        if by_chat:
            await asyncio.gather(*(chat_in_order(r) for r in by_chat.values()))
        return len(rows)

    async def _deliver(self, row: Outbox) -> None:
        now = self.sv.clock.now()
        try:
            message_id = await self._send(row)
        except RetryAfter as exc:
            wait = _retry_seconds(exc)
            log.info("outbox %s: 429, retry after %ss", row.id, wait)
            await self._finish(row.id, status=OutboxStatus.PENDING,
                               next_attempt_at=now + timedelta(seconds=wait),
                               last_error=f"429 retry_after={wait}")
        except (Forbidden, BadRequest) as exc:
            log.warning("outbox %s: refused by Telegram: %s", row.id, exc.message)
            await self._finish(row.id, status=OutboxStatus.FAILED, last_error=exc.message)
        except (TimedOut, NetworkError) as exc:
            if row.attempts >= self.sv.config.outbox.max_attempts:
                log.error("outbox %s: giving up after %s attempts: %s", row.id,
                          row.attempts, exc)
                await self._finish(row.id, status=OutboxStatus.FAILED, last_error=str(exc))
            else:
                delay = min(60, 2 ** row.attempts)
                log.info("outbox %s: %s, retry in %ss", row.id, exc.__class__.__name__, delay)
                await self._finish(row.id, status=OutboxStatus.PENDING,
                                   next_attempt_at=now + timedelta(seconds=delay),
                                   last_error=str(exc))
        else:
            crashpoints.hit("outbox_sent")  # test-only; inert unless SOPBOT_CRASH_AT is set
            self.sent += 1
            await self._finish(row.id, status=OutboxStatus.SENT, sent_at=now,
                               telegram_message_id=message_id, last_error="")

    async def release_orphans(self) -> int:
        """Rows left ``sending`` by a process of this machine that is gone (a crash) are
        due again now, instead of after ``STALE_CLAIM``: at most one duplicate each,
        where the crash fell between Telegram accepting a message and its recording."""
        host = socket.gethostname()
        async with self.sm() as session, session.begin():
            rows = (await session.execute(
                select(Outbox.id, Outbox.claimed_by).where(
                    Outbox.status == OutboxStatus.SENDING,
                    Outbox.claimed_by.like(f"{host}:%")))).all()
            orphans = [row_id for row_id, by in rows if not _process_alive(by, host)]
            if orphans:
                await session.execute(
                    update(Outbox).where(Outbox.id.in_(orphans),
                                         Outbox.status == OutboxStatus.SENDING)
                    .values(status=OutboxStatus.PENDING, next_attempt_at=self.sv.clock.now())
                    .execution_options(synchronize_session=False))
        if orphans:
            log.warning("outbox: %s message(s) claimed by a stopped process are due again",
                        len(orphans))
        return len(orphans)

    async def run(self) -> None:
        interval = self.sv.config.outbox.interval_seconds
        try:
            await self.release_orphans()
        except Exception:  # never keep the sender from starting
            log.exception("outbox: could not release the claims of stopped processes")
        while True:
            try:
                handled = await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep delivering; the error is logged once per pass
                log.exception("outbox pass failed")
                handled = 0
            if handled == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
                except asyncio.TimeoutError:
                    pass

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.run(), name="outbox-sender")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def drain(self, timeout: float = 10.0) -> None:
        """Deliver until nothing is due (tests and the demo)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if await self.deliver_once() == 0:
                return
