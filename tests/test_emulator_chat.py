"""`sopbot emulator chat USER`: a person's chat as lines of text and numbered buttons."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from bot.devtools.chat import Chat
from bot.devtools.emulator import EmulatorThread
from bot.devtools.harness import TEST_TOKEN

ROOT = Path(__file__).resolve().parents[1]
NAME = 'Sri "Ani" <Rahayu> & Co. 🌾'


def _bot_call(emu: EmulatorThread, method: str, **params) -> dict:
    request = urllib.request.Request(f"{emu.base_url}{TEST_TOKEN}/{method}",
                                     data=json.dumps(params).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())["result"]


def _updates(emu: EmulatorThread) -> list[dict]:
    return _bot_call(emu, "getUpdates", timeout=0)


def test_the_chat_reads_as_lines_and_buttons_and_acts_as_the_person():
    with EmulatorThread(token=TEST_TOKEN) as emu:
        url = emu.base_url.removesuffix("/bot")
        emu.call(emu.emulator.add_user, 501, NAME)
        Chat(url, 501, out=io.StringIO(), wait=0.1).act("/start")  # a bot writes only after /start
        _updates(emu)
        _bot_call(emu, "getUpdates", offset=10 ** 6, timeout=0)  # confirm it: gone from the queue
        _bot_call(emu, "sendMessage", chat_id=501, parse_mode="HTML",
                  text=f"<b>Tugas</b> untuk {NAME.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}",
                  reply_markup={"inline_keyboard": [[
                      {"text": "Mulai isi ✍️", "callback_data": "ent:7"},
                      {"text": "Nanti", "callback_data": "later:7"}]]})
        out = io.StringIO()
        chat = Chat(url, 501, out=out, wait=0.2)
        chat.run(io.StringIO("2\nhalo <&> 🙂\n/keluar\nnot sent\n"))
        shown = out.getvalue()
        # what the person reads: the text as Telegram shows it, buttons numbered
        assert f"Tugas untuk {NAME}" in shown
        assert "[1] Mulai isi ✍️   [2] Nanti" in shown
        assert ">> tekan [Nanti]" in shown and ">> halo <&> 🙂" in shown
        # what the bot receives: the press of button 2 and the message, nothing after /keluar
        updates = _updates(emu)
        assert [u.get("callback_query", {}).get("data") for u in updates][:1] == ["later:7"]
        assert [u["message"]["text"] for u in updates if "message" in u] == ["halo <&> 🙂"]
        # an edit is shown again, marked; an unchanged message is not repeated
        message_id = _bot_call(emu, "sendMessage", chat_id=501, text="Tersimpan")["message_id"]
        chat.act("")
        _bot_call(emu, "editMessageText", chat_id=501, message_id=message_id,
                  text="Tersimpan ✅")
        chat.act("")
        chat.act("")
        shown = out.getvalue()
        assert shown.count(f"== Bot, pesan {message_id} ==") == 1
        assert shown.count(f"== Bot, pesan {message_id} (diubah) ==") == 1


def test_sopbot_emulator_chat_from_the_command_line():
    with EmulatorThread(token=TEST_TOKEN) as emu:
        url = emu.base_url.removesuffix("/bot")
        done = subprocess.run(
            [sys.executable, "-m", "bot", "emulator", "chat", "777", "--url", url],
            input="/bantuan\n", text=True, capture_output=True, timeout=60,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        assert "Obrolan pengguna 777" in done.stdout and ">> /bantuan" in done.stdout
        assert [u["message"]["text"] for u in _updates(emu)] == ["/bantuan"]
    done = subprocess.run([sys.executable, "-m", "bot", "emulator", "chat", "777", "--url",
                           "http://127.0.0.1:1"], input="", text=True, capture_output=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1 and "tidak menjawab" in done.stderr
