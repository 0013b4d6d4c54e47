"""Thin Telegram handlers, one module per use case."""
from __future__ import annotations

import importlib

from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

# use-case modules; each has register(app)
MODULES = ("onboarding", "tasks", "disposition", "data_entry", "collection", "signoff",
           "admin", "regency")


def register_all(app) -> None:
    from bot import callbacks
    from handlers import common, markup

    for name in MODULES:
        try:
            module = importlib.import_module(f"handlers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"handlers.{name}":
                raise
            continue
        module.register(app)
    app.add_handler(CommandHandler("batal", common.cancel))
    app.add_handler(CallbackQueryHandler(common.office_chosen, pattern=callbacks.pattern("ofc")))
    app.add_handler(CallbackQueryHandler(common.stale_button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE,
                                   common.on_text))
    app.add_handler(MessageHandler((filters.Document.ALL | filters.PHOTO) & filters.ChatType.PRIVATE,
                                   common.on_file))
    app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, common.unknown_command))
    if "sessionmaker" in app.bot_data:  # the menus of accounts of several roles or offices
        markup.menus_at_start(app)
