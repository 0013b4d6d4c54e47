"""bot/core/data_entry.py keeps a bidang's items in the process while the cycle's item
token (models.ItemToken, written by the database's triggers) stays the same: a kept
bidang is used without its statement, and any change of the items or of their
indicators, made by another connection or in the transaction itself, is seen at the
next read; a change rolled back leaves the items as they were. On SQLite, and on
PostgreSQL when SOPBOT_TEST_DATABASE_URL is set."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, select, text

import models
from bot.core.data_entry import load_entry
from bot.core.workflow import Workflow
from models.enums import CycleKind, Role
from models.session import make_engine
from tests.conftest import POSTGRES_URL
from tests.helpers import person as person_of

ITEMS_READ = "FROM cycle_indicator JOIN indicator"  # the bidang's items statement
NAME = 'Jumlah "pelatihan" <kerja> & 🙂 ' + "x" * 90  # 120 characters


class Reads:
    """The bidang item statements the engine runs."""

    def __init__(self, engine) -> None:
        self.engine, self.n = engine.sync_engine, 0

    def __enter__(self) -> "Reads":
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_rest) -> None:
        self.n += ITEMS_READ in " ".join(statement.split())


@pytest.fixture
async def collecting(sessionmaker, services, office):
    """The example office's cycle in data entry (steps 1-3 done): the Kabid of the first
    bidang, their step-4 run."""
    async def step(fn):
        async with sessionmaker() as s, s.begin():
            return await fn(Workflow(s, services), s)

    async def run_of(step_no: int, unit_id: int | None = None):
        async with sessionmaker() as s:
            stmt = select(models.StepRun).where(models.StepRun.step_no == step_no)
            if unit_id is not None:
                stmt = stmt.where(models.StepRun.unit_id == unit_id)
            return (await s.execute(stmt.order_by(models.StepRun.id.desc()))).scalars().first()

    async with sessionmaker() as s:
        kadis, sek, kasubag, staf = [await person_of(s, r) for r in
                                     (Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.STAF)]
    await step(lambda wf, s: wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3, "Segera"))
    run2 = await run_of(2)
    await step(lambda wf, s: wf.forward_disposition(sek, run2.id, ""))
    run3 = await run_of(3)
    await step(lambda wf, s: wf.open_collection(kasubag, run3.id, None, 3))
    run = await run_of(4, staf.unit_id)  # a bidang with a staf
    async with sessionmaker() as s:
        kabid = await s.get(models.Person, run.assignee_id)
    return step, kabid, run


async def test_kept_items_are_used_until_another_connection_changes_them(
        engine, sessionmaker, services, collecting):
    step, kabid, run = collecting

    async def entry():
        return await step(lambda wf, s: load_entry(wf, kabid, run.id))

    with Reads(engine) as reads:
        first = await entry()
        again = await entry()
    assert reads.n == 1  # the second update used the kept items
    assert again.indicators is first.indicators and again.items == first.items
    item = first.items[0]

    async def changed(sql: str, **params):
        async with engine.begin() as conn:  # another connection, committed
            await conn.execute(text(sql), params)
        with Reads(engine) as reads:
            seen = await entry()
        assert reads.n == 1  # read again
        return seen

    seen = await changed("UPDATE cycle_indicator SET target = :t WHERE id = :i",
                         t="1234567890123", i=item.id)
    assert Decimal(seen.items[0].target) == Decimal("1234567890123")
    seen = await changed("UPDATE indicator SET name = :n WHERE id = :i",
                         n=NAME, i=item.indicator_id)
    assert seen.ind(seen.items[0]).name == NAME
    seen = await changed("DELETE FROM cycle_indicator WHERE id = :i", i=item.id)
    assert item.id not in [i.id for i in seen.items]
    seen = await changed(
        "INSERT INTO cycle_indicator (cycle_id, indicator_id, unit_id, position, target) "
        "VALUES (:c, :ind, :u, 999, 5)", c=run.cycle_id, ind=item.indicator_id, u=run.unit_id)
    assert seen.items[-1].indicator_id == item.indicator_id and seen.items[-1].position == 999
    with Reads(engine) as reads:
        await entry()
    assert reads.n == 0  # kept again


async def test_a_change_in_the_transaction_is_seen_and_one_rolled_back_is_not_kept(
        engine, sessionmaker, services, collecting):
    step, kabid, run = collecting
    first = await step(lambda wf, s: load_entry(wf, kabid, run.id))
    item = first.items[0]
    async with sessionmaker() as s:
        await s.begin()
        wf = Workflow(s, services)
        await s.execute(text("UPDATE cycle_indicator SET target = 777 WHERE id = :i"),
                        {"i": item.id})
        inside = await load_entry(wf, kabid, run.id)
        assert Decimal(inside.items[0].target) == 777  # its own change, not the kept items
        await s.rollback()
    after = await step(lambda wf, s: load_entry(wf, kabid, run.id))
    assert after.items[0].target == item.target  # as before the rolled-back change
    # the workflow's own change (an item handed to a staf) is seen at the next update
    async with sessionmaker() as s:
        staf = await person_of(s, Role.STAF, None)
    await step(lambda wf, s: wf.assign_item(kabid, run.id, item.id, staf.id))
    handed = await step(lambda wf, s: load_entry(wf, kabid, run.id))
    assert handed.items[0].assigned_to_id == staf.id


async def _triggers(url: str) -> set[str]:
    eng = make_engine(url)
    try:
        async with eng.connect() as conn:
            sql = ("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                   if url.startswith("sqlite") else
                   "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            return {r[0] for r in await conn.execute(text(sql))}
    finally:
        await eng.dispose()


async def test_the_migration_makes_the_triggers_that_create_all_makes(db_url, engine, tmp_path):
    from models.migrate import upgrade_engine
    from tests.conftest import reset_schema

    made = await _triggers(db_url)  # create_all (the engine fixture)
    assert made == set(models.workflow.ITEM_TOKEN_TRIGGERS)
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'migrated.db'}"
    if POSTGRES_URL:  # the same database: emptied, then migrated
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    migrated = make_engine(url)
    try:
        await upgrade_engine(migrated)
    finally:
        await migrated.dispose()
    assert await _triggers(url) == made
    if POSTGRES_URL:
        await reset_schema(engine, db_url)
