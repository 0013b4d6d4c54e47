"""Periodic jobs on PTB's JobQueue: the deadline sweep, the daily digest, the prompt.

JobQueue jobs are not persisted, and need not be: every job reads what is due from the
database, so ``schedule(application)`` in ``post_init`` re-derives everything after a
restart. The one repeating job runs at start-up (``first=0``, so points missed while the
bot was down go out at once, or at the next opening) and then every
``[reminders] sweep_interval_seconds``. Each part opens its own session and
transaction; an exception is logged and the next tick tries again. With several bot
processes on PostgreSQL a tick runs in one process at a time (an advisory lock,
``bot/telegram/processes.py``: the others skip it); its rows are claimed with ``FOR
UPDATE SKIP LOCKED`` as well.
"""
from __future__ import annotations

import logging
from functools import partial
from typing import Any, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.administration import ROLES_CHANGED, sync_acting
from bot.core.reminders import daily_digest, quarterly_prompt, receipt_sweep, sweep
from bot.core.services import Services

log = logging.getLogger(__name__)

JOB_NAME = "sopbot-deadlines"

Task = Callable[[AsyncSession, Services], Awaitable[Any]]
TASKS: tuple[tuple[str, Task], ...] = (
    ("sweep", sweep),
    ("receipts", receipt_sweep),
    ("digest", daily_digest),
    ("prompt", quarterly_prompt),
)


async def run_deadline_tasks(sessionmaker: async_sessionmaker, services: Services,
                             roles_changed: Callable[[set[int]], Awaitable[Any]] | None = None
                             ) -> dict[str, int]:
    """One tick: the sweep, then the digest and the prompt (each guarded by its own
    "office open and not yet sent" check). Returns how many each produced; a part that
    failed is logged and reported as -1. ``roles_changed`` is given the ids of the people
    whose Plh./Plt. appointment started or ended in this tick, after its commit (their
    command menus)."""
    done: dict[str, int] = {}
    # first, acting officials (Plh./Plt.) start and end, so reminders reach the holder
    try:
        async with sessionmaker() as session, session.begin():
            moved = await sync_acting(session, services)
        changed = session.info.pop(ROLES_CHANGED, set())
        if changed and roles_changed is not None:
            await roles_changed(changed)
        if moved:
            done["acting"] = moved
    except Exception:  # noqa: BLE001 - a failing job must not stop the loop
        log.exception("acting appointments failed; retrying at the next tick")
        done["acting"] = -1
    for name, task in TASKS:
        try:
            async with sessionmaker() as session, session.begin():
                result = await task(session, services)
            done[name] = len(result) if isinstance(result, list) else int(result)
        except Exception:  # noqa: BLE001 - a failing job must not stop the loop
            log.exception("deadline job %s failed; retrying at the next tick", name)
            done[name] = -1
    if any(done.values()):
        log.info("deadline job: %s", done)
    return done


async def deadline_job(context: Any) -> None:
    """The JobQueue callback: the tick, unless another process runs it now."""
    from bot.telegram.processes import exclusive

    data = context.application.bot_data
    async with exclusive(data["sessionmaker"], JOB_NAME) as mine:
        if mine:
            await run_deadline_tasks(data["sessionmaker"], data["services"],
                                     partial(_menus_of, context.application))
        else:
            log.debug("deadline job: another process runs this tick")


async def _menus_of(application: Any, person_ids: set[int]) -> None:
    """The command menus of the accounts of ``person_ids`` (a Plh./Plt. began or ended)."""
    from sqlalchemy import select

    from handlers.markup import set_account_commands
    from models import Person

    data = application.bot_data
    async with data["sessionmaker"]() as session:
        accounts = set((await session.execute(
            select(Person.telegram_user_id).where(
                Person.id.in_(person_ids), Person.telegram_user_id.is_not(None)))).scalars())
    for telegram_user_id in sorted(accounts):
        await set_account_commands(application.bot, data["sessionmaker"], data["services"],
                                   telegram_user_id)


def schedule(application: Any) -> None:
    """Register the repeating deadline job (replacing an earlier registration)."""
    job_queue = application.job_queue
    if job_queue is None:
        raise RuntimeError(
            "JobQueue tidak tersedia: pasang python-telegram-bot[job-queue]")
    services: Services = application.bot_data["services"]
    for job in job_queue.get_jobs_by_name(JOB_NAME):
        job.schedule_removal()
    job_queue.run_repeating(
        deadline_job,
        interval=services.config.reminders.sweep_interval_seconds,
        first=0,
        name=JOB_NAME,
        job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )


__all__ = ["JOB_NAME", "deadline_job", "run_deadline_tasks", "schedule"]
