"""Run the Alembic migrations programmatically (``sopbot db upgrade``)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` (plain form) to ``revision``."""
    from models.session import prepare_sqlite_file

    prepare_sqlite_file(url)  # created 0600 before SQLite makes it with the umask's mode
    command.upgrade(alembic_config(url), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade through an existing async engine (used by tests and the demo)."""

    def _run(connection) -> None:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


def upgrade_sync(url: str) -> None:
    """For callers outside an event loop."""
    upgrade(url)


__all__ = ["upgrade", "upgrade_engine", "alembic_config", "asyncio"]
