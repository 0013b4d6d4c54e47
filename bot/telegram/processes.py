"""Several bot processes on one PostgreSQL database.

Every process is the same program (``sopbot run``); they share the work through the
database:

* **Identity.** A process is named ``host:pid:random`` (:func:`identity`): the random
  part (from ``uuid4``) keeps two processes apart even in containers that have the same
  host name and the same pid (1). Inbox and outbox claims carry this name.
* **Life.** Each process holds a PostgreSQL advisory lock keyed by its name on a
  connection of its own (:class:`Life`). PostgreSQL releases it the moment that
  connection ends, which is when the process dies (SIGKILL included: the kernel closes
  its sockets). A process is alive exactly while its lock is held, which every other
  process can see in ``pg_locks``: no heartbeat clock, no lease to wait out.
* **Take-over.** Every few seconds each process looks for claims whose process is not
  alive (:func:`release_dead`): inbox rows it had claimed and not processed become free
  again, outbox rows it left ``sending`` become pending again.
* **Inbox.** Rows are claimed (:func:`claim_inbox`) with ``SELECT ... FOR UPDATE SKIP
  LOCKED``; a row may be claimed only when every earlier unprocessed row of its chat is
  already this process's, so a person's updates are processed by one process at a time,
  in order, and different people's by several processes at once. A process claims only
  as many rows as it can work on soon, so an idle process finds work. The process that
  stores new rows claims in the same transaction those it can take at once
  (:func:`claim_stored`: the chat has no earlier unprocessed row but the process's own
  on its queues, which the new row joins behind them) and queues
  them at the commit; it tells the others (NOTIFY ``sopbot_inbox``) only when it
  left rows unclaimed.
* **Receiving.** One process polls Telegram: the one holding the ``receive`` lock
  (:meth:`Life.try_lead`); when it dies, another takes the lock within seconds and polls
  from the first unconfirmed update (the inbox ignores what it already has). In webhook
  mode every process that runs the webhook server receives (behind a load balancer, or
  one of them, the others started with ``sopbot run --no-receive``).
* **Sending.** One process sends the outbox: the one holding the ``sender`` lock
  (:meth:`Life.try_lead`), so the bot's pacing (Telegram's 30 messages per second, one
  per chat per second) and a 429's ``retry_after`` hold for the bot as a whole; the other
  processes' senders wait to take over (within about a second of the lock's release:
  the dead sender's rows left ``sending`` are freed at once by the new one). A process
  that queued messages wakes the sender with NOTIFY ``sopbot_outbox``
  (:func:`notify_outbox`), so a reply goes out at once whichever process caused it. A
  429 any process gets (the sender, or a handler's own Bot API call) is told to every
  process (NOTIFY ``sopbot_pause``, :func:`notify_pause`): each pauses its requests and
  its pacing for the ``retry_after``. Before that, every request with a chat any process
  makes is told to the others (NOTIFY ``sopbot_rate`` on the life connection,
  :meth:`Life.notify`, :func:`usage_payloads`): each counts it in its overall limit for
  a second, and its chat waits an interval for its next turn there
  (``ratelimit.RateLimiter.foreign``), so the processes together keep Telegram's 30 a
  second and one a second per chat. A process that finds no other alive
  (:attr:`Life.others`, counted every ``WATCH_SECONDS``) tells no one.
* **Jobs.** The deadline tick (reminders, digest, prompt) runs in one process at a time
  (:func:`exclusive`); its rows are also claimed with ``FOR UPDATE SKIP LOCKED``.
* **Compile jobs.** A build ("Susun dokumen", an uploaded workbook, "Beri nomor") is
  claimed by one live process (:func:`claim_job`, ``FOR UPDATE SKIP LOCKED``) and built
  there, one at a time per process. The job's commit tells every process (NOTIFY
  ``sopbot_jobs``): an idle one takes it even when the process that got the press is
  busy building another.
  :func:`release_dead` frees the jobs of dead processes too.
* **Office settings.** A change of an office's settings (a set-up import, in any process
  or the CLI) is NOTIFYed with its commit (``models.organisation.OFFICE_CHANNEL``); every
  process then checks the office's ``settings_version`` at its next update
  (``bot.core.services``). A process whose listening connection broke checks every office
  when it connects again.

On SQLite there is one process: nothing here is used (no claims, no locks).

What "nothing twice" means: an inbox row is processed once (its effects commit with its
mark, and the processing matches only a row still claimed by the process itself). An
outbox row is sent, then marked sent; a process killed between the two leaves the row
``sending`` and the process that takes it over sends it again: at most one duplicate per
row in hand at the kill (as after a crash of a single process). Two live processes never
send the same row (the claim is a row lock plus a conditional update).

Advisory locks live on a database session: a connection pooler in transaction mode
(PgBouncer ``pool_mode = transaction``) breaks them; connect directly, or in session mode.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
import zlib
from datetime import timedelta
from typing import Iterable

from sqlalchemy import ARRAY, BigInteger, all_, bindparam, exists, or_, select, text, update

from bot.core import compiler
from bot.core.secret_input import PASSPHRASE
from bot.core.services import office_settings_changed
from models import Conversation, Person
from models.base import utcnow
from models.documents import JOB_CHANNEL
from models.intake import Inbox
from models.organisation import OFFICE_CHANNEL
from models.session import core_rows

log = logging.getLogger(__name__)

LIFE_NS = 0x50B0  # advisory lock namespaces (first key of the two-int form)
LEAD_NS = 0x50B1
JOB_NS = 0x50B2
CHANNEL = "sopbot_inbox"  # NOTIFY: new inbox rows
OUTBOX_CHANNEL = "sopbot_outbox"  # NOTIFY: messages queued (wakes the sending process)
PAUSE_CHANNEL = "sopbot_pause"  # NOTIFY "seconds:sender": a 429's retry_after, for all
# NOTIFY "sender|chat,chat,...": the chats of the Bot API requests a process made just
# now, counted in every other process's limits (Telegram's are the bot's)
RATE_CHANNEL = "sopbot_rate"
SENDER = "sender"  # the lock of the one process that sends the outbox
# seconds a chat stays with the process that processed its last update: its Bot API
# requests to the chat take turns in that process's rate limiter (one a second), which
# another process does not know (a take-off waits 3 s for quiet: longer than that)
CHAT_AFFINITY = 5.0
WATCH_SECONDS = 3.0  # how often a process checks its life and takes over dead claims

_IDENTITY: tuple[int, str] | None = None


def identity() -> str:
    """This process's name: ``host:pid:random`` (at most 40 characters). A new name
    after a fork."""
    global _IDENTITY
    pid = os.getpid()
    if _IDENTITY is None or _IDENTITY[0] != pid:
        host = (socket.gethostname() or "host").replace(":", "-")[:20]
        _IDENTITY = (pid, f"{host}:{pid}:{uuid.uuid4().hex[:10]}")
    return _IDENTITY[1]


def process_of(claim: str | None) -> str:
    """The process named in a claim (an inbox ``claimed_by`` is the process itself;
    an outbox claim adds the sender and the claim's number)."""
    return ":".join((claim or "").split(":")[:3])


def key(name: str) -> int:
    """A signed 32-bit key for ``name`` (the second key of an advisory lock)."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def _unsigned(value: int) -> int:
    return value & 0xFFFFFFFF


def engine_of(sessionmaker):
    real = getattr(sessionmaker, "real", sessionmaker)  # the update sessions' wrapper
    return getattr(real, "kw", {}).get("bind")


def is_postgres(sessionmaker) -> bool:
    engine = engine_of(sessionmaker)
    return engine is not None and engine.dialect.name == "postgresql"


# ------------------------------------------------------------------ who is alive
# the life locks held now in this database (one row a session: a process's connection)
_LIFE_LOCKS = ("FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :ns "
               "AND objsubid = 2 AND database = "
               "(SELECT oid FROM pg_database WHERE datname = current_database())")


async def alive_keys(session) -> set[int]:
    """The life keys held now (as pg_locks shows them: unsigned)."""
    rows = await session.execute(text(f"SELECT objid::bigint {_LIFE_LOCKS}"),
                                 {"ns": LIFE_NS})
    return {int(r[0]) for r in rows}


def is_alive(process: str, keys: set[int]) -> bool:
    """Whether the process named ``process`` holds its life lock (``keys``:
    :func:`alive_keys`)."""
    return _unsigned(key(process)) in keys


async def release_dead(sessionmaker) -> tuple[int, int]:
    """Free the claims of processes that are not alive: their unprocessed inbox rows
    (claimable again), their outbox rows left ``sending`` (pending again) and their
    unfinished compile jobs (claimable again, the other processes told). Returns
    (inbox rows, outbox rows)."""
    from models import CompileJob, Outbox
    from models.enums import OutboxStatus

    real = getattr(sessionmaker, "real", sessionmaker)
    async with real() as session, session.begin():
        keys = await alive_keys(session)
        claimants = set((await session.execute(
            select(Inbox.claimed_by).where(Inbox.processed_at.is_(None),
                                           Inbox.claimed_by.is_not(None))
            .distinct())).scalars())
        dead_inbox = [c for c in claimants if not is_alive(process_of(c), keys)]
        freed_inbox = 0
        if dead_inbox:
            freed_inbox = (await session.execute(
                update(Inbox).where(Inbox.claimed_by.in_(dead_inbox),
                                    Inbox.processed_at.is_(None))
                .values(claimed_by=None, claimed_at=None)
                .execution_options(synchronize_session=False))).rowcount
        sending = (await session.execute(
            select(Outbox.id, Outbox.claimed_by).where(
                Outbox.status == OutboxStatus.SENDING))).all()
        dead_outbox = [i for i, by in sending if not is_alive(process_of(by), keys)]
        if dead_outbox:
            await session.execute(
                update(Outbox).where(Outbox.id.in_(dead_outbox),
                                     Outbox.status == OutboxStatus.SENDING)
                .values(status=OutboxStatus.PENDING)
                .execution_options(synchronize_session=False))
        building = set((await session.execute(
            select(CompileJob.claimed_by).where(CompileJob.finished_at.is_(None),
                                                CompileJob.claimed_by.is_not(None))
            .distinct())).scalars())
        dead_jobs = [c for c in building if not is_alive(process_of(c), keys)]
        freed_jobs = 0
        if dead_jobs:
            freed_jobs = (await session.execute(
                update(CompileJob).where(CompileJob.claimed_by.in_(dead_jobs),
                                         CompileJob.finished_at.is_(None))
                .values(claimed_by=None, claimed_at=None)
                .execution_options(synchronize_session=False))).rowcount
            if freed_jobs:
                await notify_jobs(session)
    if freed_jobs:
        log.warning("compile jobs of stopped processes taken over: %d (%s)", freed_jobs,
                    ", ".join(sorted(process_of(c) for c in dead_jobs)))
    if freed_inbox or dead_outbox:
        log.warning("claims of stopped processes taken over: %d update(s), %d message(s) "
                    "(%s)", freed_inbox, len(dead_outbox),
                    ", ".join(sorted({process_of(c) for c in dead_inbox}
                                     | {process_of(by) for i, by in sending
                                        if i in set(dead_outbox)})))
    return freed_inbox, len(dead_outbox)


async def _drop(conn) -> None:
    """Close a connection that held advisory locks: really closed, not returned to the
    pool (a pooled session would keep its locks, and this process would look alive)."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


# ------------------------------------------------------------------ this process's life
class Life:
    """This process's life lock on a connection of its own, shared by the intake and
    the outbox sender of one engine (:meth:`join` / :meth:`leave`); a watcher keeps the
    connection alive (re-locking after it broke) and takes over dead claims."""

    _of_engine: dict[int, "Life"] = {}

    def __init__(self, sessionmaker) -> None:
        self.sm = getattr(sessionmaker, "real", sessionmaker)
        self.engine = engine_of(sessionmaker)
        self.name = identity()
        self.users = 0
        self.conn = None
        self.leading: set[str] = set()
        # the other live processes' sessions (life locks held besides this one), as
        # counted at the last check (WATCH_SECONDS); None: not counted yet
        self.others: int | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        # the first user's connect in progress: a user that joins meanwhile waits for it
        # (else it took the missing connection for a lock held by another process)
        self._joining: asyncio.Future | None = None
        # channel -> callbacks: new inbox rows (CHANNEL), a compile job to take
        # (JOB_CHANNEL), messages queued for the outbox (OUTBOX_CHANNEL), a 429 got by
        # a process (PAUSE_CHANNEL: the callbacks are given the payload); an office's
        # settings changed: bot.core.services is told
        self._listeners: dict[str, list] = {CHANNEL: [], JOB_CHANNEL: [], OUTBOX_CHANNEL: [],
                                            PAUSE_CHANNEL: [], RATE_CHANNEL: []}

    @classmethod
    async def join(cls, sessionmaker) -> "Life":
        engine = engine_of(sessionmaker)
        life = cls._of_engine.get(id(engine))
        if life is None or life.engine is not engine:
            life = cls._of_engine[id(engine)] = cls(sessionmaker)
        life.users += 1
        if life.users == 1:
            life._joining = asyncio.get_running_loop().create_future()
            try:
                await life._connect()
            finally:
                joining, life._joining = life._joining, None
                joining.set_result(None)
            life._task = asyncio.create_task(life._watch(), name="process-life")
        elif life._joining is not None:
            await asyncio.shield(life._joining)
        return life

    async def leave(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()
        if self._of_engine.get(id(self.engine)) is self:
            del self._of_engine[id(self.engine)]

    @property
    def alive(self) -> bool:
        return self.conn is not None

    async def _connect(self) -> None:
        async with self._lock:
            conn = await self.engine.connect()
            try:
                # shared: the sessions of one process (one per engine) never wait
                await conn.execute(text("SELECT pg_advisory_lock_shared(:ns, :k)"),
                                   {"ns": LIFE_NS, "k": key(self.name)})
                await conn.commit()
            except BaseException:
                await conn.close()
                raise
            try:  # woken when another process stores updates (NOTIFY in its commit)
                raw = await conn.get_raw_connection()
                for channel in (CHANNEL, JOB_CHANNEL, OUTBOX_CHANNEL, PAUSE_CHANNEL,
                                RATE_CHANNEL, OFFICE_CHANNEL):
                    await raw.driver_connection.add_listener(channel, self._notified)
            except Exception:  # the processor looks at the inbox every second anyway
                log.info("no LISTEN on this connection", exc_info=True)
            # what was said while not listening is lost: every office is checked again
            office_settings_changed(None)
            self.conn = conn
            log.info("process %s holds its life lock", self.name)

    def _notified(self, _conn=None, _pid=None, channel: str = CHANNEL, payload: str = "",
                  *_args) -> None:
        if channel == OFFICE_CHANNEL:
            office_settings_changed(int(payload) if payload.isdigit() else None)
            return
        for callback in list(self._listeners.get(channel, ())):
            if channel in (PAUSE_CHANNEL, RATE_CHANNEL):
                callback(payload)
            else:
                callback()

    def listen(self, callback, channel: str = CHANNEL) -> None:
        self._listeners.setdefault(channel, []).append(callback)

    def unlisten(self, callback, channel: str = CHANNEL) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.get(channel, []).remove(callback)

    async def notify(self, channel: str, payload: str) -> bool:
        """NOTIFY on this process's own connection: one round trip, no transaction or
        pooled session of its own (``RATE_CHANNEL`` goes with every request). False
        when not connected."""
        async with self._lock:
            if self.conn is None:
                return False
            raw = await self.conn.get_raw_connection()
            await raw.driver_connection.execute("SELECT pg_notify($1, $2)", channel, payload)
            return True

    async def _close(self) -> None:
        conn, self.conn = self.conn, None
        self.leading.clear()
        if conn is not None:
            await _drop(conn)

    async def try_lead(self, role: str) -> bool:
        """Take (or keep) the lock of ``role`` (e.g. "receive"); True while held."""
        if role in self.leading:
            return True
        if self.conn is None:
            return False
        async with self._lock:
            try:
                got = (await self.conn.execute(text("SELECT pg_try_advisory_lock(:ns, :k)"),
                                               {"ns": LEAD_NS, "k": key(role)})).scalar()
                await self.conn.commit()
            except Exception:
                log.warning("could not ask for the %s lock", role, exc_info=True)
                return False
        if got:
            self.leading.add(role)
            log.info("process %s: %s", self.name, role)
        return bool(got)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                if self.conn is None:
                    await self._connect()
                else:
                    async with self._lock:  # the session's check, and who else lives
                        held = (await self.conn.execute(text(
                            f"SELECT count(*) {_LIFE_LOCKS}"), {"ns": LIFE_NS})).scalar_one()
                        await self.conn.commit()
                    self.others = max(0, held - 1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("process %s lost its database session (%s): claims may be "
                            "taken over; connecting again", self.name, exc)
                await self._close()
                continue
            try:
                await release_dead(self.sm)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not take over the claims of stopped processes")


# ------------------------------------------------------------------ the inbox
@functools.lru_cache(maxsize=8)
def _inbox_statements(me: str) -> dict:
    """The statements of :func:`claim_inbox` and :func:`my_rows` for ``me``, built once
    (Core, on the table): a dispatch pass runs them again and again, and building them
    (the correlated subquery included) cost as much as running them."""
    inbox = Inbox.__table__
    earlier = inbox.alias("earlier")
    # an earlier unprocessed row of the same chat that is not this process's
    blocked = exists().where(earlier.c.chat_key == inbox.c.chat_key,
                             earlier.c.update_id < inbox.c.update_id,
                             earlier.c.processed_at.is_(None),
                             or_(earlier.c.claimed_by.is_(None), earlier.c.claimed_by != me))
    # a row of the same chat another process processed moments ago: that process
    # keeps the chat (its turns in the rate limiter know the chat's last request)
    recent = inbox.alias("recent")
    elsewhere = exists().where(recent.c.chat_key == inbox.c.chat_key,
                               recent.c.processed_at > bindparam("since"),
                               recent.c.claimed_by.is_not(None), recent.c.claimed_by != me)
    free = (inbox.c.processed_at.is_(None), inbox.c.claimed_by.is_(None))
    candidates = (select(inbox.c.update_id).where(*free, ~blocked, ~elsewhere)
                  .order_by(inbox.c.update_id).limit(bindparam("n"))
                  .with_for_update(of=inbox, skip_locked=True))
    claim = (update(inbox).where(inbox.c.update_id.in_(bindparam("ids", expanding=True)), *free)
             .values(claimed_by=me, claimed_at=bindparam("at")))
    mine = (select(inbox.c.update_id, inbox.c.payload, inbox.c.chat_key)
            .where(inbox.c.processed_at.is_(None), inbox.c.claimed_by == me, ~blocked,
                   inbox.c.update_id.not_in(bindparam("skip", expanding=True)))
            .order_by(inbox.c.update_id).limit(bindparam("n")))
    # at the store (claim_stored): rows whose chat has no earlier unprocessed row but
    # this process's on its queues, and whose sender does not wait for the TTE
    # passphrase (a private chat's key is its person's Telegram id)
    before = inbox.alias("before")
    # the ids on the queues as one array (= ALL): one statement text whatever their
    # number, so that the prepared statements do not multiply with the store's ids
    queued = bindparam("queued", type_=ARRAY(BigInteger))
    first = ~exists().where(before.c.chat_key == inbox.c.chat_key,
                            before.c.update_id < inbox.c.update_id,
                            before.c.processed_at.is_(None),
                            or_(before.c.claimed_by.is_(None), before.c.claimed_by != me,
                                before.c.update_id != all_(queued)))
    person, conv = Person.__table__, Conversation.__table__
    asked = exists().where(person.c.telegram_user_id == inbox.c.chat_key,
                           conv.c.person_id == person.c.id, conv.c.kind == PASSPHRASE)
    stored = (update(inbox).where(inbox.c.update_id.in_(bindparam("ids", expanding=True)),
                                  *free, first, ~elsewhere, ~asked)
              .values(claimed_by=me, claimed_at=bindparam("at"))
              .returning(inbox.c.update_id))
    return {"candidates": candidates, "claim": claim, "mine": mine, "stored": stored}


async def claim_inbox(sessionmaker, me: str, limit: int, rounds: int = 8) -> int:
    """Claim up to ``limit`` unprocessed rows for ``me``, in rounds: each round takes
    the free rows whose earlier unprocessed rows (of their chat) are all ``me``'s
    already, i.e. the first free row of each chat nobody else works on, and the next
    row of each chat ``me`` works on. A chat another process processed a row of in the
    last :data:`CHAT_AFFINITY` seconds is left to it (a dead one's, after that). The
    candidates are locked with ``FOR UPDATE SKIP LOCKED``: a row another process is
    claiming at this moment is skipped, and so are the later rows of its chat (their
    earlier row is not ``me``'s). Returns how many."""
    statements = _inbox_statements(me)
    taken = 0
    for _ in range(rounds):
        if taken >= limit:
            break
        async with sessionmaker() as session, session.begin():
            since = utcnow() - timedelta(seconds=CHAT_AFFINITY)
            ids = list((await session.execute(statements["candidates"],
                                              {"n": limit - taken, "since": since})).scalars())
            if not ids:
                break
            got = (await session.execute(statements["claim"],
                                         {"ids": ids, "at": utcnow()})).rowcount
        taken += got
    return taken


async def claim_stored(session, me: str, ids: list[int],
                       queued: Iterable[int] = ()) -> set[int]:
    """In the transaction that stored the rows ``ids``: claim for ``me`` those it can
    process at once, in the same commit; returns their ids. A row is claimed when its
    chat has no earlier unprocessed row but ``me``'s on its queues (``queued``: the new
    row goes on the chat's queue behind them; a row of ``me``'s that is not on its
    queue yet must go first, another process's or nobody's comes first), no other
    process processed a row of the chat in the last :data:`CHAT_AFFINITY` seconds, and
    its sender does not wait for the TTE passphrase, all as of the statement (one
    snapshot: an earlier row processed since it began counts as unprocessed, so a
    passphrase asked for by that row cannot be missed; when that row is ``me``'s, the
    question is asked in this process, which knows it: ``Intake._redact_unseen``). The
    rows are this transaction's own and uncommitted: no other process can claim them
    meanwhile. The rest are claimed as before (:func:`claim_inbox`). As there, an
    earlier row of the chat that another process is storing in a transaction not yet
    committed is not seen: it relies on a chat's updates being stored one after the
    other (polling: one process receives, in order; a webhook: Telegram sends a chat's
    next update once the previous one was answered, and the answer comes after the
    commit)."""
    if not ids:
        return set()
    now = utcnow()
    return {r[0] for r in await core_rows(session, _inbox_statements(me)["stored"], {
        "ids": ids, "at": now, "since": now - timedelta(seconds=CHAT_AFFINITY),
        "queued": sorted(queued)})}


async def my_rows(sessionmaker, me: str, skip: Iterable[int], limit: int) -> list:
    """``me``'s unprocessed rows that may be processed now (no earlier row of the
    chat is someone else's), oldest first, except those in ``skip``."""
    async with sessionmaker() as session:  # the rows in ``skip`` not read (nor decoded)
        return (await session.execute(_inbox_statements(me)["mine"],
                                      {"n": limit, "skip": list(skip)})).all()


async def notify_stored(session) -> None:
    """Tell the other processes (at this transaction's commit) that rows were stored."""
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})


async def release_mine(sessionmaker, me: str) -> int:
    """A process that stops gives its unprocessed rows back at once."""
    async with sessionmaker() as session, session.begin():
        return (await session.execute(
            update(Inbox).where(Inbox.claimed_by == me, Inbox.processed_at.is_(None))
            .values(claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False))).rowcount


async def notify_outbox(sessionmaker) -> None:
    """Tell the process that sends the outbox (in a transaction of its own, so after
    the commit that queued the messages) that messages are queued."""
    real = getattr(sessionmaker, "real", sessionmaker)
    async with real() as session, session.begin():
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": OUTBOX_CHANNEL})


async def notify_pause(sessionmaker, seconds: float, by: str) -> None:
    """Tell every process that ``by`` (a sender) got a 429: no request with a chat for
    ``seconds`` (Telegram's limits are the bot's, whichever process made the request)."""
    real = getattr(sessionmaker, "real", sessionmaker)
    async with real() as session, session.begin():
        await session.execute(text("SELECT pg_notify(:c, :p)"),
                              {"c": PAUSE_CHANNEL, "p": f"{seconds:.3f}:{by}"})


def usage_payloads(chats: list, by: str) -> list[str]:
    """The NOTIFY payloads (``RATE_CHANNEL``) telling every process that ``by`` (a
    sender) made requests to ``chats`` just now: each counts them in its limits
    (``ratelimit.RateLimiter.foreign``). A payload holds 8,000 bytes: a long list goes
    in parts."""
    return [f"{by}|{','.join(str(c) for c in chats[i:i + 300])}"
            for i in range(0, len(chats), 300)]


# ------------------------------------------------------------------ compile jobs
async def notify_jobs(session) -> None:
    """Tell every process (at this transaction's commit) that a compile job is free."""
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": JOB_CHANNEL})


async def claim_job(sessionmaker, me: str) -> int | None:
    """Claim the oldest free unfinished compile job for ``me``; its id, or None. One
    statement: the job is chosen with ``FOR UPDATE SKIP LOCKED`` (a job another process
    is claiming at this moment is skipped, not waited for) and claimed by the update
    around it. A job whose process died is free again once :func:`release_dead` ran
    (within ``WATCH_SECONDS``, the other processes told)."""
    from models import CompileJob

    real = getattr(sessionmaker, "real", sessionmaker)
    free = (CompileJob.finished_at.is_(None), CompileJob.claimed_by.is_(None))
    chosen = (select(CompileJob.id).where(*free).order_by(CompileJob.id).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())
    async with real() as session, session.begin():
        return (await session.execute(
            update(CompileJob).where(CompileJob.id == chosen, *free)
            .values(claimed_by=me, claimed_at=utcnow())
            .returning(CompileJob.id)
            .execution_options(synchronize_session=False))).scalar()


async def my_jobs(sessionmaker, me: str) -> list[int]:
    """``me``'s unfinished compile jobs, oldest first (a job whose run raised)."""
    from models import CompileJob

    real = getattr(sessionmaker, "real", sessionmaker)
    async with real() as session:
        return list((await session.execute(
            select(CompileJob.id).where(CompileJob.finished_at.is_(None),
                                        CompileJob.claimed_by == me)
            .order_by(CompileJob.id))).scalars())


async def release_jobs(sessionmaker, me: str) -> int:
    """A process that stops gives its unfinished compile jobs back at once."""
    from models import CompileJob

    real = getattr(sessionmaker, "real", sessionmaker)
    async with real() as session, session.begin():
        freed = (await session.execute(
            update(CompileJob).where(CompileJob.claimed_by == me,
                                     CompileJob.finished_at.is_(None))
            .values(claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False))).rowcount
        if freed:
            await notify_jobs(session)
    return freed


class JobClaims:
    """How this process's :class:`bot.core.compiler.Compiler` takes jobs on PostgreSQL:
    alive (it holds this process's :class:`Life`), woken by ``JOB_CHANNEL``, claiming
    with :func:`claim_job`."""

    def __init__(self, sessionmaker) -> None:
        self.sm = getattr(sessionmaker, "real", sessionmaker)
        self.me = identity()
        self.life: Life | None = None
        self._wake = None

    async def start(self, wake) -> None:
        if self.life is None:
            self.life = await Life.join(self.sm)
            self._wake = wake
            self.life.listen(wake, JOB_CHANNEL)

    async def stop(self) -> None:
        """Stopped (nothing running): this process's unfinished jobs are given back at
        once, the other processes told."""
        life, self.life = self.life, None
        if life is None:
            return
        life.unlisten(self._wake, JOB_CHANNEL)
        try:
            await release_jobs(self.sm, self.me)
        except Exception:  # taken over when this process's life lock is gone
            log.warning("could not give back the compile jobs of %s", self.me, exc_info=True)
        await life.leave()

    async def claim(self) -> int | None:
        """The next job for this process; None when there is none, or while this
        process is not alive (its claims would be taken over)."""
        if self.life is None or not self.life.alive:
            return None
        return await claim_job(self.sm, self.me)

    async def mine(self) -> list[int]:
        return await my_jobs(self.sm, self.me)


def _job_claims(sessionmaker) -> JobClaims | None:
    return JobClaims(sessionmaker) if is_postgres(sessionmaker) else None


compiler.claims_for = _job_claims  # several processes: each job built by one


# ------------------------------------------------------------------ one at a time
@contextlib.asynccontextmanager
async def exclusive(sessionmaker, name: str):
    """Yields True in the one process that holds ``name``'s lock for the block (False
    in the others, which skip the work); always True on SQLite (one process)."""
    engine = engine_of(sessionmaker)
    if engine is None or engine.dialect.name != "postgresql":
        yield True
        return
    conn = await engine.connect()
    got = False
    try:
        try:
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:ns, :k)"),
                                           {"ns": JOB_NS, "k": key(name)})).scalar())
            await conn.commit()
        except BaseException:  # (cancelled) the lock may be granted all the same: the
            await _drop(conn)  # connection goes, not back to the pool with it
            raise
        yield got
    finally:
        if got:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:ns, :k)"),
                                   {"ns": JOB_NS, "k": key(name)})
                await conn.commit()
            except BaseException:
                await _drop(conn)
                raise
        await conn.close()
