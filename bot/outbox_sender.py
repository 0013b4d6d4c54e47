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

from sqlalchemy import or_, select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ForceReply
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

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


class OutboxSender:
    def __init__(self, bot, sessionmaker, services, *, batch: int = 30) -> None:
        self.bot = bot
        self.sm = sessionmaker
        self.sv = services
        self.batch = batch
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def _claim(self) -> list[Outbox]:
        now = self.sv.clock.now()
        async with self.sm() as session, session.begin():
            stmt = (
                select(Outbox)
                .where(Outbox.chat_id.is_not(None),
                       or_(Outbox.status == OutboxStatus.PENDING,
                           (Outbox.status == OutboxStatus.SENDING)
                           & (Outbox.next_attempt_at <= now - STALE_CLAIM)),
                       Outbox.next_attempt_at <= now)
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            rows = list((await session.execute(stmt)).scalars())
            for row in rows:
                row.status = OutboxStatus.SENDING
                row.claimed_by = self.worker
                row.attempts += 1
                row.next_attempt_at = now
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
            if f.get("kind") == "photo":
                await self.bot.send_photo(row.chat_id, doc)
            else:
                await self.bot.send_document(row.chat_id, doc)
        msg = await self.bot.send_message(row.chat_id, payload["text"], reply_markup=markup)
        message_id = msg.message_id
        return message_id

    async def _finish(self, row_id: int, **values) -> None:
        async with self.sm() as session, session.begin():
            row = await session.get(Outbox, row_id)
            for k, v in values.items():
                setattr(row, k, v)

    async def deliver_once(self) -> int:
        """Send what is due now; returns how many rows were handled."""
        rows = await self._claim()
        for row in rows:
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
                self.sent += 1
                await self._finish(row.id, status=OutboxStatus.SENT, sent_at=now,
                                   telegram_message_id=message_id, last_error="")
        return len(rows)

    async def run(self) -> None:
        interval = self.sv.config.outbox.interval_seconds
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
