"""The PTB Application, assembled in one place.

Updates come from the durable intake (``bot/telegram/intake.py``): each is committed to the inbox
before Telegram is told it arrived, and processed in one transaction that also marks it
processed, so a redelivered update has no second effect.

Handler groups, in order:
  -2  refuse every update from a group, supergroup or channel (private chats only)
   0  commands, buttons, then free text and files routed to the person's conversation
"""
from __future__ import annotations

import gc
import logging

from sqlalchemy.exc import IntegrityError
from telegram import BotCommand, BotCommandScopeAllPrivateChats, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application, ApplicationBuilder, ApplicationHandlerStop, ContextTypes,
    Defaults, TypeHandler,
)

from bot.telegram.intake import Intake, UpdateSessions, note_error
from bot.telegram.request import AiohttpRequest
from bot.telegram.outbox_sender import OutboxSender
from bot.telegram.ratelimit import RateLimiter
from handlers.markup import commands_for, set_person_commands
from bot.core.services import Services
from bot.texts import t
from models import GroupChat, Person
from models.enums import Role

log = logging.getLogger(__name__)


_REDACTED: set[str] = set()


def redact_token_in_logs(token: str) -> None:
    """Every log record, of any logger, has the bot token replaced (httpx and PTB log
    request URLs, which carry it). The message is formatted when the record is made (only
    records that will be emitted are made), so neither a handler nor an argument changed
    later can bring the token back."""
    if not token or token in _REDACTED:
        return
    _REDACTED.add(token)
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's business, not ours
            return record
        record.msg = message.replace(token, "<token>") if token in message else message
        record.args = ()
        return record

    logging.setLogRecordFactory(factory)


async def private_chats_only(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Group -2: the bot works only in private chats. In a group, supergroup or channel no
    handler runs: a button press is refused, and the chat is told once (remembered in
    ``group_chat``, so a restart does not repeat it) that the bot works only in a
    private chat. Nothing of the office is ever posted there."""
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.PRIVATE:
        return
    log.info("update %s from a %s chat refused", update.update_id, chat.type)
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(t("err.private_only"), show_alert=True)
        except TelegramError:
            log.info("could not answer a button press in chat %s", chat.id)
        raise ApplicationHandlerStop
    sm = context.application.bot_data["sessionmaker"]
    async with sm() as session:
        told = await session.get(GroupChat, chat.id)
    if told is None:
        try:
            await chat.send_message(t("err.private_only"))
        except TelegramError:
            log.info("could not tell chat %s that the bot works only in private", chat.id)
            raise ApplicationHandlerStop from None
        try:
            async with sm() as session, session.begin():
                session.add(GroupChat(chat_id=chat.id, chat_type=str(chat.type)))
        except IntegrityError:
            pass
    raise ApplicationHandlerStop


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update", exc_info=context.error)
    note_error(context.error)  # recorded on the update's inbox row
    if isinstance(update, Update):
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(t("err.generic"), show_alert=True)
            elif update.effective_chat is not None:
                await update.effective_chat.send_message(t("err.generic"))
        except Exception:
            log.warning("could not tell the user about the error")


async def _post_init(app: Application) -> None:
    bot_data = app.bot_data
    # the bot's username (getMe, asked by initialize()) for QR codes and invitation links,
    # unless [telegram] bot_username names it
    if not bot_data["services"].bot_username:
        try:
            bot_data["services"].bot_username = app.bot.username or ""
        except RuntimeError:  # a bot that was not initialised has no getMe answer
            log.warning("bot username unknown: set [telegram] bot_username")
    await app.bot.set_my_commands(
        [BotCommand("start", "Daftar dengan kode undangan"), *commands_for(Role.STAF)],
        scope=BotCommandScopeAllPrivateChats(),
    )
    # leadership menus: a handful of people, set at start-up; others at registration
    from sqlalchemy import select

    async with bot_data["sessionmaker"]() as session:
        leaders = (await session.execute(select(Person).where(
            Person.role.in_([Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.ADMIN]),
            Person.active.is_(True), Person.telegram_user_id.is_not(None)))).scalars().all()
    for person in leaders:
        await set_person_commands(app.bot, person)
    # acting officials (Plh./Plt.) that began or ended while the bot was down
    from bot.core.administration import sync_acting

    try:
        async with bot_data["sessionmaker"]() as session, session.begin():
            await sync_acting(session, bot_data["services"])
    except Exception:  # the deadline job retries; never fail start-up for it
        log.exception("could not sync acting appointments at start-up")
    sender = OutboxSender(app.bot, bot_data["sessionmaker"], bot_data["services"])
    bot_data["sender"] = sender
    if bot_data.get("run_sender", True):
        sender.start()
    # "Susun dokumen" builds in the background; a compile cut off by a stop or a crash
    # is in the database and runs again now
    from bot.core.compiler import Compiler
    from handlers.signoff import compile_job_runner

    bot_data["compiler"] = Compiler(bot_data["sessionmaker"], compile_job_runner(app))
    bot_data["compiler"].start()
    from bot.core.documents import start_builders

    start_builders()  # the builders' worker processes: pre-started, imports done
    if bot_data.get("run_jobs", True) and app.job_queue is not None:
        from bot.telegram.scheduling import schedule

        schedule(app)


async def _post_stop(app: Application) -> None:
    compiler = app.bot_data.pop("compiler", None)
    if compiler is not None:
        await compiler.stop()
        from bot.core.documents import stop_workers

        stop_workers()
    sender = app.bot_data.get("sender")
    if sender is not None:
        await sender.stop()


# the youngest generation of CPython's garbage collector is collected after this many
# new objects (CPython's default: 700). An update makes a few thousand objects, nearly
# all freed by reference counting as soon as it is done; collected every 700, the
# collector ran about 200 times for 400 answers and took 3-4 % of the CPU
# (bench/bench_cpu.py), collected every 10,000 about 10 times, for 0.3 %
GC_YOUNG_OBJECTS = 10_000


def settle_memory() -> None:
    """Once the process is set up (modules imported, the application built): what
    exists now lives as long as the process, so it is collected once and then frozen
    out of the collector's view (``gc.freeze``): a full collection no longer walks the
    200,000 objects of the libraries and took 150 ms, a pause every few hundred
    answers; and the youngest generation is collected less often
    (:data:`GC_YOUNG_OBJECTS`). ``sopbot run`` calls it; garbage in cycles is still
    collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])


def rate_limiter(per_chat_interval: float = 0.0) -> RateLimiter:
    """Telegram's limits for every Bot API call of the bot (a 429 pauses them all);
    ``per_chat_interval``: seconds between two requests to one chat (0: not spaced)."""
    return RateLimiter(max_retries=3, per_chat_interval=per_chat_interval)


def build_application(services: Services, sessionmaker, *, token: str, base_url: str | None = None,
                      base_file_url: str | None = None, rate_limit: bool = True,
                      run_sender: bool = True, run_jobs: bool = True) -> Application:
    redact_token_in_logs(token)
    from bot.core.secret_input import quiet_update_contents

    quiet_update_contents()  # the passphrase must not reach a log line either
    builder = (
        ApplicationBuilder()
        .token(token)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=services.calendar.tz))
        .post_init(_post_init)
        .post_stop(_post_stop)
        .concurrent_updates(False)  # one update at a time: conversations stay ordered
        .updater(None)  # updates come from the inbox (bot/telegram/intake.py), not PTB's Updater
    )
    # aiohttp instead of PTB's httpx client: a third of the CPU per call
    # (bot/telegram/request.py, bench/bench_request.py)
    builder = builder.request(AiohttpRequest(256)).get_updates_request(AiohttpRequest(1))
    if base_url:
        builder = builder.base_url(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    if rate_limit:
        builder = builder.rate_limiter(
            rate_limiter(services.config.outbox.per_chat_interval_seconds))
    app = builder.build()
    # while an update is processed, every session a handler opens is that update's one
    # session (its writes and the inbox mark commit together); elsewhere a new session
    app.bot_data.update(services=services, sessionmaker=UpdateSessions(sessionmaker),
                        run_sender=run_sender, run_jobs=run_jobs,
                        intake=Intake(app, sessionmaker,
                                      journal_dir=services.store.root / "inbox-journal"))

    from handlers import register_all

    app.add_handler(TypeHandler(Update, private_chats_only), group=-2)
    register_all(app)
    app.add_error_handler(on_error)
    return app

