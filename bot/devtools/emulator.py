"""A local Telegram Bot API emulator: the bot runs with no token and no internet.

The emulator is an aiohttp HTTP server on 127.0.0.1 that speaks the subset of the Bot API
the SOP bot uses, in Telegram's own wire format::

    200 {"ok": true, "result": ...}
    400 {"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}
    429 {"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
         "parameters": {"retry_after": 1}}

python-telegram-bot talks to it over real HTTP through its normal URL settings::

    emu = BotApiEmulator()
    await emu.start()
    app = (ApplicationBuilder().token("123:TEST")
           .base_url(emu.base_url)            # http://127.0.0.1:PORT/bot
           .base_file_url(emu.base_file_url)  # http://127.0.0.1:PORT/file/bot
           .build())

PTB builds ``f"{base_url}{token}/{method}"`` and ``f"{base_file_url}{token}/{file_path}"``.

Design
======
* **One bot, many simulated users.** The emulator hosts one bot identity (``getMe``).
  Any token is accepted unless ``token=`` is given, then other tokens get 401. Users are
  scripted with :class:`SimUser` (``emu.add_user(...)``); a user's private chat id equals
  the user id, and the chat exists ("is started") once the user sent something. Sending
  to any other chat id answers ``400 chat not found``.
* **All state lives in the event loop** that called :meth:`BotApiEmulator.start`; the
  scripting API is async and must be awaited in that loop (use :class:`EmulatorThread`
  from synchronous code or another thread).
* **Updates** (user messages, button presses, ``my_chat_member`` on block/unblock) are
  queued with increasing ``update_id``. ``getUpdates`` confirms everything below
  ``offset`` and long-polls on an :class:`asyncio.Condition`, returning as soon as an
  update arrives. As on Telegram, a newer ``getUpdates`` terminates a pending older one
  with ``409 Conflict: terminated by other getUpdates request...`` (so two bot instances
  polling the same token see a Conflict, and a client that abandoned a long poll and
  polls again is not blocked). While a webhook is set, ``getUpdates`` answers 409 too;
  after :meth:`BotApiEmulator.deliver_webhook_to` the updates are POSTed to the bot's
  webhook instead (in order, each until the bot answers 2xx, as Telegram does).
* **Bot messages** are kept as :class:`BotMessage` records (current text/caption,
  entities, inline keyboard, document/photo, edit history, deleted flag). Every send,
  edit and delete bumps a sequence number and wakes :meth:`SimUser.wait_for`.
* **Validation** follows Telegram: HTML is parsed with Telegram's tag set and errors
  (``can't parse entities: ...``); text is stripped and limited to 4096 characters after
  entity parsing, captions to 1024; ``callback_data`` to 1-64 bytes, an inline keyboard to
  100 buttons; identical edits give
  ``message is not modified``. As on Telegram, ``editMessageText`` without
  ``reply_markup`` removes the inline keyboard, and only inline keyboards are echoed in
  returned Message objects (ForceReply / ReplyKeyboardRemove are stored in
  :attr:`BotMessage.keyboard`). Real Telegram answers a user who exists but never
  started the bot with ``403 bot can't initiate conversation with a user``; this emulator
  answers ``400 chat not found`` for every chat that was never started.
* **Rate limits** (``enforce_limits=True``): sliding one-second windows on
  ``send*``/``edit*`` calls (not ``sendChatAction``): 30 per second overall and one per
  second per chat; the excess gets 429 with an integer ``retry_after >= 1``. Every 429
  (from limits or from fault injection) opens a penalty window for its chat (or for the
  whole bot when the global limit tripped); a send/edit for that chat arriving before the
  window closed counts as an *unhonoured* 429 and, with limits enforced, gets 429 again.
* **Fault injection** (``faults=FaultPlan(...)``): for each eligible call, in arrival
  order, a seeded RNG decides whether to inject ``429``, ``500``, ``502`` (not
  processed), ``drop`` (connection closed, not processed), ``drop_after`` (processed,
  then the connection is closed: the client cannot know the message was sent) or
  ``slow`` (sleeps ``slow_seconds`` and *then processes the call*; a client that timed
  out meanwhile and retries creates a duplicate, exactly as on the real Bot API). The
  same seed and the same call order give the same faults (see ``emu.fault_log``).
  ``getUpdates`` is exempt unless ``include_get_updates=True``.
* **Network round trip** (``latency=`` seconds, default 0): every Bot API request and
  file download is answered ``latency`` later than it would be, half on the way in
  (the call takes effect, e.g. a message becomes visible, ``latency / 2`` after the
  request was sent) and half on the way back. A ``getUpdates`` answer travels
  ``latency / 2`` too, so an update reaches the bot half a round trip after it was
  queued at the earliest, and a reply sent at once is visible one round trip after the
  person sent the message.
* **Statistics** in ``emu.stats`` (:class:`EmulatorStats`).

Scripting API (in the emulator's loop)::

    async with BotApiEmulator() as emu:
        user = emu.add_user(user_id=1001, first_name="Sari")
        sent = await user.send_command("/start", "KODE123")
        reply = await user.wait_for(text_contains="Selamat", after=sent)
        query_id = await user.press(reply, text="Setuju")
        await user.wait_for(after=query_id)
        assert user.callback_answer(query_id).text == "Tercatat"

HTTP user API (same server; for a person or another process)
=============================================================
All answers are ``{"ok": true, "result": ...}`` (errors ``{"ok": false, ...}``)::

    # create a user (private chat id == user id)
    curl -X POST localhost:8081/_emu/users -H 'Content-Type: application/json' \\
         -d '{"user_id": 1001, "first_name": "Sari", "username": "sari"}'
    # the user sends text (commands get a bot_command entity)
    curl -X POST localhost:8081/_emu/users/1001/send -d '{"text": "/start KODE123"}'
    # the bot's messages in that chat; ?after=<message_id>&wait=<seconds> long-polls for
    # a bot message sent or edited after that message
    curl 'localhost:8081/_emu/users/1001/messages?after=1&wait=5'
    # press an inline button by callback_data or by (part of) its text
    curl -X POST localhost:8081/_emu/users/1001/press -d '{"message_id": 2, "text": "Setuju"}'
    # upload a document (optional caption field) or a photo
    curl -X POST localhost:8081/_emu/users/1001/document -F document=@laporan.xlsx -F caption=TW1
    curl -X POST localhost:8081/_emu/users/1001/photo -F photo=@bukti.jpg
    # block / unblock the bot, read the answers of button presses, statistics
    curl -X POST localhost:8081/_emu/users/1001/block
    curl -X POST localhost:8081/_emu/users/1001/unblock
    curl localhost:8081/_emu/stats

Standalone: ``python -m bot.devtools.emulator --port 8081`` prints the URLs to put in
``[telegram] api_base_url`` / ``file_base_url``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import dataclasses
import hashlib
import itertools
import json
import math
import mimetypes
import random
import re
import struct
import threading
import urllib.parse
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bot.core.aio import wait_event

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "BotMessage",
    "ButtonNotFound",
    "CallbackAnswer",
    "EmulatorError",
    "EmulatorStats",
    "EmulatorThread",
    "EntityParseError",
    "FaultEvent",
    "FaultPlan",
    "MessageVersion",
    "SimUser",
    "StoredFile",
    "main",
    "parse_html",
]

T = TypeVar("T")
JSON = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100  # Telegram answers REPLY_MARKUP_TOO_LONG beyond (about) 100
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
UPDATE_LOG_SIZE = 1000  # updates kept for BotApiEmulator.redeliver()
GLOBAL_LIMIT_PER_SECOND = 30
PER_CHAT_INTERVAL = 1.0
FAULT_KINDS = ("429", "500", "502", "slow", "drop", "drop_after")

# Telegram's descriptions, verbatim.
CHAT_NOT_FOUND = "Bad Request: chat not found"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
MARKUP_TOO_LONG = "Bad Request: reply markup is too long"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup"
    " are exactly the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
QUERY_TOO_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
BLOCKED = "Forbidden: bot was blocked by the user"
CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance"
    " is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to"
    " delete the webhook first"
)

_SENDING_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
_EDITING_METHODS = frozenset({"editMessageText", "editMessageReplyMarkup", "editMessageCaption"})
_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "my_chat_member",
    "chat_member",
)
_DEFAULT_ALLOWED = frozenset(set(_UPDATE_TYPES) - {"chat_member"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


# --------------------------------------------------------------------------------------
# Errors and small value types
# --------------------------------------------------------------------------------------
class ApiError(Exception):
    """A Bot API error answer (``{"ok": false, "error_code": ..., "description": ...}``)."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass(frozen=True)
class ErrorEvent:
    """One error answer the emulator gave (``emu.error_log``): the method, the code
    and Telegram's description, e.g. ("sendMessage", 400, "Bad Request: message is too
    long")."""

    method: str
    code: int
    description: str


class EmulatorError(Exception):
    """Misuse of the scripting API (unknown user, blocked user acting, ...)."""


class ButtonNotFound(EmulatorError, LookupError):
    """:meth:`SimUser.press` found no matching button in the message's current markup."""


class EntityParseError(ValueError):
    """Telegram-style HTML parse error; the message follows ``can't parse entities: ``."""


@dataclass(frozen=True)
class CallbackAnswer:
    """What ``answerCallbackQuery`` answered for one button press."""

    text: str | None
    show_alert: bool
    url: str | None = None


@dataclass
class StoredFile:
    """A file known to the emulator (uploaded by a user or sent by the bot)."""

    file_id: str
    file_unique_id: str
    kind: str  # "document" | "photo"
    data: bytes
    filename: str | None
    mime_type: str | None
    file_path: str
    uploaded_by: str  # "user" | "bot"
    chat_id: int
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class MessageVersion:
    """A snapshot of a bot message before one of its edits."""

    text: str | None
    caption: str | None
    entities: tuple[JSON, ...]
    reply_markup: JSON | None
    date: int


@dataclass
class BotMessage:
    """A message the bot sent, in its current state.

    ``text``/``caption`` are plain text after entity parsing (what the user reads);
    ``source_text``/``source_caption`` and ``parse_mode`` are what the bot sent.
    ``reply_markup`` is the inline keyboard (echoed in API results); ``keyboard`` is a
    non-inline markup sent with it (``force_reply``, ``remove_keyboard``, ``keyboard``).
    """

    chat_id: int
    message_id: int
    date: int
    seq: int
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    source_text: str | None = None
    caption: str | None = None
    caption_entities: list[JSON] = field(default_factory=list)
    source_caption: str | None = None
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    keyboard: JSON | None = None
    document: JSON | None = None
    photo: list[JSON] | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    edits: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False
    # the last change took its buttons off and nothing else: its ``seq`` before it
    bare_since: int | None = None

    @property
    def content(self) -> str:
        """Text or caption, whichever the message has ("" if neither)."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def force_reply(self) -> bool:
        return bool(self.keyboard and self.keyboard.get("force_reply"))

    @property
    def buttons(self) -> list[JSON]:
        """The inline buttons of the current markup, row by row."""
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    @property
    def button_texts(self) -> list[str]:
        return [str(b.get("text", "")) for b in self.buttons]

    def to_dict(self) -> JSON:
        """A JSON-able view for the HTTP user API and debugging."""
        data = dataclasses.asdict(self)
        data["edits"] = [dataclasses.asdict(v) for v in self.edits]
        return data


@dataclass(frozen=True)
class FaultEvent:
    """One injected fault: the eligible call's index, the method and the fault kind."""

    index: int
    method: str
    kind: str


@dataclass
class FaultPlan:
    """Deterministic fault injection for bot-method calls.

    For every eligible call (in arrival order) the seeded RNG draws once; with
    probability ``rate`` a fault kind is then drawn from ``kinds``. ``methods`` restricts
    injection to those Bot API methods; ``getUpdates`` is only eligible with
    ``include_get_updates``. ``retry_after`` is the value given with injected 429s.
    """

    rate: float = 0.1
    kinds: Sequence[str] = ("429", "500", "502", "slow", "drop")
    seed: int | None = None
    slow_seconds: float = 2.0
    retry_after: int = 1
    include_get_updates: bool = False
    methods: frozenset[str] | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _index: int = field(init=False, default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if not self.kinds:
            raise ValueError("FaultPlan needs at least one fault kind")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("FaultPlan.rate must be within [0, 1]")
        self.reset()

    def reset(self) -> None:
        """Restart the sequence from the seed."""
        self._rng = random.Random(self.seed)
        self._index = 0

    def eligible(self, method: str) -> bool:
        if method == "getUpdates" and not self.include_get_updates:
            return False
        return self.methods is None or method in self.methods

    def draw(self, method: str) -> FaultEvent | None:
        """Decide the fault (if any) for the next eligible call."""
        if not self.eligible(method):
            return None
        index = self._index
        self._index += 1
        if self._rng.random() >= self.rate:
            return None
        return FaultEvent(index=index, method=method, kind=self._rng.choice(list(self.kinds)))


def _update_chat(update: JSON) -> Any:
    """The chat an update belongs to (its sender for a button press)."""
    for kind, value in update.items():
        if kind == "update_id" or not isinstance(value, dict):
            continue
        message = value.get("message") if kind == "callback_query" else value
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            return message["chat"].get("id")
        sender = value.get("from")
        if isinstance(sender, dict):
            return sender.get("id")
    return None


@dataclass
class EmulatorStats:
    """Counters kept by the emulator (readable by tests and ``GET /_emu/stats``)."""

    requests_by_method: Counter[str] = field(default_factory=Counter)
    sent_messages: int = 0
    edited_messages: int = 0
    deleted_messages: int = 0
    issued_429s: int = 0
    overall_429s: int = 0  # of the issued: the overall limit (30 a second) tripped
    unhonoured_429s: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    errors_by_code: Counter[int] = field(default_factory=Counter)

    @property
    def total_requests(self) -> int:
        return sum(self.requests_by_method.values())

    def to_dict(self) -> JSON:
        return {
            "requests_by_method": dict(self.requests_by_method),
            "total_requests": self.total_requests,
            "sent_messages": self.sent_messages,
            "edited_messages": self.edited_messages,
            "deleted_messages": self.deleted_messages,
            "issued_429s": self.issued_429s,
            "overall_429s": self.overall_429s,
            "unhonoured_429s": self.unhonoured_429s,
            "faults_injected": dict(self.faults_injected),
            "errors_by_code": {str(k): v for k, v in self.errors_by_code.items()},
        }


# --------------------------------------------------------------------------------------
# HTML parsing (Telegram's parse_mode=HTML)
# --------------------------------------------------------------------------------------
_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{1,10});")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_html_entity(name: str) -> str | None:
    if name.startswith(("#x", "#X")):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    else:
        return _NAMED_ENTITIES.get(name)
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return None


def _unescape(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        decoded = _decode_html_entity(m.group(1))
        return m.group(0) if decoded is None else decoded

    return _HTML_ENTITY_RE.sub(repl, value)


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the output
    attrs: dict[str, str]
    language: str | None = None


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Parse Telegram HTML into (plain text, entities) or raise :class:`EntityParseError`.

    Supports b/strong, i/em, u/ins, s/strike/del, a href, code, pre (with
    ``<code class="language-x">``), tg-spoiler, span class="tg-spoiler", blockquote
    (``expandable``), tg-emoji, and the entities ``&lt; &gt; &amp; &quot;`` plus numeric
    ones. Offsets/lengths are UTF-16 code units; error offsets are UTF-8 byte offsets,
    as in Telegram's messages.
    """
    out: list[str] = []
    pos = 0
    stack: list[_OpenTag] = []
    entities: list[JSON] = []
    i, n = 0, len(source)

    def byte_offset(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    def emit(chunk: str) -> None:
        nonlocal pos
        out.append(chunk)
        pos += utf16_len(chunk)

    while i < n:
        ch = source[i]
        if ch == "&":
            m = _HTML_ENTITY_RE.match(source, i)
            decoded = _decode_html_entity(m.group(1)) if m else None
            if m and decoded is not None:
                emit(decoded)
                i = m.end()
            else:
                emit("&")
                i += 1
            continue
        if ch != "<":
            j = i
            while j < n and source[j] not in "<&":
                j += 1
            emit(source[i:j])
            i = j
            continue
        begin = i
        if i + 1 < n and source[i + 1] == "/":  # end tag
            end = source.find(">", i)
            if end == -1:
                raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
            name = source[i + 2 : end].strip().lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
            top = stack[-1]
            if name != top.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {byte_offset(begin)},"
                    f' expected "</{top.name}>", found "</{name}>"'
                )
            stack.pop()
            _close_tag(top, pos, stack, entities)
            i = end + 1
            continue
        # start tag
        j = i + 1
        while j < n and not source[j].isspace() and source[j] not in "></":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
        name = source[i + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {byte_offset(begin)}'
            )
        attrs: dict[str, str] = {}
        while True:
            while j < n and source[j].isspace():
                j += 1
            if j >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            if source[j] == ">":
                j += 1
                break
            m = _ATTR_NAME_RE.match(source, j)
            if not m:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {byte_offset(begin)}'
                )
            attr = m.group(0).lower()
            j = m.end()
            while j < n and source[j].isspace():
                j += 1
            if j < n and source[j] == "=":
                j += 1
                while j < n and source[j].isspace():
                    j += 1
                if j < n and source[j] in "\"'":
                    quote = source[j]
                    close = source.find(quote, j + 1)
                    if close == -1:
                        raise EntityParseError(
                            f"Unclosed start tag at byte offset {byte_offset(begin)}"
                        )
                    value = source[j + 1 : close]
                    j = close + 1
                else:
                    k = j
                    while k < n and not source[k].isspace() and source[k] != ">":
                        k += 1
                    value = source[j:k]
                    j = k
                attrs[attr] = _unescape(value)
            else:
                attrs[attr] = ""
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {byte_offset(begin)}'
            )
        stack.append(_OpenTag(name=name, start=pos, attrs=attrs))
        i = j
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_tag(tag: _OpenTag, pos: int, stack: list[_OpenTag], entities: list[JSON]) -> None:
    length = pos - tag.start
    kind = _HTML_TAGS[tag.name]
    if tag.name == "code" and stack and stack[-1].name == "pre":
        css = tag.attrs.get("class", "")
        if css.startswith("language-"):
            stack[-1].language = css[len("language-") :]
        return  # merged into the surrounding pre entity
    if length <= 0:
        return
    entity: JSON = {"type": kind, "offset": tag.start, "length": length}
    if kind == "text_link":
        url = tag.attrs.get("href", "").strip()
        if not url:
            return
        entity["url"] = url
    elif kind == "pre" and tag.language:
        entity["language"] = tag.language
    elif kind == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    entities.append(entity)


def _strip_text(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Trim surrounding whitespace like Telegram does, moving entities along."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    result = []
    for ent in entities:
        start = max(ent["offset"] - lead, 0)
        end = min(ent["offset"] + ent["length"] - lead, total)
        if end > start:
            result.append({**ent, "offset": start, "length": end - start})
    return stripped, result


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")


def command_entities(text: str) -> list[JSON]:
    """``bot_command`` entities Telegram would detect in a user's text."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in _COMMAND_RE.finditer(text)
    ]


# --------------------------------------------------------------------------------------
# Request parameters
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Upload:
    data: bytes
    filename: str | None
    content_type: str | None


class _Params:
    """Bot API parameters from a query string, JSON body, form or multipart body.

    PTB's HTTPXRequest posts ``data=`` form fields where strings are sent as-is and every
    other value (ints, bools, lists, objects such as ``reply_markup``) is JSON-encoded,
    plus multipart ``files=`` when uploading. Getters therefore coerce on access.
    """

    def __init__(self, values: Mapping[str, Any], files: Mapping[str, _Upload]) -> None:
        self.values = dict(values)
        self.files = dict(files)

    @classmethod
    async def from_request(cls, request: web.Request) -> _Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, _Upload] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise ApiError(400, "Bad Request: can't parse JSON request body") from exc
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON request body must be an object")
                values.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = _Upload(value.file.read(), value.filename, value.content_type)
                    else:
                        values[key] = value
        return cls(values, files)

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None or name in self.files

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)

    def get_int(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        try:
            return int(value) if not isinstance(value, str) else int(float(value))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"Bad Request: invalid {name} specified") from exc

    def get_float(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"Bad Request: invalid {name} specified") from exc

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in {"true", "1", "yes"}
        return bool(value)

    def get_json(self, name: str, what: str | None = None) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ApiError(400, f"Bad Request: can't parse {what or name} JSON object") from exc
        return value

    def get_file(self, name: str) -> _Upload | str | None:
        if name in self.files:
            return self.files[name]
        value = self.get_str(name)
        if value and value.startswith("attach://"):
            return self.files.get(value[len("attach://") :])
        return value


# --------------------------------------------------------------------------------------
# Simulated users
# --------------------------------------------------------------------------------------
class SimUser:
    """A scripted Telegram user and their private chat with the bot."""

    def __init__(
        self,
        emulator: BotApiEmulator,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "id",
    ) -> None:
        self.emulator = emulator
        self.user_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.started = False
        self.blocked = False
        self._next_message_id = 1
        self._bot_messages: dict[int, BotMessage] = {}
        self._user_messages: dict[int, JSON] = {}
        self._message_seq: dict[int, int] = {}
        self._answers: dict[str, CallbackAnswer] = {}

    # -- identity ---------------------------------------------------------------------
    @property
    def chat_id(self) -> int:
        return self.user_id

    def user_api(self) -> JSON:
        data: JSON = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def chat_api(self) -> JSON:
        data: JSON = {"id": self.user_id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data

    def __repr__(self) -> str:
        return f"SimUser({self.user_id}, {self.first_name!r})"

    # -- reading the chat -------------------------------------------------------------
    @property
    def messages(self) -> list[BotMessage]:
        """Bot messages in this chat, oldest first (deleted ones flagged, not removed)."""
        return [self._bot_messages[k] for k in sorted(self._bot_messages)]

    @property
    def last_message(self) -> BotMessage | None:
        """The newest bot message that is not deleted."""
        for msg in reversed(self.messages):
            if not msg.deleted:
                return msg
        return None

    def message(self, message_id: int) -> BotMessage:
        try:
            return self._bot_messages[message_id]
        except KeyError:
            raise EmulatorError(
                f"no bot message {message_id} in chat {self.chat_id}"
            ) from None

    def button_texts(self, msg: BotMessage | int | None = None) -> list[str]:
        """Texts of the inline buttons of ``msg`` (default: the last message)."""
        target = self.last_message if msg is None else self._resolve(msg)
        return target.button_texts if target else []

    def callback_answer(self, query_id: str) -> CallbackAnswer | None:
        """What ``answerCallbackQuery`` answered for this press, or None (not yet)."""
        return self._answers.get(query_id)

    async def wait_for_answer(self, query_id: str, timeout: float = 30.0) -> CallbackAnswer:
        """Wait for what ``answerCallbackQuery`` answers for the press ``query_id``
        (:meth:`callback_answer`); raises :class:`TimeoutError` when no answer came
        within ``timeout`` (as generous as :meth:`wait_for`'s)."""
        cond = self.emulator._chat_changed
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    while (answer := self.callback_answer(query_id)) is None:
                        await cond.wait()
        except TimeoutError:
            raise TimeoutError(f"no answer to callback query {query_id} "
                               f"within {timeout}s") from None
        return answer

    def _resolve(self, msg: BotMessage | JSON | int) -> BotMessage:
        if isinstance(msg, BotMessage):
            return self.message(msg.message_id)
        if isinstance(msg, dict):
            return self.message(int(msg["message_id"]))
        return self.message(int(msg))

    async def wait_for(
        self,
        predicate: Callable[[BotMessage], bool] | None = None,
        *,
        text_contains: str | None = None,
        timeout: float = 30.0,  # generous: a loaded CI machine is slow, a missing answer is still missing
        after: BotMessage | JSON | int | str | None = None,
    ) -> BotMessage:
        """Wait for a bot message (new or edited) in this chat that matches.

        ``after`` limits the search to messages sent or edited after a point: a message
        id or a Message dict (user's or bot's: after it was created), a
        :class:`BotMessage` (after its current version), or a callback query id returned
        by :meth:`press` (after the press). Without ``after`` existing messages count
        too. A message whose only change after the point took its buttons off (an old
        card, once its successor is shown) is not new to ``text_contains``: its text was
        there before (``predicate`` still sees it). Of several matches the one changed
        first is returned. Raises
        :class:`TimeoutError` with the chat's recent messages when nothing matches.
        """
        after_seq = self.emulator._resolve_after(self, after)

        def find() -> BotMessage | None:
            candidates = sorted(
                (m for m in self._bot_messages.values() if m.seq > after_seq and not m.deleted),
                key=lambda m: m.seq,
            )
            for msg in candidates:
                if text_contains is not None and (
                        text_contains not in msg.content
                        or (msg.bare_since is not None and msg.bare_since <= after_seq)):
                    continue
                if predicate is not None and not predicate(msg):
                    continue
                return msg
            return None

        cond = self.emulator._chat_changed
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    found = find()
                    while found is None:
                        await cond.wait()
                        found = find()
        except TimeoutError:
            recent = [(m.message_id, m.content[:80]) for m in self.messages[-5:]]
            raise TimeoutError(
                f"no bot message matching (text_contains={text_contains!r}, predicate="
                f"{predicate!r}, after={after!r}) in chat {self.chat_id} within {timeout}s;"
                f" recent messages: {recent}"
            ) from None
        if self.emulator.settle_hook is not None:  # e.g. the bot's commit of this answer
            await self.emulator.settle_hook(self.chat_id)
        return found

    # -- acting -----------------------------------------------------------------------
    async def send_text(self, text: str, *, reply_to: int | None = None) -> JSON:
        """Send ``text`` to the bot; returns the user's Message dict."""
        message = self._new_user_message()
        message["text"] = text
        ents = command_entities(text)
        if ents:
            message["entities"] = ents
        if reply_to is not None:
            message["reply_to_message"] = self.emulator._message_api_by_id(self, reply_to)
        return await self._deliver(message)

    async def send_command(self, command: str, *args: str) -> JSON:
        """Send ``/command arg1 arg2`` (a ``bot_command`` entity is attached)."""
        if not command.startswith("/"):
            command = "/" + command
        return await self.send_text(" ".join([command, *args]))

    async def reply_to(self, message_id: int | BotMessage, text: str) -> JSON:
        """Answer a bot message (e.g. a ForceReply prompt) with ``text``."""
        mid = message_id.message_id if isinstance(message_id, BotMessage) else int(message_id)
        return await self.send_text(text, reply_to=mid)

    async def send_document(
        self, data: bytes, filename: str, mime_type: str | None = None, caption: str | None = None
    ) -> JSON:
        """Upload a document; the file is then available via getFile and download."""
        mime = mime_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        stored = self.emulator._store_file(
            "document", data, filename, mime, uploaded_by="user", chat_id=self.chat_id
        )
        message = self._new_user_message()
        message["document"] = self.emulator._document_api(stored)
        if caption:
            message["caption"] = caption
        return await self._deliver(message)

    async def send_photo(self, data: bytes, caption: str | None = None) -> JSON:
        """Upload a photo (PNG/JPEG/GIF sizes are read from the header)."""
        stored = self.emulator._store_file(
            "photo", data, None, "image/jpeg", uploaded_by="user", chat_id=self.chat_id
        )
        message = self._new_user_message()
        message["photo"] = self.emulator._photo_api(stored)
        if caption:
            message["caption"] = caption
        return await self._deliver(message)

    async def press(
        self,
        message: BotMessage | JSON | int,
        text: str | None = None,
        data: str | None = None,
    ) -> str:
        """Press an inline button of a bot message; returns the callback query id.

        The button is found in the message's *current* markup by ``data`` (exact
        callback_data) or ``text`` (exact text, else a unique substring).
        """
        self._check_can_act()
        if text is None and data is None:
            raise ValueError("press() needs text= or data=")
        msg = self._resolve(message)
        if msg.deleted:
            raise ButtonNotFound(f"message {msg.message_id} in chat {self.chat_id} was deleted")
        buttons = msg.buttons
        button: JSON | None = None
        if data is not None:
            button = next((b for b in buttons if b.get("callback_data") == data), None)
        elif text is not None:
            button = next((b for b in buttons if b.get("text") == text), None)
            if button is None:
                partial = [b for b in buttons if text in str(b.get("text", ""))]
                if len(partial) > 1:
                    raise ButtonNotFound(
                        f"{text!r} matches several buttons of message {msg.message_id}: "
                        f"{[b.get('text') for b in partial]}"
                    )
                button = partial[0] if partial else None
        if button is None:
            raise ButtonNotFound(
                f"no button with text={text!r} data={data!r} in the current markup of message"
                f" {msg.message_id} in chat {self.chat_id}; buttons: "
                f"{[(b.get('text'), b.get('callback_data')) for b in buttons]}"
            )
        if "callback_data" not in button:
            raise ButtonNotFound(
                f"button {button.get('text')!r} of message {msg.message_id} has no callback_data"
                f" ({sorted(k for k in button if k != 'text')})"
            )
        return await self.emulator._press(self, msg, str(button["callback_data"]))

    def block(self) -> None:
        """The user blocks the bot: sends fail with 403; a my_chat_member update is queued."""
        if not self.blocked:
            self.blocked = True
            self.emulator._queue_member_update(self, "member", "kicked")

    def unblock(self) -> None:
        """The user unblocks the bot (a my_chat_member update is queued)."""
        if self.blocked:
            self.blocked = False
            self.emulator._queue_member_update(self, "kicked", "member")

    # -- internals --------------------------------------------------------------------
    def _check_can_act(self) -> None:
        if self.blocked:
            raise EmulatorError(f"{self!r} has blocked the bot; call unblock() first")

    def _allocate_message_id(self) -> int:
        mid = self._next_message_id
        self._next_message_id += 1
        return mid

    def _new_user_message(self) -> JSON:
        self._check_can_act()
        return {
            "message_id": self._allocate_message_id(),
            "from": self.user_api(),
            "chat": self.chat_api(),
            "date": self.emulator._now(),
        }

    async def _deliver(self, message: JSON) -> JSON:
        self.started = True
        self._user_messages[message["message_id"]] = message
        self._message_seq[message["message_id"]] = self.emulator._next_seq()
        await self.emulator._enqueue({"message": message})
        return message


class SimGroup(SimUser):
    """A group chat (negative id) with the bot in it; ``member`` is who writes and presses.

    The bot's messages to the group are kept like a private chat's (``messages``)."""

    def __init__(self, emulator: "BotApiEmulator", chat_id: int, title: str, member: SimUser,
                 chat_type: str = "supergroup") -> None:
        super().__init__(emulator, chat_id, title)
        self.title, self.member, self.chat_type = title, member, chat_type

    def user_api(self) -> JSON:
        return self.member.user_api()

    def chat_api(self) -> JSON:
        return {"id": self.user_id, "type": self.chat_type, "title": self.title}

    def __repr__(self) -> str:
        return f"SimGroup({self.user_id}, {self.title!r}, member={self.member!r})"


# --------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------
@dataclass
class _Query:
    user_id: int
    created: float
    seq: int
    answered: bool = False


Handler = Callable[[_Params], Awaitable[Any]]


class BotApiEmulator:
    """A Bot API server on 127.0.0.1 with scripted users. See the module docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        bot_id: int | None = None,
        bot_username: str = "sopbot_demo_bot",
        bot_first_name: str = "SOP Data Kinerja",
        enforce_limits: bool = False,
        faults: FaultPlan | None = None,
        latency: float = 0.0,
        callback_query_ttl: float = 15.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        if bot_id is None:
            prefix = token.split(":", 1)[0] if token else ""
            bot_id = int(prefix) if prefix.isdigit() else 7_000_000_001
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.enforce_limits = enforce_limits
        self.latency = max(0.0, float(latency))  # round trip of every Bot API request
        self.callback_query_ttl = callback_query_ttl
        self._clock = clock
        self._monotonic = monotonic
        self._faults = faults
        self.fault_log: list[FaultEvent] = []
        self.error_log: list[ErrorEvent] = []  # every error answer, in order
        self.stats = EmulatorStats()
        self.commands: dict[str, list[JSON]] = {}
        self.webhook: JSON = {}
        # where updates go while a webhook is set (see deliver_webhook_to); None: nowhere
        self.webhook_redirect: str | None = None
        self.webhook_retry_delay = 0.5
        # webhook deliveries at once (Telegram's max_connections): 1 delivers one update
        # at a time in order; more deliver the updates of different chats at once, each
        # chat's still one at a time in order
        self.webhook_connections = 1
        self._webhook_task: asyncio.Task[None] | None = None
        # awaited by SimUser.wait_for before it returns a match (the harness waits there
        # for the bot's commit of the update it answered: replies precede the commit)
        self.settle_hook: Callable[[int], Awaitable[None]] | None = None
        self._users: dict[int, SimUser] = {}
        self._updates: list[JSON] = []
        self._update_log: dict[int, JSON] = {}  # recent updates by id, for redeliver()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] = _DEFAULT_ALLOWED
        self._poll_generation = 0
        self._updates_changed = asyncio.Condition()
        self._chat_changed = asyncio.Condition()
        self._seq = 0
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._query_counter = itertools.count(1)
        self._queries: dict[str, _Query] = {}
        self._query_seq: dict[str, int] = {}
        self._send_times: deque[float] = deque()
        self._chat_last_send: dict[int, float] = {}
        self._penalties: dict[int | str, float] = {}
        self._closing = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, tuple[str, Handler]] = {}
        for name, handler in self._method_table().items():
            self._methods[name.lower()] = (name, handler)

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> BotApiEmulator:
        """Start serving in the running event loop (port 0 picks a free port)."""
        if self._runner is not None:
            return self
        self._closing.clear()
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._add_user_api_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Release pending long polls and slow calls, then close the server."""
        if self._runner is None:
            return
        self._closing.set()
        async with self._updates_changed:
            self._updates_changed.notify_all()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotApiEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``[telegram] api_base_url``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)`` / ``[telegram] file_base_url``."""
        return f"{self.url}/file/bot"

    # -- options ----------------------------------------------------------------------
    @property
    def faults(self) -> FaultPlan | None:
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        if plan is not None:
            plan.reset()
        self._faults = plan

    # -- users ------------------------------------------------------------------------
    def add_user(
        self,
        user_id: int,
        first_name: str = "Pengguna",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "id",
    ) -> SimUser:
        """Create (or return the existing) simulated user; chat id == user id."""
        if user_id in self._users:
            return self._users[user_id]
        if user_id <= 0:
            raise ValueError("user_id must be positive")
        user = SimUser(self, user_id, first_name, last_name, username, language_code)
        self._users[user_id] = user
        return user

    def add_group(self, chat_id: int, title: str, member: SimUser,
                  chat_type: str = "supergroup") -> SimGroup:
        """A group chat (``chat_id`` < 0) in which ``member`` writes to the bot."""
        if chat_id >= 0:
            raise ValueError("a group chat id is negative")
        group = SimGroup(self, chat_id, title, member, chat_type)
        self._users[chat_id] = group
        return group

    def user(self, user_id: int) -> SimUser:
        try:
            return self._users[user_id]
        except KeyError:
            raise EmulatorError(f"no simulated user {user_id}") from None

    @property
    def users(self) -> list[SimUser]:
        return list(self._users.values())

    def updates_pending(self) -> int:
        """Updates queued and not yet confirmed by getUpdates."""
        return len(self._updates)

    async def redeliver(self, update_id: int) -> None:
        """Queue an update again, unchanged (same ``update_id``), as Telegram does when
        the bot's confirmation of it was lost (e.g. a crash before the next getUpdates).

        As on Telegram, a poller that has already confirmed a higher offset skips it; a
        restarted bot (whose first getUpdates has no offset) receives it again.
        """
        update = self._update_log.get(update_id)
        if update is None:
            raise EmulatorError(f"no recent update {update_id}")
        self._updates.append(copy.deepcopy(update))
        self._updates.sort(key=lambda u: u["update_id"])
        await self._notify_updates()

    def sent_files(self, chat_id: int, kind: str | None = None) -> list[StoredFile]:
        """Files the bot sent to ``chat_id`` (documents and photos), in order."""
        user = self._users.get(chat_id)
        if user is None:
            return []
        result: list[StoredFile] = []
        for msg in user.messages:
            file_id = None
            if msg.document:
                file_id = msg.document["file_id"]
            elif msg.photo:
                file_id = msg.photo[-1]["file_id"]
            if file_id and file_id in self._files:
                stored = self._files[file_id]
                if kind is None or stored.kind == kind:
                    result.append(stored)
        return result

    def file(self, file_id: str) -> StoredFile:
        """A stored file by file_id (KeyError if unknown)."""
        return self._files[file_id]

    def reset_limits(self) -> None:
        """Forget rate-limit windows and 429 penalty windows (counters are kept)."""
        self._send_times.clear()
        self._chat_last_send.clear()
        self._penalties.clear()

    @property
    def bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # -- internal helpers -------------------------------------------------------------
    def _now(self) -> int:
        return int(self._clock())

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _enqueue(self, body: JSON) -> None:
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self._updates.append(update)
        self._update_log[update["update_id"]] = copy.deepcopy(update)
        while len(self._update_log) > UPDATE_LOG_SIZE:
            del self._update_log[next(iter(self._update_log))]
        async with self._updates_changed:
            self._updates_changed.notify_all()

    def _queue_member_update(self, user: SimUser, old: str, new: str) -> None:
        if not user.started:
            return

        def member(status: str) -> JSON:
            data: JSON = {"user": self.bot_user, "status": status}
            if status == "kicked":
                data["until_date"] = 0
            return data

        update = {
            "update_id": self._next_update_id,
            "my_chat_member": {
                "chat": user.chat_api(),
                "from": user.user_api(),
                "date": self._now(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        }
        self._next_update_id += 1
        self._updates.append(update)
        # Wake pollers from sync code: schedule the notification in the loop.
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(self._notify_updates())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _notify_updates(self) -> None:
        async with self._updates_changed:
            self._updates_changed.notify_all()

    async def _notify_chat(self) -> None:
        async with self._chat_changed:
            self._chat_changed.notify_all()

    def _resolve_after(self, user: SimUser, after: BotMessage | JSON | int | str | None) -> int:
        if after is None:
            return 0
        if isinstance(after, BotMessage):
            return after.seq
        if isinstance(after, str):
            if after not in self._query_seq:
                raise EmulatorError(f"unknown callback query id {after!r}")
            return self._query_seq[after]
        mid = int(after["message_id"]) if isinstance(after, dict) else int(after)
        if mid in user._message_seq:
            return user._message_seq[mid]
        raise EmulatorError(f"no message {mid} in chat {user.chat_id}")

    def _store_file(
        self,
        kind: str,
        data: bytes,
        filename: str | None,
        mime_type: str | None,
        *,
        uploaded_by: str,
        chat_id: int,
    ) -> StoredFile:
        n = next(self._file_counter)
        digest = hashlib.sha256(data).digest()
        prefix = b"\x05" if kind == "document" else b"\x02"
        raw_id = prefix + struct.pack(">IQ", n, self.bot_id) + digest[:12]
        head = "BQACAgUAAxkB" if kind == "document" else "AgACAgUAAxkB"
        file_id = head + base64.urlsafe_b64encode(raw_id).decode().rstrip("=")
        unique_raw = struct.pack(">I", n) + digest[:6]
        unique = "AgAD" + base64.urlsafe_b64encode(unique_raw).decode().rstrip("=")
        if kind == "photo":
            ext = ".jpg"
            folder = "photos"
        else:
            ext = ""
            if filename and "." in filename:
                ext = "." + filename.rsplit(".", 1)[1].lower()
            elif mime_type:
                ext = mimetypes.guess_extension(mime_type) or ""
            folder = "documents"
        width = height = None
        if kind == "photo":
            width, height = _image_size(data) or (800, 600)
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            kind=kind,
            data=data,
            filename=filename,
            mime_type=mime_type,
            file_path=f"{folder}/file_{n}{ext}",
            uploaded_by=uploaded_by,
            chat_id=chat_id,
            width=width,
            height=height,
        )
        self._files[file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    @staticmethod
    def _document_api(stored: StoredFile) -> JSON:
        data: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if stored.filename:
            data["file_name"] = stored.filename
        if stored.mime_type:
            data["mime_type"] = stored.mime_type
        return data

    @staticmethod
    def _photo_api(stored: StoredFile) -> list[JSON]:
        width, height = stored.width or 800, stored.height or 600
        sizes = []
        if max(width, height) > 320:
            scale = 90 / max(width, height)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.size,
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                }
            )
        sizes.append(
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.size,
                "width": width,
                "height": height,
            }
        )
        return sizes

    def _message_api(self, user: SimUser, msg: BotMessage, *, nested: bool = False) -> JSON:
        data: JSON = {
            "message_id": msg.message_id,
            "from": self.bot_user,
            "chat": user.chat_api(),
            "date": msg.date,
        }
        if msg.edit_date is not None:
            data["edit_date"] = msg.edit_date
        if msg.text is not None:
            data["text"] = msg.text
            if msg.entities:
                data["entities"] = msg.entities
        if msg.document is not None:
            data["document"] = msg.document
        if msg.photo is not None:
            data["photo"] = msg.photo
        if msg.caption is not None:
            data["caption"] = msg.caption
            if msg.caption_entities:
                data["caption_entities"] = msg.caption_entities
        if msg.reply_markup is not None:
            data["reply_markup"] = msg.reply_markup
        if msg.reply_to_message_id is not None and not nested:
            with contextlib.suppress(EmulatorError):
                data["reply_to_message"] = self._message_api_by_id(
                    user, msg.reply_to_message_id, nested=True
                )
        return data

    def _message_api_by_id(self, user: SimUser, message_id: int, *, nested: bool = True) -> JSON:
        if message_id in user._bot_messages:
            return self._message_api(user, user._bot_messages[message_id], nested=nested)
        if message_id in user._user_messages:
            msg = dict(user._user_messages[message_id])
            msg.pop("reply_to_message", None)
            return msg
        raise EmulatorError(f"no message {message_id} in chat {user.chat_id}")

    async def _press(self, user: SimUser, msg: BotMessage, data: str) -> str:
        query_id = str(4_000_000_000_000_000_000 + user.user_id * 1000 + next(self._query_counter))
        seq = self._next_seq()
        self._queries[query_id] = _Query(user_id=user.user_id, created=self._monotonic(), seq=seq)
        self._query_seq[query_id] = seq
        instance = hashlib.sha1(f"{self.bot_id}:{user.chat_id}".encode()).hexdigest()[:16]
        await self._enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.user_api(),
                    "message": self._message_api(user, msg),
                    "chat_instance": str(int(instance, 16)),
                    "data": data,
                }
            }
        )
        return query_id

    # -- HTTP plumbing ----------------------------------------------------------------
    @staticmethod
    def _json(body: JSON, status: int = 200) -> web.Response:
        return web.json_response(
            body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False)
        )

    def _error(self, err: ApiError, method: str = "") -> web.Response:
        """Every error answer of the Bot API passes here: counted by code in
        ``stats.errors_by_code`` and recorded in ``error_log``."""
        self.stats.errors_by_code[err.code] += 1
        self.error_log.append(ErrorEvent(method, err.code, err.description))
        if err.code == 429:
            self.stats.issued_429s += 1
        return self._json(err.payload(), status=err.code)

    async def _travel(self) -> None:
        """Half the emulated round trip (one way); ends early when the server stops."""
        if self.latency > 0 and not self._closing.is_set():
            await wait_event(self._closing, self.latency / 2)

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        if self.latency <= 0:
            return await self._handle_method_now(request)
        await self._travel()  # the request on its way to the server
        response = await self._handle_method_now(request)
        await self._travel()  # the answer on its way back
        return response

    async def _handle_method_now(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if self.token is not None and token != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return self._error(ApiError(404, "Not Found"))
        name, handler = entry
        self.stats.requests_by_method[name] += 1
        try:
            params = await _Params.from_request(request)
        except ApiError as err:
            return self._error(err, name)
        fault = self._faults.draw(name) if self._faults is not None else None
        if fault is not None:
            self.fault_log.append(fault)
            self.stats.faults_injected[fault.kind] += 1
            early = await self._apply_fault(fault, name, params, request)
            if early is not None and early.status >= 400:
                self.error_log[-1] = dataclasses.replace(self.error_log[-1], method=name)
            if early is not None:
                return early
        try:
            result = await handler(params)
        except ApiError as err:
            response: web.StreamResponse = self._error(err, name)
        else:
            response = self._json({"ok": True, "result": result})
        if fault is not None and fault.kind == "drop_after":
            return self._drop(request)
        return response

    async def _apply_fault(
        self, fault: FaultEvent, name: str, params: _Params, request: web.Request
    ) -> web.StreamResponse | None:
        if fault.kind == "429":
            retry = max(1, self._faults.retry_after if self._faults else 1)
            chat_id = self._chat_key(params)
            self._penalties[chat_id if chat_id is not None else "global"] = (
                self._monotonic() + retry
            )
            return self._error(
                ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
            )
        if fault.kind == "500":
            return self._error(ApiError(500, "Internal Server Error"))
        if fault.kind == "502":
            return self._error(ApiError(502, "Bad Gateway"))
        if fault.kind == "drop":
            return self._drop(request)
        if fault.kind == "slow":
            delay = self._faults.slow_seconds if self._faults else 0.0
            await wait_event(self._closing, delay)
        return None

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        # Abort the TCP connection: the client gets no response at all. aiohttp then
        # silently discards the response returned here.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    @staticmethod
    def _chat_key(params: _Params) -> int | None:
        try:
            return params.get_int("chat_id")
        except ApiError:
            return None

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        await self._travel()
        await self._travel()
        token = request.match_info["token"]
        if self.token is not None and token != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return self._error(ApiError(404, "Not Found"))
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # -- rate limits ------------------------------------------------------------------
    def _check_rate(self, chat_id: int) -> None:
        """Count unhonoured 429s and, with limits enforced, answer 429 if over a limit."""
        now = self._monotonic()
        tolerance = 0.01
        for key in (chat_id, "global"):
            until = self._penalties.get(key)
            if until is not None and now < until - tolerance:
                self.stats.unhonoured_429s += 1
                if self.enforce_limits:
                    retry = max(1, math.ceil(until - now))
                    raise ApiError(
                        429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                    )
        if not self.enforce_limits:
            return
        while self._send_times and self._send_times[0] <= now - 1.0:
            self._send_times.popleft()
        if len(self._send_times) >= GLOBAL_LIMIT_PER_SECOND:
            retry = max(1, math.ceil(self._send_times[0] + 1.0 - now))
            self._penalties["global"] = now + retry
            self.stats.overall_429s += 1
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        last = self._chat_last_send.get(chat_id)
        if last is not None and now - last < PER_CHAT_INTERVAL:
            retry = max(1, math.ceil(last + PER_CHAT_INTERVAL - now))
            self._penalties[chat_id] = now + retry
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    def _record_send(self, chat_id: int) -> None:
        now = self._monotonic()
        self._send_times.append(now)
        while self._send_times and self._send_times[0] <= now - 1.0:
            self._send_times.popleft()
        self._chat_last_send[chat_id] = now

    # -- validation helpers -----------------------------------------------------------
    def _chat(self, params: _Params, *, for_sending: bool = True) -> SimUser:
        if not params.has("chat_id"):
            raise ApiError(400, "Bad Request: chat_id is empty")
        try:
            chat_id = params.get_int("chat_id")
        except ApiError:
            raise ApiError(400, CHAT_NOT_FOUND) from None
        user = self._users.get(chat_id) if chat_id is not None else None
        if user is None or not user.started:
            raise ApiError(400, CHAT_NOT_FOUND)
        if for_sending and user.blocked:
            raise ApiError(403, BLOCKED)
        return user

    @staticmethod
    def _format(
        text: str, parse_mode: str | None, entities: Any
    ) -> tuple[str, list[JSON]]:
        if parse_mode:
            mode = parse_mode.lower()
            if mode == "html":
                try:
                    plain, ents = parse_html(text)
                except EntityParseError as exc:
                    raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
            elif mode in {"markdown", "markdownv2"}:
                plain, ents = text, []  # accepted, not interpreted
            else:
                raise ApiError(400, "Bad Request: unsupported parse_mode")
        elif isinstance(entities, list):
            plain, ents = text, [e for e in entities if isinstance(e, dict)]
        else:
            plain, ents = text, []
        return _strip_text(plain, ents)

    def _text(self, params: _Params) -> tuple[str, list[JSON]]:
        text = params.get_str("text")
        if text is None or not text.strip():
            raise ApiError(400, TEXT_EMPTY)
        plain, ents = self._format(text, params.get_str("parse_mode"), params.get_json("entities"))
        if not plain:
            raise ApiError(400, TEXT_EMPTY)
        if len(plain) > MAX_TEXT_LENGTH:
            raise ApiError(400, TEXT_TOO_LONG)
        return plain, ents

    def _caption(self, params: _Params) -> tuple[str | None, list[JSON]]:
        caption = params.get_str("caption")
        if not caption:
            return None, []
        plain, ents = self._format(
            caption, params.get_str("parse_mode"), params.get_json("caption_entities")
        )
        if len(plain) > MAX_CAPTION_LENGTH:
            raise ApiError(400, CAPTION_TOO_LONG)
        return (plain or None), ents

    @staticmethod
    def _markup(params: _Params, *, inline_only: bool = False) -> tuple[JSON | None, JSON | None]:
        """Validate ``reply_markup``; returns (inline keyboard, other keyboard)."""
        markup = params.get_json("reply_markup", "reply keyboard markup")
        if markup is None or markup == "":
            return None, None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button:"
                    ' Field "inline_keyboard" must be of type Array',
                )
            if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
                raise ApiError(400, MARKUP_TOO_LONG)
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise ApiError(
                            400,
                            "Bad Request: can't parse inline keyboard button:"
                            ' Field "text" must be of type String',
                        )
                    actions = set(button) - {"text"}
                    if not actions:
                        raise ApiError(
                            400,
                            "Bad Request: can't parse inline keyboard button: Text buttons are"
                            " unallowed in the inline keyboard",
                        )
                    if "callback_data" in button:
                        cb = button["callback_data"]
                        if (
                            not isinstance(cb, str)
                            or not cb
                            or len(cb.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
                        ):
                            raise ApiError(400, BUTTON_DATA_INVALID)
            inline = {"inline_keyboard": [[dict(b) for b in row] for row in rows]}
            return (inline if any(rows) else None), None
        if inline_only:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if any(k in markup for k in ("force_reply", "remove_keyboard", "keyboard")):
            return None, markup
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")

    @staticmethod
    def _reply_to(params: _Params, user: SimUser) -> int | None:
        reply = params.get_json("reply_parameters")
        mid: int | None = None
        allow_missing = params.get_bool("allow_sending_without_reply")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            mid = int(reply["message_id"])
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
        elif params.has("reply_to_message_id"):
            mid = params.get_int("reply_to_message_id")
        if mid is None:
            return None
        exists = mid in user._bot_messages or mid in user._user_messages
        if mid in user._bot_messages and user._bot_messages[mid].deleted:
            exists = False
        if not exists:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return mid

    def _edit_target(self, params: _Params, user: SimUser) -> BotMessage:
        if params.has("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        if not params.has("message_id"):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        mid = params.get_int("message_id")
        if mid in user._user_messages:
            raise ApiError(400, "Bad Request: message can't be edited")
        msg = user._bot_messages.get(mid or 0)
        if msg is None or msg.deleted:
            raise ApiError(400, EDIT_NOT_FOUND)
        return msg

    async def _new_bot_message(self, user: SimUser, **fields: Any) -> BotMessage:
        mid = user._allocate_message_id()
        seq = self._next_seq()
        msg = BotMessage(chat_id=user.chat_id, message_id=mid, date=self._now(), seq=seq, **fields)
        user._bot_messages[mid] = msg
        user._message_seq[mid] = seq
        self.stats.sent_messages += 1
        self._record_send(user.chat_id)
        await self._notify_chat()
        return msg

    async def _apply_edit(self, user: SimUser, msg: BotMessage, **changes: Any) -> JSON:
        msg.edits.append(
            MessageVersion(
                text=msg.text,
                caption=msg.caption,
                entities=tuple(msg.entities if msg.text is not None else msg.caption_entities),
                reply_markup=msg.reply_markup,
                date=msg.edit_date or msg.date,
            )
        )
        for key, value in changes.items():
            setattr(msg, key, value)
        take_off = set(changes) == {"reply_markup"} and not any(
            (msg.reply_markup or {}).get("inline_keyboard") or ())
        msg.bare_since = msg.seq if take_off else None
        msg.edit_date = self._now()
        msg.seq = self._next_seq()
        self.stats.edited_messages += 1
        self._record_send(user.chat_id)
        await self._notify_chat()
        return self._message_api(user, msg)

    # -- Bot API methods --------------------------------------------------------------
    def _method_table(self) -> dict[str, Handler]:
        return {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "getChat": self._get_chat,
        }

    async def _true(self, params: _Params) -> bool:
        return True

    async def _get_me(self, params: _Params) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_chat(self, params: _Params) -> JSON:
        user = self._chat(params, for_sending=False)
        return {**user.chat_api(), "accent_color_id": 0, "max_reaction_count": 11}

    async def _get_updates(self, params: _Params) -> list[JSON]:
        if self.webhook.get("url"):
            raise ApiError(409, CONFLICT_WEBHOOK)
        offset = params.get_int("offset")
        limit = min(max(params.get_int("limit") or 100, 1), 100)
        timeout = max(params.get_float("timeout") or 0.0, 0.0)
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_ALLOWED
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        async with self._updates_changed:
            self._updates_changed.notify_all()  # terminates an older pending poll

            def ready() -> bool:
                return (
                    self._poll_generation != generation
                    or self._closing.is_set()
                    or bool(self._deliverable())
                )

            if timeout > 0 and not ready():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._updates_changed.wait_for(ready)
        if self._poll_generation != generation:
            raise ApiError(409, CONFLICT_POLLING)
        return self._deliverable()[:limit]

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            self._updates = self._updates[offset:]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _deliverable(self) -> list[JSON]:
        """Pending updates the bot asked for; unwanted kinds are dropped from the queue."""
        kept = []
        for update in self._updates:
            kind = next((k for k in update if k != "update_id"), "")
            if kind in self._allowed_updates:
                kept.append(update)
        if len(kept) != len(self._updates):
            self._updates = kept
        return kept

    async def _set_webhook(self, params: _Params) -> bool:
        url = params.get_str("url") or ""
        if url and not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get_json("allowed_updates")
        self.webhook = {
            "url": url,
            "secret_token": params.get_str("secret_token"),
            "max_connections": params.get_int("max_connections") or 40,
            "allowed_updates": allowed if isinstance(allowed, list) else None,
        }
        if not url:
            self.webhook = {}
        else:
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_ALLOWED
            self._start_webhook_delivery()
        async with self._updates_changed:
            self._updates_changed.notify_all()
        return True

    # -- webhook delivery ---------------------------------------------------------------
    def deliver_webhook_to(self, base_url: str) -> None:
        """Deliver updates to the bot's webhook. Telegram POSTs each update to the
        registered HTTPS URL; here it goes to ``base_url`` (a local ``http://host:port``)
        plus that URL's path, with the secret in ``X-Telegram-Bot-Api-Secret-Token``,
        one at a time and in order. An update leaves the queue only when the bot
        answered 2xx; on any other answer, a refused connection or a bot that died
        meanwhile it is delivered again after ``webhook_retry_delay`` s, as Telegram
        does."""
        self.webhook_redirect = base_url.rstrip("/")
        self._start_webhook_delivery()

    def _start_webhook_delivery(self) -> None:
        if self.webhook_redirect is None or not self.webhook.get("url"):
            return
        if self._webhook_task is not None and not self._webhook_task.done():
            return
        with contextlib.suppress(RuntimeError):  # no running loop: set_webhook starts it
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_loop())

    async def webhook_post(self, http: aiohttp.ClientSession, update: JSON) -> bool:
        """POST one update to the webhook; whether the bot took it (2xx)."""
        url = self.webhook.get("url", "")
        path = urllib.parse.urlsplit(url).path or "/"
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        try:
            async with http.post(f"{self.webhook_redirect}{path}", json=update,
                                 headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=60)) as resp:
                await resp.read()
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def _webhook_loop(self) -> None:
        inflight: dict[int, asyncio.Task[None]] = {}  # update id -> its delivery

        async def deliver(http: aiohttp.ClientSession, update: JSON) -> None:
            await self._travel()  # the update on its way to the bot (``latency``)
            if await self.webhook_post(http, update):
                self._updates = [u for u in self._updates
                                 if u["update_id"] != update["update_id"]]
            else:
                await asyncio.sleep(self.webhook_retry_delay)

        def pending_ids() -> list[int]:
            return [u["update_id"] for u in self._deliverable()]

        async def changed(seen: list[int]) -> None:  # no notification lost meanwhile
            async with self._updates_changed:
                await self._updates_changed.wait_for(
                    lambda: pending_ids() != seen or not self.webhook.get("url"))

        async with aiohttp.ClientSession() as http:
            try:
                while not self._closing.is_set() and self.webhook.get("url"):
                    for uid in [u for u, t in inflight.items() if t.done()]:
                        del inflight[uid]
                    chats: set[Any] = set()  # chats with an earlier update not delivered
                    for update in self._deliverable():
                        if len(inflight) >= max(1, self.webhook_connections):
                            break
                        chat = _update_chat(update)
                        uid = update["update_id"]
                        if uid not in inflight and chat not in chats:
                            inflight[uid] = asyncio.create_task(deliver(http, update))
                        chats.add(chat)
                        if self.webhook_connections <= 1:
                            break
                    waiter = asyncio.create_task(changed(pending_ids()))
                    try:
                        await asyncio.wait({waiter, *inflight.values()}, timeout=1.0,
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()
            finally:
                for task in inflight.values():
                    task.cancel()
                if inflight:
                    await asyncio.wait(inflight.values())

    async def _delete_webhook(self, params: _Params) -> bool:
        self.webhook = {}
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: _Params) -> JSON:
        info: JSON = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.get("url"):
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    @staticmethod
    def scope_key(scope: Mapping[str, Any] | None = None, language_code: str | None = None) -> str:
        """Key of :attr:`commands`: ``default``, ``all_private_chats``, ``chat:<id>``...

        A language code is appended as ``/<lang>`` (e.g. ``all_private_chats/en``).
        """
        scope = scope or {"type": "default"}
        kind = str(scope.get("type", "default"))
        key = kind
        if kind in {"chat", "chat_administrators"}:
            key = f"{kind}:{scope.get('chat_id')}"
        elif kind == "chat_member":
            key = f"{kind}:{scope.get('chat_id')}:{scope.get('user_id')}"
        return f"{key}/{language_code}" if language_code else key

    def _scope_from(self, params: _Params) -> str:
        scope = params.get_json("scope")
        if scope is not None and not isinstance(scope, dict):
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        return self.scope_key(scope, params.get_str("language_code"))

    async def _set_my_commands(self, params: _Params) -> bool:
        commands = params.get_json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        clean = []
        for cmd in commands:
            if not isinstance(cmd, dict):
                raise ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            name = str(cmd.get("command", "")).lstrip("/")
            desc = str(cmd.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(desc) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": desc})
        key = self._scope_from(params)
        if clean:
            self.commands[key] = clean
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: _Params) -> list[JSON]:
        return list(self.commands.get(self._scope_from(params), []))

    async def _delete_my_commands(self, params: _Params) -> bool:
        self.commands.pop(self._scope_from(params), None)
        return True

    async def _send_message(self, params: _Params) -> JSON:
        user = self._chat(params)
        text, entities = self._text(params)
        inline, keyboard = self._markup(params)
        reply_to = self._reply_to(params, user)
        self._check_rate(user.chat_id)
        msg = await self._new_bot_message(
            user,
            text=text,
            entities=entities,
            source_text=params.get_str("text"),
            parse_mode=params.get_str("parse_mode"),
            reply_markup=inline,
            keyboard=keyboard,
            reply_to_message_id=reply_to,
        )
        return self._message_api(user, msg)

    async def _edit_message_text(self, params: _Params) -> JSON:
        user = self._chat(params)
        msg = self._edit_target(params, user)
        if msg.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._text(params)
        inline, _ = self._markup(params, inline_only=True)
        if text == msg.text and entities == msg.entities and inline == msg.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self._check_rate(user.chat_id)
        return await self._apply_edit(
            user,
            msg,
            text=text,
            entities=entities,
            source_text=params.get_str("text"),
            parse_mode=params.get_str("parse_mode"),
            reply_markup=inline,
        )

    async def _edit_message_caption(self, params: _Params) -> JSON:
        user = self._chat(params)
        msg = self._edit_target(params, user)
        if msg.text is not None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities = self._caption(params)
        inline, _ = self._markup(params, inline_only=True)
        unchanged = caption == msg.caption and entities == msg.caption_entities
        if unchanged and inline == msg.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self._check_rate(user.chat_id)
        return await self._apply_edit(
            user,
            msg,
            caption=caption,
            caption_entities=entities,
            source_caption=params.get_str("caption"),
            reply_markup=inline,
        )

    async def _edit_message_reply_markup(self, params: _Params) -> JSON:
        user = self._chat(params)
        msg = self._edit_target(params, user)
        inline, _ = self._markup(params, inline_only=True)
        if inline == msg.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self._check_rate(user.chat_id)
        return await self._apply_edit(user, msg, reply_markup=inline)

    async def _delete_message(self, params: _Params) -> bool:
        user = self._chat(params, for_sending=False)
        mid = params.get_int("message_id")
        if mid is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        msg = user._bot_messages.get(mid)
        if msg is not None and not msg.deleted:
            msg.deleted = True
            msg.seq = self._next_seq()
        elif mid in user._user_messages:
            user._user_messages.pop(mid)
            self._forget_user_message(user.chat_id, mid)
        else:
            raise ApiError(400, DELETE_NOT_FOUND)
        self.stats.deleted_messages += 1
        await self._notify_chat()
        return True

    def _forget_user_message(self, chat_id: int, message_id: int) -> None:
        """A deleted user message leaves no copy here: not in the queue of updates
        nor in the log kept for ``redeliver()`` (a passphrase the bot deleted)."""
        def is_it(update: JSON) -> bool:
            msg = update.get("message") or {}
            return (msg.get("message_id") == message_id
                    and (msg.get("chat") or {}).get("id") == chat_id)

        self._updates[:] = [u for u in self._updates if not is_it(u)]
        for uid in [uid for uid, u in self._update_log.items() if is_it(u)]:
            del self._update_log[uid]

    async def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.get_str("callback_query_id") or ""
        query = self._queries.get(query_id)
        if (
            query is None
            or query.answered
            or self._monotonic() - query.created > self.callback_query_ttl
        ):
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get_str("text")
        if text is not None and len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query.answered = True
        user = self._users[query.user_id]
        user._answers[query_id] = CallbackAnswer(
            text=text or None, show_alert=params.get_bool("show_alert"), url=params.get_str("url")
        )
        await self._notify_chat()
        return True

    def _input_file(self, params: _Params, name: str, kind: str, user: SimUser) -> StoredFile:
        value = params.get_file(name)
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: there is no {name} in the request")
        if isinstance(value, _Upload):
            if not value.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            mime = value.content_type
            generic = not mime or mime == "application/octet-stream"
            if kind == "document" and generic and value.filename:
                mime = mimetypes.guess_type(value.filename)[0] or mime
            if kind == "photo":
                if len(value.data) > 10 * 1024 * 1024:
                    raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
                mime = "image/jpeg"
            return self._store_file(
                kind, value.data, value.filename, mime, uploaded_by="bot", chat_id=user.chat_id
            )
        if value.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: failed to get HTTP URL content")
        stored = self._files.get(value)
        if stored is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise ApiError(
                400,
                f"Bad Request: can't use file of type {stored.kind.title()} as {kind.title()}",
            )
        return stored

    async def _send_file(self, params: _Params, kind: str) -> JSON:
        user = self._chat(params)
        caption, caption_entities = self._caption(params)
        inline, keyboard = self._markup(params)
        reply_to = self._reply_to(params, user)
        stored = self._input_file(params, kind, kind, user)
        self._check_rate(user.chat_id)
        file_fields: JSON = (
            {"document": self._document_api(stored)}
            if kind == "document"
            else {"photo": self._photo_api(stored)}
        )
        msg = await self._new_bot_message(
            user,
            caption=caption,
            caption_entities=caption_entities,
            source_caption=params.get_str("caption"),
            parse_mode=params.get_str("parse_mode"),
            reply_markup=inline,
            keyboard=keyboard,
            reply_to_message_id=reply_to,
            **file_fields,
        )
        return self._message_api(user, msg)

    async def _send_document(self, params: _Params) -> JSON:
        return await self._send_file(params, "document")

    async def _send_photo(self, params: _Params) -> JSON:
        return await self._send_file(params, "photo")

    async def _send_chat_action(self, params: _Params) -> bool:
        self._chat(params)
        if params.get_str("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _get_file(self, params: _Params) -> JSON:
        stored = self._files.get(params.get_str("file_id") or "")
        if stored is None:
            raise ApiError(400, "Bad Request: wrong file_id or the file is temporarily unavailable")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    # -- HTTP user API ----------------------------------------------------------------
    def _add_user_api_routes(self, app: web.Application) -> None:
        app.router.add_post("/_emu/users", self._api_add_user)
        app.router.add_get("/_emu/users", self._api_list_users)
        app.router.add_post("/_emu/users/{id}/send", self._api_send)
        app.router.add_post("/_emu/users/{id}/press", self._api_press)
        app.router.add_post("/_emu/users/{id}/document", self._api_document)
        app.router.add_post("/_emu/users/{id}/photo", self._api_photo)
        app.router.add_post("/_emu/users/{id}/block", self._api_block)
        app.router.add_post("/_emu/users/{id}/unblock", self._api_unblock)
        app.router.add_get("/_emu/users/{id}/messages", self._api_messages)
        app.router.add_get("/_emu/users/{id}/answers", self._api_answers)
        app.router.add_get("/_emu/stats", self._api_stats)

    @staticmethod
    def _api_ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _api_fail(status: int, description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": status, "description": description}, status=status
        )

    async def _api_body(self, request: web.Request) -> JSON:
        """JSON object body (also when curl labels it form-encoded), else form fields."""
        if request.content_type.startswith("multipart/"):
            return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        raw = await request.text()
        if not raw.strip():
            return {}
        if raw.lstrip().startswith("{"):
            try:
                body = json.loads(raw)
            except ValueError:
                raise web.HTTPBadRequest(
                    text=json.dumps({"ok": False, "error_code": 400, "description": "bad JSON"}),
                    content_type="application/json",
                ) from None
            return body if isinstance(body, dict) else {}
        return dict(urllib.parse.parse_qsl(raw))

    def _api_user(self, request: web.Request) -> SimUser:
        try:
            return self.user(int(request.match_info["id"]))
        except (ValueError, EmulatorError):
            raise web.HTTPNotFound(
                text=json.dumps({"ok": False, "error_code": 404, "description": "no such user"}),
                content_type="application/json",
            ) from None

    async def _api_call(self, action: Callable[[], Coroutine[Any, Any, Any]]) -> web.Response:
        try:
            return self._api_ok(await action())
        except (EmulatorError, ValueError, KeyError, TypeError) as exc:
            return self._api_fail(400, str(exc))

    async def _api_add_user(self, request: web.Request) -> web.Response:
        body = await self._api_body(request)

        async def act() -> JSON:
            user = self.add_user(
                int(body["user_id"]),
                str(body.get("first_name") or "Pengguna"),
                body.get("last_name"),
                body.get("username"),
                body.get("language_code", "id"),
            )
            return user.user_api()

        return await self._api_call(act)

    async def _api_list_users(self, request: web.Request) -> web.Response:
        return self._api_ok(
            [{**u.user_api(), "started": u.started, "blocked": u.blocked} for u in self.users]
        )

    async def _api_send(self, request: web.Request) -> web.Response:
        user = self._api_user(request)
        body = await self._api_body(request)
        reply_to = body.get("reply_to_message_id")
        return await self._api_call(
            lambda: user.send_text(
                str(body["text"]), reply_to=int(reply_to) if reply_to is not None else None
            )
        )

    async def _api_press(self, request: web.Request) -> web.Response:
        user = self._api_user(request)
        body = await self._api_body(request)

        async def act() -> JSON:
            query_id = await user.press(
                int(body["message_id"]), text=body.get("text"), data=body.get("data")
            )
            return {"callback_query_id": query_id}

        return await self._api_call(act)

    async def _api_upload(self, request: web.Request, field_name: str) -> web.Response:
        user = self._api_user(request)
        form = await request.post()
        upload = form.get(field_name)
        if not isinstance(upload, web.FileField):
            return self._api_fail(400, f"multipart field {field_name!r} with a file is required")
        data = upload.file.read()
        caption = form.get("caption")
        caption_text = caption if isinstance(caption, str) else None
        if field_name == "photo":
            return await self._api_call(lambda: user.send_photo(data, caption=caption_text))
        return await self._api_call(
            lambda: user.send_document(
                data, upload.filename or "document", upload.content_type, caption=caption_text
            )
        )

    async def _api_document(self, request: web.Request) -> web.Response:
        return await self._api_upload(request, "document")

    async def _api_photo(self, request: web.Request) -> web.Response:
        return await self._api_upload(request, "photo")

    async def _api_block(self, request: web.Request) -> web.Response:
        user = self._api_user(request)
        user.block()
        return self._api_ok(True)

    async def _api_unblock(self, request: web.Request) -> web.Response:
        user = self._api_user(request)
        user.unblock()
        return self._api_ok(True)

    async def _api_messages(self, request: web.Request) -> web.Response:
        user = self._api_user(request)
        after_raw = request.query.get("after")
        try:
            wait = float(request.query.get("wait", "0") or 0)
            after: int | None = int(after_raw) if after_raw else None
            after_seq = self._resolve_after(user, after)
        except (EmulatorError, ValueError) as exc:
            return self._api_fail(400, str(exc))
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await user.wait_for(after=after, timeout=min(wait, 60.0))
        messages = [m for m in user.messages if m.seq > after_seq]
        return self._api_ok([{**m.to_dict(), "api": self._message_api(user, m)} for m in messages])

    async def _api_answers(self, request: web.Request) -> web.Response:
        user = self._api_user(request)
        return self._api_ok({qid: dataclasses.asdict(a) for qid, a in user._answers.items()})

    async def _api_stats(self, request: web.Request) -> web.Response:
        return self._api_ok(
            {
                **self.stats.to_dict(),
                "updates_pending": self.updates_pending(),
                "fault_log": [dataclasses.asdict(f) for f in self.fault_log],
                "commands": self.commands,
            }
        )


# --------------------------------------------------------------------------------------
# Image header sniffing (for PhotoSize width/height)
# --------------------------------------------------------------------------------------
_JPEG_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG image, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker in _JPEG_SOF_MARKERS:
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


# --------------------------------------------------------------------------------------
# Running from synchronous code / standalone
# --------------------------------------------------------------------------------------
class EmulatorThread:
    """Run a :class:`BotApiEmulator` in a background thread with its own event loop.

    ``run(coro)`` executes a coroutine (e.g. ``user.send_text(...)``) in that loop and
    returns its result; ``call(fn, *args)`` does the same for plain functions such as
    ``emulator.add_user``. Usable as a context manager.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.emulator: BotApiEmulator | None = None

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._main, name="bot-api-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("emulator thread did not start in time")
        if self._error is not None:
            raise RuntimeError("emulator failed to start") from self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        try:
            self.emulator = BotApiEmulator(**self._kwargs)
            await self.emulator.start()
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self.emulator.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None or self._stop_event is None:
            return
        self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout)
        self._thread = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("EmulatorThread is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async def invoke() -> T:
            return fn(*args, **kwargs)

        return self.run(invoke())

    def _emu(self) -> BotApiEmulator:
        if self.emulator is None:
            raise RuntimeError("EmulatorThread is not started")
        return self.emulator

    @property
    def url(self) -> str:
        return self._emu().url

    @property
    def base_url(self) -> str:
        return self._emu().base_url

    @property
    def base_file_url(self) -> str:
        return self._emu().base_file_url

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.devtools.emulator", description="Local Telegram Bot API emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=None, help="accept only this token (default: any)")
    parser.add_argument("--bot-username", default="sopbot_demo_bot")
    parser.add_argument("--bot-name", default="SOP Data Kinerja")
    parser.add_argument("--enforce-limits", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="emulated network round trip of every Bot API request, seconds")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default="429,500,502,slow,drop")
    parser.add_argument("--fault-seed", type=int, default=None)
    parser.add_argument("--user", action="append", default=[], metavar="ID:NAME",
                        help="create a simulated user, e.g. --user 1001:Sari")
    return parser.parse_args(list(argv) if argv is not None else None)


async def _serve_forever(args: argparse.Namespace) -> None:
    faults = None
    if args.fault_rate > 0:
        faults = FaultPlan(
            rate=args.fault_rate,
            kinds=tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip()),
            seed=args.fault_seed,
        )
    emu = BotApiEmulator(
        host=args.host,
        port=args.port,
        token=args.token,
        bot_username=args.bot_username,
        bot_first_name=args.bot_name,
        enforce_limits=args.enforce_limits,
        faults=faults,
        latency=args.latency,
    )
    for spec in args.user:
        uid, _, name = spec.partition(":")
        emu.add_user(int(uid), name or f"Pengguna {uid}")
    async with emu:
        print(f"Bot API emulator on {emu.url}", flush=True)
        print(f"  api_base_url  = {emu.base_url!r}", flush=True)
        print(f"  file_base_url = {emu.base_file_url!r}", flush=True)
        print(f"  user API      = {emu.url}/_emu/users (see `pydoc bot.devtools.emulator`)", flush=True)
        await asyncio.Event().wait()


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point of ``python -m bot.devtools.emulator``."""
    args = _parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
