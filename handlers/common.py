"""What every handler shares: one database session per update, who is asking, the
callback codec, replies, and the routing of free text and files to the conversation a
person is in (the state lives in the ``conversation`` table, so a restart resumes it).

A handler is wiring: it parses the update, checks who is asking, calls one workflow
function inside ``transaction()``, and renders the result.
"""
from __future__ import annotations

import asyncio
import functools
from contextvars import ContextVar
import logging
import unicodedata
from contextlib import asynccontextmanager
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import ForceReply, Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import ContextTypes

from bot import callbacks, render
from bot.core.onboarding import person_with_conversation, save_conversation
from bot.core.outbox import record_sent
from handlers.markup import keyboard, keyboard_removed
from bot.core.services import Services
from bot.texts import t
from bot.core.workflow import NotAllowed, StaleAction, WorkflowError, Workflow
from models import Conversation, Person
from models.enums import Role
from models.session import get as loaded_get

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Buttons = Sequence[Sequence[tuple[str, str]]]


# the office of the person whose update is handled (set by ``action`` for the handler's
# task): every workflow of the update acts for it (``Workflow.bind``)
_acting_office: ContextVar[int | None] = ContextVar("acting_office", default=None)


def services(context: Context) -> Services:
    return context.application.bot_data["services"]


def sessionmaker(context: Context):
    return context.application.bot_data["sessionmaker"]


def wake_sender(context: Context) -> None:
    sender = context.application.bot_data.get("sender")
    if sender is not None:
        sender.wake()


@asynccontextmanager
async def transaction(context: Context):
    """One session and transaction; the outbox sender is woken after a commit that
    queued messages. Inside an update's one transaction (``session.info["update"]``,
    set by the intake) the block's end is no commit: the intake wakes the sender after
    the update's commit, when it queued messages."""
    async with sessionmaker(context)() as session:
        async with session.begin():
            yield session, await Workflow(session, services(context),
                                          _acting_office.get()).ready()
        if session.info.get("update"):
            return
        queued = session.info.pop("outbox_written", False)
    if queued:
        wake_sender(context)


async def load_person(context: Context, update: Update,
                      cb: callbacks.Callback | None = None) -> Person | None:
    """The person writing, read with their conversation in one statement (the update's
    session keeps both: the handler's ``get_conversation`` reads no row again). An
    account bound in several offices: the person of the office the button ``cb`` acts
    on (``bot.core.onboarding.person_with_conversation``)."""
    user = update.effective_user
    if user is None:
        return None
    async with sessionmaker(context)() as session:
        return await person_with_conversation(session, user.id,
                                              callbacks.target(cb) if cb else None)


async def reply(update: Update, text: str, buttons: Buttons | None = None, *,
                force_reply: bool = False, edit: bool = False) -> Any:
    """Answer the person in their chat; ``edit`` replaces the pressed message's text.

    The last safety net of ``bot.render``: a text too long for one message is sent as
    several (the keyboard on the last), an edit is shortened; listings are paged
    before they get here."""
    parts = render.split(text, render.TEXT_LIMIT - 2)
    if len(parts) > 1 and edit:
        parts = [parts[0] + "\n" + render.ELLIPSIS]
    if len(parts) > 1:
        chat = update.effective_chat
        for part in parts[:-1]:
            await chat.send_message(part)
        text = parts[-1]
    else:
        text = parts[0]
    markup = ForceReply(selective=True) if force_reply else keyboard(render.labels(buttons))
    query = update.callback_query
    if edit and query is not None and query.message is not None:
        try:
            return await query.edit_message_text(text, reply_markup=markup)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise
            return query.message
    chat = update.effective_chat
    return await chat.send_message(text, reply_markup=markup)


async def remember(context: Context, person: Person, message: Any, ref: str) -> None:
    """Record a direct answer with buttons as sent, so its keyboard is removed (through
    the outbox) when ``ref`` no longer applies (``Workflow.retire``)."""
    if message is None or not ref:
        return
    async with transaction(context) as (session, wf):
        await record_sent(session, person, message.chat_id, message.message_id, ref=ref,
                          at=wf.now)


async def drop_buttons(update: Update) -> None:
    """Remove the keyboard of the pressed message, so it cannot be pressed again."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
        keyboard_removed(update.get_bot(), query.message.chat_id, query.message.message_id)
    except (BadRequest, NetworkError):  # cosmetic: never abort the action for it
        log.info("could not remove the buttons of message %s", query.message.message_id)


Handler = Callable[..., Awaitable[Any]]
ANSWER_WITHIN = 5.0  # seconds; Telegram refuses the answer of a button after about 15
# True while a long piece of work's button is answered early (ANSWER_WITHIN): the runtime
# makes that answer now, never after the update's commit (bot/telegram/intake.py)
EARLY_ANSWER: ContextVar[bool] = ContextVar("sopbot_early_answer", default=False)


def action(*roles: Role, callback: bool = False):
    """Wraps a handler: the person must be registered (and of ``roles`` if given).

    Callback data is decoded with the one codec; bad data and workflow refusals get a
    short Indonesian answer and change nothing. The handler gets ``(update, context,
    person, cb)`` and may return a text to show as the callback answer.

    Telegram takes a button's answer only for about 15 s: when the work (compiling the
    documents of a large office, stamping the final PDF) takes longer than
    ``ANSWER_WITHIN``, the button is answered then, and a later refusal or answer text
    goes to the chat instead.
    """

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def inner(update: Update, context: Context) -> None:
            query = update.callback_query
            cb = None
            if callback:
                try:
                    cb = callbacks.decode(query.data if query else None)
                except callbacks.InvalidCallback:
                    log.warning("invalid callback data %r from %s", query.data if query else None,
                                update.effective_user.id if update.effective_user else None)
                    await query.answer(t("err.stale_button"), show_alert=True)
                    return
            person = await load_person(context, update, cb)
            if person is None:
                await refuse_stranger(update)
                return
            if not person.active:
                await _answer(update, t("err.inactive"))
                return
            named = callbacks.target(cb) if cb else None
            if named and named[0] == "office" and named[1] != person.office_id:
                await _answer(update, t("err.not_found"))  # no person of that office
                return
            if roles and person.role not in roles and not await _acting_in(context, person, roles):
                log.warning("%s (%s) tried %s", person.id, person.role, fn.__name__)
                await _answer(update, t("err.not_allowed"))
                return
            answered = False
            token = _acting_office.set(person.office_id)
            try:  # the task copies the context: its workflows act for the person's office
                work = asyncio.ensure_future(fn(update, context, person, cb))
            finally:
                _acting_office.reset(token)
            try:
                if query is not None:
                    done, _ = await asyncio.wait({work}, timeout=ANSWER_WITHIN)
                    if not done:
                        early = EARLY_ANSWER.set(True)  # this context only: not the work's
                        try:
                            await query.answer()
                            answered = True
                        except (BadRequest, NetworkError):
                            pass
                        finally:
                            EARLY_ANSWER.reset(early)
                answer = await work
            except asyncio.CancelledError:
                work.cancel()
                raise
            except WorkflowError as exc:
                if isinstance(exc, (callbacks.InvalidCallback,)):
                    raise
                log.info("refused %s for person %s: %s", fn.__name__, person.id, exc.message)
                if answered:
                    await update.effective_chat.send_message(exc.message)
                else:
                    await _answer(update, exc.message)
                return
            if answered:
                if answer:
                    await update.effective_chat.send_message(answer)
            elif query is not None:
                try:
                    await query.answer(answer or None)
                except BadRequest:
                    pass

        return inner

    return wrap


# ---------------------------------------------------- an account in several offices
async def office_people(context: Context, person: Person, roles: Sequence[Role],
                        office_id: int | None = None) -> list[Person]:
    """The people of ``person``'s account (one per office, by office) who may use a
    command of ``roles`` now: by their own role or as Plh./Plt.; only of ``office_id``
    when given. An account of one office: ``[person]`` or ``[]``."""
    from bot.core.onboarding import account_roles

    if person.telegram_user_id is None:
        held = [(person, {person.role})]
    else:
        async with sessionmaker(context)() as session:
            held = await account_roles(session, person.telegram_user_id,
                                       services(context).clock.now())
    return [p for p, p_roles in held if p_roles & set(roles)
            and (office_id is None or p.office_id == office_id)]


async def as_person(fn: Handler, update: Update, context: Context, person: Person, cb=None):
    """Run a handler's body as ``person``: its workflows act for their office (the
    handler's task has its own copy of the context variable)."""
    _acting_office.set(person.office_id)
    return await fn(update, context, person, cb)


async def office_names(context: Context, people: Sequence[Person]) -> dict[int, str]:
    """The name of each person's office."""
    from models import Office

    async with sessionmaker(context)() as session:
        return {p.office_id: (await session.get(Office, p.office_id)).name for p in people}


# commands that act in one office (``office_command``): code -> (command, roles, body)
OFFICE_COMMANDS: dict[int, tuple[str, tuple[Role, ...], Handler]] = {}


def office_command(code: int, command: str, *roles: Role):
    """A command that acts in one office, for ``roles`` (their own or as Plh./Plt.).

    The people of the asking account who may use it: none, refused; one, the body runs
    as that person in their office; several (an account bound in several offices), the
    bot asks which office with one button per office (``ofc``, ``office_chosen``) and the
    pressed one runs the body as the person of that office."""

    def wrap(fn: Handler) -> Handler:
        OFFICE_COMMANDS[code] = (command, tuple(roles), fn)

        @action()
        @functools.wraps(fn)
        async def inner(update: Update, context: Context, person: Person, cb) -> Any:
            people = await office_people(context, person, roles)
            if not people:
                log.warning("%s (%s) tried /%s", person.id, person.role, command)
                raise NotAllowed()
            if len(people) == 1:
                return await as_person(fn, update, context, people[0], cb)
            names = await office_names(context, people)
            await reply(update, t("o.pick_office", command=command, count=len(people)),
                        [[(render.label(names[p.office_id], 60),
                           callbacks.encode("ofc", code, p.office_id))] for p in people])
            return None

        return inner

    return wrap


@action(callback=True)
async def office_chosen(update: Update, context: Context, person: Person, cb) -> Any:
    """The office of a command pressed (``office_command``): the body runs as the
    account's person of that office (``load_person`` found them by the button)."""
    entry = OFFICE_COMMANDS.get(cb.arg(0))
    if entry is None:
        raise StaleAction()
    command, roles, fn = entry
    if not await office_people(context, person, roles, office_id=cb.arg(1)):
        raise NotAllowed()
    names = await office_names(context, [person])
    await reply(update, t("o.office_chosen", command=command, office=names[person.office_id]),
                edit=True)
    return await as_person(fn, update, context, person, None)


async def refresh_menu(context: Context, telegram_user_id: int | None) -> None:
    """Set the account's command menu again after one of its bindings changed
    (``handlers.markup.set_account_commands``)."""
    from handlers.markup import set_account_commands

    if telegram_user_id is not None:
        await set_account_commands(context.bot, sessionmaker(context), services(context),
                                   telegram_user_id)


async def _acting_in(context: Context, person: Person, roles) -> bool:
    """A Plh./Plt. may use the commands and buttons of the role they act for."""
    from bot.core.authority import acting_roles

    async with sessionmaker(context)() as session:
        acting = await acting_roles(session, person, services(context).clock.now())
    return bool(acting & set(roles))


async def _answer(update: Update, text: str) -> None:
    query = update.callback_query
    if query is not None:  # an alert is plain text of at most 200 characters
        try:
            await query.answer(render.clip(render.plain(text), 200), show_alert=True)
        except BadRequest:
            pass
        return
    if update.effective_chat is not None:
        await update.effective_chat.send_message(text)


async def refuse_stranger(update: Update) -> None:
    await _answer(update, t("o.stranger"))


# ----------------------------------------------------------- conversations in the DB
async def get_conversation(session: AsyncSession, person_id: int) -> Conversation | None:
    return await loaded_get(session, Conversation, person_id)


async def set_conversation(session: AsyncSession, person_id: int, kind: str, state: str,
                           data: dict | None = None, message_id: int | None = None, *,
                           flush: bool = True) -> Conversation:
    conv = await loaded_get(session, Conversation, person_id)
    if conv is None:
        conv = Conversation(person_id=person_id, kind=kind, state=state, data=data or {},
                            message_id=message_id)
        session.add(conv)
    else:
        conv.kind, conv.state, conv.data = kind, state, dict(data or {})
        if message_id is not None:
            conv.message_id = message_id
    if flush:  # a stored one in its own UPDATE, then what else is pending (usually nothing)
        if conv not in session.new:
            await save_conversation(session, conv)
        await session.flush()
    # else written with the next flush (one UPDATE with what follows)
    return conv


async def clear_conversation(session: AsyncSession, person_id: int) -> None:
    conv = await session.get(Conversation, person_id)
    if conv is not None:
        await session.delete(conv)
        await session.flush()


TextRoute = Callable[[Update, Context, Person, Conversation], Awaitable[None]]
TEXT_ROUTES: dict[str, TextRoute] = {}
FILE_ROUTES: dict[str, TextRoute] = {}


def text_route(kind: str):
    def deco(fn: TextRoute) -> TextRoute:
        TEXT_ROUTES[kind] = fn
        return fn
    return deco


def file_route(kind: str):
    def deco(fn: TextRoute) -> TextRoute:
        FILE_ROUTES[kind] = fn
        return fn
    return deco


async def current_conversation(context: Context, person: Person) -> Conversation | None:
    async with sessionmaker(context)() as session:
        return await get_conversation(session, person.id)


async def _route(update: Update, context: Context, person: Person,
                 routes: dict[str, TextRoute], nothing_expected: str) -> None:
    conv = await current_conversation(context, person)
    route = routes.get(conv.kind) if conv else None
    if route is None:
        await reply(update, t(nothing_expected))
        return
    await route(update, context, person, conv)


@action()
async def on_text(update: Update, context: Context, person: Person, _cb) -> None:
    await _route(update, context, person, TEXT_ROUTES, "o.no_conversation")


@action()
async def on_file(update: Update, context: Context, person: Person, _cb) -> None:
    await _route(update, context, person, FILE_ROUTES, "o.file_unexpected")


async def typed_reason(update: Update, limit: int, length_key: str) -> str | None:
    """The reason the person typed, or None after asking again (empty or too long)."""
    reason = typed_text(update.effective_message.text)
    if not reason or len(reason) > limit:
        await reply(update, t(length_key, limit=limit), force_reply=True)
        return None
    return reason


async def download(update: Update, context: Context, max_bytes: int) -> tuple[bytes, str, str] | None:
    """The document or largest photo of the message, or None when it is too large."""
    msg = update.effective_message
    if msg.document is not None:
        size = msg.document.file_size or 0
        name = msg.document.file_name or "dokumen"
        mime = msg.document.mime_type or "application/octet-stream"
        file_obj = msg.document
    elif msg.photo:
        file_obj = msg.photo[-1]
        size = file_obj.file_size or 0
        name, mime = f"foto-{msg.message_id}.jpg", "image/jpeg"
    else:
        return None
    if size > max_bytes:
        raise FileTooBig(size, max_bytes)
    tg_file = await file_obj.get_file()
    data = bytes(await tg_file.download_as_bytearray())
    if len(data) > max_bytes:
        raise FileTooBig(len(data), max_bytes)
    return data, name, mime


class FileTooBig(WorkflowError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(t("e.file_too_big", size=_mb(size), limit=_mb(limit)))


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".replace(".", ",")


@action()
async def cancel(update: Update, context: Context, person: Person, _cb) -> None:
    """/batal: leave the current conversation; answers already saved stay saved. An
    account bound in several offices leaves the conversation of each of its people: the
    chat is one, and nothing it typed next should go to a question asked earlier."""
    from bot.core.onboarding import people_of_account

    async with transaction(context) as (session, _wf):
        people = await people_of_account(session, person.telegram_user_id) \
            if person.telegram_user_id is not None else [person]
        left = False
        for p in people or [person]:
            if await get_conversation(session, p.id) is not None:
                left = True
                await clear_conversation(session, p.id)
    await reply(update, t("o.cancelled") if left else t("o.nothing_to_cancel"))


async def stale_button(update: Update, context: Context) -> None:
    """Any button no handler claimed: made by an older version, or forged."""
    query = update.callback_query
    log.warning("unhandled callback data %r from %s", query.data,
                update.effective_user.id if update.effective_user else None)
    await query.answer(t("err.stale_button"), show_alert=True)


async def unknown_command(update: Update, context: Context) -> None:
    await reply(update, t("o.unknown_command"))


def typed_text(text: str | None) -> str:
    """What a person typed, as the bot keeps it: control characters other than line
    breaks and tabs removed (PostgreSQL refuses NUL), outer whitespace stripped, and ""
    when nothing visible is left (only spaces, zero-width or direction marks)."""
    text = "".join(c for c in (text or "") if c in "\n\t" or unicodedata.category(c) != "Cc")
    text = text.strip()
    if not any(unicodedata.category(c)[0] not in "CZ" for c in text):
        return ""
    return text
