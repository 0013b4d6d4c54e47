"""Delivers the outbox to Telegram within its limits.

Rows are claimed in their own short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so two bot processes never take the same row), sent, and marked sent with
the Telegram message id. A 429 is honoured (``retry_after``), network errors and 5xx
are retried with backoff. No message is dropped silently: a row Telegram refuses with
400 (bad HTML, too long, invalid button data, ...) is sent again at once in a safe form
(:func:`safe_pieces`: plain text without parse mode, in pieces of at most 4,096
characters, the valid buttons on the last piece; files go as documents without caption,
before the text). What is refused in that form too, or refused with 403 (the bot is
blocked), is marked failed with ``failed_reason``, and the office's admins get a notice
(kind ``outbox_failed``; a notice that fails is not reported again). A row left
``sending`` by a crash is retried: at most one duplicate, where the crash fell between
Telegram accepting the message and the bot recording it.

Pacing (:class:`Pacer`): each send waits for its turn, spaced from the moment the
previous send actually went out (when the event loop stalls, the sends held up go out
one by one, never in a burst), one per chat per interval, and a 429 pauses every chat
for its ``retry_after``. Rows go in priority order (``bot.core.outbox``: replies before bulk
reminders), and :meth:`OutboxSender.run` keeps a short queue of claimed rows topped up,
so a reply queued during a fan-out is claimed at once and takes the next turn.

Several processes (PostgreSQL, ``bot/telegram/processes.py``): one sends, the one
holding the ``sender`` lock, so the pacing and a 429's pause hold for the bot as a whole
(each process pacing itself at 29/s, four processes sent 116/s, and a 429 paused only
the process that got it). The others' senders wait, trying for the lock every
``LEAD_RETRY`` seconds; a wake in such a process (a commit queued messages) is passed
to the sending process by NOTIFY.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import html
import itertools
import logging
import os
import re
from dataclasses import dataclass
from datetime import timedelta, timezone

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from telegram import InputFile, ForceReply
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot import render
from bot.devtools import crashpoints
from bot.telegram import monitoring, processes
from handlers.markup import SENDERS, keyboard
from bot.core.aio import wait_event
from bot.core.outbox import REMOVE_KEYBOARD, REPLY, covers, enqueue
from bot.telegram.ratelimit import RateLimiter, retry_seconds
from bot.texts import role_title, t
from models import Outbox, Person, StoredFile
from models.enums import OutboxStatus, Role

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)
NO_PRIORITY = -32768  # _claim without a lowest priority (the column is a SmallInteger)


@functools.lru_cache(maxsize=1)
def _claim_statements() -> dict:
    """:meth:`OutboxSender._claim`'s statements, built once (the sender claims after
    every commit that queued messages, and twice a second when idle): the due rows
    (``look`` in a read, ``lock`` in the claiming transaction), taking them, reading
    them. Parameters: ``now``, ``stale`` (claims older than this are free again),
    ``mine`` (rows this sender has in hand), ``minp`` (lowest priority), ``n``."""
    free = or_(Outbox.status == OutboxStatus.PENDING,
               (Outbox.status == OutboxStatus.SENDING)
               & (Outbox.next_attempt_at <= bindparam("stale")))
    earlier = aliased(Outbox)
    # a chat's messages of one priority go out in order: a row waits while an earlier
    # one of its priority or higher is unsent (a reply overtakes a queued reminder)
    waits = exists().where(earlier.chat_id == Outbox.chat_id, earlier.id < Outbox.id,
                           earlier.priority >= Outbox.priority,
                           earlier.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
    # never this sender's own rows still in hand, however old their claim looks (a
    # clock moved)
    due = select(Outbox.id).where(
        Outbox.chat_id.is_not(None), free, Outbox.next_attempt_at <= bindparam("now"),
        ~waits, Outbox.id.not_in(bindparam("mine", expanding=True)),
        Outbox.priority >= bindparam("minp")
    ).order_by(Outbox.priority.desc(), Outbox.next_attempt_at, Outbox.id
               ).limit(bindparam("n"))
    ids = bindparam("ids", expanding=True)
    return {
        "look": due,
        "lock": due.with_for_update(skip_locked=True),
        "take": update(Outbox).where(Outbox.id.in_(ids), free)
        .values(status=OutboxStatus.SENDING, claimed_by=bindparam("token"),
                attempts=Outbox.attempts + 1, next_attempt_at=bindparam("now"))
        .execution_options(synchronize_session=False),
        "rows": select(Outbox).where(Outbox.id.in_(ids), Outbox.claimed_by == bindparam("token"))
        .order_by(Outbox.priority.desc(), Outbox.id),
    }
LEAD_RETRY = 1.0  # seconds between a waiting sender's tries to become the one that sends
_SENDER_NUMBERS = itertools.count(1)
TELEGRAM_PER_SECOND = 30  # messages per second overall (Telegram's bot FAQ)
NOTICE_KIND = "outbox_failed"  # the admin's notice of a refused row: never reported again
TEXT_LIMIT = 4096      # characters of a message after entity parsing (UTF-16 units)
CAPTION_LIMIT = 1024   # characters of a caption after entity parsing
CALLBACK_LIMIT = 64    # bytes of callback data
# the tags Telegram's HTML knows: the safe form keeps their text; any other "<...>" is
# text (an unescaped name such as "<Rahayu>") and stays as it was typed
_TAGS = re.compile(r"</?(?:b|strong|i|em|u|ins|s|strike|del|span|tg-spoiler|tg-emoji|a|"
                   r"code|pre|blockquote)(?:\s[^<>]*)?/?>", re.IGNORECASE)


def plain_text(text: str) -> str:
    """What a person reads of an HTML message: Telegram's tags removed, entities
    decoded. Sent without parse mode, it cannot fail to parse."""
    return html.unescape(_TAGS.sub("", text))


def _units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 units (what Telegram counts), cut
    at a line end, else at a space, else anywhere; no piece is blank."""
    pieces, rest = [], text.strip()
    while rest:
        used, fit = 0, len(rest)
        for i, ch in enumerate(rest):
            used += _units(ch)
            if used > limit:
                fit = i
                break
        if fit == len(rest):
            pieces.append(rest)
            break
        head = rest[:fit]
        cut = head.rfind("\n")
        if cut < fit // 2:
            cut = max(cut, head.rfind(" "))
        if cut <= 0:
            cut = fit
        if head[:cut].strip():
            pieces.append(head[:cut].strip())
        rest = rest[cut:].strip()
    return pieces


def valid_buttons(buttons) -> tuple[list, bool]:
    """The buttons Telegram accepts (a label, 1-64 bytes of callback data), and whether
    any had to be left out."""
    rows, dropped = [], False
    for row in buttons or []:
        kept = [(label, data) for label, data in row
                if isinstance(label, str) and label.strip() and isinstance(data, str)
                and 0 < len(data.encode("utf-8")) <= CALLBACK_LIMIT]
        dropped = dropped or len(kept) < len(row)
        if kept:
            rows.append(kept)
    return rows, dropped


def safe_pieces(payload: dict) -> tuple[list[str], list]:
    """The safe form of a payload: plain text in pieces, and the valid buttons (for the
    last piece). When buttons were left out, the person is pointed to /tugas."""
    text = plain_text(payload.get("text") or "")
    buttons, dropped = valid_buttons(payload.get("buttons"))
    if dropped:
        text = f"{text.rstrip()}\n\n{plain_text(t('x.buttons_dropped'))}"
    return split_text(text), buttons


@dataclass
class _Progress:
    """What of one row Telegram has accepted in this attempt: a retry in the safe form
    does not send a file twice."""
    files: int = 0
    pieces: int = 0
    after: int = 0


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
    interval), so 429s are the exception rather than the way the limit is found.

    A send takes its turn with ``async with pacer.turn(chat_id, priority):``. Waiting
    sends are let go one at a time by one dispatcher: the most urgent (highest priority,
    then first come) of those whose chat may receive again, never inside a pause
    (:meth:`pause`: a 429's retry_after holds every chat). Spacing is counted from what
    actually happened, never from planned moments:

    * turns accrue at ``rate`` from the moment the previous send was actually let go, and
      at most a third of a second's worth are kept: in steady running sends go out one
      ``gap`` apart; after the event loop stalled, the sends held up go out one by one,
      at least half a ``gap`` apart, until the stall's lost turns are made up;
    * at most Telegram's 30 sends fall in any one second, a send counting from the
      moment Telegram's answer came back (the latest moment it can have arrived there)
      and while it is under way: whenever a send is let go, every send Telegram may
      have seen in the second before it was counted, so Telegram never sees more than
      30 in any second, however late a stall made a send arrive.
    """

    def __init__(self, rate: float, per_chat_interval: float) -> None:
        self.gap = 1.0 / rate
        self.min_gap = self.gap / 2
        # Telegram's limit: sends in any window of this many seconds (below 1/s: one)
        self.per_window, self.window = (TELEGRAM_PER_SECOND, 1.0) if rate >= 1 else (1, self.gap)
        self.per_chat = per_chat_interval
        self.paused_until = 0.0
        self.keep = max(1.0, rate / 3)  # turns kept for after a stall
        self._turns, self._turns_at = 1.0, None
        self._done: collections.deque[float] = collections.deque()  # answers' moments
        self._under_way = 0
        self._last = float("-inf")
        self._last_chat: dict[int, float] = {}
        self._waiting: list[tuple[int, int, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, priority: int = 0):
        """Wait for this send's turn; the body is the send."""
        loop = asyncio.get_running_loop()
        given = loop.create_future()
        self._waiting.append((-priority, next(self._order), chat_id, given))
        self._changed.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch(), name="outbox-pacer")
        try:
            await given
        except asyncio.CancelledError:
            if given.done() and not given.cancelled():  # let go as we were cancelled
                self._finished(chat_id)
            raise
        try:
            yield
        finally:
            self._finished(chat_id)

    async def wait(self, chat_id: int, priority: int = 0) -> None:
        """A turn for a send that is over as soon as it begins."""
        async with self.turn(chat_id, priority):
            pass

    def _finished(self, chat_id: int) -> None:
        now = asyncio.get_running_loop().time()
        self._under_way -= 1
        self._done.append(now)
        self._last_chat[chat_id] = max(self._last_chat.get(chat_id, now), now)
        self._changed.set()

    def pause(self, seconds: float) -> None:
        """No send for any chat before ``seconds`` from now."""
        until = asyncio.get_running_loop().time() + seconds
        self.paused_until = max(self.paused_until, until)
        self._changed.set()

    def _pick(self, now: float) -> tuple[int | None, float]:
        """The index of the most urgent send whose chat may receive now, or None and
        the moment the first chat may."""
        best, soonest = None, float("inf")
        for i, (prio, order, chat_id, given) in enumerate(self._waiting):
            ready = self._last_chat.get(chat_id, float("-inf")) + self.per_chat
            if ready <= now:
                if best is None or (prio, order) < self._waiting[best][:2]:
                    best = i
            else:
                soonest = min(soonest, ready)
        return best, soonest

    def _next_turn(self, now: float) -> float:
        """The earliest moment the next send may go, whichever chat it is for."""
        while self._done and self._done[0] <= now - self.window:
            self._done.popleft()
        turns = self._turns_now(now)
        at = max(self._last + self.min_gap, self.paused_until,
                 now if turns >= 1 else now + (1 - turns) * self.gap)
        if len(self._done) + self._under_way >= self.per_window:
            # a full second: wait for its oldest answer to leave it (or, all still
            # under way, for one to come back)
            at = max(at, self._done[0] + self.window if self._done else float("inf"))
        return at

    def _turns_now(self, now: float) -> float:
        if self._turns_at is None:
            self._turns_at = now
        return min(self.keep, self._turns + max(0.0, now - self._turns_at) / self.gap)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._waiting = [w for w in self._waiting if not w[3].done()]
            if not self._waiting:
                return
            now = loop.time()
            at = self._next_turn(now)
            if at <= now:
                best, at = self._pick(now)
                if best is not None:
                    _, _, chat_id, given = self._waiting.pop(best)
                    self._turns, self._turns_at = self._turns_now(now) - 1, now
                    self._last = self._last_chat[chat_id] = now
                    self._under_way += 1
                    if len(self._last_chat) > 10_000:
                        self._last_chat = {c: t for c, t in self._last_chat.items()
                                           if t > now - self.per_chat}
                    given.set_result(None)
                    continue
            # sleep until the next turn, or until a send, an answer or a pause changes it
            self._changed.clear()
            timeout = None if at == float("inf") else max(0.0, at - now)
            await wait_event(self._changed, timeout)


class OutboxSender:
    def __init__(self, bot, sessionmaker, services, *, batch: int = 60) -> None:
        self.bot = bot
        self.sm = sessionmaker
        self.sv = services
        self.batch = batch
        cfg = services.config.outbox
        self.pacer = Pacer(cfg.rate_per_second, cfg.per_chat_interval_seconds)
        # "host:pid:random:n": the process (bot/telegram/processes.py), then this sender
        self.worker = f"{processes.identity()}:{next(_SENDER_NUMBERS)}"
        self._claims = 0
        self._in_flight = 0  # rows claimed by run() and not yet finished
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._life = None  # PostgreSQL: this process's processes.Life while running
        self._telling: asyncio.Task | None = None  # the NOTIFY to the sending process
        self._tell_again = False
        self._sharing: set[asyncio.Task] = set()  # NOTIFYs of a 429 under way
        self._shared_until = 0.0  # loop time the last pause told to the others ends
        self._usage: list[int | str] = []  # chats of requests not told to the others yet
        self._telling_usage: asyncio.Task | None = None
        self._limiter_pause = None
        self.sent = 0
        # (chat, message) whose keyboard is gone (a handler stripped the pressed card,
        # or this sender did): not edited again, which Telegram refuses as "not modified"
        self._bare: dict[tuple[int, int], None] = {}
        # rows this sender claimed and has not finished: a stale-claim takeover is for
        # the rows of a process that died, never for its own (the injected clock of the
        # demo and the tests jumps minutes while a row is being sent)
        self._mine: set[int] = set()
        SENDERS[id(bot)] = self  # handlers.markup.keyboard_removed finds it

    def wake(self) -> None:
        """Messages were queued (committed): claim them now; in a process that does not
        send (several processes), tell the one that does."""
        self._wake.set()
        life = self._life
        if life is not None and not self.sending:
            if self._telling is not None and not self._telling.done():
                self._tell_again = True  # committed after that NOTIFY began: once more
                return
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to tell
                self._telling = asyncio.get_running_loop().create_task(
                    self._tell_sender(), name="outbox-tell")

    @property
    def sending(self) -> bool:
        """Whether this sender is the one that sends (always, with one process)."""
        return self._life is None or processes.SENDER in self._life.leading

    async def _tell_sender(self) -> None:
        while True:
            self._tell_again = False
            try:
                await processes.notify_outbox(self.sm)
            except Exception as exc:  # the sender looks every interval_seconds anyway
                log.info("outbox: could not wake the sending process: %s", exc)
            if not self._tell_again:
                return

    def _notified(self) -> None:
        if self.sending:
            self._wake.set()

    def keyboard_removed(self, chat_id: int, message_id: int) -> None:
        """A handler removed this message's keyboard (the card pressed)."""
        self._bare[(chat_id, message_id)] = None
        if len(self._bare) > 10_000:
            for key in list(self._bare)[:5_000]:
                del self._bare[key]

    async def _claim(self, limit: int | None = None, min_priority: int | None = None
                     ) -> list[Outbox]:
        """Take up to ``limit`` (default ``batch``) due rows for this sender, the most
        urgent first (``min_priority``: only rows of at least that priority).

        The candidates are read with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL: another
        sender skips them), then taken with one conditional UPDATE that only matches
        rows still free, so on SQLite too two senders never take the same row."""
        now = self.sv.clock.now()
        self._claims += 1
        token = f"{self.worker}:{self._claims}"
        st = _claim_statements()
        params = {"now": now, "stale": now - STALE_CLAIM, "mine": list(self._mine),
                  "minp": NO_PRIORITY if min_priority is None else min_priority,
                  "n": limit or self.batch}
        # a look first, in a read: an idle sender looks twice a second, and on SQLite a
        # claim's transaction takes the write lock the updates' transactions wait for
        async with self.sm() as session:
            if (await session.execute(st["look"], params)).first() is None:
                return []
        async with self.sm() as session, session.begin():
            ids = list((await session.execute(st["lock"], params)).scalars())
            if not ids:
                return []
            await session.execute(st["take"], {"ids": ids, "token": token, "now": now,
                                               "stale": params["stale"]})
            rows = list((await session.execute(st["rows"], {"ids": ids, "token": token}))
                        .scalars())
        self._mine.update(r.id for r in rows)
        return rows

    async def _send(self, row: Outbox, done: _Progress, *, safe: bool = False) -> int:
        """Send a row's files, then its text; ``safe``: as plain text in pieces, without
        parse mode (see :func:`safe_pieces`). Returns the id of the message that carries
        the buttons (the last one)."""
        payload = row.payload
        files = payload.get("files") or []
        markup = keyboard(payload.get("buttons"))
        if payload.get("force_reply"):
            markup = ForceReply(selective=True)
        # one file with a short text: the text is its caption, the buttons under it
        caption = (not safe and len(files) == 1 and not payload.get("force_reply")
                   and render.fits(payload.get("text") or "", CAPTION_LIMIT))
        message_id = None
        for i, f in enumerate(files):
            if i < done.files:
                continue
            if caption:
                message_id = await self._send_file(row, f, payload["text"], markup)
                if message_id is not None:
                    done.files = i + 1
                    return await self._send_after(row, done, message_id)
            else:
                await self._send_file(row, f)
            done.files = i + 1
        if not safe:
            async with self.pacer.turn(row.chat_id, row.priority):
                msg = await self.bot.send_message(row.chat_id, payload["text"],
                                                  reply_markup=markup, **self._no_retry)
            return await self._send_after(row, done, msg.message_id)
        pieces, buttons = safe_pieces(payload)
        if not pieces:
            raise BadRequest("Message text is empty")
        message_id = None
        for i, piece in enumerate(pieces):
            if i < done.pieces:
                continue
            markup = None
            if i == len(pieces) - 1:
                markup = (ForceReply(selective=True) if payload.get("force_reply")
                          else keyboard(buttons))
            async with self.pacer.turn(row.chat_id, row.priority):
                msg = await self.bot.send_message(row.chat_id, piece, parse_mode=None,
                                                  reply_markup=markup, **self._no_retry)
            message_id = msg.message_id
            done.pieces = i + 1
        return await self._send_after(row, done, message_id)

    async def _send_file(self, row: Outbox, f: dict, caption: str | None = None,
                         markup=None) -> int | None:
        """One stored file of ``row`` as a document or photo; the message id, None when
        the file is gone."""
        async with self.sm() as session:
            stored = await session.get(StoredFile, f["file_id"])
        if stored is None:
            return None
        data = self.sv.store.read(stored)
        doc = InputFile(data, filename=stored.filename or "berkas")
        extra = {"caption": caption, "reply_markup": markup} if caption else {}
        async with self.pacer.turn(row.chat_id, row.priority):
            if f.get("kind") == "photo":
                msg = await self.bot.send_photo(row.chat_id, doc, **extra, **self._no_retry)
            else:
                msg = await self.bot.send_document(row.chat_id, doc, **extra,
                                                   **self._no_retry)
        return msg.message_id

    async def _send_after(self, row: Outbox, done: _Progress, message_id: int | None
                          ) -> int | None:
        """The files that follow the message (the PDF and workbook after a sign
        request's summary and buttons)."""
        for i, f in enumerate(row.payload.get("after") or []):
            if i >= done.after:
                await self._send_file(row, f)
                done.after = i + 1
        return message_id

    async def _retired(self, row: Outbox) -> bool:
        """Whether a later "remove keyboard" row of this chat covers the row's ``ref``:
        what the message asks for is done or replaced, so it is not sent."""
        async with self.sm() as session:
            refs = (await session.execute(select(Outbox.ref).where(
                Outbox.chat_id == row.chat_id, Outbox.kind == REMOVE_KEYBOARD,
                Outbox.id > row.id))).scalars().all()
        return any(covers(ref, row.ref) for ref in refs)

    async def _remove_keyboards(self, row: Outbox) -> int:
        """Remove the keyboards of this chat's sent messages of ``row.ref`` (and of the
        message ids in the payload); a message already without one, deleted or too old
        is left as it is. A message done loses its ref, so a later, wider retire does
        not edit it again; after a network error the rest is done on the retry."""
        rows: dict[int, list[int]] = {m: [] for m in row.payload.get("message_ids") or []}
        if row.ref:
            async with self.sm() as session:
                sent = (await session.execute(select(Outbox).where(
                    Outbox.chat_id == row.chat_id, Outbox.id < row.id,
                    Outbox.kind != REMOVE_KEYBOARD, Outbox.status == OutboxStatus.SENT,
                    Outbox.telegram_message_id.is_not(None),
                    or_(Outbox.ref == row.ref, Outbox.ref.like(row.ref + ":%"))))).scalars().all()
            for r in sent:
                if r.payload.get("buttons") or r.payload.get("direct"):
                    rows.setdefault(r.telegram_message_id, []).append(r.id)
        removed = 0
        for message_id, row_ids in rows.items():
            key = (row.chat_id, message_id)
            if key not in self._bare:  # else a handler or an earlier pass stripped it
                self.keyboard_removed(*key)  # taken: a pass running beside skips it
                try:
                    async with self.pacer.turn(row.chat_id, row.priority):
                        await self.bot.edit_message_reply_markup(
                            chat_id=row.chat_id, message_id=message_id, reply_markup=None,
                            **self._no_retry)
                    removed += 1
                except BadRequest as exc:  # not modified, not found, too old: nothing to do
                    log.debug("outbox %s: keyboard of %s in chat %s left: %s", row.id,
                              message_id, row.chat_id, exc.message)
                except BaseException:
                    self._bare.pop(key, None)  # not done: the retry does it
                    raise
            if row_ids:
                async with self.sm() as session, session.begin():
                    await session.execute(update(Outbox).where(Outbox.id.in_(row_ids))
                                          .values(ref="")
                                          .execution_options(synchronize_session=False))
        return removed

    async def _finish(self, row_id: int, **values) -> None:
        """Record a row's outcome; a stop (cancel) meanwhile waits for the record: a row
        Telegram accepted is not left ``sending``, to be sent again by whichever process
        sends next."""
        record = asyncio.ensure_future(self._record(row_id, values))
        try:
            await asyncio.shield(record)
        except asyncio.CancelledError:
            if not record.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait({record}, timeout=10)
            raise

    async def _record(self, row_id: int, values: dict) -> None:
        try:
            async with self.sm() as session, session.begin():
                row = await session.get(Outbox, row_id)
                for k, v in values.items():
                    setattr(row, k, v)
        finally:
            # only once its new state is committed: a claim running meanwhile must not
            # see the row, still "sending" in the database, as free
            self._mine.discard(row_id)

    @property
    def _no_retry(self) -> dict:
        """Our rate limiter takes no retry of its own for the outbox: a 429 comes back
        here at once, and the sender pauses every chat and reschedules the row."""
        if isinstance(getattr(self.bot, "rate_limiter", None), RateLimiter):
            return {"rate_limit_args": 0}
        return {}

    async def deliver_once(self) -> int:
        """Send what is due now; returns how many rows were handled.

        Sends are paced (``Pacer``) and overlap, so network latency does not eat into
        the rate; each row is finished in its own short transaction."""
        rows = await self._claim()
        await self._send_rows(rows)
        return len(rows)

    async def _send_rows(self, rows: list[Outbox], on_done=None) -> None:
        """Deliver claimed rows: chats side by side, each chat's rows in order."""
        by_chat: dict[int, list[Outbox]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)

        async def chat_in_order(chat_rows: list[Outbox]) -> None:
            for row in chat_rows:
                try:
                    await self._deliver(row)
                finally:
                    if on_done is not None:
                        on_done()

        if by_chat:
            await asyncio.gather(*(chat_in_order(r) for r in by_chat.values()))

    async def _deliver(self, row: Outbox) -> None:
        now = self.sv.clock.now()
        done = _Progress()
        note = ""
        if row.ref and row.kind != REMOVE_KEYBOARD and await self._retired(row):
            await self._finish(row.id, status=OutboxStatus.SENT,
                               last_error="not sent: no longer applies")
            return
        try:
            try:
                if row.kind == REMOVE_KEYBOARD:
                    message_id = None
                    await self._remove_keyboards(row)
                else:
                    message_id = await self._send(row, done)
            except BadRequest as exc:
                # refused for its content (or its chat): the same row at once in the
                # safe form; what was accepted already is not sent again
                note = f"400 {exc.message}"
                log.warning("outbox %s: refused by Telegram: %s; sending it as plain text",
                            row.id, exc.message)
                try:
                    message_id = await self._send(row, done, safe=True)
                except BadRequest as again:
                    await self._refused(row, now, f"{note}; as plain text: {again.message}")
                    return
        except RetryAfter as exc:
            monitoring.observe_429()
            wait = retry_seconds(exc)
            self.pacer.pause(wait)  # Telegram does not say which limit: every chat waits
            self._share_pause(wait)  # ... in every process
            log.info("outbox %s: 429, every chat waits %ss", row.id, wait)
            await self._finish(row.id, status=OutboxStatus.PENDING,
                               next_attempt_at=now + timedelta(seconds=wait),
                               last_error=f"429 retry_after={wait}")
        except Forbidden as exc:
            await self._refused(row, now, f"403 {exc.message}")
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
                               telegram_message_id=message_id,
                               last_error=f"sent as plain text after {note}" if note else "")

    async def _refused(self, row: Outbox, now, reason: str) -> None:
        """Telegram will not take this row: mark it failed with the reason and, in the
        same transaction, queue a notice to the admins of the person's office (unless
        the row is such a notice itself: no loop)."""
        log.warning("outbox %s: refused by Telegram, not delivered: %s", row.id, reason)
        told = 0
        async with self.sm() as session, session.begin():
            failed = await session.get(Outbox, row.id)
            failed.status = OutboxStatus.FAILED
            failed.last_error = failed.failed_reason = reason
            if failed.kind != NOTICE_KIND:
                told = await self._tell_admins(session, failed, reason, now)
        if told:
            self.wake()
        elif row.kind != NOTICE_KIND:
            log.error("outbox %s: no admin to tell that it was not delivered", row.id)

    async def _tell_admins(self, session, row: Outbox, reason: str, now) -> int:
        person = await session.get(Person, row.person_id) if row.person_id else None
        if person is None and row.chat_id is not None:
            person = (await session.execute(select(Person).where(
                Person.telegram_user_id == row.chat_id))).scalars().first()
        if person is None:
            return 0
        admins = (await session.execute(select(Person).where(
            Person.office_id == person.office_id, Person.role == Role.ADMIN,
            Person.active.is_(True)).order_by(Person.id))).scalars().all()
        lines = plain_text(row.payload.get("text") or "").strip().splitlines() or [""]
        summary = lines[0] if len(lines[0]) <= 100 else lines[0][:99] + "\u2026"
        text = t("x.outbox_failed", name=person.name, role=role_title(person.role),
                 summary=summary, reason=reason)
        for admin in admins:
            await enqueue(session, admin, NOTICE_KIND, text, at=now)
        return len(admins)

    async def release_orphans(self) -> int:
        """Rows left ``sending`` by a process of this machine that is gone (a crash) are
        due again now, instead of after ``STALE_CLAIM``: at most one duplicate each,
        where the crash fell between Telegram accepting a message and its recording.

        On PostgreSQL a process is gone when its life lock is free, whatever machine or
        container it ran in (:func:`processes.release_dead`, also run every few
        seconds while the bot runs)."""
        if processes.is_postgres(self.sm):
            return (await processes.release_dead(self.sm))[1]
        host = processes.identity().split(":", 1)[0]
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

    def _row_done(self) -> None:
        self._in_flight -= 1
        if self._in_flight == self.batch // 2:  # half the queue gone: claim more
            self._wake.set()

    async def run(self) -> None:
        """Deliver until stopped. Up to ``batch`` claimed rows wait for their turn at
        the pacer; more are claimed when half of them are gone, when a commit queued
        messages (:meth:`wake`) and every ``interval_seconds``. With the queue full, a
        wake still claims the replies (``REPLY``), which take the next turn.

        On PostgreSQL only while this process holds the ``sender`` lock: otherwise it
        waits for the lock (another process sends), and takes it over within about
        ``LEAD_RETRY`` seconds of its release (that process stopped or died)."""
        life = None
        if processes.is_postgres(self.sm):  # alive while sending: see processes.Life
            try:
                life = await processes.Life.join(self.sm)
            except Exception:
                log.exception("outbox: could not take this process's life lock")
        if life is None:
            await self._run()
            return
        self._life = life
        life.listen(self._notified, processes.OUTBOX_CHANNEL)
        life.listen(self._paused_elsewhere, processes.PAUSE_CHANNEL)
        own_pause = self._share_limiter_pauses()
        shared = self._share_limiter_usage(life)
        try:
            await self._lead(life)
        finally:
            life.unlisten(self._notified, processes.OUTBOX_CHANNEL)
            life.unlisten(self._paused_elsewhere, processes.PAUSE_CHANNEL)
            if own_pause is not None:
                del self.bot.rate_limiter.pause  # the class's own again
            if shared is not None:
                shared.listener = None
                life.unlisten(self._used_elsewhere, processes.RATE_CHANNEL)
            if self._telling_usage is not None:
                self._telling_usage.cancel()
            self._life = None
            for task in list(self._sharing):
                task.cancel()
            if self._telling is not None:
                self._telling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._telling
            await life.leave()

    # -- the overall limit counts every process's requests ---------------------------
    def _share_limiter_usage(self, life):
        """Each request with a chat this process makes (a handler's, a deferred call,
        this sender's) is told to the other processes (NOTIFY, batched while one is
        under way), and theirs count in this process's overall limit: 30 a second is
        the bot's, not each process's (two processes, each under it, drew 429s from
        the overall limit that paused every chat), and so are the chats they went to (a
        chat's next turn here waits an interval). Returns the limiter (None: no
        limiter)."""
        limiter = getattr(self.bot, "rate_limiter", None)
        if not isinstance(limiter, RateLimiter):
            return None
        limiter.listener = self._used_here
        life.listen(self._used_elsewhere, processes.RATE_CHANNEL)
        return limiter

    def _used_here(self, chat_id: int | str) -> None:
        if self._life is not None and self._life.others == 0:
            return  # no other process lives to hear it (counted every few seconds)
        self._usage.append(chat_id)
        if self._telling_usage is None or self._telling_usage.done():
            self._telling_usage = asyncio.get_running_loop().create_task(
                self._tell_usage(), name="outbox-share-usage")

    async def _tell_usage(self) -> None:
        while self._usage and self._life is not None:
            chats, self._usage = self._usage, []
            try:
                for payload in processes.usage_payloads(chats, self.worker):
                    await self._life.notify(processes.RATE_CHANNEL, payload)
            except Exception as exc:
                log.info("could not tell the other processes of %d request(s): %s",
                         len(chats), exc)
                return

    def _used_elsewhere(self, payload: str) -> None:
        """Another process made requests with a chat: they count here for a second, and
        each of their chats waits an interval for its next turn here."""
        by, _, chats = payload.partition("|")
        limiter = getattr(self.bot, "rate_limiter", None)
        if by == self.worker or not chats or not isinstance(limiter, RateLimiter):
            return
        limiter.foreign([int(c) if c.lstrip("-").isdigit() else c
                         for c in chats.split(",")])

    # -- a 429 pauses every process ---------------------------------------------
    def _share_limiter_pauses(self):
        """Every pause of this process's rate limiter (a 429 to any Bot API call made
        here: a handler's edit, a deferred call, this sender's send) is told to the
        other processes. Returns the limiter's own ``pause`` (None: no limiter)."""
        limiter = getattr(self.bot, "rate_limiter", None)
        if not isinstance(limiter, RateLimiter):
            return None
        own = limiter.pause

        def pause(seconds: float) -> None:
            own(seconds)
            self._share_pause(seconds)

        limiter.pause = pause  # an attribute of this instance: removed when stopped
        self._limiter_pause = own
        return own

    def _share_pause(self, seconds: float) -> None:
        """Tell every process (NOTIFY) to pause ``seconds``; not again for a pause this
        one already covers."""
        if self._life is None:
            return
        until = asyncio.get_running_loop().time() + seconds
        if until <= self._shared_until + 0.05:
            return
        self._shared_until = until
        task = asyncio.get_running_loop().create_task(self._notify_pause(seconds),
                                                      name="outbox-share-pause")
        self._sharing.add(task)
        task.add_done_callback(self._sharing.discard)

    async def _notify_pause(self, seconds: float) -> None:
        try:
            await processes.notify_pause(self.sm, seconds, self.worker)
        except Exception as exc:
            log.warning("could not tell the other processes of a 429: %s", exc)

    def _paused_elsewhere(self, payload: str) -> None:
        """Another process got a 429: this one's sends and requests wait as long."""
        seconds, _, by = payload.partition(":")
        try:
            wait = float(seconds)
        except ValueError:
            return
        if by == self.worker or wait <= 0:
            return
        log.info("a 429 in %s: this process waits %.1f s", processes.process_of(by), wait)
        self.pacer.pause(wait)
        own = getattr(self, "_limiter_pause", None)
        if own is not None:
            own(wait)  # the limiter's own pause: not told back
        until = asyncio.get_running_loop().time() + wait
        self._shared_until = max(self._shared_until, until)  # nothing to tell again

    async def _lead(self, life) -> None:
        """Send while this process holds the ``sender`` lock; wait for it otherwise."""
        announced = False
        while True:
            if not await life.try_lead(processes.SENDER):
                if not announced:
                    log.info("another process sends the outbox; this one waits to take over")
                    announced = True
                await asyncio.sleep(LEAD_RETRY)
                continue
            announced = False
            log.info("process %s sends the outbox", life.name)
            try:
                await self._take_over()
                await self._run()
            finally:
                await self._give_back()
            log.warning("process %s no longer sends the outbox (its database session "
                        "broke): waiting to send again", life.name)

    async def _take_over(self) -> None:
        """This process has just become the one that sends. What the previous sender
        sent in its last second is not known here: no send for a chat interval (and
        Telegram's one-second window). A 429 it got is: the row it was sending waits
        (``next_attempt_at``) for the ``retry_after``, and so does every chat here."""
        wait = max(1.0, self.pacer.per_chat)
        try:
            async with self.sm() as session:
                until = (await session.execute(
                    select(func.max(Outbox.next_attempt_at)).where(
                        Outbox.status == OutboxStatus.PENDING,
                        Outbox.last_error.like("429 %")))).scalar()
            if until is not None:
                if until.tzinfo is None:
                    until = until.replace(tzinfo=timezone.utc)
                wait = max(wait, (until - self.sv.clock.now()).total_seconds())
        except Exception as exc:  # a chat interval is waited anyway
            log.warning("outbox: could not read a pending 429: %s", exc)
        self.pacer.pause(min(wait, 3600.0))

    async def _give_back(self) -> None:
        """This sender stopped sending with rows in hand (cancelled, or the ``sender``
        lock lost): they are due again at once for whichever process sends. One in the
        middle of its send may go twice, as after a crash."""
        self._mine = set()
        try:
            async with self.sm() as session, session.begin():
                await session.execute(
                    update(Outbox).where(Outbox.status == OutboxStatus.SENDING,
                                         Outbox.claimed_by.startswith(f"{self.worker}:",
                                                                     autoescape=True))
                    .values(status=OutboxStatus.PENDING)
                    .execution_options(synchronize_session=False))
        except Exception as exc:  # taken over when stale (STALE_CLAIM)
            log.warning("outbox: could not give back the messages in hand: %s", exc)

    async def _run(self) -> None:
        interval = self.sv.config.outbox.interval_seconds
        try:
            await self.release_orphans()
        except Exception:  # never keep the sender from starting
            log.exception("outbox: could not release the claims of stopped processes")
        passes: set[asyncio.Task] = set()

        async def deliver(rows: list[Outbox]) -> None:
            try:
                await self._send_rows(rows, self._row_done)
            except Exception:  # keep delivering; a row left sending is taken again later
                log.exception("outbox pass failed")

        try:
            while self.sending:
                self._wake.clear()
                room = self.batch - self._in_flight
                try:
                    if room > 0:
                        rows = await self._claim(room)
                    else:
                        rows = await self._claim(self.batch, min_priority=REPLY)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep delivering; the error is logged once per pass
                    log.exception("outbox claim failed")
                    rows = []
                if rows:
                    self._in_flight += len(rows)
                    task = asyncio.create_task(deliver(rows), name="outbox-pass")
                    passes.add(task)
                    task.add_done_callback(passes.discard)
                if rows and len(rows) < max(room, 1):
                    pass  # all that is due is claimed: wait for a wake
                elif rows:
                    continue  # there may be more: claim again once there is room
                await wait_event(self._wake, interval)
        finally:
            for task in passes:
                task.cancel()
            if passes:
                await asyncio.gather(*passes, return_exceptions=True)
            self._in_flight = 0

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
