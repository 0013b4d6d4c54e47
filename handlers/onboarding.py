"""/start <code>: registration; /bantuan: what this person's role can do."""
from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import CommandHandler

from bot.core.onboarding import InvitationError, person_by_telegram, redeem
from bot.texts import role_title, t
from handlers.markup import set_person_commands
from handlers.common import (
    Context, action, reply, sessionmaker, services, typed_text, wake_sender,
)
from models.enums import Role

log = logging.getLogger(__name__)

HELP_BY_ROLE = {
    Role.KADIS: ("h.kadis",),
    Role.SEKRETARIS: ("h.sekretaris",),
    Role.KASUBAG: ("h.kasubag",),
    Role.KABID: ("h.kabid",),
    Role.STAF: ("h.staf",),
    Role.ADMIN: ("h.admin",),
    Role.CONTACT: ("h.kontak",),
}


async def start(update: Update, context: Context) -> None:
    user = update.effective_user
    code = typed_text(context.args[0] if context.args else "")  # no NUL into a query
    if code.lower().startswith("cek_"):  # the QR's deep link t.me/<bot>?start=cek_KODE
        from handlers.signoff import answer_code

        await answer_code(update, context, code[:40])
        return
    sm = sessionmaker(context)
    async with sm() as session:
        known = await person_by_telegram(session, user.id)
    # a code while already registered: a person in another office (one account may be
    # bound in several offices, ``bot.core.onboarding.redeem``)
    if known is not None and not code:
        if not known.active:  # a deactivated account is not welcomed back
            await reply(update, t("err.inactive"))
            return
        await reply(update, t("o.welcome_back", name=known.name, role=role_title(known.role)))
        return
    if not code:
        await reply(update, t("o.stranger"))
        return
    now = services(context).clock.now()
    try:
        async with sm() as session, session.begin():
            person = await redeem(session, code[:64], user.id, now=now)
    except InvitationError as exc:
        log.info("refused invitation (%s) for telegram user %s", exc.reason, user.id)
        if known is not None and known.active and exc.reason == "used":
            await reply(update, t("o.welcome_back", name=known.name,
                                  role=role_title(known.role)))
            return
        await reply(update, t(f"o.code_{exc.reason}"))
        return
    wake_sender(context)
    await set_person_commands(context.bot, person)
    await reply(update, t("o.registered", name=person.name, role=role_title(person.role)))


@action()
async def help_command(update: Update, context: Context, person, _cb) -> None:
    lines = [t("h.head", name=person.name, role=role_title(person.role))]
    lines += [t(key) for key in HELP_BY_ROLE[person.role]]
    lines.append(t("h.common"))
    await reply(update, "\n\n".join(lines))


def register(app) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("bantuan", help_command))
