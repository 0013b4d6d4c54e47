"""Shared set-up for the benchmark scripts (not tests: they print measured figures)."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import models
from bot.core.clock import SystemClock
from bot.config import Config
from bot.core.services import build_services
# a bot as its own process, and its CPU: shared with the tests
from bot.devtools.botprocess import TOKEN, BotProcess as Worker, process_cpu  # noqa: F401
from models.session import make_engine, make_sessionmaker


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


def settle_memory() -> None:
    """As ``sopbot run`` settles the process once the bot is set up
    (``bot.telegram.app.settle_memory``: the garbage collector), called for every bot a
    benchmark runs in its process, the bare echo bot too; nothing on a tree that has
    no such step (``bench_cpu.py --before`` an older commit)."""
    try:
        from bot.telegram.app import settle_memory as settle
    except ImportError:
        return
    settle()


def callgrind(*steps: str) -> None:
    """``callgrind_control`` steps (``--instr=on``, ``--zero``, ``--dump=name``, ...) on
    this process, which runs under valgrind's callgrind."""
    for step in steps:
        subprocess.run(["callgrind_control", step, str(os.getpid())],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def callgrind_total(text: str) -> int:
    """The instructions counted in a callgrind output (its ``summary:`` or ``totals:``)."""
    return max((int(line.split()[1]) for line in text.splitlines()
                if line.startswith(("summary:", "totals:"))), default=0)
