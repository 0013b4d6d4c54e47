"""`sopbot run` as its own process against an emulator started separately."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from bot.devtools.emulator import EmulatorThread
from bot.devtools.example_data import example_office
from bot.core.office_data import apply_office
from bot.core.onboarding import create_invitation
from bot.core.clock import SystemClock
from models import Person
from models.enums import Role
from models.migrate import upgrade
from models.session import make_engine, make_sessionmaker
from tests.test_cli import _reset

ROOT = Path(__file__).resolve().parents[1]


def test_sopbot_run_against_the_emulator(tmp_path, db_url):
    _reset(db_url)
    upgrade(db_url)

    async def seed():
        engine = make_engine(db_url)
        sm = make_sessionmaker(engine)
        async with sm() as s, s.begin():
            await apply_office(s, example_office(2024))
            kadis = (await s.execute(select(Person).where(Person.role == Role.KADIS))).scalar_one()
            inv = await create_invitation(s, kadis, now=SystemClock().now(), valid_days=1)
        await engine.dispose()
        return inv.code

    code = asyncio.run(seed())
    with EmulatorThread() as emu:
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[telegram]\napi_base_url = "{emu.base_url}"\nfile_base_url = "{emu.base_file_url}"\n'
            f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "files"}"\n')
        env = dict(os.environ, SOPBOT_TELEGRAM_TOKEN="123:local-emulator")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg), "run"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            user = emu.call(emu.emulator.add_user, user_id=9001, first_name="Kadis")
            emu.run(user.send_command("/start", code))
            # a cold start (imports, the migrations) on a loaded machine, then the answer
            msg = emu.run(user.wait_for(text_contains="Selamat datang", timeout=120),
                          timeout=130)
            assert "Kepala Dinas" in msg.text
            sent = emu.run(user.send_command("/mulai"))
            menu = emu.run(user.wait_for(after=sent, text_contains="Pilih periodenya",
                                         timeout=30), timeout=40)
            assert len(menu.buttons) == 3
            commands = emu.emulator.commands
            assert any("mulai" in str(v) for v in commands.values())
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        assert proc.returncode == 0, out
        assert "123:local-emulator" not in out  # the token never reaches the log


def test_sopbot_run_without_a_token_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SOPBOT_TELEGRAM_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Token Telegram belum diisi" in proc.stderr and "sopbot demo" in proc.stderr
    _ = time
