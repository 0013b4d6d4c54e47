"""Compiling the documents in the background (step 6, "Susun dokumen").

Building the workbook, PDF and chart of a large office takes seconds. It must not hold
the update of the person who pressed (its transaction, and on SQLite the write lock,
last until its handlers return), so the press only records a :class:`CompileJob` and
commits with its update; this runner then takes the job:

1. its data is loaded in a read-only session (a fixed number of queries, closed before
   building: no lock is held while the files are made);
2. the files are built, hashed and written to the store in worker processes, the
   workbook beside the PDF and chart (``bot.core.documents.build_off_loop``; the event
   loop keeps serving everybody else);
3. the result (the version, the person's conversation, the message with the files in
   the outbox, the job marked finished) is committed in a transaction of its own.

A job not finished when the process died is in the database: :meth:`Compiler.start`
runs it again (its files are content-addressed, so a second build stores nothing
twice; its version is recorded once, with the job's mark). Jobs run one at a time.

Several processes on PostgreSQL (``bot.telegram.processes``): each job is claimed by
one live process (``claimed_by``, taken with ``FOR UPDATE SKIP LOCKED``) and built
there; the job's commit wakes every process (NOTIFY), so an idle process takes a job
recorded by a busy one; the jobs of a process that died are taken over. The claims are
plugged in by ``bot.telegram.processes`` (:data:`claims_for`: the core imports nothing
of it); on SQLite (one process) every unfinished job is this process's.

Nothing the person sees happens twice even if two processes built one job (a process
that lost its database session while building, its claim taken over): the result is
committed only by a transaction whose first statement (:func:`claim`) matches the job
still unfinished, the row lock making the second wait and then match nothing; the
version, the conversation, the outbox message and the job's mark commit together, and
the progress message and the card are edited only after that commit.

The work of one job is given as ``run_job(job_id)`` (``handlers.signoff`` renders the
result); this module only finds and runs jobs.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from typing import Awaitable, Callable

from sqlalchemy import select, update

from bot.core.aio import wait_event
from models import CompileJob

log = logging.getLogger(__name__)

IDLE_POLL = 5.0  # seconds between looks for jobs when nobody asked
EAGER_POLL = 0.02  # after a press: looks until its update has committed the job
EAGER_FOR = 10.0


def _no_claims(sessionmaker):
    return None


#: ``claims_for(sessionmaker)``: how this process claims jobs among several (an object
#: with ``start(wake)``, ``stop()``, ``claim()`` -> a job id or None, ``mine()`` -> job
#: ids), or None: every unfinished job is this process's. Set by bot.telegram.processes.
claims_for: Callable[[object], object | None] = _no_claims


class Compiler:
    def __init__(self, sessionmaker, run_job: Callable[[int], Awaitable[object]]) -> None:
        # never the update's shared session: a job commits on its own
        self.sm = getattr(sessionmaker, "real", sessionmaker)
        self.run_job = run_job
        self._wake = asyncio.Event()
        self._eager_until = 0.0
        self._task: asyncio.Task | None = None
        self.current: int | None = None  # the job being run
        self.finished = 0
        self.claims = claims_for(self.sm)  # None: the only process (SQLite)
        self._claiming = False  # the claims started (this process is among the others)

    def wake(self) -> None:
        """A job was recorded (its update may not have committed yet): look for it at
        short intervals for a while (with several processes, until the NOTIFY of its
        commit arrives: :meth:`_notified`)."""
        self._eager_until = asyncio.get_running_loop().time() + EAGER_FOR
        self._wake.set()

    async def open_jobs(self) -> list[int]:
        async with self.sm() as session:
            return list((await session.execute(
                select(CompileJob.id).where(CompileJob.finished_at.is_(None))
                .order_by(CompileJob.id))).scalars())

    def _notified(self) -> None:
        """Another process recorded (or freed) a job, committed: look once now."""
        self._eager_until = 0.0
        self._wake.set()

    async def _run(self, job_id: int) -> bool:
        self.current = job_id
        try:
            await self.run_job(job_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # the job stays open (and ours): tried again at the next look
            log.exception("compile job %s failed", job_id)
            return False
        finally:
            self.current = None
        self.finished += 1
        return True

    async def run_open(self) -> int:
        """Run every unfinished job of this process, oldest first (with several
        processes: its own, then one claimed at a time while there are free ones);
        returns how many were run."""
        done = 0
        if self.claims is None:
            for job_id in await self.open_jobs():
                done += await self._run(job_id)
            return done
        if not self._claiming:
            try:
                await self.claims.start(self._notified)
                self._claiming = True
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("compile jobs: cannot join the other processes yet",
                            exc_info=True)
                return 0
        for job_id in await self.claims.mine():
            done += await self._run(job_id)
        while (job_id := await self.claims.claim()) is not None:
            done += await self._run(job_id)
        return done

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                done = await self.run_open()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for compile jobs failed")
                done = 0
            if done:
                continue
            eager = loop.time() < self._eager_until
            await wait_event(self._wake, EAGER_POLL if eager else IDLE_POLL)
            self._wake.clear()

    def start(self) -> asyncio.Task:
        """Run the jobs left by an earlier run, then each new one. The task runs in a
        context of its own: not the update that happened to start it."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="compiler", context=contextvars.Context())
        return self._task

    async def stop(self) -> None:
        """Stop; a job cut off is unfinished in the database and runs at the next start
        (with several processes: at once in another, this process's claim released
        with its life lock)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._claiming:
            self._claiming = False
            await self.claims.stop()

    async def busy(self) -> bool:
        """A job is running or recorded and not finished."""
        return self.current is not None or bool(await self.open_jobs())


async def open_job(session, run_id: int) -> CompileJob | None:
    """The compile of this run not finished yet, if any."""
    return (await session.execute(select(CompileJob).where(
        CompileJob.run_id == run_id, CompileJob.finished_at.is_(None)))).scalars().first()


async def claim(session, job_id: int) -> bool:
    """Take the job in this transaction (the first statement writes: on SQLite it takes
    the write lock at once); False when it was finished meanwhile."""
    claimed = await session.execute(update(CompileJob).where(
        CompileJob.id == job_id, CompileJob.finished_at.is_(None)).values(error=""))
    return claimed.rowcount > 0


async def mark_built(session, job_id: int, at, document_id: int) -> None:
    """The job made this version (committed with the version itself)."""
    await session.execute(update(CompileJob).where(CompileJob.id == job_id)
                          .values(finished_at=at, document_id=document_id))


async def finish(session, job_id: int, at, error: str) -> CompileJob | None:
    """End the job without a version (refused, failed); None when it was finished
    meanwhile."""
    done = await session.execute(update(CompileJob).where(
        CompileJob.id == job_id, CompileJob.finished_at.is_(None))
        .values(finished_at=at, error=error[:1000]))
    if done.rowcount == 0:
        return None
    return await session.get(CompileJob, job_id)
