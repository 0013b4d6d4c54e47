"""Telegram markup the handlers and the runtime share: an inline keyboard from the
core's (label, callback data) rows, and each role's command menu."""
from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeChat, InlineKeyboardButton, InlineKeyboardMarkup

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


def commands_for(role: Role) -> list[BotCommand]:
    pairs = ROLE_COMMANDS.get(role, []) + COMMON_COMMANDS + [("cek", "Cek keaslian dokumen")]
    return [BotCommand(c, d) for c, d in pairs]


async def set_person_commands(bot, person: Person) -> None:
    """A registered person's menu shows what their role can do."""
    if person.telegram_user_id is None:
        return
    try:
        await bot.set_my_commands(commands_for(person.role),
                                  scope=BotCommandScopeChat(person.telegram_user_id))
    except Exception:  # a menu is a convenience; never fail a registration for it
        log.warning("could not set the command menu for person %s", person.id)


# the outbox sender of each bot object in this process (bot.telegram.outbox_sender
# registers itself): a handler that removed a keyboard tells it, so it is not removed twice
SENDERS: dict[int, object] = {}


def keyboard_removed(bot, chat_id: int, message_id: int) -> None:
    """A handler removed the keyboard of a message (the pressed card): the sender of
    ``bot`` does not remove it again."""
    sender = SENDERS.get(id(bot))
    if sender is not None:
        sender.keyboard_removed(chat_id, message_id)
