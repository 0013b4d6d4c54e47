"""Durable intake (a transactional inbox) and the processor of the inbox.

Telegram forgets an update once the bot has confirmed it: in polling, by asking
``getUpdates`` with an offset past it; in webhook mode, by answering the POST with 200.
PTB confirms before the handlers have run, so a crash mid-handler loses the update.
Here every update is first committed to the ``inbox`` table and only then confirmed:

* **polling** (:meth:`Intake.start` with ``polling=True``): the bot's own ``getUpdates``
  loop stores what it got, commits, and only then asks with the next offset;
* **webhook** (:class:`WebhookServer`): the secret header is checked (403 without it),
  the update is committed, then the answer is 200.

The processor takes unprocessed rows in ``update_id`` order and puts each on its chat's
queue (``chat_key``); with one process (SQLite) a row just stored goes on its queue at
once, with the payload in hand, and a pass over the inbox finds only what is not on a
queue yet (left by an earlier run, stored while the processor was not running). Each
chat has one worker, so one person's updates are processed strictly in arrival order,
and different people's at once (at most ``MAX_CONCURRENT``).
On SQLite an update's transaction begins IMMEDIATE and holds the one write lock until it
commits, so there the updates' transactions take turns (on an asyncio lock, not in
SQLite's busy handler); on PostgreSQL they overlap, except where they lock the same row
(the audit chain's head) until they commit. So that they do not take turns across the
network, a run *splits* its Bot API calls off when a call takes longer than a run's
database work (``Intake.split_calls``, "auto"; always on a real network): a call whose
answer the handlers use (sending a card, whose message id is stored; an edit, whose
refusal makes the handler send a new card) stops the run (:class:`_CallFirst`), which
is rolled back, releasing the lock (and the rows); the call is made and
journaled, and the update runs again, answered from the journal up to its next such
call. Calls whose answer no handler uses (``DEFERRED_METHODS``: answering a button,
taking the buttons off an old card) are told True and made after the commit, those on
different messages at once; but a long piece of work's button, which the action wrapper
answers early (``handlers.common.ANSWER_WITHIN``, ``EARLY_ANSWER``), is answered at
once: Telegram takes a button's answer only for about 15 s. A run never waits inside
its transaction for its chat's turn in the rate limiter (one request at a time in a
chat, a second apart, ``bot/telegram/ratelimit.py``): a call whose chat's turn is not
now is deferred in the same way, or stops the run as above (its next run takes the
same path). Taking buttons off waits for the chat to be quiet; after the commit it is
left to run on its own (:meth:`JournaledRequest.make_deferred`), not holding the chat's
next update, and the journal keeps it as pending until it is made. Each update is
processed in ONE database transaction, in one session: every session a handler opens through
``bot_data["sessionmaker"]`` while the update is processed is that session
(:class:`UpdateSessions`). A handler's ``session.begin()`` opens no savepoint in the
update's first run; when an exception leaves such a block the run stops
(:class:`_RunAgain`), is rolled back, and the update runs again with a savepoint per
block, so a refused action still rolls back only its own writes (the calls of the first
run are answered from its journal). The row's ``processed_at`` is set in
that same transaction, which commits after the handlers have run (their replies made,
or deferred). A call Telegram refused is journaled too, and a later run of the update is
refused the same way. The rate limiter counts the calls really made, not those answered
from the journal (:func:`_pass_updates_by`).
Hence, whatever moment the process dies:

* an update is never lost: it is in the inbox before Telegram forgets it, and a row not
  marked is processed at the next start (before anything new);
* its effects (state, conversation, outbox rows, audit) happen exactly once: they
  commit together with the mark, or not at all and the whole update runs again;
* Bot API calls that are not in the outbox (the direct reply, answering a button,
  editing the card in place) are never skipped, and happen once in all but two cases:
  each call the processing makes, and Telegram's answer, is appended to the update's
  call journal (:class:`CallJournal`, a file in the storage folder) as soon as the
  answer arrives; when an update runs again after a crash, its calls that are in the
  journal are not made again (the recorded answer is returned: the person keeps the
  card they already have, and its message id is the one committed). A call whose answer
  had not reached the journal when the process died (Telegram carried it out, the bot
  never heard back) is made again: at least once. A journal records the calls of one
  update; a call of the second run is answered from it when the first run made the
  same call (same method and parameters), in whatever order (the answer of a slow
  button comes at a moment that depends on timing), and is made for real otherwise
  (the state changed in between: another text, another message). A deferred call is
  written to the journal (as pending, with its parameters) before the commit; when the
  process dies after the commit and before it was made, it is made at the next start
  (``_clean_journals``), again at least once; with several processes, by a live one
  (``_sweep_journals``) once its writer has been seen not alive for a while, and never
  while its writer still has it in hand.

The payload stored is the update as Telegram sent it (a webhook's body; by polling,
PTB's ``to_dict()`` of the update it parsed), with one exception: the answer to the
bot's request for a TTE passphrase is stored with its text replaced, the text kept in
memory only until its handler takes it (``bot/core/secret_input.py``); after a crash
the bot asks again. A text stored as sent although its sender waits for the passphrase
(another process stored it before the asking update committed, or this process stored
it while its own asking update waited on the chat's queue) is rewritten redacted, in a
commit of its own, before it is processed (:meth:`Intake._redact_unseen`), in whichever
process processes it.

A handler that raises is reported by the error handler (the person gets the generic
message); what it committed in its savepoints stays, as before, and the row is marked
processed with the error, so a broken update is not retried forever.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import functools
import hashlib
import hmac
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import bindparam, func, or_, select, update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import (BadRequest, ChatMigrated, Conflict, EndPointNotFound,
                            InvalidToken, NetworkError, RetryAfter, TelegramError)

from bot.core.aio import wait_event
from bot.devtools import crashpoints
from bot.telegram import monitoring, processes
from bot.telegram.ratelimit import LOW, LOW_PRIORITY, chat_of, retry_seconds
from bot.telegram.request import answer_bodies, answer_body, json_body
from handlers.common import EARLY_ANSWER
from models.base import utcnow
from models.session import core_rowcount, core_rows
from models.intake import Inbox

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]
# a long poll's read may take its timeout beyond this (the getUpdates request's own read
# timeout, bot/telegram/request.py)
POLL_READ_TIMEOUT = 5.0
COMMIT_ATTEMPTS = 3  # an update whose transaction fails this often is marked with the error
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_CONCURRENT = 8  # updates processed at once (of different chats)
# with every slot busy, the poller waits up to this long for one to be free before it
# asks Telegram for more (Intake._room)
FETCH_WAIT = 0.05
DISPATCH_BATCH = 200  # unprocessed rows read per look at the inbox
RECEIVE_RETRY = 2.0  # seconds between a waiting process's tries to become the receiver
# a card after the commit refused with a 429 past the rate limiter's own retries: sent
# again this many more times, each after its retry_after (a card dropped was an answer
# the person never got, logged at INFO only)
CARD_RETRIES = 10
# several processes: how often a running process makes the calls a stopped one left
# pending after its commits, and how old a journal with nothing pending must be to be
# removed by another process than its writer
JOURNAL_SWEEP_SECONDS = 10.0
JOURNAL_DONE_AGE = 600.0
# a process seen not alive this long has stopped: its pending calls are made (longer
# than a live process takes to connect again after its database session broke)
JOURNAL_DEAD_SECONDS = 10.0
_AGAIN = object()  # _process: not committed, run the same update again


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ one session per update
@dataclass
class _Processing:
    session: AsyncSession
    errors: list[BaseException] = field(default_factory=list)
    journal: "CallJournal | None" = None
    active: bool = True  # False once the handlers returned
    savepoints: bool = True  # False: the first run, whose blocks open no savepoint
    split: bool = False  # True: Bot API calls are made outside the write lock (below)
    may_wait: bool = False  # True: a call waits for its chat's turn inside the run
    call_seconds: float = 0.0  # spent in Bot API calls made while this run held the lock


class _RunAgain(BaseException):
    """A block of an update's first run (no savepoints) raised: its writes cannot be
    rolled back alone, so the run stops here (no further Bot API call), its transaction
    is rolled back and the update runs again with a savepoint per block. Not an
    ``Exception``: no handler or error handler catches it."""


class _CallFirst(BaseException):
    """A run with ``split`` made a Bot API call that is not in the journal and whose
    answer the handlers use (a sent message's id, an edit's refusal): the run stops
    here, its transaction is rolled back (the write lock released), the call is made
    and journaled, and the update runs again, this time answered from the journal.
    Also raised in a run without ``split`` by such a call that would wait for its
    chat's turn in the rate limiter (``waits``): that run's next run is again without
    ``split`` (it takes the same path, answered from the journal up to that call).
    Not an ``Exception``: no handler or error handler catches it."""

    def __init__(self, call: "_Call", waits: bool = False) -> None:
        super().__init__(call.method)
        self.call = call
        self.waits = waits


_CURRENT: ContextVar[_Processing | None] = ContextVar("sopbot_update_session", default=None)
# set in a chat's worker while it holds one of the intake's slots (Intake._slot_released)
_HOLDS_SLOT: ContextVar[bool] = ContextVar("sopbot_holds_slot", default=False)


def current() -> _Processing | None:
    """The update being processed here: by this task, or by a task it started (a
    handler run as a task of its own inherits the context). A task that outlives the
    processing gets None: its sessions are new ones."""
    p = _CURRENT.get()
    if p is not None and p.active:
        return p
    return None


def note_error(error: BaseException) -> None:
    """Called by the error handler: the update being processed failed."""
    p = current()
    if p is not None:
        p.errors.append(error)


class SharedSession:
    """The update's session as a handler sees it: ``async with`` does not close it,
    ``begin()`` is a savepoint, ``commit()`` only flushes (the update commits once)."""

    __slots__ = ("_session",)

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def __aenter__(self) -> "SharedSession":
        return self

    async def __aexit__(self, *exc) -> bool:
        return False

    def begin(self):
        return _shared_begin(self._session)

    async def commit(self) -> None:
        await self._session.flush()

    async def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class UpdateSessions:
    """``bot_data["sessionmaker"]``: while an update is processed, its one session;
    elsewhere (the outbox sender, the jobs, start-up) a new session as usual."""

    def __init__(self, sessionmaker) -> None:
        self.real = sessionmaker

    def __call__(self, **kw):
        p = current()
        if p is None:
            return self.real(**kw)
        return SharedSession(p.session)

    def begin(self):
        p = current()
        if p is None:
            return self.real.begin()
        return _shared_begin(p.session)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@asynccontextmanager
async def _shared_begin(session: AsyncSession):
    """A handler's ``begin()`` inside the update's transaction. In the update's first
    run it opens no savepoint (two statements fewer per block): the block's writes are
    flushed with the next statement, at the latest before the update's mark (so what
    follows, e.g. the new card's message id, joins them in one statement), the same
    transaction a savepoint's release would have flushed them into; when an exception leaves the
    block, :class:`_RunAgain` stops the run and the update runs again from its start,
    this time with a savepoint per block, so a refusal rolls back only its own block's
    writes as before (the calls of the first run are answered from its journal)."""
    p = current()
    if p is not None and not p.savepoints and p.session is session:
        try:
            yield SharedSession(session)
        except _RunAgain:
            raise
        except Exception as exc:
            raise _RunAgain() from exc
        return
    async with session.begin_nested():
        yield SharedSession(session)


# ------------------------------------------------------------------ the call journal
_MISSING = object()
# calls whose answer no handler uses (True, or a refusal it ignores): while an update is
# processed with ``split`` they are deferred, made once its transaction committed
DEFERRED_METHODS = frozenset({"answerCallbackQuery", "editMessageReplyMarkup"})
SPLIT_ENV = "SOPBOT_SPLIT_CALLS"  # tests: "always" as on a slow network
MAX_SPLITS = 8  # runs an update may be stopped for a call (_CallFirst); then inline


@dataclass
class _Call:
    """One Bot API call as the bot's request object got it."""
    method: str
    key: str
    url: str
    request_data: Any
    args: tuple
    kwargs: dict

    @property
    def params(self) -> dict:
        try:
            return dict(self.request_data.parameters) if self.request_data is not None else {}
        except Exception:
            return {}

    @property
    def target(self) -> tuple:
        """What the call acts on: calls on the same target keep their order."""
        params = self.params
        if "callback_query_id" in params:
            return ("query", params["callback_query_id"])
        return (params.get("chat_id"), params.get("message_id") or params.get("inline_message_id"))


@dataclass
class _Card:
    """A card shown after the commit (:meth:`Intake.defer_card`): its old message's
    text edited, or its buttons taken off and a new message sent, whose id is then
    stored in the person's conversation. Deferred like the calls whose answer no
    handler uses, written to the journal as one pending line (``"m": "card"``, its
    parameters), so a process that dies after the commit shows it at the next start."""
    params: dict
    method = "card"
    key = ""

    @property
    def target(self) -> tuple:
        return (self.params.get("chat_id"), self.params.get("old"))


def _error_entry(exc: BaseException) -> dict:
    extra = None
    if isinstance(exc, RetryAfter):
        extra = retry_seconds(exc)
    elif isinstance(exc, ChatMigrated):
        extra = exc.new_chat_id
    return {"t": exc.__class__.__name__, "s": getattr(exc, "message", str(exc)), "x": extra}


def _raise_recorded(error: dict) -> None:
    import telegram.error as tg_error

    name, message, extra = error.get("t", ""), error.get("s", ""), error.get("x")
    if name == "RetryAfter":
        raise RetryAfter(int(extra or 1))
    if name == "ChatMigrated":
        raise ChatMigrated(int(extra or 0))
    cls = getattr(tg_error, name, None)
    if not (isinstance(cls, type) and issubclass(cls, TelegramError)):
        cls = NetworkError
    raise cls(message)


@functools.cache
def _journal_dir(path: Path) -> Path:
    """The journals' folder, made private once per process (not at every call)."""
    from bot.core.storage import private_dir

    return private_dir(path)


def _one_line(body: bytes | None) -> str | None:
    """An answer's body as text for one journal line, or None when it cannot be one
    (none, a line break in it, not UTF-8): the parsed answer is encoded instead."""
    if body is None or b"\n" in body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


class CallJournal:
    """The Bot API calls made while processing one update, and their answers (or the
    error Telegram gave), one JSON line each (``<dir>/<update_id>.jsonl``, 0600; an
    answer as Telegram's whole body, ``"w"``, when the request object gave it), also
    kept in memory: read back when the update runs again, after a crash or within the
    same processing (a run stopped by a block or by a call, :class:`_CallFirst`);
    removed once the update committed and its deferred calls were made.

    The deferred calls of the run that commits (``split``: answering a button, taking
    the buttons off an old card) are written as pending lines (``"q"``, with their
    parameters) just before the commit and made after it; each made one gets a line
    with its ``"id"``. At the next start a committed update's pending calls without
    such a line are made (at least once); in a journal read for another run of an
    uncommitted update they are dropped (that run defers its own).

    A pending line names the process that wrote it (``"by"``, ``by`` here): with several
    processes on one storage folder, a committed update's pending calls are made by
    another process only once their writer is not alive (``Intake._clean_journals``).
    The pending lines of another run leave the file only when this run first writes to
    it (after its claim of the row)."""

    def __init__(self, directory: Path | None, update_id: int, by: str = "", *,
                 fresh: bool = False) -> None:
        """``fresh``: the update was stored by this process just now and never ran, so
        it has no journal yet: none is looked for."""
        self.path = directory / f"{update_id}.jsonl" if directory is not None else None
        self.update_id = update_id
        self.by = by
        self.later = False  # calls left to a future after the commit (Intake._later)
        self.recorded: list[dict] = []
        self._used: set[int] = set()  # recorded calls already answered in this run
        self.replayed = 0  # answers of an earlier run that stopped (a crash, a block)
        self.deferred: list[_Call] = []  # of the current run
        self._extra = 0  # calls added after the commit (add_pending)
        self._fd: int | None = None  # the file, open while lines are being written
        lines = [] if fresh else self._lines(self.path)
        self._fresh = fresh  # a file left by something else is emptied when first opened
        kept = [e for e in lines if "q" not in e and "id" not in e]
        # the deferred calls of a run that never committed go from the file when this
        # run first writes to it (after its claim of the row): a run that finds the row
        # processed already (by another process, whose calls these may be) writes nothing
        self._stale = len(kept) != len(lines)
        self.recorded = kept
        self.loaded = len(kept)

    @staticmethod
    def _lines(path: Path | None) -> list[dict]:
        if path is None:
            return []
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:  # none yet, or removed by its process meanwhile
            return []
        entries = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                if "w" in entry:  # the answer as Telegram sent it (:meth:`record`)
                    entry["r"] = (entry.pop("w") or {}).get("result")
                entries.append(entry)
            except (ValueError, AttributeError):  # a line cut off by the crash: the
                break  # call repeats
        return entries

    def _rewrite(self, entries: list[dict]) -> None:
        from bot.core.storage import private_opener

        self.close()  # the file is replaced: a line written next goes to the new one
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8", opener=private_opener) as fh:
            for entry in entries:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        tmp.replace(self.path)

    def new_run(self) -> None:
        self._used = set()
        self.deferred = []

    def replay(self, method: str, key: str = "") -> Any:
        """The recorded entry of this call if a run made the same call (the same method
        with the same parameters) and it is not used yet in this run, else _MISSING.

        Matched by content, not by position: the order of the calls may differ between
        runs (a button is answered when its work outlasts ``ANSWER_WITHIN``, which
        happens at another point of a second run that is faster or slower), and a
        call Telegram already carried out must not be made again (an edit to the same
        text is refused as "message is not modified", which aborted the handler)."""
        for i, entry in enumerate(self.recorded):
            if i in self._used or entry["m"] != method or entry.get("k", "") != key:
                continue
            self._used.add(i)
            if not entry.get("split"):  # not a call made first on purpose
                self.replayed += 1
            return entry
        return _MISSING

    @staticmethod
    def answer(entry: dict) -> Any:
        """A recorded call's answer, a copy of its own for the caller (PTB changes what
        it gets: a file's path)."""
        if "w" in entry:  # kept as Telegram sent it (:meth:`record`)
            return json.loads(entry["w"]).get("result")
        return copy.deepcopy(entry.get("r"))

    def _append(self, entry: dict, line: str | None = None) -> None:
        """``line``: the entry as JSON already (:meth:`record`)."""
        if self.path is None:
            return
        from bot.core.storage import private_opener

        _journal_dir(self.path.parent)
        if self._stale:  # the file's own lines this run kept, then this one
            self._stale = False
            self._rewrite(self.recorded[:self.loaded])
        if line is None:
            line = json.dumps(entry, ensure_ascii=False, default=str)
        if self._fd is None:  # kept open while the update is in hand (:meth:`close`)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            if self._fresh:
                flags |= os.O_TRUNC
                self._fresh = False
            try:
                self._fd = private_opener(str(self.path), flags)
            except FileNotFoundError:  # the folder went since it was made
                _journal_dir.cache_clear()
                _journal_dir(self.path.parent)
                self._fd = private_opener(str(self.path), flags)
        # unbuffered, one write(2) a line (more only when the kernel takes part of it):
        # in the kernel when it returns, so it survives the process being killed (a
        # line cut short by a crash is read as the end)
        data = memoryview((line + "\n").encode("utf-8"))
        while data:
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        """Close the file (written again, it is opened again)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def record(self, method: str, answer: Any, key: str = "", *,
               error: BaseException | None = None, body: bytes | None = None) -> None:
        """``body``: the answer's whole body as Telegram sent it (``{"ok": true,
        "result": ...}``, the ``answer`` its result), written as it is (``"w"``) and
        decoded only when a run asks for the answer again: no encoding of the parsed
        answer, no copy of it."""
        entry: dict = {"m": method, "k": key}
        raw = _one_line(body) if error is None else None
        if raw is not None:
            entry["w"] = raw
            line = f'{{"m":{json.dumps(method)},"k":{json.dumps(key)},"w":{raw}}}'
        else:
            if error is not None:
                entry["e"] = _error_entry(error)
            else:
                entry["r"] = answer
            line = json.dumps(entry, ensure_ascii=False, default=str)
            if error is None:  # a copy: PTB changes the answer it gets (getFile: the
                # file's full URL); the answer is JSON as Telegram sent it, and decoding
                # the line costs a fraction of a deep copy
                entry = json.loads(line)
        self.recorded.append(entry)
        self._append(entry, line)

    def write_deferred(self) -> None:
        """Just before the commit: the run's deferred calls, so that none is skipped
        when the process dies between the commit and the calls."""
        for i, call in enumerate(self.deferred):
            self._append({"m": call.method, "k": call.key, "id": i, "q": call.params,
                          "by": self.by})

    def add_pending(self, method: str, params: dict) -> str:
        """After the commit: one more call to make (taking an old card's buttons off
        once its new card's id is kept), written as pending like the run's deferred
        calls. Returns its id for :meth:`pending_done`."""
        self._extra += 1
        i = f"x{self._extra}"
        self._append({"m": method, "k": "", "id": i, "q": params, "by": self.by})
        return i

    def pending_done(self, i: int | str, method: str, answer: Any, key: str = "") -> None:
        self._append({"m": method, "k": key, "id": i, "r": answer})

    @classmethod
    def left_pending(cls, path: Path) -> list[tuple[str, dict, str]]:
        """A committed update's deferred calls that were not made (method, parameters,
        the process that wrote them: "" in a journal written before processes were
        named)."""
        entries = cls._lines(path)
        done = {e["id"] for e in entries if "id" in e and "q" not in e}
        return [(e["m"], e["q"], e.get("by", "")) for e in entries
                if "q" in e and e.get("id") not in done]

    def remove(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def call_key(request_data) -> str:
    """What identifies a call in the journal besides its method: a digest of its
    parameters (chat, message, text, buttons, ...): of the JSON body it sends, encoded
    once for both (a run that makes the same call builds the same parameters in the
    same order); for a call with files, of its parameters and of the names of the files
    it uploads (not their bytes, which a rebuild may change)."""
    if request_data is None:
        return ""
    try:
        body = json_body(request_data)  # the body the call sends, encoded once
        if body is not None:
            return hashlib.sha256(body).hexdigest()[:32]
        params = request_data.parameters
        files = {name: part[0] if isinstance(part, tuple) else ""
                 for name, part in request_data.multipart_data.items()}
    except Exception:  # an unusual request object: match on the method alone
        return ""
    blob = json.dumps([params, files], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class _CallStats:
    """Moving averages that decide whether a run splits its calls off (``auto``):
    worth it when a Bot API call takes longer than the database work of a run (which a
    split repeats), i.e. on a real network, not against a local server."""

    def __init__(self) -> None:
        self.call = 0.0
        self.run = 0.0

    @staticmethod
    def _mix(old: float, new: float) -> float:
        return new if old == 0.0 else 0.8 * old + 0.2 * new

    def observe_call(self, seconds: float) -> None:
        self.call = self._mix(self.call, seconds)

    def observe_run(self, seconds: float) -> None:
        self.run = self._mix(self.run, seconds)

    def split_pays(self) -> bool:
        return self.call > 0.005 and self.call > 1.5 * self.run


class JournaledRequest:
    """Wraps the bot's request object: a call made by the task that processes an
    update goes through that update's :class:`CallJournal` (answered from it when a
    run made it already; deferred or made first when the run splits, see
    :class:`_CallFirst`); every other call (the outbox sender, jobs, start-up) passes
    straight through. The rate limiter is applied here to the calls of an update that
    are really made (:func:`_pass_updates_by`), not to those answered from the journal."""

    def __init__(self, inner, limit=None, limiter=None) -> None:
        self.inner = inner
        self.limit = limit  # the rate limiter's own process_request, if any
        self.limiter = limiter  # and the limiter (its chats' turns)
        self.stats = _CallStats()

    async def post(self, url: str, request_data=None, *args, **kwargs):
        p = current()
        if p is None or p.journal is None:
            return await self.inner.post(url, request_data, *args, **kwargs)
        method = url.rsplit("/", 1)[-1]
        key = call_key(request_data)
        entry = p.journal.replay(method, key)
        if entry is not _MISSING:
            if "e" in entry:
                _raise_recorded(entry["e"])
            return p.journal.answer(entry)
        call = _Call(method, key, url, request_data, args, kwargs)
        # its chat's turn not now: not waited for in the run (a call whose answer the
        # handler uses, at last, after MAX_SPLITS runs)
        waits = not p.split and self._must_wait(call)
        # a button answered early, its work being long: now, not at the commit
        if (p.split or waits) and not EARLY_ANSWER.get():
            if method in DEFERRED_METHODS:
                p.journal.deferred.append(call)
                return True
            if not p.may_wait:
                raise _CallFirst(call, waits=waits)
        started = time.perf_counter()
        try:
            return await self.make(p.journal, call)
        finally:
            p.call_seconds += time.perf_counter() - started

    def _must_wait(self, call: _Call) -> bool:
        """Whether the rate limiter would hold ``call`` back for its chat's turn (a
        take-off: as the low request it becomes once deferred)."""
        wait = getattr(self.limiter, "chat_wait", None)
        return wait is not None and wait(chat_of(call.params),
                                         call.method in LOW_PRIORITY) > 0

    async def _send(self, call: _Call) -> Any:
        if self.limit is None:
            return await self.inner.post(call.url, call.request_data, *call.args, **call.kwargs)

        async def send():
            return await self.inner.post(call.url, call.request_data, *call.args, **call.kwargs)
        return await self.limit(
            callback=send, args=(), kwargs={}, endpoint=call.method, data=call.params,
            rate_limit_args=None)

    async def make(self, journal: CallJournal, call: _Call) -> Any:
        """Make the call for real and journal its answer (or Telegram's refusal)."""
        started = time.perf_counter()
        bodies = answer_bodies()
        try:
            answer = await self._send(call)
        except BadRequest as exc:
            # a second run repeats an edit Telegram carried out while the first run
            # died (its answer never reached the journal): the message already shows
            # it, so it is done, not an error that aborts the handler
            if not (journal.loaded and call.method.startswith("editMessage")
                    and "not modified" in exc.message.lower()):
                journal.record(call.method, None, call.key, error=exc)
                raise
            answer = True
        except Exception as exc:
            journal.record(call.method, None, call.key, error=exc)
            raise
        finally:
            self.stats.observe_call(time.perf_counter() - started)
        journal.record(call.method, answer, call.key,
                       body=answer_body(bodies, call.request_data))
        return answer

    async def make_deferred(self, journal: CallJournal, show_card=None,
                            take_off=None) -> asyncio.Future | None:
        """After the commit: the deferred calls of the run, those on different targets
        at once, those on one target in order. A refusal is logged (nothing waits for
        it: the handlers were told True). A deferred card (:class:`_Card`) is shown by
        ``show_card``, the old card's buttons then by ``take_off(chat_id, message_id)``.

        Taking an old card's buttons off (:data:`LOW_PRIORITY`) waits, in the rate
        limiter, for its chat to be quiet: those calls (a chain of nothing else, and the
        old card's take-off after a deferred card) are left to a future that is
        returned, not waited for here (the chat's next update goes on meanwhile); the
        journal keeps them as pending until they are made."""
        chains: dict[tuple, list[tuple[int, _Call]]] = {}
        for i, call in enumerate(journal.deferred):
            chains.setdefault(call.target, []).append((i, call))
        later: list = []  # coroutines for the returned future

        async def made(i: int | str, method: str, key: str, make, is_card: bool = False
                       ) -> None:
            """One pending call made: a refusal logged, the call marked done in the
            journal either way."""
            answer = None
            try:
                answer = await make()
            except TelegramError as exc:
                (log.warning if is_card else log.info)("%s after the commit: %s", method,
                                                       exc)
            except Exception:  # a card's id not stored: its next press is refused
                if not is_card:
                    raise
                log.exception("a card after the commit could not be shown")
            journal.pending_done(i, method, answer, key)

        async def take_off_later(chat_id: int, message_id: int) -> None:
            params = {"chat_id": chat_id, "message_id": message_id}
            i = journal.add_pending("editMessageReplyMarkup", params)
            later.append(made(i, "editMessageReplyMarkup", "",
                              lambda: take_off(chat_id, message_id)))

        async def card(params) -> int:
            # the answer the person waits for: refused with 429s past the rate
            # limiter's own retries, it is sent again after each retry_after, not dropped
            for _ in range(CARD_RETRIES):
                try:
                    return await show_card(params, take_off=take_off_later)
                except RetryAfter as exc:
                    wait = retry_seconds(exc)
                    log.info("a card after the commit got a 429: again in %s s", wait)
                    await asyncio.sleep(wait)
            return await show_card(params, take_off=take_off_later)  # a 429: given up

        async def chain(calls):
            for i, call in calls:
                if isinstance(call, _Card):
                    await made(i, call.method, call.key, lambda: card(call.params),
                               is_card=True)
                else:
                    await made(i, call.method, call.key, lambda: self._send(call))

        now = []
        for calls in chains.values():
            if all(call.method in LOW_PRIORITY for _i, call in calls):
                later.append(chain(calls))
            else:
                now.append(chain(calls))
        await asyncio.gather(*now)
        journal.deferred = []
        if not later:
            return None
        return asyncio.gather(*(_low(c) for c in later), return_exceptions=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _low(coroutine) -> Any:
    """Run ``coroutine`` with its requests low in their chats' turns (the rate
    limiter's ``LOW``: after the chat's other requests, once it is quiet)."""
    LOW.set(True)  # in this task's own context (gather wraps each in a task)
    return await coroutine


def _pass_updates_by(limiter) -> Any:
    """The bot's rate limiter lets the calls of an update being processed pass: they are
    limited where they are really made (:meth:`JournaledRequest.make`), so a call
    answered from the journal takes no turn and a deferred one takes its turn when it
    is made. Patched on the instance (the outbox sender recognises the limiter by its
    class). Returns the limiter's own ``process_request``."""
    own = getattr(limiter, "_own_process_request", None)
    if own is not None:
        return own
    own = limiter.process_request

    async def process_request(callback, args, kwargs, endpoint, data, rate_limit_args):
        p = current()
        if p is not None and p.journal is not None:
            return await callback(*args, **kwargs)
        return await own(callback=callback, args=args, kwargs=kwargs, endpoint=endpoint,
                         data=data, rate_limit_args=rate_limit_args)

    limiter.process_request = process_request
    limiter._own_process_request = own
    return own


def journal_calls(bot) -> JournaledRequest:
    """Put the journal between the bot and its (non-getUpdates) request object."""
    updates_request, request = bot._request
    if not isinstance(request, JournaledRequest):
        limiter = getattr(bot, "_rate_limiter", None)
        limit = _pass_updates_by(limiter) if limiter is not None else None
        request = JournaledRequest(request, limit, limiter)
        bot._request = (updates_request, request)
    return request


# ------------------------------------------------------------------ the inbox
def _sender(payload: dict) -> int | None:
    """The Telegram user id of the person who sent this update (a message or a press)."""
    for kind in ("message", "edited_message", "callback_query"):
        sender = (payload.get(kind) or {}).get("from") or {}
        if "id" in sender:
            return sender["id"]
    return None


@functools.cache
def _statements(dialect: str = "") -> dict:
    """The intake's own statements, built once per dialect (Core, on the tables): every
    update runs them, and building one costs about as much as running it."""
    from sqlalchemy.dialects import postgresql, sqlite

    from bot.core.secret_input import PASSPHRASE
    from models import Conversation, Person

    inbox, person, conv = Inbox.__table__, Person.__table__, Conversation.__table__
    # a row stored already (a redelivery, or a concurrent request) is left alone; the
    # statement answers with the ids it did insert
    upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(inbox)
    return {
        "insert": upsert.on_conflict_do_nothing(index_elements=[inbox.c.update_id])
        .returning(inbox.c.update_id),
        "waiting": select(person.c.telegram_user_id)
        .join(conv, conv.c.person_id == person.c.id)
        .where(person.c.telegram_user_id.in_(bindparam("uids", expanding=True)),
               conv.c.kind == PASSPHRASE),
        # those not on a queue yet: the rows in hand and queued are not read (and their
        # payloads not decoded) again at every pass
        "unprocessed": select(inbox.c.update_id, inbox.c.payload, inbox.c.chat_key)
        .where(inbox.c.processed_at.is_(None),
               inbox.c.update_id.not_in(bindparam("queued", expanding=True)))
        .order_by(inbox.c.update_id).limit(bindparam("n")),
    }


def _dialect(session) -> str:
    return session.get_bind().dialect.name


async def _waiting_in_database(session, senders: set[int]) -> set[int]:
    """The Telegram ids among ``senders`` whose conversation, as committed, waits for
    the TTE passphrase."""
    if not senders:
        return set()
    return {r[0] for r in await core_rows(session, _statements(_dialect(session))["waiting"],
                                          {"uids": list(senders)})}


async def _write_left(session) -> None:
    """Flush what an update's run left to write. A conversation changed since it was
    read (a typed answer's, with its new card's id) is written in a Core UPDATE of its
    own (``save_conversation``, which writes what changed of it, if anything), the rest
    by the unit of work, which then has nothing left to do in the usual update."""
    from bot.core.onboarding import save_conversation
    from models import Conversation

    for obj in [o for o in session.sync_session.dirty if isinstance(o, Conversation)]:
        await save_conversation(session, obj)
    await session.flush()


def _key(update: Update) -> int | None:
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else None


class Intake:
    """Stores updates in the inbox and processes them (see the module doc)."""

    def __init__(self, application, sessionmaker, *, poll_timeout: int = 10,
                 allowed_updates: list[str] | None = None,
                 journal_dir: Path | None = None,
                 max_concurrent: int | None = None) -> None:
        self.app = application
        self.sm = sessionmaker  # the plain sessionmaker, never the shared one
        self.journal_dir = journal_dir
        from bot.core.secret_input import SecretInput

        self.secrets = SecretInput()  # the TTE passphrase: redacted before it is stored
        self.replayed = 0  # Bot API calls answered from a journal (not made twice)
        self._failures: dict[int, int] = {}  # update id -> transactions that failed
        self.poll_timeout = poll_timeout
        self.allowed_updates = allowed_updates or ALLOWED_UPDATES
        self.processed = 0
        self._wake = asyncio.Event()
        self._running = False
        self._poller: asyncio.Task | None = None
        self._processor: asyncio.Task | None = None
        # people in parallel, each in order: one queue and one worker per chat
        self.max_concurrent = max_concurrent = max_concurrent or MAX_CONCURRENT
        self._slots = asyncio.Semaphore(max_concurrent)
        self._slot_freed = asyncio.Event()  # set when an update gives its slot back
        self._released = 0  # workers whose slot is lent out (_slot_released)
        self._queues: dict[int | None, collections.deque] = {}
        self._workers: dict[int | None, asyncio.Task] = {}
        self._queued: set[int] = set()  # update ids on a queue or in hand
        self._in_hand: dict[int, int | None] = {}  # update id -> chat, being processed
        self._idle = asyncio.Event()
        self._idle.set()
        self._fatal: BaseException | None = None
        self._later: set[asyncio.Future] = set()  # take-offs after commits (make_deferred)
        self._sweeper: asyncio.Task | None = None  # several processes: _sweep_journals
        # updates whose journals this process has in hand (being processed, or calls
        # left to make after the commit): their pending calls are not made by a clean
        self._in_flight: set[int] = set()
        self._dead_since: dict[str, float] = {}  # writers of journals seen not alive
        self._write_lock = _WriteTurns() if _is_sqlite(sessionmaker) else None
        # PostgreSQL: several processes may share the inbox; rows are claimed by this
        # process (bot/telegram/processes.py) before they are queued here
        self.claims = processes.is_postgres(sessionmaker)
        self.me = processes.identity()
        self.life: processes.Life | None = None
        # "auto": a run makes its Bot API calls outside its transaction when a call takes
        # longer than a run's database work; "always"/"never" (tests, benchmarks)
        self.split_calls = os.environ.get(SPLIT_ENV) or "auto"
        self.request: JournaledRequest | None = None  # set by start()
        self._claim = None  # the statement claiming a row for a run (_claim_stmt)
        # PostgreSQL: rows may be waiting to be claimed (stored unclaimed here or by
        # another process; no room at the last look, or rows claimed there, a chat's a
        # round at a time): a worker that ends wakes the processor to claim them; else
        # it does not look (the processor still looks every second)
        self._claimable = True

    # -- cards after the commit -----------------------------------------------------
    def defer_card(self, *, chat_id: int, person_id: int, kind: str, text: str,
                   markup: dict | None, old: int | None, new: bool) -> bool:
        """Called by a handler that shows a conversation's card (``handlers.data_entry
        .put_card``) instead of making the calls itself: when the update's run splits
        its calls off (a real network), the card is shown after the commit
        (:meth:`show_card`) and True is returned; else False, and the handler makes the
        calls in the run as before. A card made in the run would stop it
        (:class:`_CallFirst`: the message id is needed) and the whole update would run
        a second time; deferred, the update runs once and the new id is stored in a
        statement of its own right after the send (in one process before the chat's
        next update; with several, that update may be processed elsewhere, so the id
        goes in before the old card's buttons are taken off: :meth:`show_card`)."""
        p = current()
        if p is None or not p.split or p.journal is None:
            return False
        p.journal.deferred.append(_Card(dict(
            chat_id=chat_id, person_id=person_id, kind=kind, text=text, markup=markup,
            old=old, new=new)))
        return True

    async def show_card(self, p: dict, take_off=None) -> int:
        """Show a deferred card (:meth:`defer_card`): edit the old message in place, or
        (``new``, or the edit refused) send a new message, whose id the conversation
        then keeps, if it is still of that kind, and then take the old one's buttons
        off. Returns the card's message id. ``take_off(chat_id, message_id)``: given,
        a message's buttons are left to it (:meth:`JournaledRequest.make_deferred`
        takes them off once the chat is quiet, without holding the chat's queue).

        The id is kept before the take-off: the update is committed and its row
        processed, so with several processes the chat's next update (a press on the
        new card) may be processed elsewhere meanwhile; a take-off slowed by a 429 held
        the id back, and that press was refused as a stale button."""
        from handlers.markup import show_card
        from models.workflow import Conversation

        bot = self.app.bot
        chat_id, old = p["chat_id"], p.get("old")
        new = bool(p.get("new"))
        shown = await show_card(bot, chat_id, p["text"], p.get("markup") or None, old=old,
                                new=new, take_off_old=False)
        if shown == old:  # edited in place
            return old
        # message ids grow in a chat: a card sent later is never replaced by this one
        # (with several processes the chat's next update may be processed elsewhere
        # before this store)
        async with self._writing(), self._session() as session, session.begin():
            stored = (await session.execute(
                sql_update(Conversation)
                .where(Conversation.person_id == p["person_id"],
                       Conversation.kind == p["kind"],
                       or_(Conversation.message_id.is_(None),
                           Conversation.message_id < shown))
                .values(message_id=shown))).rowcount
        if take_off is None:
            take_off = self._take_off_now
        if not stored:  # the conversation moved on (ended, or a newer card): no buttons
            await take_off(chat_id, shown)
        if old and new:  # the old card's buttons, once the new id is kept
            await take_off(chat_id, old)
        return shown

    def _later_done(self, journal: CallJournal, later: asyncio.Future) -> None:
        self._later.discard(later)
        self._in_flight.discard(journal.update_id)
        journal.close()
        # stopped: the journal has them, made at the next start (a cancelled gather
        # ends with CancelledError as its exception, or in one of its results)
        if later.cancelled() or later.exception() is not None:
            return
        errors = [r for r in later.result() if isinstance(r, BaseException)]
        if any(isinstance(e, asyncio.CancelledError) for e in errors):
            return
        for error in errors:
            log.error("taking buttons off after the commit failed", exc_info=error)
        journal.remove()

    async def later_done(self) -> None:
        """Wait until the buttons left to take off after the commits are off."""
        while self._later:
            await asyncio.wait(set(self._later))

    async def _take_off_now(self, chat_id: int, message_id: int) -> None:
        with contextlib.suppress(TelegramError):
            await self.take_off(chat_id, message_id)

    async def take_off(self, chat_id: int, message_id: int) -> Any:
        """Take a message's buttons off (after the commit, through the rate limiter)."""
        return await self.app.bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message_id, reply_markup=None)

    # -- storing ------------------------------------------------------------------
    async def store(self, updates: Iterable[Update],
                    raw: dict[int, dict] | None = None) -> int:
        """Commit ``updates`` to the inbox (those already there are left alone);
        returns how many were new. ``raw``: an update's payload as Telegram sent it (a
        webhook's body), stored as it is; else the update's ``to_dict()``. Raises when
        the database refuses: then nothing may be confirmed to Telegram.

        With one process (SQLite) the new rows go on their chats' queues at once, with
        the payloads in hand: no pass over the inbox reads them back."""
        rows = {u.update_id: u for u in updates}
        if not rows:
            return 0
        raw = raw or {}
        # read before the database (bot/core/secret_input.py): a mark cleared since was
        # cleared after the commit that put the conversation in the database
        expected = self.secrets.expected()
        kept: list[int] = []  # texts held for their handlers in this attempt
        try:  # on SQLite behind the updates' transactions, on the event loop
            async with self._writing(first=True), self._session() as session, session.begin():
                statements = _statements(_dialect(session))
                ordered = [u for _i, u in sorted(rows.items())]
                waiting = await self._awaiting_secret(session, ordered, expected)
                values, secret = [], {}
                for u in ordered:
                    payload = raw.get(u.update_id) or u.to_dict()
                    mine = None
                    if self.secrets.candidate(u) in waiting:
                        secret[u.update_id] = payload
                        # the text is held once the row is known to be new (a row stored
                        # before is left as it is, and so is what is held for it)
                        payload = self.secrets.redact(u.update_id, payload, keep=False)
                        # the text is in this process's memory only: this process
                        # processes the row (after the chat's earlier rows)
                        mine = self.me if self.claims else None
                    now = utcnow()
                    values.append({"update_id": u.update_id, "payload": payload,
                                   "chat_key": _key(u), "received_at": now, "error": "",
                                   "processed_at": None, "claimed_by": mine,
                                   "claimed_at": mine and now})
                # a row stored already (a redelivery, a concurrent request) is left alone
                new = {r[0] for r in await core_rows(session, statements["insert"], values)}
                for uid in new & secret.keys():
                    self.secrets.keep(uid, secret[uid])
                    kept.append(uid)
                direct = new
                if new and self.claims:
                    direct = await self._claim_stored(session, new - secret.keys())
                    if new - direct - secret.keys():  # left for any process to claim
                        self._claimable = True
                        await processes.notify_stored(session)
        except BaseException:
            for uid in kept:  # not stored after all: held again when it is
                self.secrets.drop(uid)
            self.wake()  # whatever did commit is found by a pass, in order
            raise
        if not self._direct():
            direct = set()
        if direct:  # a redacted payload is parsed again, redacted
            self._queue_rows([(v["update_id"], v["payload"], v["chat_key"])
                              for v in values if v["update_id"] in direct],
                             {uid: rows[uid] for uid in direct - secret.keys()})
        if new - direct:
            self.wake()  # a pass over the inbox queues them
        return len(new)

    async def _claim_stored(self, session, new: set[int]) -> set[int]:
        """PostgreSQL, in the store's transaction: the new rows this process claims at
        once (:func:`processes.claim_stored`), as many as it has room for, the oldest
        first. They go on their queues at the commit, as with one process: no claim
        transaction and no read of the rows back. Before the start (no processor yet)
        none: the start's pass claims and reads what is stored."""
        room = self._claim_room()
        if not new or room <= 0 or not self._direct():
            return set()
        return await processes.claim_stored(session, self.me, sorted(new)[:room], self._queued)

    def _claim_room(self) -> int:
        """PostgreSQL: how many more rows this process claims now (it claims what it
        can work on soon, twice its slots, so that an idle process finds work)."""
        return 2 * self.max_concurrent - len(self._queued)

    def _direct(self) -> bool:
        """Whether stored rows go on their queues at once: the processor is running
        (before the start the pass of :meth:`start` reads what is stored) and no chat's
        processing died (its rows would go on a new worker ahead of the one left). On
        PostgreSQL only the rows this process claimed in the store's transaction
        (:meth:`_claim_stored`)."""
        return self._processing() and self._fatal is None

    def _processing(self) -> bool:
        """The processor runs: started, and neither stopped nor ended."""
        return self._running and self._processor is not None and not self._processor.done()

    async def _awaiting_secret(self, session, updates: list[Update],
                               expected: frozenset[int]) -> set[int]:
        """The senders among ``updates`` whose next text is the TTE passphrase."""
        senders = {self.secrets.candidate(u) for u in updates} - {None}
        if not senders:
            return set()
        waiting = set(senders & expected)
        return waiting | await _waiting_in_database(session, senders - waiting)

    async def _redact_unseen(self, update_id: int, payload: dict, *,
                             stored_here: bool = False) -> dict:
        """Before a row is processed: a text stored unredacted whose sender waits for the
        TTE passphrase now (another process stored it in the moment between the
        question and the asking update's commit, which only that process's mark
        covers). The chat's earlier rows have been processed, so the database knows by
        now; the row is rewritten with the text redacted, in a commit of its own before
        any handler runs, and the text is kept in this process's memory for the
        handler. In every process, whatever stored the row.

        ``stored_here``: the row was stored by this very process in this run, and that
        store found the sender not waiting (else the row would be redacted). With one
        process (SQLite) nobody else asks, so the sender can be waiting now only if
        this process asked them since (``SecretInput.expect``, called before the
        question goes out). On PostgreSQL such a row was claimed in the store's own
        statement only if, as of that statement, its chat had no earlier unprocessed
        row but this process's, on its queues, and the sender was not waiting
        (:func:`processes.claim_stored`): the press that asks is the person's own
        earlier row of the chat (a press elsewhere than in the private chat is
        refused: ``app.private_chats_only``), so it had committed by then, asking, or
        it is processed here before this row, asking in this process, or it had not
        been processed and the row was not claimed there.
        When this process never asked them, the database is not read again: that read
        was a session of its own on every typed text."""
        from models.session import INLINE

        sender = self.secrets.candidate_payload(payload)
        if sender is None:
            return payload
        if stored_here and not self.secrets.ever_asked(sender):
            return payload
        async with self._session() as session:  # a read: no write lock
            await session.connection(execution_options={INLINE: True})
            if not await _waiting_in_database(session, {sender}):
                return payload
        redacted = self.secrets.redact(update_id, payload)
        async with self._writing(), self._session() as session, session.begin():
            await session.execute(sql_update(Inbox).where(
                Inbox.update_id == update_id, Inbox.processed_at.is_(None))
                .values(payload=redacted))
        log.info("update %s: the TTE passphrase, stored unredacted, redacted before "
                 "processing", update_id)
        return redacted

    async def store_json(self, data: dict) -> int:
        """Store one update as Telegram sent it (a webhook's body)."""
        return await self.store([Update.de_json(data, self.app.bot)], {data["update_id"]: data})

    # -- processing ---------------------------------------------------------------
    def wake(self) -> None:
        """Look at the inbox now (rows stored, by this process or another one)."""
        self._claimable = True
        self._wake.set()

    @property
    def busy(self) -> bool:
        """An update is being processed (its transaction not yet committed)."""
        return bool(self._in_hand)

    def in_hand(self, chat_key: int | None = None) -> set[int]:
        """The update ids being processed now (of ``chat_key``'s chat when given)."""
        return {i for i, k in self._in_hand.items() if chat_key is None or k == chat_key}

    async def pending(self) -> int:
        """Rows not processed yet (the one being processed included)."""
        async with self.sm() as session:
            return (await session.execute(select(func.count()).select_from(Inbox).where(
                Inbox.processed_at.is_(None)))).scalar_one()

    async def dispatch(self) -> int:
        """Queue the unprocessed rows not queued yet, each on its chat's queue, oldest
        first; a chat without a worker gets one. Returns how many were queued.

        On PostgreSQL only this process's rows: it first claims what it can work on
        soon (:func:`processes.claim_inbox`), the other processes the rest."""
        if self.claims:
            self._claimable = False  # set again by what stores or frees rows meanwhile
            room = self._claim_room()
            # more may be waiting: there was no room, or rows were claimed (a chat's
            # next rows come a round at a time, and the rounds are bounded); a look
            # that claims nothing ends the looking
            if room <= 0 or await processes.claim_inbox(self.sm, self.me, room):
                self._claimable = True
            rows = await processes.my_rows(self.sm, self.me, self._queued, DISPATCH_BATCH)
            return self._queue_rows(rows)
        async with self.sm() as session:
            rows = (await session.execute(_statements(_dialect(session))["unprocessed"],
                                          {"n": DISPATCH_BATCH,
                                           "queued": list(self._queued)})).all()
        return self._queue_rows(rows)

    def _queue_rows(self, rows, parsed: dict[int, Update] | None = None) -> int:
        """Queue ``rows`` (update id, payload, chat key); ``parsed``: updates already
        parsed from their payloads (a store's), which the first run then uses."""
        queued = 0
        for update_id, payload, chat_key in rows:
            if update_id in self._queued:
                continue
            self._queued.add(update_id)
            self._queues.setdefault(chat_key, collections.deque()).append(
                (update_id, payload, parsed.get(update_id) if parsed else None))
            queued += 1
            if chat_key not in self._workers:
                self._idle.clear()
                self._workers[chat_key] = asyncio.create_task(
                    self._worker(chat_key), name=f"inbox-chat-{chat_key}")
        return queued

    async def _worker(self, chat_key) -> None:
        """One chat's updates, strictly in order; at most ``max_concurrent`` updates of
        all chats are processed at once."""
        queue = self._queues[chat_key]
        try:
            while queue:
                update_id, payload, update = queue[0]
                async with self._slots:
                    holds = _HOLDS_SLOT.set(True)
                    self._in_hand[update_id] = chat_key
                    try:
                        outcome = await self._process(update_id, payload, update)
                    finally:
                        self._in_hand.pop(update_id, None)
                        _HOLDS_SLOT.reset(holds)
                self._slot_freed.set()
                if outcome is True:  # committed: the database tells who waits for a
                    self.secrets.drop(update_id)  # passphrase now, and a secret not
                    self.secrets.settle(_sender(payload))  # taken is forgotten
                elif outcome is False:  # processed meanwhile (or by another process):
                    self.secrets.drop(update_id)  # no handler here takes its text
                if outcome is _AGAIN:  # not committed: the same update again, before the next
                    continue
                queue.popleft()
                self._queued.discard(update_id)
                if outcome is False and self.claims and queue:
                    self._unqueue(queue)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the processing died (a crash point in a test)
            self._fatal = exc
            self._wake.set()
            raise
        finally:
            if self.claims and self._claimable:  # room for more: claim the chat's next
                self._wake.set()  # rows (and others') when rows may be waiting
            if self._workers.get(chat_key) is asyncio.current_task():
                del self._workers[chat_key]
                if not queue or self._fatal is not None:
                    self._queues.pop(chat_key, None)
                    for update_id, _payload, _update in queue:
                        self._queued.discard(update_id)
            if not self._workers:
                self._idle.set()

    def _unqueue(self, queue) -> None:
        """PostgreSQL: a chat's row here turned out not to be this process's any more
        (its claim was taken over while this process was taken for dead) or processed
        already. The chat's later rows on its queue may have been claimed in their store
        behind it (:func:`processes.claim_stored`): they are taken off, and a pass
        queues them again (:func:`processes.my_rows`) once no earlier row of the chat
        is another process's, read from the database, so their passphrase check reads
        it too (not stored here)."""
        for update_id, _payload, _update in queue:
            self._queued.discard(update_id)
        queue.clear()
        self._claimable = True
        self._wake.set()

    def _check_fatal(self) -> None:
        if self._fatal is not None:
            exc, self._fatal = self._fatal, None
            raise exc

    async def process_pending(self) -> int:
        """Process every unprocessed row (people in parallel, each person's in order)
        and wait until none is left; returns how many."""
        before = self.processed
        while True:
            self._check_fatal()
            queued = await self.dispatch()
            if not queued and not self._workers:
                self._check_fatal()
                return self.processed - before
            await self._idle.wait()

    async def process(self, update_id: int, payload: dict) -> bool:
        """Run the handlers for one inbox row in one transaction that also marks it."""
        self._in_hand[update_id] = None
        done = False
        try:
            done = await self._process(update_id, payload) is True
            return done
        finally:
            self._in_hand.pop(update_id, None)
            if done:  # committed: the database tells who waits for a passphrase now,
                self.secrets.drop(update_id)  # and a secret not taken is forgotten
                self.secrets.settle(_sender(payload))

    def _session(self):
        """A session of the intake's own: on SQLite its write transaction
        (``session.begin()``) runs on the event loop after its ``BEGIN IMMEDIATE``, not
        in the driver's thread (``models.sqlite_driver.set_inline``): an update's
        statements are short, and a write transaction waits for the lock only at its
        ``BEGIN IMMEDIATE``, which runs on the event loop too when the lock is free and
        waits in the thread when it is not. A read (no ``begin()``) is
        inline when it asks, with the connection's execution option ``INLINE`` (WAL: a
        reader waits for no one)."""
        from models.session import INLINE

        return self.sm(info={INLINE: True})

    @contextlib.asynccontextmanager
    async def _writing(self, *, first: bool = False):
        """On SQLite one writing transaction of the intake at a time (an update's holds
        the write lock from its ``BEGIN IMMEDIATE`` to its commit): the others, and the
        storing of new updates, wait here, on the event loop, instead of in SQLite's
        busy handler (which sleeps in steps of up to 100 ms). Storing (``first``) goes
        before the updates' runs waiting here: until it commits, polling cannot ask
        Telegram for what came next, nor a webhook answer 200."""
        if self._write_lock is None:
            yield
            return
        async with self._write_lock.turn(first=first):
            yield

    @asynccontextmanager
    async def _slot_released(self):
        """A worker's slot given back while its update waits for Bot API calls outside
        the transaction (a chat's turn may be a second away): another chat's update
        may be processed meanwhile."""
        if not _HOLDS_SLOT.get():
            yield
            return
        self._slots.release()
        self._released += 1
        self._slot_freed.set()
        try:
            yield
        finally:
            try:
                await self._slots.acquire()
            finally:
                self._released -= 1

    def _split(self) -> bool:
        """Whether a run makes its Bot API calls outside its transaction: on SQLite the
        others wait for its write lock, on PostgreSQL for the rows it locked (the audit
        chain's head, a step run)."""
        if self.split_calls == "never" or self.request is None:
            return False
        return self.split_calls == "always" or self.request.stats.split_pays()

    async def _process(self, update_id: int, payload: dict, update: Update | None = None):
        """``update``: ``payload`` parsed already (by the store), for the first run."""
        started = time.perf_counter()
        try:
            checked = await self._redact_unseen(update_id, payload,
                                                stored_here=update is not None)
            if checked is not payload:  # redacted: the handlers see the redacted text
                payload, update = checked, None
        except Exception as exc:  # the database refused: nothing processed, again soon
            log.warning("update %s: could not check for a TTE passphrase (%s): again in "
                        "1 s", update_id, exc)
            await asyncio.sleep(1)
            return _AGAIN
        journal = CallJournal(self.journal_dir, update_id, by=self.me,
                              fresh=update is not None)
        savepoints, split, splits, may_wait = False, self._split(), 0, False
        self._in_flight.add(update_id)
        try:
            while True:
                try:
                    run, update = update, None  # a run again parses the payload afresh
                    return await self._process_once(update_id, payload, journal, run,
                                                    savepoints=savepoints, split=split,
                                                    may_wait=may_wait)
                except _RunAgain as again:
                    log.info("update %s: a block raised %r: run again with savepoints",
                             update_id, again.__cause__)
                    savepoints = True
                except _CallFirst as first:  # rolled back: the call, then run again
                    splits += 1
                    if first.waits:  # the same path again; at last inline, waiting
                        may_wait = splits >= MAX_SPLITS
                    else:
                        split = splits < MAX_SPLITS
                    with contextlib.suppress(Exception):  # journaled: the run sees it
                        async with self._slot_released():  # it may wait for its turn
                            await self.request.make(journal, first.call)
                    journal.recorded[-1]["split"] = True
        finally:
            journal.close()  # a line written after this (a call made later) opens it again
            if not journal.later:  # else until its calls after the commit are made
                self._in_flight.discard(update_id)
            monitoring.observe_update(time.perf_counter() - started)

    async def _process_once(self, update_id: int, payload: dict, journal: CallJournal,
                            update: Update | None = None, *, savepoints: bool,
                            split: bool = False, may_wait: bool = False):
        if update is None:
            update = Update.de_json(payload, self.app.bot)
        state: _Processing | None = None
        journal.new_run()
        try:
            async with self._writing(), self._session() as session:
                session.info["update"] = True  # handlers.common.transaction: no wake
                run_started = time.perf_counter()
                async with session.begin():
                    # the first statement writes: on SQLite it starts the transaction
                    # (so the handlers' savepoints nest in it) and takes the write lock
                    if not await core_rowcount(session, self._claim_stmt(), {"uid": update_id}):
                        return False  # processed meanwhile
                    state = _Processing(session, journal=journal, savepoints=savepoints,
                                        split=split, may_wait=may_wait)
                    token = _CURRENT.set(state)
                    try:
                        try:
                            await self.app.process_update(update)
                        finally:
                            state.active = False
                            _CURRENT.reset(token)
                            if self.request is not None:  # the database work of a run
                                self.request.stats.observe_run(
                                    time.perf_counter() - run_started - state.call_seconds)
                    except _CallFirst:
                        raise
                    try:  # what the blocks of a first run left to write
                        await _write_left(session)
                    except Exception as exc:
                        if not savepoints:
                            raise _RunAgain() from exc
                        raise
                    crashpoints.hit("processing")  # handlers ran, replies sent, not committed
                    journal.write_deferred()
                    await core_rowcount(session, _MARK, {"uid": update_id, "at": utcnow(),
                                                  "err": _error_text(state.errors)})
            if journal.replayed:
                self.replayed += journal.replayed
                log.info("update %s: %d Bot API call(s) of the interrupted run not "
                         "repeated", update_id, journal.replayed)
        except (asyncio.CancelledError, _RunAgain, _CallFirst):
            raise
        except Exception as exc:  # the transaction could not commit
            failures = self._failures.get(update_id, 0) + 1
            self._failures[update_id] = failures
            if failures < COMMIT_ATTEMPTS:  # e.g. the database was busy: run it again
                log.warning("update %s could not be committed (%s): again in %d s",
                            update_id, exc, failures)
                await asyncio.sleep(failures)
                return _AGAIN
            log.exception("update %s could not be committed: marked with the error", update_id)
            errors = (state.errors if state else []) + [exc]
            journal.deferred = []
            async with self._writing(), self._session() as session, session.begin():
                await session.execute(
                    sql_update(Inbox).where(Inbox.update_id == update_id,
                                            Inbox.processed_at.is_(None))
                    .values(processed_at=utcnow(), error=_error_text(errors)))
        later = None
        if journal.deferred:  # committed, the write lock released: the deferred calls
            crashpoints.hit("committed_calls_pending")
            async with self._slot_released():  # they may wait for their chats' turns
                later = await self.request.make_deferred(journal, self.show_card,
                                                         self.take_off)
        if later is None:
            journal.remove()  # committed: the calls are never needed again
        else:  # buttons to take off once the chat is quiet: the chat's queue goes on
            self._later.add(later)
            journal.later = True
            later.add_done_callback(functools.partial(self._later_done, journal))
        self.processed += 1
        sender = self.app.bot_data.get("sender")
        if sender is not None and state is not None and \
                state.session.info.get("outbox_written"):
            sender.wake()  # the update queued messages (bot.core.outbox)
        return True

    async def _process_loop(self) -> None:
        while self._running:
            self._wake.clear()
            self._check_fatal()
            try:
                await self.dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbox pass failed")
            await wait_event(self._wake, 1.0)

    def _claim_stmt(self):
        """The first statement of an update's run (built once: Core, no ORM work)."""
        if self._claim is None:
            inbox = Inbox.__table__
            mine = []
            if self.claims:
                mine = [or_(inbox.c.claimed_by == self.me, inbox.c.claimed_by.is_(None))]
            self._claim = (sql_update(inbox)
                           .where(inbox.c.update_id == bindparam("uid"),
                                  inbox.c.processed_at.is_(None), *mine)
                           .values(error=""))
        return self._claim

    def _still_mine(self) -> list:
        """PostgreSQL: the row is processed only while this process's claim stands (or
        nobody's: a test processing a row by hand); a claim taken over because this
        process was taken for dead is left to its new owner."""
        if not self.claims:
            return []
        return [or_(Inbox.claimed_by == self.me, Inbox.claimed_by.is_(None))]

    # -- polling ------------------------------------------------------------------
    async def _receive(self) -> None:
        """Poll Telegram; with several processes (PostgreSQL) only while this process
        holds the ``receive`` lock: the others wait for it, and one of them takes it
        over within seconds when the poller dies."""
        if self.life is None:
            await self._poll_loop()
            return
        announced = False
        while self._running:
            if not await self.life.try_lead("receive"):
                if not announced:
                    log.info("another process receives the updates; this one waits to "
                             "take over")
                    announced = True
                await asyncio.sleep(RECEIVE_RETRY)
                continue
            announced = False
            log.info("process %s receives the updates (getUpdates)", self.me)
            poll = asyncio.create_task(self._poll_loop(), name="inbox-poll")
            try:
                while not poll.done() and "receive" in self.life.leading:
                    await asyncio.wait({poll}, timeout=1.0)
            finally:
                if not poll.done():
                    poll.cancel()
                    await asyncio.wait({poll})
            if poll.done() and not poll.cancelled():
                poll.result()
                return  # the token was refused

    async def _get_updates(self, offset: int | None) -> tuple[list[Update], dict[int, dict]]:
        """One ``getUpdates``: the updates parsed, and each as Telegram sent it (stored as
        it is, as a webhook's body is: PTB's ``to_dict()`` of every update it parsed was
        about a tenth of a data-entry update's CPU). The read waits the long poll's
        ``timeout`` beyond the request's own read timeout, as PTB's ``get_updates``."""
        bot = self.app.bot
        raw = await bot.do_api_request(
            "getUpdates", {"offset": offset, "timeout": self.poll_timeout,
                           "allowed_updates": self.allowed_updates},
            read_timeout=POLL_READ_TIMEOUT + self.poll_timeout)
        return [Update.de_json(data, bot) for data in raw], {d["update_id"]: d for d in raw}

    async def _poll_loop(self) -> None:
        offset: int | None = None  # none at start: Telegram resends what was not confirmed
        delay = 0.0
        while self._running:
            try:
                updates, raw = await self._get_updates(offset)
            except asyncio.CancelledError:
                raise
            except (InvalidToken, EndPointNotFound):  # the latter: a token refused once
                # the bot was initialised (do_api_request's name for Telegram's 404)
                log.error("the bot token was refused: polling stopped")
                return
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except Conflict:
                log.warning("getUpdates conflict (another poller?): trying again")
                await asyncio.sleep(1.0)
                continue
            except NetworkError as exc:
                delay = min(30.0, max(0.5, delay * 2))
                log.info("getUpdates failed (%s): again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            except Exception:
                log.exception("getUpdates failed")
                await asyncio.sleep(1.0)
                continue
            delay = 0.0
            if not updates:
                continue
            while True:
                try:
                    await self.store(updates, raw)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("could not store %d update(s): retrying", len(updates))
                    await asyncio.sleep(1.0)
            crashpoints.hit("inbox_committed")  # stored, not yet confirmed to Telegram
            offset = max(u.update_id for u in updates) + 1
            await self._room()

    async def _room(self) -> None:
        """Before the next ``getUpdates``: while every slot is taken (as many chats
        with an update in hand or waiting for a slot as there are slots; a slot lent
        out while its update waits for Bot API calls is free), wait for one to be free,
        at most ``FETCH_WAIT``. A new chat's update fetched now could not start before
        that, and what arrives meanwhile comes in one ``getUpdates`` and is stored in
        one transaction. Without the wait, at saturation against a server with no
        network delay, the poller fetched and stored the updates one by one as they
        came, a call and a commit each (1.01 updates a ``getUpdates``). One process
        only (on PostgreSQL: no other process was alive at the last look,
        ``Life.others``, every few seconds): another process may have room."""
        if self.claims and (self.life is None or self.life.others != 0):
            return
        if len(self._workers) - self._released < self.max_concurrent:
            return
        self._slot_freed.clear()
        await wait_event(self._slot_freed, FETCH_WAIT)

    # -- life cycle ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._processing() and (self._poller is None or not self._poller.done())

    async def start(self, *, polling: bool = True) -> None:
        """Process what an earlier run left unprocessed, then take new updates."""
        self._running = True
        if self.claims and self.life is None:
            self.life = await processes.Life.join(self.sm)
            self.life.listen(self.wake)
        self.request = journal_calls(self.app.bot)
        await self._clean_journals()
        if self.claims and self.journal_dir is not None and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_journals(), name="journal-sweeper")
        left = await self.process_pending()
        if left:
            log.info("processed %d update(s) left in the inbox by the previous run", left)
        self._processor = asyncio.create_task(self._process_loop(), name="inbox-processor")
        if polling:
            self._poller = asyncio.create_task(self._receive(), name="inbox-poller")

    async def _clean_journals(self, sweep: bool = False) -> int:
        """Journals of updates that committed (the process died before removing them)
        are left over: their deferred calls not made yet are made, then they go;
        those of unprocessed updates are kept for their second run. Returns the calls
        made.

        With several processes (one storage folder; one process cleans at a time, the
        ``journals`` lock), whose calls they are decides (each pending line names its
        writer): this process's are made unless its updates still have them in hand
        (``_in_flight``); a live process's are left to it; those of a process that is
        not alive are made once it was seen not alive ``JOURNAL_DEAD_SECONDS`` before
        (a process whose database session broke is not alive for a few seconds, until
        it connects again, while it still makes its calls). ``sweep``: the periodic pass
        of a running process (:meth:`_sweep_journals`); it removes a journal with
        nothing pending only when it is old (its live writer removes it itself), and
        makes calls that name no writer (a process of an earlier version) only then."""
        if self.journal_dir is None:
            return 0
        found = {int(p.stem): p for p in self.journal_dir.glob("*.jsonl")  # none: no folder
                 if p.stem.isdigit()}
        if not found:
            return 0
        async with self.sm() as session:
            open_ids = set((await session.execute(select(Inbox.update_id).where(
                Inbox.update_id.in_(list(found)), Inbox.processed_at.is_(None)))).scalars())
            alive = await processes.alive_keys(session) if self.claims else set()
        done = {uid: path for uid, path in found.items()
                if uid not in open_ids and uid not in self._in_flight}
        if not done:
            return 0
        now = time.monotonic()
        for writer in [w for w in self._dead_since if processes.is_alive(w, alive)]:
            del self._dead_since[writer]
        made = 0
        async with processes.exclusive(self.sm, "journals") as mine:
            if not mine:  # another process is at it
                return 0
            for uid, path in done.items():
                try:
                    made += await self._clean_journal(uid, path, alive, now, sweep)
                except Exception:  # the others go on; this one again at the next pass
                    log.exception("the journal of update %s could not be cleaned", uid)
        if made and sweep:
            log.warning("calls left by stopped processes made: %d", made)
        return made

    async def _clean_journal(self, uid: int, path: Path, alive: set[int], now: float,
                             sweep: bool) -> int:
        """One committed update's journal (:meth:`_clean_journals`): its calls made
        and the file removed, or left as it is. Returns the calls made."""
        pending = CallJournal.left_pending(path)
        # in a sweep, a recent journal may still be in its live writer's hands
        recent = sweep and not _older_than(path, JOURNAL_DONE_AGE)
        for writer in {by for _m, _p, by in pending}:
            if not writer:  # no writer named: at a start, or once the journal is old
                if recent:
                    return 0
            elif writer == self.me:
                continue  # not in flight (checked): of this process's earlier run
            elif not self.claims:
                continue  # one process: an earlier one's
            elif processes.is_alive(writer, alive):
                return 0  # its process makes them
            elif now - self._dead_since.setdefault(writer, now) < JOURNAL_DEAD_SECONDS:
                return 0  # not alive: made once that has lasted
        if recent and not pending:
            return 0
        made = 0
        for method, params, by in pending:
            # committed, its deferred calls not all made: at least once
            try:
                if method == _Card.method:
                    await self.show_card(params)
                else:
                    await self.app.bot._post(method, params)
            except TelegramError as exc:
                log.info("%s of update %s after %s: %s", method, uid,
                         "the restart" if not sweep or by == self.me
                         else f"process {by} stopped", exc)
            except Exception:  # (a card's id not stored) not made again and again
                log.exception("%s of update %s after its process stopped", method, uid)
            made += 1
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return made

    async def _sweep_journals(self) -> None:
        """With several processes: every ``JOURNAL_SWEEP_SECONDS``, the pending calls of
        a process that died after its commit (an old card's buttons, a card) are made by
        a live one, not left to the next start."""
        while True:
            await asyncio.sleep(JOURNAL_SWEEP_SECONDS)
            try:
                await self._clean_journals(sweep=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not make the calls left by stopped processes")

    async def stop(self, grace: float = 10.0) -> None:
        self._running = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper})
            self._sweeper = None
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait({self._poller})
        if self._processor is not None:
            self.wake()
            # let the update in hand finish; an unfinished one runs at the next start
            done, _ = await asyncio.wait({self._processor}, timeout=grace)
            if not done:
                self._processor.cancel()
                await asyncio.wait({self._processor})
            if not self._processor.cancelled() and self._processor.exception() is not None:
                log.error("the inbox processor had stopped: %r", self._processor.exception())
        workers = set(self._workers.values())
        if workers:  # the updates in hand finish; what is queued behind them waits
            for queue in self._queues.values():
                while len(queue) > 1:
                    queue.pop()
            _done, late = await asyncio.wait(workers, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        later = set(self._later)
        for future in later:  # buttons not taken off yet: their journals keep them for
            future.cancel()  # the next start
        if later:
            await asyncio.wait(later, timeout=grace)
        self._queues.clear()
        self._workers.clear()
        self._queued.clear()
        self._idle.set()
        self._fatal = None
        self._poller = self._processor = None
        if self.life is not None:  # what this process claimed and did not process:
            try:  # the other processes take it at once
                await processes.release_mine(self.sm, self.me)
            except Exception:
                log.warning("could not give back the claimed updates", exc_info=True)
            self.life.unlisten(self.wake)
            life, self.life = self.life, None
            await life.leave()


# an update's mark, in its transaction (built once: Core, no ORM work)
_MARK = (sql_update(Inbox.__table__)
         .where(Inbox.__table__.c.update_id == bindparam("uid"))
         .values(processed_at=bindparam("at"), error=bindparam("err")))


class _WriteTurns:
    """An asyncio lock with two queues of waiters, each served in arrival order: the
    ``first`` ones (storing new updates) take the next turn, before the others (the
    updates' runs). The lock is handed from holder to waiter directly, so a waiter is
    never overtaken by one that came later to the same queue."""

    def __init__(self) -> None:
        self._held = False
        self._first: collections.deque[asyncio.Future] = collections.deque()
        self._rest: collections.deque[asyncio.Future] = collections.deque()

    def locked(self) -> bool:
        return self._held

    async def _acquire(self, first: bool) -> None:
        if not self._held and not self._first and not self._rest:
            self._held = True
            return
        fut = asyncio.get_running_loop().create_future()
        queue = self._first if first else self._rest
        queue.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release()  # handed the lock as it was cancelled: hand it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(fut)
            raise

    def _release(self) -> None:
        for queue in (self._first, self._rest):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # the lock passes to it, held throughout
                    return
        self._held = False

    @contextlib.asynccontextmanager
    async def turn(self, *, first: bool = False):
        await self._acquire(first)
        try:
            yield
        finally:
            self._release()


def _is_sqlite(sessionmaker) -> bool:
    bind = getattr(sessionmaker, "kw", {}).get("bind")
    return bind is not None and bind.dialect.name == "sqlite"


def _error_text(errors: list[BaseException]) -> str:
    return "; ".join(f"{e.__class__.__name__}: {e}" for e in errors)[:1000]


def intake_of(application) -> Intake:
    return application.bot_data["intake"]


# ------------------------------------------------------------------ webhook
class WebhookServer:
    """A small aiohttp server for Telegram's webhook: the secret header must match
    (else 403, nothing stored); the update is committed to the inbox before the 200."""

    def __init__(self, intake: Intake, *, listen: str, port: int, path: str,
                 secret: str) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret token")
        self.intake, self.listen, self.port = intake, listen, port
        self.path = "/" + path.lstrip("/")
        self.secret = secret.encode()
        self._runner = None

    async def handle(self, request):
        from aiohttp import web

        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):
            log.warning("webhook request without the right secret token from %s: 403",
                        request.remote)
            return web.Response(status=403, text="forbidden")
        try:
            data = await request.json()
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
        except (ValueError, json.JSONDecodeError):
            return web.Response(status=400, text="bad update")
        try:
            await self.intake.store_json(data)
        except Exception:  # not stored: Telegram must send it again
            log.exception("could not store webhook update %s", data.get("update_id"))
            return web.Response(status=500, text="not stored")
        crashpoints.hit("inbox_committed")  # stored, not yet confirmed to Telegram
        return web.Response(status=200, text="ok")

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(self.path, self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port (tests): which one
            self.port = site._server.sockets[0].getsockname()[1]
        log.info("webhook listening on %s:%s%s", self.listen, self.port, self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# ------------------------------------------------------------------ sopbot run
async def run_bot(application, telegram_cfg, *, receive: bool = True) -> None:
    """``sopbot run``: start the application, the intake (polling or webhook) and wait
    for SIGINT/SIGTERM; stop in order. ``receive=False`` (``--no-receive``): neither
    polling nor the webhook, only the processing of the shared inbox (PostgreSQL)."""
    import signal
    from urllib.parse import urlparse

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    intake = intake_of(application)
    server: WebhookServer | None = None
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        webhook = telegram_cfg.mode == "webhook"
        if not receive:
            log.info("this process does not receive updates (--no-receive)")
            await intake.start(polling=False)
        elif webhook:
            server = WebhookServer(intake, listen=telegram_cfg.webhook_listen,
                                   port=telegram_cfg.webhook_port,
                                   path=urlparse(telegram_cfg.webhook_url).path or "/",
                                   secret=telegram_cfg.webhook_secret)
            await intake.start(polling=False)
            await server.start()
            await application.bot.set_webhook(
                url=telegram_cfg.webhook_url, secret_token=telegram_cfg.webhook_secret,
                allowed_updates=intake.allowed_updates)
        else:
            await application.bot.delete_webhook(drop_pending_updates=False)
            await intake.start(polling=True)
        await stop.wait()
    finally:
        if server is not None:
            await server.stop()
        await intake.stop()
        if application.running:
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
