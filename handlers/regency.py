"""/kantor: the regency admin's list of the regency's offices, and adding one.

Who is a regency admin is ``[regency] admins`` in config.toml (Telegram user ids);
nobody else may use it, registered or not. Wiring only: ``bot.core.regency`` decides.
"""
from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from bot.core.regency import OfficeError, ZONE_LABELS, add_office, is_regency_admin, \
    office_rows, zone_of
from bot.texts import t
from handlers.common import Context, services, sessionmaker


async def kantor(update: Update, context: Context) -> None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    cfg = services(context).config
    if not is_regency_admin(cfg, user.id):
        await chat.send_message(t("k.refused", user_id=user.id))
        return
    args = list(context.args or [])
    if args and args[0].lower() == "tambah":
        await _add(update, context, args[1:])
        return
    async with sessionmaker(context)() as session:
        rows = await office_rows(session, cfg)
    lines = [t("k.head", regency=cfg.office.regency, count=len(rows))]
    if not rows:
        lines.append(t("k.none"))
    for r in rows:
        lines.append(t("k.row", name=r.office.name, code=r.office.unit_code, zone=r.zone,
                       registered=r.registered, people=r.people, cycles=r.open_cycles))
    lines.append(t("k.how_add"))
    await chat.send_message("\n".join(lines))


async def _add(update: Update, context: Context, args: list[str]) -> None:
    if len(args) < 3:
        await update.effective_chat.send_message(t("k.usage"))
        return
    code, zone_text, name = args[0], args[1], " ".join(args[2:])
    cfg = services(context).config
    try:
        zone = zone_of(zone_text)
        async with sessionmaker(context)() as session, session.begin():
            office = await add_office(session, cfg, unit_code=code, name=name, zone=zone,
                                      at=services(context).clock.now(),
                                      actor=f"telegram:{update.effective_user.id}")
    except OfficeError as exc:
        await update.effective_chat.send_message(t("k.error", error=str(exc)))
        return
    await update.effective_chat.send_message(t("k.added", name=office.name,
                                               code=office.unit_code,
                                               zone=ZONE_LABELS.get(zone, zone)))


def register(app) -> None:
    app.add_handler(CommandHandler("kantor", kantor))
