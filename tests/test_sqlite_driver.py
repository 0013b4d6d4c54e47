"""models/sqlite_driver.py: on SQLite a statement makes one trip to aiosqlite's thread,
and what SQLAlchemy reads back (rows, row counts, new ids, errors) is what the stock
cursor gave; and the intake's write lock lets the storing of new updates go first."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from models.session import make_engine, make_sessionmaker
from models.sqlite_driver import OneTripConnection

NAMES = ["Dr. A & B <Kabid>", 'Kepala "Bidang" Pelatihan', "Staf \U0001F600 Sek",
         "x" * 300]


@pytest.fixture
async def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    yield engine
    await engine.dispose()


async def test_rows_counts_and_ids_come_back_in_one_trip_per_statement(engine):
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        assert type(raw.dbapi_connection) is OneTripConnection
        trips = []
        driver = raw.driver_connection
        own = driver._execute

        async def counted(fn, *args, **kwargs):
            trips.append(fn)
            return await own(fn, *args, **kwargs)

        driver._execute = counted
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
