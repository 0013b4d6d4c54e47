"""Shared set-up for the benchmark scripts (not tests: they print measured figures)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import models
from bot.core.clock import SystemClock
from bot.config import Config
from bot.core.services import build_services
from models.session import make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123:local-emulator"  # the emulator accepts any token of this shape


async def fresh_database(folder: Path | None = None, url: str | None = None):
    folder = Path(folder or tempfile.mkdtemp(prefix="sopbot-bench-"))
    cfg = Config()
    cfg.base_dir = folder
    cfg.database.url = url or f"sqlite:///{folder / 'bench.db'}"
    cfg.storage.path = str(folder / "files")
    engine = make_engine(cfg.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(models.Base.metadata.drop_all)
        await conn.run_sync(models.Base.metadata.create_all)
    return cfg, engine, make_sessionmaker(engine), build_services(cfg, SystemClock())


def process_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` used so far (user + system), from /proc; 0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Worker:
    """``python -m bot run`` as its own process (the way tests/test_processes.py does)."""

    def __init__(self, n: int, config: Path, cwd: Path, receive: bool = True) -> None:
        env = dict(os.environ, SOPBOT_TELEGRAM_TOKEN=TOKEN, PYTHONPATH=os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        env.pop("SOPBOT_CRASH_AT", None)
        self.log_path = cwd / f"bot{n}.log"
        self.log = open(self.log_path, "w")
        args = [sys.executable, "-m", "bot", "--config", str(config), "run",
                "--no-upgrade"] + ([] if receive else ["--no-receive"])
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, self.text()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"no {pattern!r} in the bot's log:\n{self.text()[-3000:]}")

    def cpu(self) -> float:
        """CPU seconds used so far (user + system), from /proc."""
        return process_cpu(self.proc.pid)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.log.close()
