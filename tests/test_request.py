"""The bot's Bot API client over aiohttp (``bot/telegram/request.py``): what it sends
(a JSON body; a file as multipart with its name and bytes) and how a failure reaches
PTB (a timeout as ``TimedOut``, a refused connection as ``NetworkError``), as PTB's own
``HTTPXRequest`` does. The rest of the suite talks to the emulator through it."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import NetworkError, TimedOut

from bot.telegram.request import AiohttpRequest
from tests.helpers import serve

TOKEN = "123:test"
MESSAGE = {"message_id": 7, "date": 0, "chat": {"id": 42, "type": "private"}}


async def _server(handler):
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", handler)
    runner, port = await serve(app)
    return runner, f"http://127.0.0.1:{port}/bot"


async def test_fields_and_a_file_arrive_as_ptb_built_them():
    seen = {}

    async def handler(request):
        if request.match_info["method"] == "getMe":
            return web.json_response({"ok": True, "result": {
                "id": 123, "is_bot": True, "first_name": "SOP", "username": "sop_bot"}})
        seen["method"] = request.match_info["method"]
        seen["type"] = request.content_type
        if request.content_type == "application/json":
            seen["fields"] = await request.json()
            return web.json_response({"ok": True, "result": MESSAGE})
        form = await request.post()
        seen["fields"] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("document")
        if upload is not None and not isinstance(upload, str):
            seen["file"] = (upload.filename, upload.file.read())
        return web.json_response({"ok": True, "result": MESSAGE})

    runner, base = await _server(handler)
    bot = Bot(TOKEN, base_url=base, request=AiohttpRequest(4),
              get_updates_request=AiohttpRequest(1))
    await bot.initialize()
    try:
        text = 'Capaian <b>&amp;</b> "Bidang" \U0001F4CA 1.250.000.000.000'
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Lanjut \u27a1", callback_data="en:1")]])
        msg = await bot.send_message(42, text, parse_mode="HTML", reply_markup=markup)
        assert msg.message_id == 7
        assert seen["method"] == "sendMessage" and seen["type"] == "application/json"
        assert seen["fields"] == {"chat_id": 42, "text": text, "parse_mode": "HTML",
                                  "reply_markup": markup.to_dict()}

        data = b"PK\x03\x04" + bytes(range(256)) * 40
        await bot.send_document(42, InputFile(data, filename="Capaian <TW III> & co.xlsx"),
                                caption="Berkas \u2705")
        assert seen["method"] == "sendDocument" and seen["type"] == "multipart/form-data"
        assert seen["file"] == ("Capaian <TW III> & co.xlsx", data)
        assert seen["fields"]["caption"] == "Berkas \u2705"
        assert json.loads(seen["fields"]["chat_id"]) == 42
    finally:
        await bot.shutdown()
        await runner.cleanup()


async def test_a_slow_answer_is_timed_out_and_a_refused_connection_a_network_error():
    async def slow(request):
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    runner, base = await _server(slow)
    request = AiohttpRequest(2, read_timeout=0.3, write_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{base}{TOKEN}/getMe")
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        with pytest.raises(NetworkError):
            await request.post(f"http://127.0.0.1:{closed}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
        await runner.cleanup()


async def test_each_answer_body_is_kept_with_its_own_call_when_calls_overlap():
    """The call journal writes an answer as the body Telegram sent
    (``answer_bodies``/``answer_body``): each body is found by its own call's request
    data, also when two calls of one context run side by side and the first is answered
    last; the JSON body sent is the one ``json_body`` encoded."""
    from telegram.request import RequestData
    from telegram.request._requestparameter import RequestParameter

    from bot.telegram.request import answer_bodies, answer_body, json_body

    sent = {}

    async def handler(request):
        fields = await request.json()
        sent[fields["chat_id"]] = await request.read()
        if fields["chat_id"] == 1:
            await asyncio.sleep(0.2)  # the first call is answered last
        return web.json_response({"ok": True, "result": {
            **MESSAGE, "chat": {"id": fields["chat_id"], "type": "private"},
            "text": fields["text"]}})

    runner, base = await _server(handler)
    request = AiohttpRequest(4)
    await request.initialize()
    try:
        bodies = answer_bodies()
        datas = [RequestData([RequestParameter.from_input("chat_id", chat),
                              RequestParameter.from_input(
                                  "text", f'Nilai <{chat}> & "Rp 1.250.000.000.000" \U0001F4CA')])
                 for chat in (1, 2)]
        results = await asyncio.gather(*(request.post(f"{base}{TOKEN}/sendMessage", data)
                                         for data in datas))
        # in the order answered: the last body is not the first call's
        assert [json.loads(body)["result"]["chat"]["id"] for _, body in bodies] == [2, 1]
        for chat, data, result in zip((1, 2), datas, results):
            assert result["chat"]["id"] == chat
            assert json.loads(answer_body(bodies, data))["result"] == result
            assert sent[chat] == json_body(data)
        assert answer_body(bodies, RequestData([])) is None
    finally:
        await request.shutdown()
        await runner.cleanup()
