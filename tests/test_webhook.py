"""Webhook mode: a secret token is mandatory, and only updates that carry it are taken."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK = "[telegram]\nmode = 'webhook'\nwebhook_url = 'https://bot.example.go.id/tg/hook'\n"


@pytest.mark.parametrize("secret", ["", "   "])
def test_webhook_mode_without_a_secret_is_refused_naming_the_key(tmp_path, secret):
    p = tmp_path / "config.toml"
    p.write_text(WEBHOOK + f"webhook_secret = '{secret}'\n")
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert "telegram.webhook_secret" in str(err.value)


def test_a_secret_telegram_would_refuse_is_refused(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text(WEBHOOK + "webhook_secret = 'rahasia <kantor> & \"dinas\"'\n")
    with pytest.raises(ConfigError, match="telegram.webhook_secret"):
        load_config(p, env={})


def test_sopbot_run_in_webhook_mode_without_a_secret_does_not_start(tmp_path):
    (tmp_path / "config.toml").write_text(WEBHOOK)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(tmp_path / "config.toml"), "run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "SOPBOT_TELEGRAM_TOKEN": "123:abc"})
    assert done.returncode != 0
    assert "telegram.webhook_secret" in done.stderr


# ------------------------------------------------------------------ over HTTP
SECRET = "rahasia_Dinas-2024"


def _update(update_id: int, user, text: str, message_id: int) -> dict:
    command = text.split()[0]
    return {"update_id": update_id, "message": {
        "message_id": message_id, "from": user.user_api(), "chat": user.chat_api(),
        "date": 1728280000, "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if text.startswith("/") else []}}


@pytest.fixture
async def webhook_bot(services, sessionmaker, office):
    from bot.telegram.app import build_application
    from bot.devtools.emulator import BotApiEmulator
    from bot.devtools.harness import TEST_TOKEN, Harness
    from bot.telegram.intake import WebhookServer

    h = Harness(services, sessionmaker)
    h.emulator = BotApiEmulator(token=TEST_TOKEN)
    await h.emulator.start()
    h.emulator.settle_hook = h.committed
    h.app = build_application(services, sessionmaker, token=TEST_TOKEN,
                              base_url=h.emulator.base_url,
                              base_file_url=h.emulator.base_file_url, run_jobs=False)
    await h.app.initialize()
    await h.app.post_init(h.app)
    await h.app.start()
    await h.intake.start(polling=False)
    server = WebhookServer(h.intake, listen="127.0.0.1", port=0, path="/tg/hook", secret=SECRET)
    await server.start()
    yield h, f"http://127.0.0.1:{server.port}/tg/hook"
    await server.stop()
    await h.stop()


async def _post(url: str, body, secret: str | None):
    import aiohttp

    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    async with aiohttp.ClientSession() as client:
        async with client.post(url, json=body, headers=headers) as resp:
            return resp.status


async def _inbox(sm) -> list[tuple[int, bool]]:
    from sqlalchemy import select

    from models import Inbox

    async with sm() as s:
        return [(i, p is not None) for i, p in (await s.execute(
            select(Inbox.update_id, Inbox.processed_at).order_by(Inbox.update_id))).all()]


async def test_webhook_takes_only_updates_with_the_secret(webhook_bot, sessionmaker):
    from sqlalchemy import select

    from bot.core.onboarding import create_invitation
    from models import Person
    from models.enums import Role
    from tests.helpers import person

    h, url = webhook_bot
    async with sessionmaker() as s, s.begin():
        kabid = await person(s, Role.KABID, "IND")
        code = (await create_invitation(s, kabid, now=h.services.clock.now(), valid_days=3)).code
    user = h.emulator.add_user(user_id=733_001, first_name="Rina <Kabid> & \"Ind\" \U0001F3ED")
    user.started = True  # the person opened the chat: the bot may answer there
    start = _update(5001, user, f"/start {code}", 1)

    assert await _post(url, start, None) == 403
    assert await _post(url, start, "rahasia_Dinas-2023") == 403
    assert await _post(url, start, SECRET.lower()) == 403
    await h.settle()
    assert await _inbox(sessionmaker) == [] and user.messages == []

    assert await _post(url, start, SECRET) == 200
    assert [i for i, _ in await _inbox(sessionmaker)] == [5001]  # committed before the 200
    await user.wait_for(text_contains="Selamat datang")
    async with sessionmaker() as s:
        bound = (await s.execute(select(Person.telegram_user_id)
                                 .where(Person.id == kabid.id))).scalar_one()
    assert bound == 733_001

    # Telegram sends it again (its 200 was lost): stored once, processed once
    assert await _post(url, start, SECRET) == 200
    await h.settle()
    assert await _inbox(sessionmaker) == [(5001, True)]
    assert sum("Selamat datang" in m.text for m in user.messages) == 1


async def test_webhook_answers_500_when_the_update_cannot_be_stored(webhook_bot, sessionmaker):
    h, url = webhook_bot
    user = h.emulator.add_user(user_id=733_002, first_name="Tamu")
    user.started = True

    async def refuse(_data):
        raise RuntimeError("database is locked")

    original, h.intake.store_json = h.intake.store_json, refuse
    try:
        assert await _post(url, _update(6001, user, "/bantuan", 1), SECRET) == 500
    finally:
        h.intake.store_json = original
    await h.settle()
    assert await _inbox(sessionmaker) == [] and user.messages == []  # Telegram will retry
    assert await _post(url, _update(6001, user, "/bantuan", 1), SECRET) == 200
    await user.wait_for(text_contains="belum terdaftar")


def test_sopbot_run_in_webhook_mode_sets_the_secret_and_refuses_others(tmp_path):
    """The real entry point: `sopbot run` registers the webhook with its secret, answers
    403 without it and processes what carries it."""
    import asyncio
    import os
    import signal
    import socket
    import time

    from bot.devtools.emulator import EmulatorThread
    from models.migrate import upgrade

    db_url = f"sqlite:///{tmp_path / 'hook.db'}"
    upgrade(db_url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with EmulatorThread() as emu:
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[telegram]\napi_base_url = "{emu.base_url}"\nfile_base_url = "{emu.base_file_url}"\n'
            f'mode = "webhook"\nwebhook_url = "https://bot.example.go.id/tg/hook"\n'
            f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\nwebhook_secret = "{SECRET}"\n'
            f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "files"}"\n')
        env = dict(os.environ, SOPBOT_TELEGRAM_TOKEN="123:local-emulator")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg), "run",
                                 "--no-upgrade"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(300):
                if emu.emulator.webhook.get("url"):
                    break
                time.sleep(0.1)
            assert emu.emulator.webhook["url"] == "https://bot.example.go.id/tg/hook"
            assert emu.emulator.webhook["secret_token"] == SECRET
            user = emu.call(emu.emulator.add_user, user_id=733_003, first_name="Tamu")
            user.started = True
            url = f"http://127.0.0.1:{port}/tg/hook"
            body = _update(7001, user, "/bantuan", 1)
            assert asyncio.run(_post(url, body, None)) == 403
            assert asyncio.run(_post(url, body, "salah")) == 403
            assert asyncio.run(_post(url, body, SECRET)) == 200
            emu.run(user.wait_for(text_contains="belum terdaftar", timeout=30))
            assert len(user.messages) == 1
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        assert proc.returncode == 0, out
