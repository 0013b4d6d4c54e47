"""The local Bot API emulator, exercised through real python-telegram-bot objects over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import struct
import time
import urllib.request
import warnings
import zlib

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from bot.devtools.emulator import (
    BLOCKED,
    BUTTON_DATA_INVALID,
    CAPTION_TOO_LONG,
    CHAT_NOT_FOUND,
    CONFLICT_POLLING,
    EDIT_NOT_FOUND,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    TEXT_EMPTY,
    TEXT_TOO_LONG,
    BotApiEmulator,
    ButtonNotFound,
    EmulatorThread,
    FaultPlan,
    parse_html,
)

TOKEN = "123:TEST"

# PTB 22 warns whenever RetryAfter.retry_after is read as an int (it becomes a timedelta).
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def _retry_after(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _seconds(exc.retry_after)


def _ptb(description: str) -> str:
    """The message PTB exposes: it strips "Bad Request: " and capitalize()s the rest."""
    return BadRequest(description).message


def _keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in pairs]])


@pytest.fixture
async def emu():
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator):
    client = Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url)
    async with client:
        yield client


@pytest.fixture
async def sari(emu: BotApiEmulator):
    user = emu.add_user(user_id=1001, first_name="Sari", username="sari")
    await user.send_command("/start", "KODE1")
    return user


# -- PTB round trips -------------------------------------------------------------------
async def test_get_me_and_send_edit_with_inline_keyboard(emu, bot, sari):
    me = await bot.get_me()
    assert me.username == "sopbot_demo_bot" and me.is_bot

    msg = await bot.send_message(
        sari.chat_id,
        "<b>Disposisi</b> untuk &lt;Bidang&gt; 😀 <i>segera</i>",
        parse_mode="HTML",
        reply_markup=_keyboard(("Setuju", "ok:1"), ("Kembalikan", "ret:1")),
    )
    assert msg.text == "Disposisi untuk <Bidang> 😀 segera"
    assert msg.chat.type == "private" and msg.from_user.id == me.id
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 9),
        ("italic", 28, 6),  # the emoji counts two UTF-16 units
    ]
    assert msg.reply_markup.inline_keyboard[0][0].callback_data == "ok:1"
    assert sari.last_message.button_texts == ["Setuju", "Kembalikan"]
    assert sari.last_message.source_text.startswith("<b>Disposisi</b>")

    edited = await bot.edit_message_text(
        "Disetujui",
        chat_id=sari.chat_id,
        message_id=msg.message_id,
        reply_markup=_keyboard(("Lihat", "v")),
    )
    assert edited.text == "Disetujui" and edited.edit_date is not None
    markup_only = await bot.edit_message_reply_markup(sari.chat_id, msg.message_id)
    assert markup_only.reply_markup is None
    stored = sari.message(msg.message_id)
    assert [v.text for v in stored.edits] == ["Disposisi untuk <Bidang> 😀 segera", "Disetujui"]
    assert stored.reply_markup is None

    second = await bot.send_message(sari.chat_id, "Kedua")
    assert second.message_id == msg.message_id + 1
    assert await bot.delete_message(sari.chat_id, second.message_id)
    assert sari.message(second.message_id).deleted
    assert sari.last_message.message_id == msg.message_id
    assert await bot.send_chat_action(sari.chat_id, "typing")
    assert emu.stats.sent_messages == 2 and emu.stats.requests_by_method["sendMessage"] == 2


async def test_send_document_photo_and_read_back(emu, bot, sari):
    sent = await bot.send_document(
        sari.chat_id,
        b"%PDF-1.4 laporan",
        filename="laporan.pdf",
        caption="<b>Laporan</b> TW1",
        parse_mode="HTML",
    )
    assert sent.document.file_name == "laporan.pdf"
    assert sent.document.mime_type == "application/pdf"
    assert sent.document.file_size == len(b"%PDF-1.4 laporan")
    assert sent.caption == "Laporan TW1" and sent.caption_entities[0].type == "bold"
    assert [f.data for f in emu.sent_files(sari.chat_id)] == [b"%PDF-1.4 laporan"]

    again = await bot.send_document(sari.chat_id, sent.document.file_id)  # re-send by file_id
    assert again.document.file_id == sent.document.file_id
    tg_file = await bot.get_file(sent.document.file_id)
    assert bytes(await tg_file.download_as_bytearray()) == b"%PDF-1.4 laporan"

    photo = await bot.send_photo(sari.chat_id, _png(640, 480), caption="Grafik")
    assert (photo.photo[-1].width, photo.photo[-1].height) == (640, 480)
    assert photo.photo[0].width == 90
    assert len(emu.sent_files(sari.chat_id)) == 3
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_document(sari.chat_id, "BQACnotafileid")


async def test_user_upload_get_file_and_download(emu, bot, sari):
    await sari.send_document(b"a,b\n1,2\n", "capaian.csv", "text/csv", caption="data TW1")
    await sari.send_photo(_png(40, 30))
    updates = await bot.get_updates(timeout=0)
    doc_message = updates[1].message
    assert updates[0].message.text == "/start KODE1"
    assert updates[0].message.entities[0].type == "bot_command"
    assert doc_message.document.file_name == "capaian.csv" and doc_message.caption == "data TW1"
    tg_file = await doc_message.document.get_file()
    assert tg_file.file_path.startswith(emu.base_file_url + TOKEN + "/")
    assert bytes(await tg_file.download_as_bytearray()) == b"a,b\n1,2\n"
    photo = updates[2].message.photo[-1]
    assert (photo.width, photo.height) == (40, 30)
    assert bytes(await (await photo.get_file()).download_as_bytearray()) == _png(40, 30)


async def test_commands_webhook_and_force_reply(emu, bot, sari):
    scope = BotCommandScopeAllPrivateChats()
    commands = [BotCommand("tugas", "Tugas saya"), BotCommand("bantuan", "Bantuan")]
    await bot.set_my_commands(commands, scope=scope)
    assert [c["command"] for c in emu.commands["all_private_chats"]] == ["tugas", "bantuan"]
    assert [c.command for c in await bot.get_my_commands(scope=scope)] == ["tugas", "bantuan"]
    assert await bot.get_my_commands() == ()
    await bot.delete_my_commands(scope=scope)
    assert "all_private_chats" not in emu.commands

    assert await bot.set_webhook("https://example.invalid/hook")
    assert (await bot.get_webhook_info()).url == "https://example.invalid/hook"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert emu.updates_pending() == 0

    prompt = await bot.send_message(sari.chat_id, "Nilai realisasi?", reply_markup=ForceReply())
    assert prompt.reply_markup is None and sari.message(prompt.message_id).force_reply
    await bot.send_message(sari.chat_id, "ok", reply_markup=ReplyKeyboardRemove())
    answer = await sari.reply_to(prompt.message_id, "85,5")
    (update,) = await bot.get_updates()
    assert update.message.reply_to_message.message_id == prompt.message_id
    assert answer["text"] == "85,5"
    reply = await bot.send_message(
        sari.chat_id, "Tercatat", reply_to_message_id=answer["message_id"]
    )
    assert reply.reply_to_message.text == "85,5"


# -- getUpdates ------------------------------------------------------------------------
async def test_get_updates_long_poll_offset_limit_and_filter(emu, bot):
    user = emu.add_user(2002, "Budi")
    task = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await user.send_text("halo")
    (first,) = await task
    assert time.monotonic() - started < 4.0  # returned on arrival, not at the 5 s timeout
    assert first.message.text == "halo"

    for text in ("a", "b", "c"):
        await user.send_text(text)
    batch = await bot.get_updates(offset=first.update_id + 1, limit=2)
    assert [u.message.text for u in batch] == ["a", "b"]
    assert [u.update_id for u in batch] == [first.update_id + 1, first.update_id + 2]
    assert emu.updates_pending() == 3  # confirmed only by the next offset
    rest = await bot.get_updates(offset=batch[-1].update_id + 1)
    assert [u.message.text for u in rest] == ["c"]
    await bot.get_updates(offset=rest[-1].update_id + 1)
    assert emu.updates_pending() == 0

    await user.send_text("tidak diminta")
    user.block()
    await asyncio.sleep(0)
    updates = await bot.get_updates(allowed_updates=["my_chat_member"])
    assert [u.my_chat_member.new_chat_member.status for u in updates] == ["kicked"]


async def test_second_poller_terminates_the_first(emu, bot):
    other = Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url)
    async with other:
        first = asyncio.create_task(bot.get_updates(timeout=5))
        for _ in range(500):  # until the first long poll is waiting in the emulator
            if emu._poll_generation:
                break
            await asyncio.sleep(0.01)
        assert emu._poll_generation == 1
        assert await other.get_updates(timeout=0) == ()
        with pytest.raises(Conflict) as info:
            await first
    assert info.value.message == CONFLICT_POLLING


# -- validation ------------------------------------------------------------------------
async def test_validation_errors_surface_as_ptb_exceptions(emu, bot, sari):
    cases = [
        (bot.send_message(424242, "x"), BadRequest, CHAT_NOT_FOUND),
        (bot.send_message(sari.chat_id, "   "), BadRequest, TEXT_EMPTY),
        (bot.send_message(sari.chat_id, "<b></b>", parse_mode="HTML"), BadRequest, TEXT_EMPTY),
        (bot.send_message(sari.chat_id, "x" * 4097), BadRequest, TEXT_TOO_LONG),
        (
            bot.send_message(sari.chat_id, "x", reply_markup=_keyboard(("a", "d" * 65))),
            BadRequest,
            BUTTON_DATA_INVALID,
        ),
        (
            bot.send_document(sari.chat_id, b"x", filename="a.txt", caption="c" * 1025),
            BadRequest,
            CAPTION_TOO_LONG,
        ),
        (
            bot.edit_message_text("x", chat_id=sari.chat_id, message_id=999),
            BadRequest,
            EDIT_NOT_FOUND,
        ),
        (bot.answer_callback_query("12345"), BadRequest, QUERY_TOO_OLD),
    ]
    for call, exc_type, description in cases:
        with pytest.raises(exc_type) as info:
            await call
        assert info.value.message == _ptb(description)

    # the limit counts characters after entity parsing
    ok = await bot.send_message(sari.chat_id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert len(ok.text) == 4096

    for html, detail in [
        ("<b>tebal", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<br>baris", 'Unsupported start tag "br" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ('<span class="x">x</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ]:
        with pytest.raises(BadRequest) as info:
            await bot.send_message(sari.chat_id, html, parse_mode="HTML")
        assert info.value.message == _ptb(f"Bad Request: can't parse entities: {detail}")

    msg = await bot.send_message(sari.chat_id, "Sama", reply_markup=_keyboard(("A", "a")))
    with pytest.raises(BadRequest) as info:
        await bot.edit_message_text(
            "Sama",
            chat_id=sari.chat_id,
            message_id=msg.message_id,
            reply_markup=_keyboard(("A", "a")),
        )
    assert info.value.message == _ptb(NOT_MODIFIED)
    # without reply_markup Telegram removes the keyboard, so this is a modification
    await bot.edit_message_text("Sama", chat_id=sari.chat_id, message_id=msg.message_id)

    sari.block()
    with pytest.raises(Forbidden) as forbidden:
        await bot.send_message(sari.chat_id, "halo")
    assert forbidden.value.message == BLOCKED
    sari.unblock()
    assert (await bot.send_message(sari.chat_id, "halo lagi")).text == "halo lagi"


async def test_callback_answers_press_rules_and_wait_for(emu, bot, sari):
    keyboard = _keyboard(("Setuju ✅", "ok"), ("Tolak", "no"))
    msg = await bot.send_message(sari.chat_id, "Pilih", reply_markup=keyboard)
    with pytest.raises(ButtonNotFound, match="no button"):
        await sari.press(msg.message_id, text="Nanti")
    query_id = await sari.press(msg.message_id, text="Setuju")  # substring match
    start, update = await bot.get_updates()
    assert start.message.text == "/start KODE1"
    query = update.callback_query
    assert query.id == query_id and query.data == "ok"
    assert query.message.message_id == msg.message_id
    assert sari.callback_answer(query_id) is None
    assert await query.answer("Tercatat", show_alert=True)
    answer = sari.callback_answer(query_id)
    assert answer is not None and answer.text == "Tercatat" and answer.show_alert
    with pytest.raises(BadRequest) as info:
        await query.answer()  # a second answer is refused
    assert info.value.message == _ptb(QUERY_TOO_OLD)

    waiter = asyncio.create_task(sari.wait_for(text_contains="Disetujui", after=query_id))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await bot.edit_message_text("Disetujui", chat_id=sari.chat_id, message_id=msg.message_id)
    assert (await waiter).message_id == msg.message_id
    with pytest.raises(ButtonNotFound):  # the keyboard is gone from the current markup
        await sari.press(msg.message_id, data="no")
    with pytest.raises(TimeoutError, match="no bot message"):
        await sari.wait_for(text_contains="tidak ada", timeout=0.1)

    expired = BotApiEmulator(callback_query_ttl=0.0)
    async with expired:
        late_bot = Bot(TOKEN, base_url=expired.base_url)
        async with late_bot:
            user = expired.add_user(5, "Lambat")
            await user.send_text("hi")
            sent = await late_bot.send_message(5, "x", reply_markup=_keyboard(("A", "a")))
            qid = await user.press(sent.message_id, data="a")
            await asyncio.sleep(0.01)
            with pytest.raises(BadRequest, match="(?i)query is too old"):
                await late_bot.answer_callback_query(qid)


def test_parse_html_entities_and_nesting():
    text, entities = parse_html(
        '<a href="https://example.org/?a=1&amp;b=2">tautan</a>'
        ' <pre><code class="language-python">x = 1</code></pre>'
        " <tg-spoiler>rahasia</tg-spoiler> <blockquote expandable>kutip</blockquote>"
        " &quot;&#65;&unknown;"
    )
    assert text == 'tautan x = 1 rahasia kutip "A&unknown;'
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 6, "url": "https://example.org/?a=1&b=2"},
        {"type": "pre", "offset": 7, "length": 5, "language": "python"},
        {"type": "spoiler", "offset": 13, "length": 7},
        {"type": "expandable_blockquote", "offset": 21, "length": 5},
    ]


# -- rate limits and faults ------------------------------------------------------------
async def test_rate_limit_gives_429_and_counts_unhonoured(bot, sari):
    emu = sari.emulator
    emu.enforce_limits = True
    # the emulator's clock stands still: every request below comes "at once", however
    # long a loaded machine takes to make them (31 sends once took over a second)
    frozen = time.monotonic()
    emu._monotonic = lambda: frozen
    await bot.send_message(sari.chat_id, "satu")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(sari.chat_id, "dua")
    assert _retry_after(info.value) == 1
    assert emu.stats.issued_429s == 1 and emu.stats.unhonoured_429s == 0
    with pytest.raises(RetryAfter):
        await bot.send_message(sari.chat_id, "dua lagi")  # did not wait retry_after
    assert emu.stats.issued_429s == 2 and emu.stats.unhonoured_429s == 1
    assert emu.stats.overall_429s == 0  # one chat's own limit

    others = [emu.add_user(3000 + i, f"U{i}") for i in range(31)]
    for user in others:
        await user.send_text("hai")
    emu.reset_limits()
    results = await asyncio.gather(
        *(bot.send_message(u.chat_id, "siaran") for u in others), return_exceptions=True
    )
    assert sum(isinstance(r, RetryAfter) for r in results) == 1  # the 31st in one second
    assert emu.stats.issued_429s == 3 and emu.stats.overall_429s == 1


async def test_seeded_fault_plan_is_deterministic():
    async def run_once() -> list[tuple[int, str]]:
        plan = FaultPlan(rate=0.5, kinds=("429", "500", "502"), seed=7)
        async with BotApiEmulator(faults=plan) as emu, aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(16):
                async with http.post(f"{emu.base_url}{TOKEN}/getMe") as resp:
                    body = await resp.json()
                    statuses.append(resp.status)
                    assert body["ok"] == (resp.status == 200)
            async with http.post(f"{emu.base_url}{TOKEN}/getUpdates") as resp:
                assert resp.status == 200  # getUpdates is exempt by default
            assert sum(emu.stats.faults_injected.values()) == len(emu.fault_log)
            return [(f.index, f.kind) for f in emu.fault_log] + [(-1, str(s)) for s in statuses]

    first, second = await run_once(), await run_once()
    assert first == second
    kinds = {k for i, k in first if i >= 0}
    assert kinds and len([1 for i, _ in first if i >= 0]) < 16


async def test_drop_slow_and_fault_429_penalty(emu, bot, sari):
    emu.faults = FaultPlan(rate=1.0, kinds=("drop",), seed=1, methods=frozenset({"sendMessage"}))
    with pytest.raises(NetworkError):
        await bot.send_message(sari.chat_id, "hilang")
    assert emu.stats.sent_messages == 0  # dropped before processing

    emu.faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.3, seed=1)
    started = time.monotonic()
    assert (await bot.send_message(sari.chat_id, "lambat")).text == "lambat"
    assert time.monotonic() - started >= 0.3

    # 30 s: the send right after is inside it also on a loaded machine
    emu.faults = FaultPlan(rate=1.0, kinds=("429",), seed=1, retry_after=30)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(sari.chat_id, "x")
    assert _retry_after(info.value) == 30
    emu.faults = None
    await bot.send_message(sari.chat_id, "terlalu cepat")  # limits off: delivered but counted
    assert emu.stats.unhonoured_429s == 1 and emu.stats.faults_injected["429"] == 1


async def test_latency_delays_each_call_and_each_update_by_the_round_trip(emu, bot, sari):
    """Lower bounds only (a sleep never ends early): a call takes effect half a round
    trip after it was sent and is answered a whole one after; an update reaches the bot
    half a round trip after it was queued."""
    emu.latency = 0.4
    loop = asyncio.get_running_loop()
    first = await bot.get_updates(timeout=0)  # the fixture's /start
    before = loop.time()
    seen_at: list[float] = []
    sending = asyncio.create_task(bot.send_message(sari.chat_id, "Rapat <b>&amp;</b> 🙂",
                                                    parse_mode="HTML"))
    await sari.wait_for(lambda m: seen_at.append(loop.time()) is None, timeout=5)
    sent = await sending
    answered = loop.time()
    assert sent.text == "Rapat & 🙂"
    assert seen_at[0] - before >= 0.2 - 0.01
    assert answered - before >= 0.4 - 0.01

    polling = asyncio.create_task(bot.get_updates(offset=first[-1].update_id + 1,
                                                  timeout=5))
    await asyncio.sleep(0.3)  # the poll is waiting at the server
    queued = loop.time()
    await sari.send_text("Bu Ani \"Kasubag\" <hadir>")
    updates = await polling
    assert [u.message.text for u in updates] == ['Bu Ani "Kasubag" <hadir>']
    assert loop.time() - queued >= 0.2 - 0.01

    emu.latency = 0.0
    await bot.send_message(sari.chat_id, "tanpa jeda")
    assert emu.stats.sent_messages == 2


# -- a PTB Application end to end ------------------------------------------------------
async def test_application_answers_start_and_button(emu):
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        code = context.args[0] if context.args else "-"
        await update.message.reply_html(
            f"Selamat datang, <b>{update.effective_user.first_name}</b> ({code})",
            reply_markup=_keyboard(("Setuju", "approve:1")),
        )

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer("Tercatat")
        await query.edit_message_text(f"Disetujui ({query.data})")

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button, pattern=r"^approve:"))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        user = emu.add_user(user_id=777, first_name="Kadis")
        sent = await user.send_command("/start", "ABC")
        welcome = await user.wait_for(text_contains="Selamat datang", after=sent, timeout=5)
        assert welcome.text == "Selamat datang, Kadis (ABC)"
        query_id = await user.press(welcome, text="Setuju")
        done = await user.wait_for(text_contains="Disetujui", after=query_id, timeout=5)
        assert done.text == "Disetujui (approve:1)" and done.reply_markup is None
        assert user.callback_answer(query_id).text == "Tercatat"
        await app.updater.stop()
        await app.stop()
    assert emu.updates_pending() == 0  # the updater confirmed what it processed


# -- the HTTP user API and the thread wrapper ------------------------------------------
async def test_http_user_api(emu, bot):
    async with aiohttp.ClientSession(base_url=emu.url) as http:
        async with http.post("/_emu/users", json={"user_id": 55, "first_name": "Rina"}) as resp:
            assert (await resp.json())["result"]["first_name"] == "Rina"
        async with http.post("/_emu/users/55/send", data=json.dumps({"text": "/tugas"})) as resp:
            sent = (await resp.json())["result"]
            assert sent["entities"][0]["type"] == "bot_command"
        (update,) = await bot.get_updates()
        assert update.message.text == "/tugas"
        msg = await bot.send_message(55, "Tugas: isi data", reply_markup=_keyboard(("Isi", "fill")))

        after = {"after": str(sent["message_id"])}
        async with http.get("/_emu/users/55/messages", params=after) as resp:
            (listed,) = (await resp.json())["result"]
            assert listed["text"] == "Tugas: isi data" and listed["api"]["reply_markup"]
        press = {"message_id": msg.message_id, "data": "fill"}
        async with http.post("/_emu/users/55/press", json=press) as resp:
            query_id = (await resp.json())["result"]["callback_query_id"]
        press = {"message_id": msg.message_id, "text": "Nope"}
        async with http.post("/_emu/users/55/press", json=press) as resp:
            assert resp.status == 400 and "no button" in (await resp.json())["description"]
        form = aiohttp.FormData()
        form.add_field("document", b"isi,nilai\n", filename="data.csv", content_type="text/csv")
        form.add_field("caption", "TW1")
        async with http.post("/_emu/users/55/document", data=form) as resp:
            uploaded = (await resp.json())["result"]
            assert uploaded["document"]["file_name"] == "data.csv"
        updates = await bot.get_updates(offset=update.update_id + 1)
        assert updates[0].callback_query.id == query_id
        assert updates[1].message.document.file_name == "data.csv"

        waiting = asyncio.create_task(
            http.get(
                "/_emu/users/55/messages",
                params={"after": str(uploaded["message_id"]), "wait": "5"},
            )
        )
        await asyncio.sleep(0.05)
        await bot.send_message(55, "Diterima")
        async with await waiting as resp:
            assert [m["text"] for m in (await resp.json())["result"]] == ["Diterima"]
        async with http.get("/_emu/users/99/messages") as resp:
            assert resp.status == 404
        async with http.get("/_emu/stats") as resp:
            stats = (await resp.json())["result"]
            assert stats["sent_messages"] == 2 and stats["requests_by_method"]["getUpdates"] == 2
        async with http.post(f"/bot{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404 and (await resp.json())["description"] == "Not Found"


def test_emulator_thread_from_sync_code():
    with EmulatorThread(bot_first_name="Demo") as thread:
        with urllib.request.urlopen(f"{thread.base_url}{TOKEN}/getMe", data=b"") as resp:
            assert json.load(resp)["result"]["first_name"] == "Demo"
        emu = thread.emulator
        user = thread.call(emu.add_user, 9, "Sinkron")
        thread.run(user.send_text("halo"))
        request = urllib.request.Request(
            f"{thread.base_url}{TOKEN}/sendMessage",
            data=json.dumps({"chat_id": 9, "text": "balas"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as resp:
            assert json.load(resp)["result"]["text"] == "balas"
        assert thread.run(user.wait_for(text_contains="balas", timeout=2)).text == "balas"
    assert thread.emulator is not None and thread.emulator.stats.sent_messages == 1
