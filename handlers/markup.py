"""Telegram markup the handlers and the runtime share: an inline keyboard from the
core's (label, callback data) rows, a conversation's card shown (:func:`show_card`:
by the data-entry handler in the update's run, or by the intake after the commit),
and the command menus: each role's, and an account's, the union of its roles in every
office it is bound in (read through ``bot.core.onboarding``), with /kantor for a
regency admin."""
from __future__ import annotations

import contextlib
import logging

from telegram import BotCommand, BotCommandScopeChat, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from models import Person
from models.enums import Role

log = logging.getLogger(__name__)

COMMON_COMMANDS = [("tugas", "Tugas saya"), ("bantuan", "Bantuan"), ("batal", "Batalkan isian")]
ROLE_COMMANDS = {
    Role.KADIS: [("mulai", "Mulai siklus pengumpulan data"), ("status", "Papan status siklus"),
                 ("pegawai", "Daftar pegawai dan Plh./Plt."), ("alihkan", "Alihkan tugas")],
    Role.SEKRETARIS: [("status", "Papan status siklus"),
                      ("pegawai", "Daftar pegawai dan Plh./Plt."), ("alihkan", "Alihkan tugas")],
    Role.KASUBAG: [("status", "Papan status siklus"), ("alihkan", "Alihkan tugas")],
    Role.ADMIN: [("status", "Papan status siklus"),
                 ("pegawai", "Pegawai, nonaktifkan, Plh./Plt.")],
}


def keyboard(buttons) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
         for row in buttons]
    )


def keyboard_dict(buttons) -> dict | None:
    """:func:`keyboard` as the Bot API's JSON (what :func:`show_card` sends)."""
    if not buttons:
        return None
    return {"inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row]
                                for row in buttons]}


async def show_card(bot, chat_id: int, text: str, markup: dict | None, *, old: int | None,
                    new: bool, take_off_old: bool = True) -> int:
    """Show a conversation's card: edit message ``old`` in place (not when ``new``);
    when ``new``, or the edit is refused, send a new message; when ``new``, the old
    one's buttons are then taken off (it stays as a record). Returns the id of the message that
    shows the card: ``old`` when edited, else the new one's, for the caller to keep.
    ``take_off_old=False``: the old one's buttons are left to the caller (who takes
    them off once it has kept the new id).

    ``markup``: the keyboard as JSON (:func:`keyboard_dict`). The calls go out as the Bot
    API's JSON both ways (``do_api_request``): the card is shown on every data-entry
    answer and press, and nothing here reads more of Telegram's answer than the
    message id, which PTB would otherwise build into a ``Message`` with its chat, its
    sender and every button (about as much CPU as the call itself)."""
    if old and not new:
        try:
            await bot.do_api_request("editMessageText", {
                "chat_id": chat_id, "message_id": old, "text": text, "parse_mode": "HTML",
                "reply_markup": markup})
            return old
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return old
            log.info("card %s in chat %s could not be edited (%s): sending a new one",
                     old, chat_id, exc.message)
    msg = await bot.do_api_request("sendMessage", {
        "chat_id": chat_id, "text": text, "parse_mode": "HTML", "reply_markup": markup})
    if old and new and take_off_old:  # after the card, which the person waits for (the
        with contextlib.suppress(TelegramError):  # rate limiter lets it wait for quiet)
            await bot.do_api_request("editMessageReplyMarkup",
                                     {"chat_id": chat_id, "message_id": old})
    return msg["message_id"]


# the order of the menu, whatever roles it is made of
COMMAND_ORDER = ("mulai", "status", "pegawai", "alihkan", "tugas", "bantuan", "batal", "cek",
                 "kantor")
# of two roles with the same command, the description of the first (the admin's
# /pegawai can do more than the Kadis')
ROLE_ORDER = (Role.ADMIN, Role.KADIS, Role.SEKRETARIS, Role.KASUBAG)
REGENCY_COMMANDS = [("kantor", "Kantor-kantor kabupaten (admin kabupaten)")]


def commands_for(*roles: Role, regency_admin: bool = False) -> list[BotCommand]:
    """The menu of an account that holds ``roles`` (in one office or in several, its own
    or as Plh./Plt.): every command any of them can use, once, in one order."""
    pairs: dict[str, str] = {}
    for role in sorted(set(roles), key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER
                       else len(ROLE_ORDER)):
        for command, description in ROLE_COMMANDS.get(role, []):
            pairs.setdefault(command, description)
    common = COMMON_COMMANDS if roles else []  # a regency admin of no office: not these
    extra = REGENCY_COMMANDS if regency_admin else []
    for command, description in common + [("cek", "Cek keaslian dokumen")] + extra:
        pairs.setdefault(command, description)
    return [BotCommand(c, pairs[c]) for c in COMMAND_ORDER if c in pairs]


# where the menu of an account is read from, per bot object of this process (the
# update sessions and the services, registered by ``handlers.register_all``)
MENU_SOURCES: dict[int, tuple[object, object]] = {}


async def set_account_commands(bot, sessionmaker, services, telegram_user_id: int) -> None:
    """The chat's menu is the union of what the account can do: the roles of its people
    in every office it is bound in (their own and as Plh./Plt. now), and /kantor for a
    regency admin ([regency] admins). An account left with neither gets the default menu
    back (its chat's own menu is deleted)."""
    from bot.core.onboarding import account_roles
    from bot.core.regency import is_regency_admin

    scope = BotCommandScopeChat(telegram_user_id)
    try:
        async with sessionmaker() as session:
            held = await account_roles(session, telegram_user_id, services.clock.now())
        roles = set().union(*(r for _p, r in held)) if held else set()
        admin = is_regency_admin(services.config, telegram_user_id)
        if not roles and not admin:
            await bot.delete_my_commands(scope=scope)
            return
        await bot.set_my_commands(commands_for(*roles, regency_admin=admin), scope=scope)
    except Exception:  # a menu is a convenience; never fail what changed it
        log.warning("could not set the command menu for account %s", telegram_user_id)


async def set_person_commands(bot, person: Person) -> None:
    """A registered person's menu: their account's (``set_account_commands``) when the
    bot's sessions are known, else what their role can do."""
    if person.telegram_user_id is None:
        return
    source = MENU_SOURCES.get(id(bot))
    if source is not None:
        await set_account_commands(bot, *source, person.telegram_user_id)
        return
    try:
        await bot.set_my_commands(commands_for(person.role),
                                  scope=BotCommandScopeChat(person.telegram_user_id))
    except Exception:  # a menu is a convenience; never fail a registration for it
        log.warning("could not set the command menu for person %s", person.id)


async def set_startup_menus(bot, sessionmaker, services) -> None:
    """At start-up, after the runtime's menus: the accounts whose menu is more than one
    role's (bound in several offices, acting as Plh./Plt.) and every regency admin."""
    from bot.core.onboarding import accounts_with_several_roles

    try:
        async with sessionmaker() as session:
            accounts = set(await accounts_with_several_roles(session, services.clock.now()))
    except Exception:
        log.exception("could not read the accounts for the command menus")
        return
    accounts |= set(services.config.regency.admins or [])
    for telegram_user_id in sorted(accounts):
        await set_account_commands(bot, sessionmaker, services, telegram_user_id)


def menus_at_start(app) -> None:
    """Registers the application's sessions for the menus, and sets the menus that are
    more than one role's after its start-up work (``post_init``, which sets the default
    menu and each leader's)."""
    MENU_SOURCES[id(app.bot)] = (app.bot_data["sessionmaker"], app.bot_data["services"])
    earlier = app.post_init

    async def post_init(application) -> None:
        if earlier is not None:
            await earlier(application)
        await set_startup_menus(application.bot, application.bot_data["sessionmaker"],
                                application.bot_data["services"])

    app.post_init = post_init


# the outbox sender of each bot object in this process (bot.telegram.outbox_sender
# registers itself): a handler that removed a keyboard tells it, so it is not removed twice
SENDERS: dict[int, object] = {}


def keyboard_removed(bot, chat_id: int, message_id: int) -> None:
    """A handler removed the keyboard of a message (the pressed card): the sender of
    ``bot`` does not remove it again."""
    sender = SENDERS.get(id(bot))
    if sender is not None:
        sender.keyboard_removed(chat_id, message_id)
