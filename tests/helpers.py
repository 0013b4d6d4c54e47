"""Test helpers: look people up by role, snapshot the whole database, serve an aiohttp
application on a free local port."""
from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import models
from models import Person, Unit
from models.enums import Role


async def person(session: AsyncSession, role: Role, unit_code: str | None = None) -> Person:
    stmt = select(Person).where(Person.role == role)
    if unit_code:
        stmt = stmt.join(Unit, Unit.id == Person.unit_id).where(Unit.code == unit_code)
    return (await session.execute(stmt.order_by(Person.id))).scalars().first()


async def unit(session: AsyncSession, code: str) -> Unit:
    return (await session.execute(select(Unit).where(Unit.code == code))).scalar_one()


async def snapshot(session: AsyncSession) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a refused move changed nothing."""
    result = {}
    for table in models.Base.metadata.sorted_tables:
        if table.name == "inbox":  # intake bookkeeping: every update adds a row
            continue
        rows = (await session.execute(select(table))).all()
        result[table.name] = sorted((tuple(map(repr, r)) for r in rows))
    return result


async def serve(app):
    """Start ``app`` (an ``aiohttp.web.Application``) on 127.0.0.1, a free port; returns
    the runner (``await runner.cleanup()`` stops it) and the port."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def spy_claimed_in_store(monkeypatch) -> set[int]:
    """The update ids :func:`bot.telegram.processes.claim_stored` claims from now on
    (PostgreSQL: the rows a store claimed for its own process), gathered in the set
    returned."""
    from bot.telegram import processes

    claimed: set[int] = set()
    claim_stored = processes.claim_stored

    async def spy(*args, **kw):
        got = await claim_stored(*args, **kw)
        claimed.update(got)
        return got

    monkeypatch.setattr(processes, "claim_stored", spy)
    return claimed


@contextlib.asynccontextmanager
async def held_on_queue(intake, matches):
    """Inside: the first update whose payload ``matches`` is held on its chat's queue
    at the start of its run (``Intake._process``), until the block ends; yields an
    event set once it is held. The chat's later updates wait behind it."""
    held, release = asyncio.Event(), asyncio.Event()
    process = intake._process

    async def holding(update_id, payload, update=None):
        if matches(payload) and not release.is_set():
            held.set()
            await release.wait()
        return await process(update_id, payload, update)

    intake._process = holding
    try:
        yield held
    finally:
        release.set()
        del intake._process
