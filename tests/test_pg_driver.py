"""models/pg_driver.py: on PostgreSQL a Core statement of a session's transaction runs
straight on asyncpg, and what comes back (rows with their types, row counts, RETURNING,
errors, a lost connection) is what SQLAlchemy's execute path gave. PostgreSQL only: the
PostgreSQL pass of .ci/run runs them (SOPBOT_TEST_DATABASE_URL)."""
from __future__ import annotations

import pytest
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from models.session import core_rows, core_rows_sync, make_engine, make_sessionmaker
from tests.conftest import POSTGRES_URL, asyncpg_connect
from tests.test_sqlite_driver import _executes, _typed_table, straight_as_sqlalchemy

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="asyncpg's path needs PostgreSQL: set SOPBOT_TEST_DATABASE_URL")


@pytest.fixture
async def pg():
    engine = make_engine(POSTGRES_URL)
    table, _row = _typed_table()
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
        await conn.execute(text("DROP TYPE IF EXISTS kind"))
        await conn.run_sync(table.metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
    await engine.dispose()


async def test_a_core_statement_runs_straight_on_asyncpg_as_sqlalchemy_would(pg, monkeypatch):
    """Rows and their types (a 13-digit rupiah as a Decimal, 2**53 + 1, an enum, JSON, a
    timestamp), row counts, RETURNING, a statement's own literals and bind defaults
    (``straight_as_sqlalchemy``, as on SQLite), and IN lists: as SQLAlchemy's execute
    path gives them, without that path; committed with the session's transaction."""
    table, _row = _typed_table()
    session = make_sessionmaker(pg)()
    async with session, session.begin():
        new_id, calls = await straight_as_sqlalchemy(session, monkeypatch)
        listed = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True)))
        assert await core_rows(session, listed, {"ids": [new_id, 7777, new_id + 1]}) == [
            (new_id,), (new_id + 1,)]
        assert await core_rows(session, listed, {"ids": []}) == []
        assert calls == []
    async with make_sessionmaker(pg)() as s:  # committed: the transaction was the session's
        assert len(await core_rows(s, select(table.c.id))) == 2


async def test_a_straight_statement_fires_the_events_raises_sqlalchemys_errors_and_rolls_back(
        pg, monkeypatch):
    table, row = _typed_table()
    seen: list[str] = []
    listen = lambda _c, _cur, statement, *_a: seen.append(statement)  # noqa: E731
    event.listen(pg.sync_engine, "before_cursor_execute", listen)
    calls = _executes(monkeypatch)
    try:
        session = make_sessionmaker(pg)()
        async with session:
            async with session.begin():
                await core_rows(session, insert(table).returning(table.c.id), {**row, "id": 5})
                assert seen[-1].startswith("INSERT INTO typed")  # seen though straight
                with pytest.raises(IntegrityError):
                    await core_rows(session, insert(table).returning(table.c.id),
                                    {**row, "id": 5})
                await session.rollback()
            assert calls == []
            async with session.begin():  # the same session goes on after the rollback
                assert await core_rows(session, select(table.c.id)) == []
                await core_rows(session, insert(table).returning(table.c.id), {**row, "id": 6})
                # inside the session's own work (a before_commit listener's): straight too
                assert await session.run_sync(
                    lambda s: core_rows_sync(s, select(table.c.id))) == [(6,)]
            assert calls == []
    finally:
        event.remove(pg.sync_engine, "before_cursor_execute", listen)


async def test_a_lost_connection_is_raised_as_sqlalchemys_and_the_pools_are_not_given_out_again(pg):
    """The server ends its connections (a restart) while a transaction is open: the
    statement fails as SQLAlchemy reports a disconnect, the connection is invalidated
    with the pool's older ones (as SQLAlchemy does), and the next session works on a
    new connection, not on another dead one kept in the pool."""
    table, row = _typed_table()
    sessionmaker = make_sessionmaker(pg)
    idle = sessionmaker()
    async with idle, idle.begin():  # a second connection, back in the pool after this
        (idle_pid,), = await core_rows(idle, select(text("pg_backend_pid()")))
        session = sessionmaker()
        async with session:
            async with session.begin():
                (busy_pid,), = await core_rows(session, select(text("pg_backend_pid()")))
    pooled = {idle_pid, busy_pid}
    assert len(pooled) == 2
    async with sessionmaker() as session:
        async with session.begin():
            (pid,), = await core_rows(session, select(text("pg_backend_pid()")))
            assert pid in pooled
            killer = await asyncpg_connect()
            try:  # the server ends both (as a restart would)
                await killer.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p",
                                     sorted(pooled))
            finally:
                await killer.close()
            with pytest.raises(DBAPIError) as raised:
                await core_rows(session, insert(table).returning(table.c.id), row)
            assert raised.value.connection_invalidated
            await session.rollback()
    async with sessionmaker() as s, s.begin():
        (new_pid,), = await core_rows(s, select(text("pg_backend_pid()")))
        assert new_pid not in pooled
        assert await core_rows(s, insert(table).returning(table.c.id), row) == [(1,)]
