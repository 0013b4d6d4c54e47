"""/start <code>: registration; /bantuan: what this person's role can do."""
from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.ext import CommandHandler

from bot.core.onboarding import InvitationError, person_by_telegram, redeem
from bot.texts import Raw, role_title, t
from handlers.common import (
    Context, action, office_names, refresh_menu, reply, sessionmaker, services, typed_text,
    wake_sender,
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
        await reply(update, t("o.welcome_back", name=known.name,
                              role=Raw(await _roles_text(context, known))))
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
    await refresh_menu(context, user.id)  # the account's menu: its roles in every office
    await reply(update, t("o.registered", name=person.name, role=role_title(person.role)))


@action()
async def help_command(update: Update, context: Context, person, _cb) -> None:
    """What the account can do; bound in several offices: each office with the role held
    there, the help of each role once, and how commands choose their office."""
    people = await _account(context, person)
    if len(people) < 2:
        lines = [t("h.head", name=person.name, role=role_title(person.role))]
        lines += [t(key) for key in HELP_BY_ROLE[person.role]]
        lines.append(t("h.common"))
        await reply(update, "\n\n".join(lines))
        return
    names = await office_names(context, people)
    lines = ["\n".join([t("h.offices", count=len(people))] + [
        t("h.office_line", office=names[p.office_id], name=p.name, role=role_title(p.role))
        for p in people])]
    for role in HELP_BY_ROLE:  # each role's help once, in one order
        if any(p.role == role for p in people):
            lines += [t(key) for key in HELP_BY_ROLE[role]]
    lines.append(t("h.common"))
    lines.append(t("h.offices_note"))
    await reply(update, "\n\n".join(lines))


async def _account(context: Context, person) -> list:
    """The active people of ``person``'s account, one per office."""
    from bot.core.onboarding import people_of_account

    if person.telegram_user_id is None:
        return [person]
    async with sessionmaker(context)() as session:
        return [p for p in await people_of_account(session, person.telegram_user_id)
                if p.active]


async def _roles_text(context: Context, person) -> str:
    """The role (escaped), or for an account bound in several offices each role with
    its office."""
    people = await _account(context, person)
    if len(people) < 2:
        return html.escape(role_title(person.role), quote=False)
    names = await office_names(context, people)
    return "; ".join(t("o.office_role", role=role_title(p.role), office=names[p.office_id])
                     for p in people)


def register(app) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("bantuan", help_command))
