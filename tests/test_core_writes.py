"""Writes made past the unit of work (``models.session.as_written``: a typed answer's
submission, a conversation's update) leave the session as its flush would: a later
flush has nothing to write, and a rolled-back savepoint expunges an inserted object and
expires an updated one instead of keeping what was rolled back; a conversation's update
writes only the columns that changed (a card id another process stored meanwhile stays)."""
from __future__ import annotations

import pytest
from sqlalchemy import event, insert, inspect as sa_inspect, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import make_transient_to_detached

from bot.core.onboarding import save_conversation
from models import Conversation, Office, Person
from models.enums import Role
from models.session import as_written, core_rows


async def _person(sessionmaker) -> int:
    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas <Tenaga Kerja> & \"Perindustrian\"")
        s.add(office)
        await s.flush()
        person = Person(office_id=office.id, name="Plh. Kadis 🙂", role=Role.KADIS)
        s.add(person)
        await s.flush()
        s.add(Conversation(person_id=person.id, kind="entry", state="ask",
                           data={"run": 1, "item": 2}, message_id=10))
        return person.id


async def test_a_conversation_update_writes_the_changed_columns_and_nothing_for_no_change(
        engine, sessionmaker):
    pid = await _person(sessionmaker)
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessionmaker() as s, s.begin():
            conv = await s.get(Conversation, pid)
            seen.clear()
            conv.state = "confirm"
            await save_conversation(s, conv)
            conv.data = {"run": 1, "item": 2}  # the same as stored: not a change
            await save_conversation(s, conv)
            await s.flush()  # nothing left for the unit of work
            updates = [q for q in seen if q.startswith("UPDATE conversation")]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(updates) == 1, seen
    assert updates[0].startswith("UPDATE conversation SET state=") and "message_id" not in \
        updates[0] and "data" not in updates[0], updates
    async with sessionmaker() as s:
        stored = await s.get(Conversation, pid)
        assert (stored.state, stored.message_id, stored.data) == ("confirm", 10,
                                                                 {"run": 1, "item": 2})


async def test_a_rolled_back_savepoint_expires_the_conversation_and_expunges_the_insert(
        sessionmaker):
    pid = await _person(sessionmaker)
    async with sessionmaker() as s, s.begin():
        conv = await s.get(Conversation, pid)
        kadis = await s.get(Person, pid)
        with pytest.raises(RuntimeError):
            async with s.begin_nested():
                conv.state, conv.message_id = "summary", 11
                await save_conversation(s, conv)
                table = Conversation.__table__
                (new_pid,), = await core_rows(s, insert(Person.__table__).values(
                    office_id=kadis.office_id, name="Staf", role=Role.STAF,
                    active=True).returning(Person.__table__.c.id))
                added = Conversation(person_id=new_pid, kind="entry", state="ask",
                                     data={}, message_id=None, updated_at=conv.updated_at)
                await core_rows(s, insert(table).values(
                    person_id=new_pid, kind="entry", state="ask", data={},
                    message_id=None, updated_at=conv.updated_at).returning(table.c.person_id))
                make_transient_to_detached(added)
                s.add(added)
                as_written(s, added, inserted=True)
                raise RuntimeError("the block failed")
        assert sa_inspect(conv).expired  # not the rolled-back "summary"
        assert added not in s
        await s.refresh(conv)
        assert (conv.state, conv.message_id) == ("ask", 10)
        assert await s.get(Conversation, new_pid) is None
        assert (await s.execute(select(Conversation.state).where(
            Conversation.person_id == pid))).scalar_one() == "ask"


async def test_objects_made_from_a_core_select_are_as_a_query_loads_them(engine, sessionmaker):
    """``core_objects``: the same values as the ORM's loading, persistent and clean; a
    change is flushed as one of a loaded object (that column only); the session's
    ``get`` finds them without a statement; an object the session holds already is
    kept, with its pending change; a row missing from an outer join is None."""
    from bot.core.onboarding import _person_with_conversation
    from models.session import core_objects

    pid = await _person(sessionmaker)
    async with sessionmaker() as s, s.begin():
        other = Person(office_id=(await s.get(Person, pid)).office_id,
                       name="Staf tanpa percakapan", role=Role.STAF, telegram_user_id=7)
        s.add(other)
        (await s.get(Person, pid)).telegram_user_id = 6
    async with sessionmaker() as s:
        loaded = (await s.execute(select(Person, Conversation).join(
            Conversation, Conversation.person_id == Person.id))).one()
        expected = [{a.key: getattr(obj, a.key) for a in sa_inspect(obj).mapper.column_attrs}
                    for obj in loaded]
    seen: list[str] = []
    record = lambda _c, _cur, statement, *_a: seen.append(" ".join(statement.split()))  # noqa: E731
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessionmaker() as s, s.begin():
            (person, conv), = await core_objects(s, _person_with_conversation(),
                                                 {"telegram_user_id": 6}, Person, Conversation)
            made = [{a.key: getattr(obj, a.key) for a in sa_inspect(obj).mapper.column_attrs}
                    for obj in (person, conv)]
            assert made == expected
            for obj in (person, conv):
                state = sa_inspect(obj)
                assert state.persistent and not state.modified and obj in s
            assert not s.dirty and not s.new
            with pytest.raises(InvalidRequestError):  # not loaded: lazy="raise", as loaded
                person.unit  # noqa: B018
            seen.clear()
            assert await s.get(Person, pid) is person and await s.get(Conversation, pid) is conv
            assert seen == []  # from the identity map
            person.name = "Kadis <baru> & \"lama\""
            await s.flush()
            assert len(seen) == 1 and seen[0].startswith("UPDATE person SET name="), seen
            # held already: kept as it is, its unflushed change too
            person.name = "belum ditulis"
            (again, conv2), = await core_objects(s, _person_with_conversation(),
                                                 {"telegram_user_id": 6}, Person, Conversation)
            assert again is person and conv2 is conv and person.name == "belum ditulis"
            (lone, none), = await core_objects(s, _person_with_conversation(),
                                               {"telegram_user_id": 7}, Person, Conversation)
            assert lone.name == "Staf tanpa percakapan" and none is None
            assert await core_objects(s, _person_with_conversation(),
                                      {"telegram_user_id": 8}, Person, Conversation) == []
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    async with sessionmaker() as s:
        assert (await s.get(Person, pid)).name == "belum ditulis"  # flushed at the commit
