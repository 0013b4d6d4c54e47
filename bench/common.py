"""Shared set-up for the benchmark scripts (not tests: they print measured figures)."""
from __future__ import annotations

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

