"""The audit trail's head is taken only at commit (docs/reliability.md, "Audit trail"):
``audit.record`` queues the row and the commit appends it under the head's lock, so a
transaction that recorded an action does not hold every other writer of the regency
while it works. A row recorded in a transaction or savepoint that is rolled back is never
written; a keyed chain without its key refuses the whole transaction at commit."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from bot.core import audit
from bot.core.audit import KEY_ENV, AuditKeyError, current_head, verify
from models import AuditHead, AuditLog, Person
from models.enums import Role
from tests.conftest import POSTGRES_URL
from tests.helpers import person

needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="row locks across connections need PostgreSQL: set "
                             "SOPBOT_TEST_DATABASE_URL")

AT = datetime(2024, 7, 1, 8, 30, tzinfo=timezone.utc)
AGENCY = 'Dinas Pendidikan & "Kebudayaan" <Kab. Sikka> 🏫'
LONG = "Bidang Pembinaan Sekolah Dasar dan Pendidikan Anak Usia Dini " * 4


class Failed(Exception):
    pass


async def _chain(sessionmaker) -> list[tuple[str, dict, str, str]]:
    async with sessionmaker() as s:
        rows = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
        result = await verify(s)
    assert result.ok, result.problems
    assert result.rows == len(rows)
    return [(r.action, json.loads(r.payload), r.prev_hash, r.hash) for r in rows]


async def test_a_rolled_back_transactions_rows_never_appear(sessionmaker, office):
    async with sessionmaker() as s, s.begin():
        await audit.record(s, "test.first", actor_id=None, cycle_id=None, at=AT, who=AGENCY)

    with pytest.raises(Failed):
        async with sessionmaker() as s, s.begin():
            kadis = await person(s, Role.KADIS)
            await audit.record(s, "test.refused", actor_id=kadis.id, cycle_id=None, at=AT,
                               who=AGENCY, note=LONG)
            raise Failed()
    # the same session: rolled back explicitly, then a new transaction that commits
    async with sessionmaker() as s:
        async with s.begin():
            await audit.record(s, "test.refused", actor_id=None, cycle_id=None, at=AT, n=2)
            await s.rollback()
        async with s.begin():
            await audit.record(s, "test.second", actor_id=None, cycle_id=None, at=AT,
                               who=AGENCY)
    # a session closed without commit
    async with sessionmaker() as s:
        await s.begin()
        await audit.record(s, "test.refused", actor_id=None, cycle_id=None, at=AT, n=3)
    # recorded as a session's first act (no transaction begun yet), closed, reused
    s = sessionmaker()
    await audit.record(s, "test.refused", actor_id=None, cycle_id=None, at=AT, n=4)
    await s.close()
    async with s.begin():
        await audit.record(s, "test.third", actor_id=None, cycle_id=None, at=AT, emoji="😀")
    await s.close()

    chain = await _chain(sessionmaker)
    assert [c[0] for c in chain] == ["test.first", "test.second", "test.third"]
    assert chain[0][1] == {"who": AGENCY} and chain[2][1] == {"emoji": "😀"}
    assert chain[1][2] == chain[0][3] and chain[2][2] == chain[1][3]
    async with sessionmaker() as s:
        head = await s.get(AuditHead, 1)
        assert head.count == 3 and head.last_hash == chain[-1][3]


async def test_rows_of_a_rolled_back_savepoint_are_not_written_with_the_outer_commit(
        sessionmaker, office):
    async with sessionmaker() as s, s.begin():
        await audit.record(s, "test.before", actor_id=None, cycle_id=None, at=AT, who=AGENCY)
        with pytest.raises(Failed):
            async with s.begin_nested():
                await audit.record(s, "test.in_refused_savepoint", actor_id=None,
                                   cycle_id=None, at=AT)
                async with s.begin_nested():  # nested in the refused one
                    await audit.record(s, "test.in_inner_savepoint", actor_id=None,
                                       cycle_id=None, at=AT)
                raise Failed()
        async with s.begin_nested():  # released: its rows stay
            await audit.record(s, "test.in_kept_savepoint", actor_id=None, cycle_id=None,
                               at=AT, note=LONG)
        nested = await s.begin_nested()
        await audit.record(s, "test.in_rolled_back_savepoint", actor_id=None, cycle_id=None,
                           at=AT)
        await nested.rollback()
        await audit.record(s, "test.after", actor_id=None, cycle_id=None, at=AT, q='"x"')
        # nothing is written before the commit
        assert (await s.execute(select(func.count()).select_from(AuditLog))).scalar() == 0

    # session.commit() with a savepoint still open commits both, rows included
    async with sessionmaker() as s:
        await s.begin()
        await s.begin_nested()
        await audit.record(s, "test.in_open_savepoint", actor_id=None, cycle_id=None, at=AT,
                           who=AGENCY)
        await s.commit()

    chain = await _chain(sessionmaker)
    assert [c[0] for c in chain] == ["test.before", "test.in_kept_savepoint", "test.after",
                                     "test.in_open_savepoint"]
    assert chain[1][1] == {"note": LONG} and chain[2][1] == {"q": '"x"'}


async def test_a_keyed_chain_without_the_key_refuses_the_whole_transaction_at_commit(
        sessionmaker, office, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "kunci <Dinas> & \"rahasia\" 🔐")
    async with sessionmaker() as s, s.begin():
        await audit.record(s, "test.keyed", actor_id=None, cycle_id=None, at=AT)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(AuditKeyError, match=KEY_ENV):
        async with sessionmaker() as s, s.begin():
            kadis = await person(s, Role.KADIS)
            kadis.name = AGENCY  # the transaction's other work
            await audit.record(s, "test.without_key", actor_id=kadis.id, cycle_id=None, at=AT)
    async with sessionmaker() as s:
        assert (await person(s, Role.KADIS)).name != AGENCY
        rows = (await s.execute(select(AuditLog.action))).scalars().all()
        assert rows == ["test.keyed"]
        head = await s.get(AuditHead, 1)
        assert head.count == 1 and head.mode == audit.KEYED


@needs_postgres
async def test_the_head_is_not_held_while_a_transaction_works(sessionmaker, office):
    """A records an action and keeps its transaction open (the rest of a handler's work,
    a Bot API call); B records and commits meanwhile, without waiting for A. With the head
    locked at ``record`` B would wait for A's commit and A for B: neither would finish."""
    async with sessionmaker() as s, s.begin():
        await audit.record(s, "test.genesis", actor_id=None, cycle_id=None, at=AT)
    a_recorded, b_committed = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def a() -> audit.Head:
        async with sessionmaker() as s, s.begin():
            kadis = await person(s, Role.KADIS)
            await audit.record(s, "test.a1", actor_id=kadis.id, cycle_id=None, at=AT,
                               who=AGENCY)
            printed = await current_head(s)  # as printed on a document made here
            await audit.record(s, "test.a2", actor_id=kadis.id, cycle_id=None, at=AT,
                               note=LONG)
            s.add(Person(name=AGENCY, telegram_user_id=987654321, role=Role.STAF,
                         office_id=kadis.office_id))
            await s.flush()  # A's transaction has written and holds its row locks
            order.append("A recorded")
            a_recorded.set()
            # a guard against a hang, not a measure: B commits in well under a second
            await asyncio.wait_for(b_committed.wait(), timeout=120)
            order.append("A commits")
        return printed

    async def b() -> None:
        await a_recorded.wait()
        async with sessionmaker() as s, s.begin():
            await audit.record(s, "test.b", actor_id=None, cycle_id=None, at=AT, emoji="😀")
        order.append("B committed")
        b_committed.set()

    printed, _ = await asyncio.gather(a(), b())
    assert order == ["A recorded", "B committed", "A commits"]
    chain = await _chain(sessionmaker)
    # in commit order, ids too: B's row, then A's two in the order A recorded them
    assert [c[0] for c in chain] == ["test.genesis", "test.b", "test.a1", "test.a2"]
    assert chain[2][2] == chain[1][3] and chain[3][2] == chain[2][3]
    # the head A could print was a committed one, in the chain
    assert printed.hash == chain[0][3] and printed.rows == 1
    async with sessionmaker() as s:
        found = await verify(s, expect_head=printed.hash)
        head = await s.get(AuditHead, 1)
    assert found.ok and found.expected_at is not None
    assert head.count == 4 and head.last_hash == chain[-1][3]


def _kinds(statements: list[str]) -> list[str]:
    return [sql.split()[0] for sql in statements]


async def test_two_statements_while_the_head_is_as_left_else_it_is_read_under_its_lock(
        db_url, engine, sessionmaker, office):
    """An append is two statements (the head moved on under its lock, the row) while the
    head is as this engine's last commit left it. Another writer appending meanwhile (a
    second engine on the same database, as another process would be), or a commit of
    this engine that failed after its rows were written, makes the next append read the
    head under its lock (four statements): the chain links and verifies either way."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from models.session import make_engine, make_sessionmaker

    audit._KNOWN.clear()  # as a process that has not appended yet
    seen: list[str] = []

    def on_statement(_conn, _cursor, statement, *_rest) -> None:
        if "audit_" in statement:
            seen.append(" ".join(statement.split()))

    async def append(sm, action: str) -> list[str]:
        seen.clear()
        async with sm() as s, s.begin():
            await audit.record(s, action, actor_id=None, cycle_id=None, at=AT, who=AGENCY)
        return list(seen)

    def boom(_session) -> None:
        raise Failed()

    other_engine = make_engine(db_url)
    other = make_sessionmaker(other_engine)
    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        first = await append(sessionmaker, "test.first")
        assert _kinds(first)[0] == "SELECT", first  # nothing known: read, locked
        second = await append(sessionmaker, "test.second")
        assert _kinds(second) == ["UPDATE", "INSERT"], second
        assert "audit_head.last_hash =" in second[0] and "audit_head.count =" in second[0]
        await append(other, "test.other")  # the other writer (its statements not seen)
        third = await append(sessionmaker, "test.third")
        assert _kinds(third) == ["UPDATE", "SELECT", "INSERT", "UPDATE"], third
        event.listen(Session, "before_commit", boom)  # after the audit's own listener
        try:
            with pytest.raises(Failed):
                await append(sessionmaker, "test.refused")
        finally:
            event.remove(Session, "before_commit", boom)
        assert _kinds(seen) == ["UPDATE", "INSERT"], seen  # written, then rolled back
        fourth = await append(sessionmaker, "test.fourth")
        assert _kinds(fourth) == ["UPDATE", "SELECT", "INSERT", "UPDATE"], fourth
        fifth = await append(sessionmaker, "test.fifth")
        assert _kinds(fifth) == ["UPDATE", "INSERT"], fifth
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_statement)
        await other_engine.dispose()
    chain = await _chain(sessionmaker)
    assert [c[0] for c in chain] == ["test.first", "test.second", "test.other", "test.third",
                                     "test.fourth", "test.fifth"]
    for earlier, later in zip(chain, chain[1:]):
        assert later[2] == earlier[3]
    async with sessionmaker() as s:
        head = await s.get(AuditHead, 1)
    assert head.count == 6 and head.last_hash == chain[-1][3]


@needs_postgres
async def test_concurrent_writers_append_in_id_order(sessionmaker, office):
    """Many transactions at once, each with one to three rows: the chain read by id
    links and verifies (ids are given under the head's lock)."""
    async def one(i: int) -> None:
        async with sessionmaker() as s, s.begin():
            for j in range(1 + i % 3):
                await audit.record(s, f"test.writer{i}", actor_id=None, cycle_id=None, at=AT,
                                   who=f"{AGENCY} #{i}.{j}")
                await asyncio.sleep(0)

    await asyncio.gather(*(one(i) for i in range(12)))
    chain = await _chain(sessionmaker)
    assert len(chain) == sum(1 + i % 3 for i in range(12))
    for i in range(12):  # a transaction's rows are consecutive and in the order recorded
        at = [k for k, c in enumerate(chain) if c[0] == f"test.writer{i}"]
        assert at == list(range(at[0], at[0] + 1 + i % 3))
        assert [chain[k][1]["who"] for k in at] == [f"{AGENCY} #{i}.{j}"
                                                     for j in range(1 + i % 3)]
