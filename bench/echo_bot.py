"""A bare PTB echo bot as its own process: the baseline of ``bench_updates.py
--bot-process`` (the full bot runs there as ``sopbot run``, its own process too).

    python bench/echo_bot.py --base-url URL --file-url URL [--limiter]
        [--webhook-port PORT --webhook-secret SECRET] [--concurrent]

Polling (``getUpdates``, as PTB's ``run_polling``) or, with ``--webhook-port``, PTB's own
webhook server; with ``--limiter`` the rate limiter of ``bot/telegram/app.py``. Prints
"echo bot up" once it receives updates; runs until SIGINT or SIGTERM."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import TOKEN  # noqa: E402


def main() -> None:
    from telegram import Update
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--file-url", required=True)
    ap.add_argument("--limiter", action="store_true")
    ap.add_argument("--concurrent", action="store_true",
                    help="PTB's concurrent updates (default: one update at a time)")
    ap.add_argument("--webhook-port", type=int, default=0)
    ap.add_argument("--webhook-secret", default="")
    a = ap.parse_args()

    async def echo(update: Update, _context) -> None:
        await update.effective_message.reply_text(update.effective_message.text)

    async def up(_app) -> None:
        from bench.common import settle_memory

        settle_memory()  # as sopbot run does
        print("echo bot up", flush=True)

    builder = (ApplicationBuilder().token(TOKEN).base_url(a.base_url)
               .base_file_url(a.file_url).post_init(up).concurrent_updates(a.concurrent))
    if a.limiter:
        from bot.telegram.app import rate_limiter

        builder = builder.rate_limiter(rate_limiter())
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    if a.webhook_port:
        app.run_webhook(listen="127.0.0.1", port=a.webhook_port, url_path="hook",
                        webhook_url="https://bench.example/hook",
                        secret_token=a.webhook_secret)
    else:
        app.run_polling(poll_interval=0, timeout=1)


if __name__ == "__main__":
    main()
