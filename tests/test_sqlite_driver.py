"""models/sqlite_driver.py: on SQLite a statement makes one trip to aiosqlite's thread,
and what SQLAlchemy reads back (rows, row counts, new ids, errors) is what the stock
cursor gave; and the intake's write lock lets the storing of new updates go first."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from models.session import make_engine, make_sessionmaker
from models.sqlite_driver import OneTripConnection

NAMES = ["Dr. A & B <Kabid>", 'Kepala "Bidang" Pelatihan', "Staf \U0001F600 Sek",
         "x" * 300]


@pytest.fixture
async def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    yield engine
    await engine.dispose()


def _count_trips(driver) -> tuple[list, object]:
    """Count the trips to aiosqlite's thread (``driver``: aiosqlite's Connection);
    returns the list and the original method, to put back."""
    trips: list = []
    own = driver._execute

    async def counted(fn, *args, **kwargs):
        trips.append(fn)
        return await own(fn, *args, **kwargs)

    driver._execute = counted
    return trips, own


async def test_rows_counts_and_ids_come_back_in_one_trip_per_statement(engine):
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        assert type(raw.dbapi_connection) is OneTripConnection
        driver = raw.driver_connection
        trips, own = _count_trips(driver)
        try:
            await conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            ids = []
            for name in NAMES:
                result = await conn.execute(text("INSERT INTO p (name) VALUES (:n)"), {"n": name})
                ids.append(result.lastrowid)
            assert ids == [1, 2, 3, 4]
            assert len(trips) == 1 + len(NAMES)  # one trip per statement
            rows = (await conn.execute(text("SELECT id, name FROM p ORDER BY id"))).all()
            assert [r.name for r in rows] == NAMES
            assert len(trips) == 2 + len(NAMES)
            updated = await conn.execute(text("UPDATE p SET name = name || '!' WHERE id > 2"))
            assert updated.rowcount == 2
            result = await conn.execute(text("INSERT INTO p (name) VALUES (:n) RETURNING id, name"),
                                        {"n": "Plh. Kadis & <Sekretaris>"})
            assert result.one() == (5, "Plh. Kadis & <Sekretaris>")
            many = await conn.execute(text("INSERT INTO p (name) VALUES (:n)"),
                                      [{"n": "satu"}, {"n": "dua \u2764"}])
            assert many.rowcount == 2
            assert (await conn.execute(text("SELECT count(*) FROM p"))).scalar_one() == 7
            empty = await conn.execute(text("SELECT name FROM p WHERE id < 0"))
            assert empty.all() == []
            with pytest.raises(IntegrityError):  # the driver's error, as SQLAlchemy's
                await conn.execute(text("INSERT INTO p (name) VALUES (:n)"), {"n": NAMES[0]})
        finally:
            driver._execute = own


async def test_a_session_reads_orm_rows_through_it(engine):
    import models
    from models import Unit

    async with engine.begin() as conn:
        await conn.run_sync(models.Base.metadata.create_all)
    sm = make_sessionmaker(engine)
    from sqlalchemy import select

    from models import Office

    async with sm() as s, s.begin():
        office = Office(name="Dinas & <Tenaga Kerja> \U0001F3E2", regency="Kab. \"Lampung\"",
                        place="Liwa", settings={"office": {"kop": "Jl. A & B <1>"}})
        s.add(office)
        await s.flush()
        s.add(Unit(office_id=office.id, code="U01", name=NAMES[1]))
    async with sm() as s:
        unit = (await s.execute(select(Unit))).scalar_one()
        assert unit.name == NAMES[1] and unit.id == 1
        office = (await s.execute(select(Office))).scalar_one()
        assert office.settings == {"office": {"kop": "Jl. A & B <1>"}}
        assert office.name == "Dinas & <Tenaga Kerja> \U0001F3E2"


async def test_storing_new_updates_goes_before_runs_waiting_for_the_write_lock():
    from bot.telegram.intake import _WriteTurns

    turns = _WriteTurns()
    order: list[str] = []

    async def take(name: str, first: bool = False) -> None:
        async with turns.turn(first=first):
            order.append(name)
            await asyncio.sleep(0.01)

    async with turns.turn():  # a run holds the lock
        waiting = [asyncio.create_task(take(f"run {i}")) for i in range(3)]
        await asyncio.sleep(0.01)
        store = asyncio.create_task(take("store", first=True))
        await asyncio.sleep(0.01)
        assert turns.locked()
    await asyncio.gather(store, *waiting)
    assert order == ["store", "run 0", "run 1", "run 2"]  # the runs in arrival order
    assert not turns.locked()


async def test_a_run_cancelled_while_waiting_for_the_write_lock_leaves_it_usable():
    from bot.telegram.intake import _WriteTurns

    turns = _WriteTurns()
    order: list[str] = []

    async def take(name: str) -> None:
        async with turns.turn():
            order.append(name)

    async with turns.turn():
        gone = asyncio.create_task(take("cancelled"))
        kept = asyncio.create_task(take("kept"))
        await asyncio.sleep(0.01)
        gone.cancel()
    await asyncio.gather(gone, kept, return_exceptions=True)
    assert order == ["kept"]
    assert not turns.locked()
    await asyncio.wait_for(take("later"), 1.0)
    assert order == ["kept", "later"]


async def test_an_inline_transaction_runs_on_the_event_loop_after_its_begin(engine):
    """The intake's sessions (``session.info[INLINE]``): with SQLite's write lock free,
    BEGIN IMMEDIATE, every statement after it and the commit run on the event loop's own
    thread (no trip to the driver's thread), with the same results; a rollback undoes
    them; a session without the mark goes to the thread for each statement. (With the
    lock held by another writer the BEGIN waits in the thread: the next test.)"""
    import threading

    from models.session import BUSY_TIMEOUT_MS, INLINE

    sm = make_sessionmaker(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        driver = (await conn.get_raw_connection()).driver_connection  # aiosqlite's
        # the thread a statement runs in, as SQL sees it
        await conn.run_sync(lambda c: c.connection.dbapi_connection._connection._conn
                            .create_function("tid", 0, threading.get_ident))
    loop_thread = threading.get_ident()
    trips, own = _count_trips(driver)
    try:
        async with sm(info={INLINE: True}) as s:
            async with s.begin():
                assert len(trips) == 0  # the BEGIN IMMEDIATE: the lock was free
                assert (await s.execute(text("SELECT tid()"))).scalar_one() == loop_thread
                ids = [(await s.execute(text("INSERT INTO p (name) VALUES (:n)"),
                                        {"n": n})).lastrowid for n in NAMES]
                assert ids == [1, 2, 3, 4]
                back = await s.execute(text("INSERT INTO p (name) VALUES (:n) RETURNING id"),
                                       {"n": "Plh. Kadis & <Sekretaris>"})
                assert back.scalar_one() == 5
                assert (await s.execute(text("UPDATE p SET name = name || '!' WHERE id > 3"))
                        ).rowcount == 2
                with pytest.raises(IntegrityError):  # a savepoint, rolled back inline
                    async with s.begin_nested():
                        await s.execute(text("INSERT INTO p (name) VALUES (:n)"), {"n": NAMES[0]})
            assert len(trips) == 0  # statements, savepoint and commit: none in the thread
        assert len(trips) == 0  # the connection given back: no transaction, no rollback trip
        with pytest.raises(RuntimeError):
            async with sm(info={INLINE: True}) as s, s.begin():
                await s.execute(text("INSERT INTO p (name) VALUES ('rolled back')"))
                raise RuntimeError("the handler failed")
        assert len(trips) == 0
        async with sm() as s, s.begin():  # not marked: the thread, a trip per statement
            assert (await s.execute(text("SELECT tid()"))).scalar_one() != loop_thread
            await s.execute(text("INSERT INTO p (name) VALUES ('thread')"))
        assert len(trips) == 4  # BEGIN, two statements, COMMIT
        async with sm() as s:  # the attempt's busy timeout of 0 did not stay
            assert (await s.execute(text("PRAGMA busy_timeout"))).scalar_one() == BUSY_TIMEOUT_MS
    finally:
        driver._execute = own
    async with sm() as s:
        names = list((await s.execute(text("SELECT name FROM p ORDER BY id"))).scalars())
    assert names == NAMES[:3] + [NAMES[3] + "!", "Plh. Kadis & <Sekretaris>!", "thread"]


async def test_an_inline_write_waits_for_another_writer_off_the_event_loop(engine, tmp_path):
    """While another process's connection holds SQLite's write lock, an inline write
    transaction waits at its BEGIN IMMEDIATE in the driver's thread: the event loop
    keeps serving others meanwhile, and the write goes through once the lock is free."""
    import sqlite3
    import threading
    import time

    from models.session import BUSY_TIMEOUT_MS, INLINE

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT)"))
    holder = sqlite3.connect(tmp_path / "driver.db", isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    committed: list[float] = []

    def commit() -> None:
        committed.append(time.monotonic())  # before: the lock is free only after it
        holder.execute("COMMIT")

    release = threading.Timer(0.6, commit)
    release.start()
    sm = make_sessionmaker(engine)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick = asyncio.create_task(ticker())
    try:
        async with sm(info={INLINE: True}) as s, s.begin():
            begun, ticks_waiting = time.monotonic(), ticks
            await s.execute(text("INSERT INTO p (name) VALUES ('after the wait')"))
    finally:
        tick.cancel()
        release.join()
        holder.close()
    assert committed and begun >= committed[0]  # it waited for the other writer
    # ~60 ticks while it waited if the loop was free; none if it waited on the loop
    assert ticks_waiting >= 5, ticks_waiting
    async with sm() as s:  # the attempt on the event loop left the busy timeout as it was
        assert (await s.execute(text("PRAGMA busy_timeout"))).scalar_one() == BUSY_TIMEOUT_MS
    async with sm() as s:
        assert (await s.execute(text("SELECT name FROM p"))).scalar_one() == "after the wait"


# ------------------------------------------------------------ statements run straight here
def _typed_table():
    import datetime as dt
    import enum
    from decimal import Decimal

    from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, Enum, Integer,
                            MetaData, Numeric, Table, Text)

    class Kind(enum.StrEnum):
        QUARTERLY = "quarterly"
        ANNUAL = "annual"

    table = Table("typed", MetaData(),
                  Column("id", Integer, primary_key=True),
                  Column("big", BigInteger),
                  Column("name", Text, nullable=False),
                  Column("amount", Numeric(20, 4)),
                  Column("flag", Boolean),
                  Column("at", DateTime),
                  Column("kind", Enum(Kind)),
                  Column("data", JSON),
                  Column("made", DateTime, default=dt.datetime.now))
    row = {"big": 9_007_199_254_740_993, "name": 'Dr. A & B <Kabid> "x" \U0001F600 ' + "y" * 120,
           "amount": Decimal("1234567890123.25"), "flag": True,
           "at": dt.datetime(2026, 11, 28, 10, 1, 2, 345678), "kind": Kind.ANNUAL,
           "data": {"state": "confirm", "text": "=1+1 & <b>", "n": [1, 2.5, None]},
           "made": dt.datetime(2026, 1, 1)}
    return table, row


def _executes(monkeypatch) -> list:
    """The statements that go through SQLAlchemy's execute path from now on."""
    from sqlalchemy.engine import Connection

    calls: list = []
    own = Connection.execute

    def counted(self, *args, **kwargs):
        calls.append(args[0])
        return own(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", counted)
    return calls


async def _inline_session(engine):
    from models.session import INLINE

    async with engine.begin() as conn:
        await conn.run_sync(_typed_table()[0].metadata.create_all)
    return make_sessionmaker(engine)(info={INLINE: True})


async def straight_as_sqlalchemy(session, monkeypatch) -> tuple[int, list]:
    """In ``session``'s open transaction, on the typed table: rows, types, row counts,
    RETURNING and binds (a statement's own literals, a bind's default value and
    callable, values kept by the statement) come back through ``core_rows`` /
    ``core_rowcount`` as SQLAlchemy's execute path gives them, without that path
    (``Connection.execute`` is not called). Returns the first row's id and the
    statements that went through that path from then on (for the caller's own)."""
    from sqlalchemy import bindparam, insert, select, update

    from models.session import core_rowcount, core_rows

    table, row = _typed_table()
    (new_id,), = await session.run_sync(  # SQLAlchemy's own path, for comparison
        lambda s: s.connection().execute(insert(table).returning(table.c.id), row).all())
    read = select(table).where(table.c.id == bindparam("k"))
    theirs = await session.run_sync(lambda s: s.connection().execute(read, {"k": new_id}).all())
    calls = _executes(monkeypatch)
    mine = await core_rows(session, read, {"k": new_id})
    assert mine == [tuple(theirs[0])]
    assert [type(v) for v in mine[0]] == [type(v) for v in theirs[0]]
    assert type(mine[0][4]) is bool and type(mine[0][6]) is type(row["kind"])
    assert mine[0][1:] == tuple(row.values())  # 13-digit rupiah, 2**53 + 1, emoji kept
    (second,), = await core_rows(session, insert(table).returning(table.c.id),
                                 {**row, "name": "kedua"})
    assert second == new_id + 1
    flip = update(table).where(table.c.id >= bindparam("k")).values(flag=bindparam("f"))
    assert await core_rowcount(session, flip, {"k": new_id, "f": False}) == 2
    assert await core_rowcount(session, flip, {"k": 99, "f": False}) == 0
    assert [r[0] for r in await core_rows(session, select(table.c.flag))] == [False, False]
    # a statement's own literals, a bind's default value and callable, a bind given
    # by its compiled name: the values SQLAlchemy's construct_params finds
    mixed = (select(table.c.id, table.c.name)
             .where(table.c.flag.is_(False), table.c.name != "tidak ada & <x>",
                    table.c.id >= bindparam("lo", value=new_id),
                    table.c.id <= bindparam("hi", callable_=lambda: new_id + 1),
                    table.c.amount == bindparam("amt"))
             .order_by(table.c.id))
    assert await core_rows(session, mixed, {"amt": row["amount"]}) == [
        (new_id, row["name"]), (new_id + 1, "kedua")]
    assert await core_rows(session, mixed, {"amt": row["amount"], "lo": new_id + 1}) == [
        (new_id + 1, "kedua")]
    given = mixed.params(amt=row["amount"])  # values kept by the statement itself
    assert await core_rows(session, given, {}) == [(new_id, row["name"]), (new_id + 1, "kedua")]
    assert calls == []  # none of these went through SQLAlchemy's execute path
    with pytest.raises(StatementError, match="A value is required for bind parameter 'amt'"):
        await core_rows(session, mixed, {})
    return new_id, calls


async def test_a_core_statement_of_an_inline_transaction_runs_straight_on_sqlite_as_sqlalchemy_would(
        engine, monkeypatch):
    """Rows, types, row counts and RETURNING come back as SQLAlchemy's execute path gives
    them, without that path (``Connection.execute`` is not called)."""
    session = await _inline_session(engine)
    async with session, session.begin():
        await straight_as_sqlalchemy(session, monkeypatch)


async def test_what_needs_the_execution_context_goes_through_sqlalchemy(engine, monkeypatch):
    """A Python-side column default and several parameter sets are left to SQLAlchemy's
    execute path, and their results are right; an IN list is expanded here."""
    from sqlalchemy import bindparam, insert, select

    from models.session import core_rows

    table, row = _typed_table()
    session = await _inline_session(engine)
    calls = _executes(monkeypatch)
    async with session, session.begin():
        without_made = {k: v for k, v in row.items() if k != "made"}
        (one,), = await core_rows(session, insert(table).returning(table.c.made), without_made)
        assert one is not None and len(calls) == 1  # the default filled in by SQLAlchemy
        two = await core_rows(session, insert(table).returning(table.c.id),
                              [without_made, without_made])
        assert len(two) == 2 and len(calls) == 2
        listed = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True)))
        assert await core_rows(session, listed, {"ids": [1, 3, 7]}) == [(1,), (3,)]
        assert await core_rows(session, listed, {"ids": [2]}) == [(2,)]
        assert await core_rows(session, listed, {"ids": []}) == []
        assert len(calls) == 2


async def test_a_straight_statement_flushes_pending_changes_fires_the_events_and_raises_sqlalchemys_errors(
        engine, monkeypatch):
    from sqlalchemy import event, insert, select

    from models import Office
    from models.base import Base
    from models.session import core_rows

    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    table, row = _typed_table()
    session = await _inline_session(engine)
    seen: list[str] = []
    listen = lambda _c, _cur, statement, *_a: seen.append(statement)  # noqa: E731
    event.listen(engine.sync_engine, "before_cursor_execute", listen)
    through = _executes(monkeypatch)
    try:
        async with session:
            async with session.begin():
                session.add(Office(name="Dinas \"Baru\" & <b> \U0001F600"))  # pending
                names = select(Office.__table__.c.name)
                assert await core_rows(session, names) == [('Dinas "Baru" & <b> \U0001F600',)]
                assert seen[-2].startswith("INSERT INTO office")  # the flush's first
                assert seen[-1].startswith("SELECT office.name")  # seen though straight
                assert [str(x).split()[0] for x in through] == ["INSERT"]  # the flush's
                await core_rows(session, insert(table).returning(table.c.id), {**row, "id": 5})
                with pytest.raises(IntegrityError):
                    await core_rows(session, insert(table).returning(table.c.id),
                                    {**row, "id": 5})
                await session.rollback()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listen)
    async with make_sessionmaker(engine)() as s:  # the rollback took everything back
        assert (await s.execute(select(Office))).first() is None


async def test_a_straight_statement_is_refused_as_sqlalchemy_refuses_it_and_counts_and_fails_alike(
        engine, tmp_path):
    """In a savepoint that a failed flush rolled back, a statement is refused until the
    savepoint is rolled back (nothing written there is committed); a row count of DML
    with RETURNING is the rows'; an error binding a parameter is SQLAlchemy's
    StatementError; a plan is per engine (each engine's JSON serializer)."""
    import json

    from sqlalchemy import bindparam, insert, select, update
    from sqlalchemy.exc import PendingRollbackError

    from models import Office
    from models.base import Base
    from models.session import INLINE, core_rowcount, core_rows

    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    table, row = _typed_table()
    session = await _inline_session(engine)
    rename = update(table).values(name=bindparam("n"))
    async with session:
        async with session.begin():
            await core_rows(session, insert(table).returning(table.c.id), {**row, "id": 1})
            nested = await session.begin_nested()
            session.add(Office(name=None))  # NOT NULL: the flush fails
            with pytest.raises(IntegrityError):
                await session.flush()
            with pytest.raises(PendingRollbackError):
                await core_rowcount(session, rename, {"n": "ditulis di savepoint yang gagal"})
            await nested.rollback()
            renamed = update(table).values(name=bindparam("n")).returning(table.c.id)
            assert await core_rowcount(session, renamed, {"n": "kedua"}) == 1
            with pytest.raises(StatementError) as raised:
                await core_rows(session, update(table).values(data=bindparam("d")),
                                {"d": {"tidak": object()}})
            assert isinstance(raised.value.orig, TypeError)
        assert await core_rows(session, select(table.c.name)) == [("kedua",)]

    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    other.sync_engine.dialect._json_serializer = lambda v: json.dumps(v) + " "
    try:
        async with other.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
        plain = update(table).values(data=bindparam("d"))
        for eng in (engine, other):
            s = make_sessionmaker(eng)(info={INLINE: True})
            async with s, s.begin():
                if eng is other:
                    await core_rows(s, insert(table).returning(table.c.id), {**row, "id": 1})
                await core_rowcount(s, plain, {"d": {"x": 1}})
        for eng, stored in ((engine, '{"x": 1}'), (other, '{"x": 1} ')):
            async with eng.connect() as conn:
                assert (await conn.exec_driver_sql("SELECT data FROM typed")).scalar() == stored
    finally:
        await other.dispose()
